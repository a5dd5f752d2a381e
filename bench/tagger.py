"""Tagger benchmark: ``Tagger.predict`` on uproot-read events vs ``model.predict`` on ready tensors.

    python bench/tagger.py [--n-jets 300] [--repeat 100] [--batch-size 1024] [--rounds 7]
    python bench/tagger.py --models deepsets --layouts per_jet --linear 10000,100000,1000000

For every model family (dense on jet features, CNN on jet images; GRU, Deep Sets, PFN,
EFN, ParticleNet and the Particle Transformer on constituents, the last two at small
sizes) and both file layouts (``per_jet``: top/QCD trees with one jet per entry;
``per_event``: NanoAOD-like ttbar events, jets and PF candidates linked by
``PFCand_jetIdx``, three flavour classes), a model is trained for one epoch on samples
the generator makes (Pythia 8 + FastJet, kept in ``--data`` and reused), then the same
events, replicated ``--repeat`` times, are scored:

* ``tagger``: ``Tagger.predict(events)`` on the awkward arrays uproot returns
  (reader representation + saved preprocessing + compiled forward pass);
* ``model``: ``model.predict(tensors)`` on ready, preprocessed tensors
  (``Tagger.tensors(events)``), same batch size: the target is tagger >= 1.0x model;
* ``forward``: ``hepnn.models.inference.predict`` (the Tagger's forward pass) on the same
  tensors, and ``tensors``: ``Tagger.tensors(events)`` alone (the input-building share);
* ``onnx`` (``--onnx``): ONNX Runtime on the same tensors (``hepnn export``).

Each (family, layout) runs in a fresh process (as an analysis job loads its tagger); the
methods take turns in each of ``--rounds`` rounds and the best time of each counts, so
a slow spell of the machine hits all of them. One JSON line per (family, layout).

``--linear N1,N2,...``: time per jet of ``Tagger.predict_file`` on per-jet files of N1,
N2, ... jets, built by replicating the entries of the generated top file (only the
branches the tagger reads; written once into ``--data``), best of ``--rounds`` with the
sizes taking turns; the spread of the time per jet should stay within 10 %.
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

FAMILIES = {
    "dense": {"name": "dense", "inputs": ["jet"], "units": [64, 64]},
    "cnn": {"name": "cnn", "inputs": ["image"], "filters": [16, 32], "dense_units": [64]},
    "gru": {"name": "rnn", "cell": "gru", "inputs": ["jet", "parts"], "units": [32], "dense_units": [32]},
    "deepsets": {"name": "deepsets", "inputs": ["jet", "parts"], "phi_units": [64, 64], "dense_units": [64],
                 "branch_units": 16},
    "pfn": {"name": "pfn", "inputs": ["jet", "parts"], "phi_units": [64, 64], "dense_units": [64]},
    "efn": {"name": "efn", "inputs": ["jet", "angular"], "phi_units": [64, 64], "dense_units": [64]},
    "particlenet": {"name": "particlenet", "inputs": ["jet", "parts"], "k": 8, "channels": [[32, 32], [64, 64]],
                    "dense_units": [64], "coordinates": ["rel_eta", "rel_phi"]},
    "transformer": {"name": "transformer", "inputs": ["jet", "four_momenta"], "embed_units": [32, 32],
                    "num_heads": 2, "num_layers": 1, "num_class_layers": 1, "pair_units": [8],
                    "four_momentum": ["px", "py", "pz", "energy"]},
}

LAYOUTS = ("per_jet", "per_event")

# derived constituent variables: the same inputs in both layouts
SEQUENCES = {
    "parts": {"kind": "sequence", "variables": ["rel_eta", "rel_phi", "log_pt_frac", "log_e_frac"], "max_length": 30,
              "sort_by": {"variable": "pt"}},
    "angular": {"kind": "sequence", "variables": ["rel_eta", "rel_phi", "pt_frac"], "max_length": 30,
                "sort_by": {"variable": "pt"}, "standardize": False},  # EFN: z stays raw
    "four_momenta": {"kind": "sequence", "variables": ["px", "py", "pz", "energy", "rel_eta", "rel_phi"],
                     "max_length": 30, "sort_by": {"variable": "pt"}, "standardize": False},
    "image": {"kind": "image", "pixels": 25, "extent": 1.6},
}


def samples(folder: Path, n_jets: int) -> dict:
    """The generated files (kept in ``folder``: a second run reuses them)."""
    from hepnn.datasets import generate

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, (name, layout) in enumerate((("top", "per_jet"), ("qcd", "per_jet"), ("ttbar", "per_event"))):
        path = folder / f"{name}_{layout}_{n_jets}.root"
        if not path.is_file():
            generate(name, n_jets, seed=i + 1, out=path, layout=layout, progress=False)
        out[name] = path
    return out


def config(files: dict, family: str, layout: str) -> dict:
    model = FAMILIES[family]
    if layout == "per_jet":
        data = {
            "layout": "per_jet",
            "files": [{"path": str(files["qcd"]), "tree": "jets", "label": 0},
                      {"path": str(files["top"]), "tree": "jets", "label": 1}],
            "constituents": {"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
            "jet_axis": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "energy": "jet_energy"},
            "jet": {"kind": "flat", "variables": ["jet_pt", "jet_eta", "jet_mass", "jet_tau21", "jet_tau32",
                                                  "jet_sdmass"], "transforms": {"jet_pt": {"log": True}}},
        }
    else:
        data = {
            "layout": "per_event",
            "files": [{"path": str(files["ttbar"]), "tree": "Events"}],
            "jets": "Jet",
            "label": {"branch": "Jet_hadronFlavour", "classes": {"light": 0, "c": 4, "b": 5}},
            "constituents": {"collection": "PFCand", "link": "PFCand_jetIdx", "px": "PFCand_px", "py": "PFCand_py",
                             "pz": "PFCand_pz", "energy": "PFCand_energy"},
            "jet": {"kind": "flat", "variables": ["Jet_pt", "Jet_eta", "Jet_mass", "Jet_tau21", "Jet_tau32",
                                                  "Jet_nConstituents"], "transforms": {"Jet_pt": {"log": True}}},
        }
    flat = data.pop("jet")
    data["inputs"] = {name: flat if name == "jet" else SEQUENCES[name] for name in model["inputs"]}
    return {"data": data, "model": model,
            "training": {"epochs": 1, "batch_size": 128, "verbose": 0, "early_stopping": None}}


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


def train(cfg: dict, run: Path):
    import hepnn
    import hepnn.io
    from hepnn.training.trainer import Trainer

    config = hepnn.load_config(cfg)
    if not (run / "model.keras").is_file():
        Trainer(config, log=lambda _: None).fit(run, data=hepnn.io.load(config))
    return hepnn.Tagger.load(run)


def measure(files: dict, family: str, layout: str, args, work: Path) -> dict:
    """One (family, layout): the four ways of scoring the same jets, methods alternating."""
    import awkward as ak
    import uproot

    from hepnn.models.inference import predict as forward

    tagger = train(config(files, family, layout), work / f"{family}_{layout}")
    name, tree = ("top", "jets") if layout == "per_jet" else ("ttbar", "Events")
    events = uproot.open(files[name])[tree].arrays(filter_name=tagger.required_branches)
    events = ak.concatenate([events] * args.repeat)
    tensors = tagger.tensors(events)
    n = len(next(iter(tensors.values())))
    bs = args.batch_size
    tagger.predict(events[:50], batch_size=bs)  # warm up every path (tracing)
    tagger.model.predict({k: v[:bs] for k, v in tensors.items()}, batch_size=bs, verbose=0)
    forward(tagger.model, {k: v[:bs] for k, v in tensors.items()}, batch_size=bs)
    fns = {
        "model": lambda: tagger.model.predict(tensors, batch_size=bs, verbose=0),
        "tagger": lambda: tagger.predict(events, batch_size=bs),
        "forward": lambda: forward(tagger.model, tensors, batch_size=bs),
        "tensors": lambda: tagger.tensors(events),
    }
    t = best_of_alternating(fns, args.rounds)
    scores = tagger.predict(events[:200], batch_size=bs)
    if layout == "per_event":
        scores = np.stack([ak.to_numpy(ak.flatten(scores[c])) for c in tagger.classes], axis=1)
    m = len(scores)
    reference = np.asarray(tagger.model.predict({k: v[:m] for k, v in tensors.items()}, verbose=0))
    row = {
        "model": family, "layout": layout, "params": int(tagger.model.count_params()), "n_jets": n,
        "batch_size": bs, "rounds": args.rounds,
        "tagger_jets_per_s": round(n / t["tagger"]),
        "model_predict_jets_per_s": round(n / t["model"]),
        "forward_jets_per_s": round(n / t["forward"]),
        "tensors_jets_per_s": round(n / t["tensors"]),
        "tagger_over_model_predict": round(t["model"] / t["tagger"], 3),
        "tagger_over_forward": round(t["forward"] / t["tagger"], 3),
        "tensors_share_of_tagger": round(t["tensors"] / t["tagger"], 3),
        "max_abs_diff_tagger_vs_model": float(np.max(np.abs(scores - reference.reshape(scores.shape)))),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    if args.onnx:
        import onnxruntime as ort

        from hepnn.training.export import export_onnx

        session = ort.InferenceSession(str(export_onnx(work / f"{family}_{layout}")),
                                       providers=["CPUExecutionProvider"])
        feed = {i.name: tensors[i.name] for i in session.get_inputs()}

        def onnx_batches():
            for start in range(0, n, bs):
                session.run(None, {k: v[start:start + bs] for k, v in feed.items()})

        onnx_batches()
        t_onnx = best_of_alternating({"onnx": onnx_batches}, max(1, args.rounds // 2))["onnx"]
        row["onnxruntime_jets_per_s"] = round(n / t_onnx)
        row["onnx_over_model_predict"] = round(t["model"] / t_onnx, 3)
        del session, feed
        gc.collect()
    return row


def replicated_file(source: Path, branches: list[str], n_jets: int, out: Path) -> Path:
    """A per-jet file of ``n_jets`` entries: the entries of ``source`` repeated (``branches`` only)."""
    import awkward as ak
    import uproot

    if out.is_file():
        return out
    arrays = uproot.open(source)["jets"].arrays(filter_name=branches)
    tmp = out.with_suffix(".part.root")
    with uproot.recreate(tmp) as f:
        written = 0
        block = ak.concatenate([arrays] * max(1, -(-min(n_jets, 100_000) // len(arrays))))
        while written < n_jets:
            part = block[:min(len(block), n_jets - written)]
            data = {k: part[k] for k in part.fields}
            if written == 0:
                f["jets"] = data
            else:
                f["jets"].extend(data)
            written += len(part)
    tmp.rename(out)
    return out


def linear(files: dict, family: str, sizes: list[int], args, work: Path) -> dict:
    """Time per jet of ``Tagger.predict_file`` against the file size (per-jet layout)."""
    tagger = train(config(files, family, "per_jet"), work / f"{family}_per_jet")
    folder = Path(args.data) / "linear"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {n: replicated_file(files["top"], tagger.required_branches, n,
                                folder / f"top_{family}_{n}.root") for n in sizes}
    bs = args.batch_size
    tagger.predict_file(paths[sizes[0]], batch_size=bs)  # warm up
    # the sizes take turns in every round: a slow spell of the machine hits all of them
    best = best_of_alternating({n: (lambda path=path: tagger.predict_file(path, batch_size=bs))
                                for n, path in paths.items()}, args.rounds)
    per_jet = {n: best[n] / n for n in sizes}
    times = list(per_jet.values())
    return {"model": family, "layout": "per_jet", "linear": {str(n): round(v * 1e6, 3) for n, v in per_jet.items()},
            "unit": "microseconds per jet (predict_file, best of rounds)",
            "spread": round(max(times) / min(times) - 1, 3), "batch_size": bs,
            "load_average_1min": round(os.getloadavg()[0], 2)}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-jets", type=int, default=300, help="jets generated per sample")
    parser.add_argument("--repeat", type=int, default=100, help="times the events are replicated for timing")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--models", default=",".join(FAMILIES), help=f"comma-separated, from {', '.join(FAMILIES)}")
    parser.add_argument("--layouts", default=",".join(LAYOUTS))
    parser.add_argument("--rounds", type=int, default=7, help="timing rounds (best of, methods alternating)")
    parser.add_argument("--onnx", action="store_true", help="time ONNX Runtime too")
    parser.add_argument("--linear", default=None,
                        help="comma-separated jet counts: time per jet of predict_file on files of these sizes")
    parser.add_argument("--data", default=None, help="folder for the generated samples and trained runs "
                        "(default $HEPNN_BENCH_DATA or the temp folder, /hepnn_bench/tagger)")
    args = parser.parse_args(argv)
    root = Path(os.environ.get("HEPNN_BENCH_DATA", Path(tempfile.gettempdir()) / "hepnn_bench"))
    args.data = str(Path(args.data or root / "tagger"))
    models, layouts = args.models.split(","), args.layouts.split(",")
    if args.linear:
        layouts = ["per_jet"]  # predict_file on replicated per-jet files
    unknown = sorted(set(models) - set(FAMILIES)) + sorted(set(layouts) - set(LAYOUTS))
    if unknown:
        parser.error(f"unknown model or layout {unknown}; models: {', '.join(FAMILIES)}; layouts: {', '.join(LAYOUTS)}")
    jobs = [(m, lay) for m in models for lay in layouts]
    if len(jobs) > 1:
        # one fresh process per job, as an analysis job would load its tagger: a model
        # measured after another would inherit its allocator and thread-pool state
        print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores", flush=True)
        results = []
        for model, layout in jobs:
            cmd = [sys.executable, __file__, "--n-jets", str(args.n_jets), "--repeat", str(args.repeat),
                   "--batch-size", str(args.batch_size), "--rounds", str(args.rounds), "--models", model,
                   "--layouts", layout, "--data", args.data, *(["--onnx"] if args.onnx else []),
                   *(["--linear", args.linear] if args.linear else [])]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            for line in out.splitlines():
                if line.startswith("{"):
                    print(line, flush=True)
                    results.append(json.loads(line))
        print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
        return results

    (model, layout), = jobs
    files = samples(Path(args.data), args.n_jets)
    work = Path(args.data) / "runs" / f"n{args.n_jets}"
    work.mkdir(parents=True, exist_ok=True)
    if args.linear:
        row = linear(files, model, [int(s) for s in args.linear.split(",")], args, work)
    else:
        row = measure(files, model, layout, args, work)
    print(json.dumps(row), flush=True)
    return [row]


if __name__ == "__main__":
    main()
