"""Tutorial 07: b-tagging with LSTM and GRU networks on track sequences.

What you will learn
-------------------
* A b hadron flies a few millimetres before decaying, so the tracks of a b jet do not point
  back to the primary vertex: they have large **impact parameters** ``d0``, ``z0`` and large
  significances ``d0 / sigma(d0)``. A b-tagger looks at the tracks of a jet.
* The number of tracks varies from jet to jet. A **recurrent network** reads them one at a
  time, in a chosen order (here by decreasing ``|d0sig|``), updating a hidden state:
  ``h_t = f(W x_t + U h_{t-1} + b)``. Plain RNNs forget (vanishing gradients through time);
  the **LSTM** adds a cell state with input, forget and output gates, the **GRU** a lighter
  two-gate version. Padded slots are **masked** so they do not change the state.
* hepnn's ``rnn`` builder: ``cell: lstm | gru``, ``units`` (stacked layers),
  ``bidirectional``, ``recurrent_dropout``, then a dense head (``dense_units``).

The sample: small-R jets of ttbar events with their hadron flavour (b = 5, light = 0; c jets
are left out), and up to ``max_length`` tracks per jet.

Run ``python tutorials/07_track_sequence_rnn.py --quick``.
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

args = tut.parse_args(__doc__, "07_track_sequence_rnn")
N_JETS = 1500 if args.quick else 20000
EPOCHS = 1 if args.quick else 30
MAX_LENGTH = 8 if args.quick else 15

import numpy as np  # noqa: E402

import hepnn.io  # noqa: E402
from hepnn import metrics, plotting  # noqa: E402
from hepnn.config import load_config  # noqa: E402

tut.section("data: tracks of b and light jets from ttbar events")
base = tut.ttbar_config(args.out, N_JETS, seed=args.seed, max_length=MAX_LENGTH)
data = hepnn.io.load(load_config(base))
labels = data["label"]
print(f"  {len(labels)} jets ({labels.mean():.0%} b), tracks {data['tracks'].shape}, "
      f"features {data.feature_names['tracks']}")
n_tracks = data["tracks_mask"].sum(axis=1)
print(f"  real tracks per jet: b {n_tracks[labels == 1].mean():.1f}, light {n_tracks[labels == 0].mean():.1f}")

# the leading |d0sig| (a classic single-variable tagger) as a baseline
raw = hepnn.io.load(load_config(base), standardize=False)
d0sig = np.where(raw["tracks_mask"], np.abs(raw["tracks"][:, :, 0]), 0.0).max(axis=1)
test = data["split"] == 2
auc_d0sig = metrics.roc_auc(labels[test], d0sig[test])
print(f"  baseline: highest |d0/sigma| of the jet's tracks, test AUC {auc_d0sig:.3f}")

# %% [markdown]
# ## 1. LSTM and GRU on the track sequence

# %%
units = [16] if args.quick else [64, 32]
dense_units = [16] if args.quick else [64]
VARIANTS = {
    "LSTM": {"name": "rnn", "inputs": ["tracks"], "cell": "lstm", "units": units, "dense_units": dense_units},
    "GRU": {"name": "rnn", "inputs": ["tracks"], "cell": "gru", "units": units, "dense_units": dense_units},
}
if not args.quick:
    VARIANTS["bidirectional GRU + jet features"] = {"name": "rnn", "cell": "gru", "units": units,
                                                    "bidirectional": True, "dense_units": dense_units}
tut.section(f"training {', '.join(VARIANTS)} for {EPOCHS} epochs")
scores, aucs = {"max |d0sig|": d0sig[test]}, {}
for name, model in VARIANTS.items():
    cfg = dict(base, model=model, training={**base["training"], "epochs": EPOCHS, "batch_size": 64})
    slug = "".join(c if c.isalnum() else "_" for c in name)
    trainer = tut.train(cfg, args.out / f"run_{slug}", data=data)
    scores[name] = trainer.test_scores_
    aucs[name] = trainer.metrics_["auc"]
    print(f"  {name:34s} {trainer.model_.count_params():6d} weights, {trainer.seconds_:.1f} s: "
          f"test AUC {aucs[name]:.3f}, light rejection at 70% b efficiency {trainer.metrics_['rejection']['0.7']}")

# %%
roc = plotting.plot_rejection(scores, labels[test])
tut.save(roc.figure, args.out, "rejection")

tut.result(auc=aucs, auc_d0sig=auc_d0sig, n_jets=int(len(labels)), b_fraction=float(labels.mean()))
