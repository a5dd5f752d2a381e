"""Tutorial 08: autoencoders for anomaly detection.

What you will learn
-------------------
* An **autoencoder** compresses its input into a small **latent** vector (the encoder) and
  rebuilds the input from it (the decoder), trained to minimise the reconstruction error
  ``|x - x_hat|^2``. No labels are needed.
* Trained on background only (QCD jets), it learns to rebuild what QCD jets look like. A jet
  of another kind (a top jet, or new physics) is rebuilt worse: the reconstruction error is
  an **anomaly score**. This is how model-independent searches look for "something unusual".
* hepnn's ``autoencoder`` builder (``architecture: dense | conv | auto``, ``latent_dim``,
  ``units`` / ``filters``); ``training.train_classes: [qcd]`` trains on the background only;
  ``evaluation.background: qcd`` makes the anomaly score the tagger output.
* A caveat the lecture discusses: the error grows with the image complexity, so an
  autoencoder partly learns "more prongs / more mass" rather than "unlike QCD".

Run ``python tutorials/08_autoencoder_anomaly.py --quick``.
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

args = tut.parse_args(__doc__, "08_autoencoder_anomaly")
N_JETS = 300 if args.quick else 5000
PIXELS = 16 if args.quick else 37
EPOCHS = 3 if args.quick else 40

import numpy as np  # noqa: E402

import hepnn.io  # noqa: E402
from hepnn import metrics, plotting  # noqa: E402
from hepnn.config import load_config  # noqa: E402

tut.section("data: jet images, QCD = background (class 0), top = the 'anomaly' (class 1)")
base = tut.top_qcd_config(args.out, N_JETS, seed=args.seed, inputs=("image",), pixels=PIXELS)
data = hepnn.io.load(load_config(base))
# class names come from the file names (label 0: the QCD file, label 1: the top file)
BACKGROUND = data.class_names[0]
print(f"  images {data['image'].shape}, classes {data.class_names}; background = {BACKGROUND!r}")

# %% [markdown]
# ## 1. Train on QCD only
# ``train_classes`` keeps only the background jets in the training and validation splits.

# %%
VARIANTS = {
    "conv autoencoder": {"name": "autoencoder", "architecture": "conv", "latent_dim": 8,
                         "filters": [8, 16] if args.quick else [16, 32]},
}
if not args.quick:
    VARIANTS["dense autoencoder"] = {"name": "autoencoder", "architecture": "dense", "latent_dim": 8,
                                     "units": [128, 32]}
tut.section(f"training {', '.join(VARIANTS)} for {EPOCHS} epochs on QCD jets")
scores, aucs, losses = {}, {}, {}
labels = None
for name, model in VARIANTS.items():
    cfg = dict(base, model=model, training={**base["training"], "epochs": EPOCHS, "batch_size": 32,
                                            "train_classes": [BACKGROUND]},
               evaluation={"background": BACKGROUND})
    slug = "".join(c if c.isalnum() else "_" for c in name)
    trainer = tut.train(cfg, args.out / f"run_{slug}", data=data)
    scores[name], labels = trainer.test_scores_, trainer.test_labels_
    aucs[name] = trainer.metrics_["auc"]
    losses[name] = (trainer.history_[0]["loss"], trainer.history_[-1]["loss"])
    print(f"  {name:18s} reconstruction loss {trainer.history_[0]['loss']:.2e} -> {trainer.history_[-1]['loss']:.2e}; "
          f"top-vs-QCD AUC of the anomaly score {aucs[name]:.3f}")
    print(f"    mean anomaly score: QCD {scores[name][labels == 0].mean():.2e}, top {scores[name][labels == 1].mean():.2e}")

# %% [markdown]
# ## 2. Reconstruction error of each class, and the ROC of the anomaly score

# %%
err = plotting.plot_reconstruction_error(scores["conv autoencoder"], labels, class_names=["QCD", "top"])
tut.save(err.figure, args.out, "reconstruction_error")
roc = plotting.plot_roc(scores, labels)
tut.save(roc.figure, args.out, "roc")

# how much of the score is just the jet mass? (the caveat above)
test = data.split("test")
mass_auc = metrics.roc_auc(test["label"], test["spec_jet_mass"])
corr = float(np.corrcoef(scores["conv autoencoder"], test["spec_jet_mass"])[0, 1])
print(f"  jet mass alone: AUC {mass_auc:.3f}; correlation of anomaly score with mass {corr:+.2f}")

# %% [markdown]
# An AUC below 0.5 is possible (and happens in quick mode): with normalised images, the
# single hard core of a QCD jet is harder to rebuild than the spread-out top jet, so top jets
# look *less* anomalous. The error measures complexity in the autoencoder's own terms, not
# "unlike the background"; more training, log-scaled pixels or a latent-space score help.

# %%
tut.result(auc=aucs, loss_start={k: v[0] for k, v in losses.items()}, loss_end={k: v[1] for k, v in losses.items()}, auc_mass=mass_auc, score_mass_correlation=corr,
           mean_score={"qcd": float(scores["conv autoencoder"][labels == 0].mean()),
                       "top": float(scores["conv autoencoder"][labels == 1].mean())})
