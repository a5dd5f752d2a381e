"""Helpers shared by the hackathon tutorials (not part of the hepnn package).

* :func:`parse_args` gives every tutorial the same command line (``--quick``, ``--out``); in a
  notebook, ``$HEPNN_TUTORIAL_QUICK=1`` and ``$HEPNN_TUTORIAL_OUT`` stand for them.
* :func:`sample` generates a Pythia sample once and caches it: in ``$HEPNN_TUTORIAL_CACHE``
  when that is set (the test suite shares one cache between all tutorials), else in
  ``OUT/data``. Rerunning a tutorial with the same ``--out`` reuses the files.
* :func:`top_qcd_config` writes the config dictionaries the tutorials train on: the
  top-tagging data set of ``analyses/top_tagging/config.yaml`` with the inputs you ask for.
* :func:`train` runs :class:`hepnn.training.trainer.Trainer` and returns the trainer with
  the test-split scores and metrics attached.
* :func:`result` prints the final ``RESULT {json}`` line the tests parse.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402

__all__ = ["parse_args", "sample", "top_qcd_config", "ttbar_config", "train", "result", "save", "section",
           "CACHE_ENV", "QUICK_ENV", "OUT_ENV"]

CACHE_ENV = "HEPNN_TUTORIAL_CACHE"
QUICK_ENV = "HEPNN_TUTORIAL_QUICK"
OUT_ENV = "HEPNN_TUTORIAL_OUT"
_START = time.perf_counter()


def parse_args(doc: str | None, name: str, argv=None) -> argparse.Namespace:
    """``--quick`` (tiny samples, 1-2 epochs: under a minute on a laptop CPU) and ``--out DIR``."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # a notebook has no command line: $HEPNN_TUTORIAL_QUICK=1 and $HEPNN_TUTORIAL_OUT stand for --quick and --out
    quick = os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    out = Path(os.environ[OUT_ENV]) if os.environ.get(OUT_ENV) else Path(tempfile.gettempdir()) / "hepnn_tutorials" / name
    parser.add_argument("--quick", action="store_true", default=quick,
                        help=f"tiny samples and 1-2 epochs (the test suite's mode; or set {QUICK_ENV}=1)")
    parser.add_argument("--out", type=Path, default=out,
                        help=f"output folder for samples, runs and plots (default: %(default)s; or set {OUT_ENV})")
    parser.add_argument("--seed", type=int, default=1, help="seed of samples and training")
    # parse_known_args: a Jupyter kernel adds its own arguments (-f kernel.json)
    args, _ = parser.parse_known_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{name}: {'quick' if args.quick else 'full'} mode, writing into {args.out}")
    return args


def section(title: str) -> None:
    """Print a section header with the time since the start (so you see where time goes)."""
    print(f"\n=== {title}  [{time.perf_counter() - _START:.1f} s]")


def data_dir(out: Path) -> Path:
    cache = os.environ.get(CACHE_ENV)
    folder = Path(cache) if cache else Path(out) / "data"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sample(kind: str, n_jets: int, seed: int, out: Path, layout: str = "per_jet") -> Path:
    """Generate ``n_jets`` jets of ``kind`` once (Pythia 8 + FastJet) and return the file.

    The file name holds the arguments, so a different size or seed is a different file.
    """
    from hepnn.datasets import generate

    path = data_dir(out) / f"{kind}_{layout}_{n_jets}_s{seed}.root"
    if not path.exists():
        start = time.perf_counter()
        generate(kind, n_jets=n_jets, seed=seed, out=path, layout=layout, progress=False)
        print(f"  generated {n_jets} {kind} jets ({layout}) in {time.perf_counter() - start:.1f} s -> {path.name}")
    return path


#: the inputs of the top-tagging analysis (analyses/top_tagging/config.yaml)
def top_qcd_inputs(pixels: int = 37, max_length: int = 60) -> dict[str, dict]:
    return {
        "highlevel": {"kind": "flat", "variables": ["jet_mass", "jet_sdmass", "jet_tau21", "jet_tau32",
                                                      "jet_nparticles"]},
        "particles": {"kind": "sequence", "variables": ["rel_eta", "rel_phi", "log_pt", "log_e", "log_pt_frac",
                                                        "log_e_frac", "delta_r"],
                      "sort_by": {"variable": "log_pt", "descending": True}, "max_length": max_length},
        "image": {"kind": "image", "pixels": pixels, "extent": 1.6, "channels": ["pt"],
                  "preprocess": ["center", "rotate", "flip", "normalize"]},
    }


def top_qcd_config(out: Path, n_jets: int, seed: int = 1, inputs=("highlevel",), pixels: int = 37,
                   max_length: int = 60, model: dict | None = None, training: dict | None = None,
                   **sections: Any) -> dict:
    """A config dictionary for top (label 1) vs QCD (label 0) jets, ``n_jets`` of each.

    Only the ``inputs`` you name are read (reading is the slow part for images).
    """
    top = sample("top", n_jets, seed, out)
    qcd = sample("qcd", n_jets, seed + 1000, out)
    all_inputs = top_qcd_inputs(pixels, max_length)
    config = {
        "name": "tutorial_top_tagging",
        "data": {
            "layout": "per_jet",
            "files": [{"path": str(top), "tree": "jets", "label": 1},
                      {"path": str(qcd), "tree": "jets", "label": 0}],
            "jet_axis": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "energy": "jet_energy"},
            "constituents": {"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
            "spectators": ["jet_pt", "jet_mass"],
            "inputs": {name: all_inputs[name] for name in inputs},
            "split": {"train": 0.6, "val": 0.2, "test": 0.2, "seed": 42},
        },
        "model": model or {"name": "dense", "units": [32, 32], "dropout": 0.0},
        "training": {"epochs": 10, "batch_size": 64, "verbose": 0, "seed": seed, **(training or {})},
        "plots": {"formats": ["png"]},
    }
    config.update(sections)
    return config


def ttbar_config(out: Path, n_jets: int, seed: int = 1, layout: str = "per_jet", max_length: int = 10,
                 model: dict | None = None, training: dict | None = None) -> dict:
    """b jets (label 1) vs light jets (label 0) of the ttbar sample, with tracks and jet variables."""
    path = sample("ttbar", n_jets, seed, out, layout=layout)
    if layout == "per_jet":
        data = {
            "layout": "per_jet",
            "files": [{"path": str(path), "tree": "jets"}],
            "label": {"branch": "jet_flavour", "classes": {"light": 0, "b": 5}},
            "spectators": ["jet_pt", "jet_eta"],
            "inputs": {
                "jet": {"kind": "flat", "variables": ["jet_pt", "jet_eta", "jet_mass", "jet_nparticles"],
                        "transforms": {"jet_pt": {"log": True}}},
                "tracks": {"kind": "sequence", "max_length": max_length,
                           "variables": ["track_d0sig", "track_z0sig", "track_pt", "track_eta", "track_phi"],
                           "transforms": {"track_pt": {"log": True},
                                          "track_d0sig": {"clip": [-50, 50]}, "track_z0sig": {"clip": [-50, 50]}},
                           "sort_by": {"variable": "track_d0sig", "absolute": True}},
            },
        }
    else:
        data = {
            "layout": "per_event",
            "files": [{"path": str(path), "tree": "Events"}],
            "jets": "Jet",
            "label": {"branch": "Jet_hadronFlavour", "classes": {"light": 0, "b": 5}},
            "spectators": ["Jet_pt", "Jet_eta"],
            "inputs": {
                "jet": {"kind": "flat", "variables": ["Jet_pt", "Jet_eta", "Jet_mass", "Jet_nConstituents"],
                        "transforms": {"Jet_pt": {"log": True}}},
                "tracks": {"kind": "sequence", "collection": "Track", "link": "Track_jetIdx",
                           "max_length": max_length,
                           "variables": ["Track_d0sig", "Track_z0sig", "Track_pt"],
                           "transforms": {"Track_pt": {"log": True},
                                          "Track_d0sig": {"clip": [-50, 50]}, "Track_z0sig": {"clip": [-50, 50]}},
                           "sort_by": {"variable": "Track_d0sig", "absolute": True}},
            },
        }
    data["split"] = {"train": 0.6, "val": 0.2, "test": 0.2, "seed": 42}
    return {
        "name": "tutorial_btagging",
        "data": data,
        "model": model or {"name": "rnn", "cell": "gru", "units": [16], "dense_units": [16]},
        "training": {"epochs": 10, "batch_size": 64, "verbose": 0, "seed": seed, **(training or {})},
        "plots": {"formats": ["png"]},
    }


def quiet(line: str) -> None:
    """A Trainer log that drops the per-epoch lines."""


def train(config: Any, run_dir: Path, data: Any = None, log=quiet):
    """Train ``config`` into ``run_dir`` (resumes if it exists) and score the test split.

    Returns the :class:`~hepnn.training.trainer.Trainer` with extra attributes
    ``test_scores_``, ``test_labels_``, ``metrics_`` (AUC, rejections; anomaly score
    for autoencoders) and ``seconds_``.
    """
    import hepnn.io
    from hepnn.config import load_config
    from hepnn.training.evaluate import compute_metrics
    from hepnn.training.trainer import Trainer, model_inputs, subset

    config = config if not isinstance(config, dict) else load_config(config)
    data = hepnn.io.load(config) if data is None else data
    start = time.perf_counter()
    trainer = Trainer(config, log=log).fit(run_dir, data=data)
    trainer.seconds_ = time.perf_counter() - start
    test = subset(data, "test")
    x = {n: test[n] for n in model_inputs(config)}
    if trainer.task_ == "autoencoder":
        from hepnn.models.autoencoder import anomaly_score

        scores = np.asarray(anomaly_score(trainer.model_, x))
    else:
        scores = np.asarray(trainer.model_.predict(x, batch_size=1024, verbose=0))
        if trainer.task_ == "binary":
            scores = scores.reshape(-1)
    trainer.test_scores_ = scores
    trainer.test_labels_ = np.asarray(test["label"])
    trainer.metrics_ = compute_metrics(scores, trainer.test_labels_, trainer.task_, trainer.classes_,
                                       config.evaluation.working_points, background=config.evaluation.background,
                                       signal=config.evaluation.signal)
    return trainer


def save(fig, out: Path, name: str) -> Path:
    """Save a matplotlib figure as ``OUT/name.png`` and close it."""
    import matplotlib.pyplot as plt

    path = Path(out) / f"{name}.png"
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    print(f"  plot: {path}")
    return path


def result(**numbers: Any) -> dict:
    """Print the key numbers as the last line, ``RESULT {json}`` (parsed by tests/test_tutorials.py)."""

    def clean(value):
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, (np.floating, float)):
            return float(f"{float(value):.6g}") if np.isfinite(value) else None
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.bool_):
            return bool(value)
        return value

    numbers = clean(numbers)
    numbers["wall_s"] = round(time.perf_counter() - _START, 1)
    print("RESULT " + json.dumps(numbers, sort_keys=True))
    sys.stdout.flush()
    return numbers
