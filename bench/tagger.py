"""Tagger benchmark: ``Tagger.predict`` on uproot-read events vs ``model.predict`` and ONNX Runtime.

    python bench/tagger.py [--n-jets 300] [--repeat 100] [--batch-size 1024] [--rounds 7]

Generates small top/QCD per-jet files (``hepnn.datasets.generate``), trains a dense
(flat features) and a Deep Sets (flat + 30 constituents) tagger for one epoch, then
scores the same jets, replicated ``--repeat`` times, three ways:

* ``Tagger.predict(events)``: awkward arrays as uproot reads them -> reader
  representation -> saved preprocessing -> ``model.predict``;
* ``model.predict(tensors)`` on ready, preprocessed numpy tensors (same batch size);
* ``hepnn.models.inference.predict`` (the Tagger's compiled forward pass) on the same
  tensors, to separate the input-building cost from the forward-pass speed;
* ONNX Runtime (``hepnn export``) on the same ready tensors.

Prints one JSON line per model with jets/s and the ratios.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def best_of(fn, n: int = 3) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def best_of_alternating(fns: dict, n: int = 7) -> dict:
    """Best time of each function over ``n`` rounds, the functions taking turns in every
    round (a slow spell of a noisy machine then hits all of them, not just one)."""
    best = {name: float("inf") for name in fns}
    for _ in range(n):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def config(files, model):
    inputs = ["jet"] if model == "dense" else ["jet", "parts"]
    params = {"units": [64, 64]} if model == "dense" else {"phi_units": [64, 64], "dense_units": [64], "branch_units": 16}
    return {
        "data": {
            "files": [{"path": str(files["qcd"]), "tree": "jets", "label": 0},
                      {"path": str(files["top"]), "tree": "jets", "label": 1}],
            "constituents": {"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
            "inputs": {
                "jet": {"kind": "flat", "variables": ["jet_pt", "jet_eta", "jet_mass", "jet_tau21", "jet_tau32",
                                                       "jet_sdmass"], "transforms": {"jet_pt": {"log": True}}},
                "parts": {"kind": "sequence", "variables": ["rel_eta", "rel_phi", "log_pt_frac", "log_e_frac"],
                          "max_length": 30, "sort_by": {"variable": "part_pt"}},
            },
        },
        "model": {"name": model, "inputs": inputs, **params},
        "training": {"epochs": 1, "batch_size": 128, "verbose": 0, "early_stopping": None},
    }


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-jets", type=int, default=300, help="jets generated per sample")
    parser.add_argument("--repeat", type=int, default=100, help="times the top file is replicated for timing")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--models", default="dense,deepsets")
    parser.add_argument("--rounds", type=int, default=7, help="timing rounds (best of, methods alternating)")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    if len(models) > 1:
        # one fresh process per model, as an analysis job would load its tagger: a model
        # measured after another would inherit its allocator and thread-pool state
        results = []
        for model in models:
            cmd = [sys.executable, __file__, "--n-jets", str(args.n_jets), "--repeat", str(args.repeat),
                   "--batch-size", str(args.batch_size), "--rounds", str(args.rounds), "--models", model]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            for line in out.splitlines():
                if line.startswith("{"):
                    print(line, flush=True)
                    results.append(json.loads(line))
        return results

    import awkward as ak
    import onnxruntime as ort
    import uproot

    import hepnn
    import hepnn.io
    from hepnn.datasets import generate
    from hepnn.models.inference import predict as fast_predict
    from hepnn.training.export import export_onnx
    from hepnn.training.trainer import Trainer

    tmp = Path(tempfile.mkdtemp(prefix="hepnn_bench_tagger_"))
    files = {s: generate(s, args.n_jets, seed=i + 1, out=tmp / f"{s}.root", progress=False)
             for i, s in enumerate(("top", "qcd"))}
    events = uproot.open(files["top"])["jets"].arrays()
    events = ak.concatenate([events] * args.repeat)
    n = len(events)
    results = []
    for model_name in models:
        cfg = hepnn.load_config(config(files, model_name))
        run = tmp / model_name
        Trainer(cfg, log=lambda _: None).fit(run, data=hepnn.io.load(cfg))
        tagger = hepnn.Tagger.load(run)
        events_needed = events[tagger.required_branches]
        tensors = tagger._tensors(hepnn.io.represent(tagger._data, events_needed))
        bs = args.batch_size
        tagger.predict(events_needed[:bs], batch_size=bs)  # warm up both paths
        tagger.model.predict(tensors, batch_size=bs, verbose=0)
        fast_predict(tagger.model, tensors, batch_size=bs)
        t = best_of_alternating({
            "model": lambda: tagger.model.predict(tensors, batch_size=bs, verbose=0),
            "tagger": lambda: tagger.predict(events_needed, batch_size=bs),
            "forward": lambda: fast_predict(tagger.model, tensors, batch_size=bs),
            "repr": lambda: hepnn.io.represent(tagger._data, events_needed),
        }, args.rounds)
        t_model, t_tagger, t_forward, t_repr = t["model"], t["tagger"], t["forward"], t["repr"]
        path = export_onnx(run)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {i.name: tensors[i.name] for i in session.get_inputs()}

        def onnx_batches(session=session, feed=feed):
            for start in range(0, n, bs):
                session.run(None, {k: v[start:start + bs] for k, v in feed.items()})

        onnx_batches()
        t_onnx = best_of(onnx_batches)
        scores = tagger.predict(events_needed[:2000], batch_size=bs)
        reference = np.asarray(tagger.model.predict({k: v[:2000] for k, v in tensors.items()}, verbose=0)).ravel()
        row = {
            "model": model_name, "n_jets": n, "batch_size": bs,
            "tagger_jets_per_s": round(n / t_tagger),
            "model_predict_jets_per_s": round(n / t_model),
            "onnxruntime_jets_per_s": round(n / t_onnx),
            "representation_jets_per_s": round(n / t_repr),
            "forward_jets_per_s": round(n / t_forward),
            "tagger_over_model_predict": round(t_model / t_tagger, 3),
            "tagger_over_forward": round(t_forward / t_tagger, 3),
            "onnx_over_model_predict": round(t_model / t_onnx, 3),
            "max_abs_diff_tagger_vs_model": float(np.max(np.abs(scores - reference))),
        }
        print(json.dumps(row), flush=True)
        results.append(row)
        del session, feed, onnx_batches  # ONNX Runtime's thread pool must not compete with the next model's timing
        gc.collect()
    return results


if __name__ == "__main__":
    main()
