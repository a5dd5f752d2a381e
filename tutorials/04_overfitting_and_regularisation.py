"""Tutorial 04: overfitting and regularisation.

What you will learn
-------------------
* A network with many more weights than training jets can memorise the training set: the
  training loss keeps falling while the validation loss turns up. That gap is **overfitting**.
* Remedies, each a hepnn option:

  - **L1 / L2 penalties** (``model.l1``, ``model.l2``) add ``lambda sum |w|`` or
    ``lambda sum w^2`` to the loss: small weights, smoother functions (L1 also zeroes weights).
  - **Weight decay** (``training.optimizer.weight_decay``, AdamW's by default with ``adamw``)
    shrinks every weight by a fraction of itself at each step, outside the loss (decoupled from
    Adam's adaptive step sizes, unlike an L2 penalty passed through them).
  - **Dropout** (``model.dropout``) drops a random fraction of the hidden units at each
    training step, so no unit can rely on another; at inference every unit is used.
  - **Early stopping** (``training.early_stopping: {patience: 3}``) stops when the
    validation loss has not improved for ``patience`` epochs and restores the best weights.
  - **Data augmentation**: more (valid) training examples. A jet image has physical
    symmetries: after centring, rotating by 180 degrees or flipping in eta or phi gives an
    equally valid jet. hepnn's image ``preprocess`` already *removes* these freedoms (rotate
    the principal axis, flip to put most pT in one quadrant); augmentation instead *adds* the
    transformed copies to the training set. Here it is done in numpy (it is not a hepnn option).

Run ``python tutorials/04_overfitting_and_regularisation.py --quick``.
"""

# %% [markdown]
# ## Setup

# %%
from __future__ import annotations

import sys
from pathlib import Path

import hepnn  # noqa: E402

# tutorials/_common.py from any working directory, as a script or as a notebook: beside the
# hepnn checkout (editable install), else in or above the current folder
TUTORIALS = next(p for p in (Path(hepnn.__file__).resolve().parents[1] / "tutorials",
                             *(q / d for q in (Path.cwd(), *Path.cwd().parents) for d in ("", "tutorials")))
                 if (p / "_common.py").is_file())
sys.path.insert(0, str(TUTORIALS))
import _common as tut  # noqa: E402

args = tut.parse_args(__doc__, "04_overfitting_and_regularisation")
N_JETS = 300 if args.quick else 2000
EPOCHS = 4 if args.quick else 60
PIXELS = 16 if args.quick else 33

import numpy as np  # noqa: E402

import hepnn.io  # noqa: E402
from hepnn import plotting  # noqa: E402
from hepnn.config import load_config  # noqa: E402
from hepnn.training.trainer import model_inputs  # noqa: E402

tut.section("data: constituent-level inputs flattened into a big MLP (easy to overfit)")
base = tut.top_qcd_config(args.out, N_JETS, seed=args.seed, inputs=("highlevel", "image"), pixels=PIXELS)
data = hepnn.io.load(load_config(base))
n_train = int((data["split"] == 0).sum())
print(f"  {n_train} training jets; the MLP sees {PIXELS}x{PIXELS} image pixels + 5 jet features")

# %% [markdown]
# ## 1. No regularisation against L2, dropout and early stopping
# A wide MLP on the flattened image (``flatten_sequences: true``) has ~100k weights for a few
# hundred jets: it overfits within a few epochs. The gap is measured with each final model in
# inference mode on the training and validation jets: the logged training loss has dropout switched
# on and the L2 penalty added, which would shrink a regularised model's gap on paper only.

# %%
BIG = {"name": "dense", "units": [256, 256], "flatten_sequences": True}
VARIANTS = {
    "none": ({**BIG, "dropout": 0.0}, {"early_stopping": None}),
    "L2 + dropout + early stopping": ({**BIG, "dropout": 0.5, "l2": 1e-3}, {"early_stopping": {"patience": 2}}),
}
if not args.quick:  # one remedy at a time
    VARIANTS.update({
        "L2": ({**BIG, "dropout": 0.0, "l2": 1e-3}, {"early_stopping": None}),
        "L1": ({**BIG, "dropout": 0.0, "l1": 1e-4}, {"early_stopping": None}),
        "dropout 0.5": ({**BIG, "dropout": 0.5}, {"early_stopping": None}),
        "early stopping": ({**BIG, "dropout": 0.0}, {"early_stopping": {"patience": 3}}),
        "weight decay (AdamW)": ({**BIG, "dropout": 0.0}, {"early_stopping": None, "optimizer": {
            **base["training"].get("optimizer", {}), "name": "adamw", "weight_decay": 0.05}}),
    })



def inference_loss(trainer, part) -> float:
    """Binary cross-entropy of the trained model on one split, dropout off and no L2 penalty (the
    logged training loss has both, which makes a regularised model's gap look smaller than it is)."""
    x = {name: part[name] for name in model_inputs(trainer.config)}
    p = np.clip(trainer.model_.predict(x, batch_size=1024, verbose=0).reshape(-1), 1e-7, 1 - 1e-7)
    y = np.asarray(part["label"], dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


tut.section(f"training {len(VARIANTS)} variants for up to {EPOCHS} epochs")
histories, gaps, aucs, epochs_run = {}, {}, {}, {}
for name, (model, training) in VARIANTS.items():
    cfg = dict(base, model=model, training={**base["training"], "epochs": EPOCHS, "batch_size": 32, **training})
    slug = "".join(c if c.isalnum() else "_" for c in name)
    trainer = tut.train(cfg, args.out / f"run_{slug}", data=data)
    h = trainer.history_
    histories[name] = h
    best = int(np.argmin([r["val_loss"] for r in h]))
    # the final model (early stopping restores its best epoch) on both splits, in inference mode
    train_loss, val_loss = inference_loss(trainer, data.split("train")), inference_loss(trainer, data.split("val"))
    gaps[name] = val_loss - train_loss
    aucs[name] = trainer.metrics_["auc"]
    epochs_run[name] = len(h)
    print(f"  {name:30s} epochs {len(h):3d}, best epoch {best + 1}, train loss {train_loss:.3f}, "
          f"val loss {val_loss:.3f} (gap {gaps[name]:+.3f}), test AUC {aucs[name]:.3f}")

import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots()
for i, (name, h) in enumerate(histories.items()):
    line, = ax.plot([r["epoch"] for r in h], [r["val_loss"] for r in h], marker="o", label=f"{name} (val)")
    ax.plot([r["epoch"] for r in h], [r["loss"] for r in h], ls="--", color=line.get_color(), label=f"{name} (train)")
ax.set(xlabel="epoch", ylabel="loss")
ax.legend(fontsize="small")
tut.save(fig, args.out, "overfitting")

# %% [markdown]
# ## 2. Data augmentation of jet images: rotations by 180 degrees and flips
# ``np.flip`` along the eta axis, the phi axis, and both (= rotation by 180 degrees) gives three
# extra copies of every training image: four times the training set. (Rotations by 90 degrees
# would swap eta and phi, which are not equivalent for a jet at fixed eta: we leave them out.)


# %%
def augment(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The images plus their eta flip, phi flip and 180-degree rotation."""
    copies = [images, np.flip(images, axis=1), np.flip(images, axis=2), np.rot90(images, k=2, axes=(1, 2))]
    return np.concatenate(copies), np.concatenate([labels] * len(copies))


tut.section("data augmentation of jet images")
train = data.split("train")
aug_images, aug_labels = augment(train["image"], train["label"])
print(f"  {len(train['label'])} training images -> {len(aug_labels)} after augmentation")
print(f"  pixel sum preserved: {np.allclose(aug_images.reshape(4, -1).sum(axis=1), aug_images[:len(train['label'])].sum())}")
avg = plotting.plot_average_images(aug_images[..., 0], aug_labels, class_names=["QCD", "top"])
tut.save(avg.figure, args.out, "augmented_average_images")

# The same small CNN trained twice through hepnn: once on the images as they are, once with
# ``training.augment`` (a random eta and/or phi flip of every training image, drawn anew each
# epoch: the network sees the four symmetric copies over the epochs without storing them).
aug_aucs = {}
CNN = {"name": "cnn", "inputs": ["image"], "filters": [8, 16], "convs_per_block": 1, "dense_units": [32]}
for name, augment in {"original": None, "augmented": {"flip_eta": True, "flip_phi": True}}.items():
    cfg = dict(base, model=CNN, training={**base["training"], "epochs": 2 if args.quick else 30, "batch_size": 64,
                                          "early_stopping": {"patience": 4}, "augment": augment})
    trainer = tut.train(cfg, args.out / f"run_cnn_{name}", data=data)
    aug_aucs[name] = trainer.metrics_["auc"]
    print(f"  CNN trained on {name:9s} images: test AUC {aug_aucs[name]:.3f}")

tut.result(gap=gaps, auc=aucs, epochs_run=epochs_run, max_epochs=EPOCHS, n_train=n_train,
           n_augmented=len(aug_labels), augmentation_auc=aug_aucs)
