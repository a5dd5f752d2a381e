"""Tutorial 06: a convolutional network on jet images.

What you will learn
-------------------
* A **jet image** is the pT of the constituents summed in an (eta, phi) grid around the jet
  axis, after centring, rotating the principal axis to a fixed direction, flipping and
  normalising (``data.inputs.image.preprocess``). Top jets show three hard prongs, QCD jets one.
* A **convolution** slides a small learned filter (``kernel_size`` x ``kernel_size``) over the
  image: the same weights at every position (translation equivariance, few parameters).
  **Pooling** halves the resolution and makes the response robust to small shifts.
  Stacked blocks see larger and larger patches; a dense head turns them into a score.
* hepnn's ``cnn`` builder: ``filters`` per block, ``convs_per_block``, ``kernel_size``,
  ``pooling`` (max/average), ``separable`` convolutions, ``global_pooling``, ``batch_norm``,
  ``dropout``; ``resnet`` adds residual blocks (full mode).
* The figures of merit of a tagger: the ROC curve, its area (AUC) and the background
  **rejection** ``1 / eps_B`` at a fixed signal efficiency (e.g. 50 %).
* **Per-pixel standardisation** (``data.inputs.image.standardize``): every pixel on the same
  scale, fitted on the training jets only.

Run ``python tutorials/06_jet_image_cnn.py --quick``.
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

args = tut.parse_args(__doc__, "06_jet_image_cnn")
N_JETS = 300 if args.quick else 5000
PIXELS = 16 if args.quick else 37
EPOCHS = 2 if args.quick else 30

import numpy as np  # noqa: E402

import hepnn.io  # noqa: E402
from hepnn import plotting  # noqa: E402
from hepnn.config import load_config  # noqa: E402

tut.section("data: jet images")
base = tut.top_qcd_config(args.out, N_JETS, seed=args.seed, inputs=("highlevel", "image"), pixels=PIXELS)
data = hepnn.io.load(load_config(base))
print(f"  images {data['image'].shape}")
avg = plotting.plot_average_images(data["image"][..., 0], data["label"], class_names=["QCD", "top"],
                                   extent=(-1.6, 1.6, -1.6, 1.6))
tut.save(avg.figure, args.out, "average_images")

# %% [markdown]
# ## 1. The CNN, from a config
# ``model.inputs: [image]`` picks the image input; the other inputs stay in the data for plots.

# %%
MODELS = {"cnn": {"name": "cnn", "inputs": ["image"], "filters": [8, 16] if args.quick else [32, 64, 64],
                  "convs_per_block": 1 if args.quick else 2, "dense_units": [32] if args.quick else [64],
                  "dropout": 0.1}}
if not args.quick:
    MODELS["resnet"] = {"name": "resnet", "inputs": ["image"], "filters": [16, 32, 64]}
MODELS["dense (jet features)"] = {"name": "dense", "inputs": ["highlevel"], "units": [32, 32], "dropout": 0.0}

tut.section(f"training {', '.join(MODELS)} for {EPOCHS} epochs")
scores, aucs, rejection50 = {}, {}, {}
labels = None
for name, model in MODELS.items():
    cfg = dict(base, model=model, training={**base["training"], "epochs": EPOCHS, "batch_size": 32})
    slug = "".join(c if c.isalnum() else "_" for c in name)
    trainer = tut.train(cfg, args.out / f"run_{slug}", data=data)
    if name == "cnn":
        trainer.model_.summary(print_fn=lambda line, *a, **k: print("   ", line))
    scores[name], labels = trainer.test_scores_, trainer.test_labels_
    aucs[name] = trainer.metrics_["auc"]
    rejection50[name] = trainer.metrics_["rejection"]["0.5"]
    print(f"  {name:22s} {len(trainer.history_)} epochs, {trainer.seconds_:.1f} s: test AUC {aucs[name]:.3f}, "
          f"rejection at 50% signal efficiency {rejection50[name]}")

# %% [markdown]
# ## 2. ROC, rejection and score distributions

# %%
roc = plotting.plot_roc(scores, labels)
tut.save(roc.figure, args.out, "roc")
rej = plotting.plot_rejection(scores, labels)
tut.save(rej.figure, args.out, "rejection")
sc = plotting.plot_scores(scores["cnn"], labels, class_names=["QCD", "top"])
tut.save(sc.figure, args.out, "cnn_scores")

# %% [markdown]
# ## 3. Per-pixel standardisation
# After the steps above a pixel holds a pT fraction in [0, 1], and most pixels far from the
# centre are almost always 0: the inputs live on very different scales, which slows gradient
# descent (the lecture's case for standardised inputs). ``data.inputs.image.standardize: true``
# shifts every pixel and channel by its mean over the *training* jets and divides by its standard
# deviation (1 where a pixel never fires). The parameters are saved with the run and applied by
# the Tagger, like the standardisation of flat and sequence inputs.

# %%
image_std = {**base["data"]["inputs"]["image"], "standardize": True}
std_base = dict(base, data={**base["data"], "inputs": {**base["data"]["inputs"], "image": image_std}})
std_data = hepnn.io.load(load_config(std_base))
train_std = std_data.split("train")["image"]
fires = data.split("train")["image"].std(axis=0) > 0
pixel_mean, pixel_std = train_std.mean(axis=0)[fires], train_std.std(axis=0)[fires]
print(f"  standardised training images: per-pixel |mean| <= {np.abs(pixel_mean).max():.1e}, "
      f"std {pixel_std.min():.3f}-{pixel_std.max():.3f} over the {int(fires.sum())} pixels that fire")
if not args.quick:
    cfg = dict(std_base, model=MODELS["cnn"], training={**base["training"], "epochs": EPOCHS, "batch_size": 32})
    trainer = tut.train(cfg, args.out / "run_cnn_standardised", data=std_data)
    aucs["cnn (standardised pixels)"] = trainer.metrics_["auc"]
    print(f"  cnn on standardised pixels: test AUC {aucs['cnn (standardised pixels)']:.3f}")

tut.result(auc=aucs, rejection50=rejection50, pixels=PIXELS, n_test=int(len(labels)),
           standardised_pixel_mean_max=float(np.abs(pixel_mean).max()),
           standardised_pixel_std_range=[float(pixel_std.min()), float(pixel_std.max())])
