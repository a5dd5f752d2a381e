"""Physics benchmark: learning curves of every tagger on top vs QCD jets.

Each model (the BDT baseline on jet-level features, a dense network on the same
features, Deep Sets, PFN, EFN, ParticleNet-Lite, a small Particle Transformer and
ParticleNet-Lite fused with the jet-level features) is trained at several training
sizes (``--sizes``, jets per class) and scored on one fixed test set. The samples are
generated with hepnn's own generator (Pythia 8 + FastJet, truth level), once per
(sample, seed, size) into a cache folder: one pool per class large enough for the
largest size; the smaller training sets are the first jets of the largest one
(nested), the test split is the same for every size.

Written to ``--out``: ``physics.json`` (every figure, the targets of issue 14 checked
per size), ``physics.md`` (the table) and ``physics.png`` (AUC and 1/εB at 50 % signal
efficiency against the training size, one curve per model).

    python bench/physics.py --sizes 5000,20000 --epochs 12 --max-length 40
    python bench/physics.py --quick       # tiny sizes and models: a smoke test (tests/test_bench_physics.py)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# fractions of the generated pool; the training sets are nested subsets of its train split
SPLIT = {"train": 0.75, "val": 0.1, "test": 0.15}
SEEDS = {"top": 11, "qcd": 12}  # default seeds of the two samples (--seed shifts both)
HIGHLEVEL = ["jet_mass", "jet_sdmass", "jet_tau21", "jet_tau32", "jet_nparticles", "jet_pt"]
# standardised constituent features (Deep Sets, PFN, ParticleNet)
PARTICLES = ["rel_eta", "rel_phi", "log_pt", "log_e", "log_pt_frac", "log_e_frac", "delta_r"]
# physical units where the model needs them: the EFN's pT fraction, ParT's four-momenta
CLOUD = ["rel_eta", "rel_phi", "log_pt", "log_e", "pt_frac", "px", "py", "pz", "energy"]

# name -> model section (None: the BDT baseline); the Lite presets and small widths fit 2 CPU cores
MODELS = {
    "bdt": None,
    "dense": {"name": "dense", "inputs": ["highlevel"], "units": [64, 64, 32]},
    "deepsets": {"name": "deepsets", "inputs": ["particles"], "phi_units": [64, 64, 128], "dense_units": [64, 64]},
    "pfn": {"name": "pfn", "inputs": ["particles"], "phi_units": [64, 64, 128], "dense_units": [64, 64]},
    "efn": {"name": "efn", "inputs": ["cloud"], "phi_units": [64, 64, 128], "dense_units": [64, 64]},
    "particlenet": {"name": "particlenet", "preset": "lite", "inputs": ["particles"]},
    "transformer": {"name": "transformer", "inputs": ["cloud"], "embed_units": [64, 64], "num_heads": 4,
                    "num_layers": 2, "num_class_layers": 1, "pair_units": [32, 32], "ffn_ratio": 2},
    "particlenet_fused": {"name": "particlenet", "preset": "lite", "inputs": ["particles", "highlevel"]},
}
# --quick: the same families, tiny
QUICK_MODELS = {
    "bdt": None,
    "dense": {"name": "dense", "inputs": ["highlevel"], "units": [16, 16]},
    "deepsets": {"name": "deepsets", "inputs": ["particles"], "phi_units": [16, 16], "dense_units": [16]},
    "pfn": {"name": "pfn", "inputs": ["particles"], "phi_units": [16, 16], "dense_units": [16]},
    "efn": {"name": "efn", "inputs": ["cloud"], "phi_units": [16, 16], "dense_units": [16]},
    "particlenet": {"name": "particlenet", "inputs": ["particles"], "k": 4, "channels": [[16, 16]], "dense_units": [16]},
    "transformer": {"name": "transformer", "inputs": ["cloud"], "embed_units": [16], "num_heads": 2, "num_layers": 1,
                    "num_class_layers": 1, "pair_units": [8], "ffn_ratio": 2},
    "particlenet_fused": {"name": "particlenet", "inputs": ["particles", "highlevel"], "k": 4, "channels": [[16, 16]],
                          "dense_units": [16]},
}
LABELS = {"bdt": "BDT (jet features)", "dense": "dense (jet features)", "deepsets": "Deep Sets", "pfn": "PFN",
          "efn": "EFN", "particlenet": "ParticleNet-Lite", "transformer": "ParT (small)",
          "particlenet_fused": "ParticleNet-Lite + jet features"}


def pool_size(max_size: int) -> int:
    """Jets generated per class so that the train split holds ``max_size`` of them (5 % margin)."""
    return int(math.ceil(max_size / SPLIT["train"] * 1.05 / 100.0) * 100)


def samples(cache: Path, n_jets: int, seed: int, jobs: int) -> dict[str, Path]:
    """The top and QCD pools, generated once per (sample, seed, size) into ``cache``."""
    from hepnn.datasets import generate

    cache.mkdir(parents=True, exist_ok=True)
    files = {}
    for sample, base in SEEDS.items():
        path = cache / f"{sample}_seed{base + seed}_n{n_jets}.root"
        if not path.is_file():
            t0 = time.perf_counter()
            generate(sample, n_jets, seed=base + seed, out=path, jobs=jobs, progress=False)
            print(f"generated {path.name} in {time.perf_counter() - t0:.0f} s", flush=True)
        files[sample] = path
    return files


def make_config(files: dict[str, Path], model: dict | None, max_length: int, epochs: int, learning_rate: float,
                patience: int, seed: int, batch_size: int = 256) -> dict:
    sequence = {"kind": "sequence", "max_length": max_length, "sort_by": {"variable": "log_pt", "descending": True}}
    return {
        "data": {
            "layout": "per_jet",
            "files": [{"path": str(files["qcd"]), "tree": "jets", "label": 0, "name": "qcd"},
                      {"path": str(files["top"]), "tree": "jets", "label": 1, "name": "top"}],
            "jet_axis": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "energy": "jet_energy"},
            "constituents": {"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
            "inputs": {
                "highlevel": {"kind": "flat", "variables": HIGHLEVEL},
                "particles": {**sequence, "variables": PARTICLES},
                "cloud": {**sequence, "variables": CLOUD, "standardize": False,
                          "transforms": {v: {"standardize": True} for v in ("rel_eta", "rel_phi", "log_pt", "log_e")}},
            },
            "split": {**SPLIT, "seed": 42},
        },
        "model": model or {"name": "dense", "inputs": ["highlevel"]},
        "training": {"epochs": epochs, "batch_size": batch_size, "verbose": 0, "seed": seed,
                     "optimizer": {"name": "adam", "learning_rate": learning_rate},
                     "early_stopping": {"patience": patience} if patience else None},
    }


def nested_subset(data, size: int):
    """The first ``size`` train jets and the proportional number of val jets of each class; the whole test split."""
    from hepnn.training.trainer import SPLITS, subset

    split, label = np.asarray(data["split"]), np.asarray(data["label"])
    keep = split == SPLITS["test"]
    n_val = math.ceil(size * SPLIT["val"] / SPLIT["train"])
    for part, n in (("train", size), ("val", n_val)):
        for cls in np.unique(label):
            rows = np.flatnonzero((split == SPLITS[part]) & (label == cls))
            if part == "train" and len(rows) < size:
                msg = f"class {cls} has only {len(rows)} training jets, fewer than the requested size {size}"
                raise ValueError(msg)
            keep[rows[:n]] = True
    return subset(data, keep)


def train_one(name: str, model: dict | None, config, data, root: Path) -> dict:
    from hepnn.training.baseline import train_bdt
    from hepnn.training.evaluate import evaluate_run
    from hepnn.training.trainer import Trainer

    t0 = time.perf_counter()
    if model is None:
        metrics = train_bdt(data, ["highlevel"], root / name, seed=config.training.seed, working_points=(0.3, 0.5),
                            classes=["qcd", "top"])
        epochs, jets_per_s = None, None
    else:
        trainer = Trainer(config, log=lambda s: None).fit(root / name, data=data)
        metrics = evaluate_run(root / name, data=data)
        epochs = len(trainer.history_)
        jets_per_s = round(float(np.median([row["samples_per_s"] for row in trainer.history_])))
    rejection = metrics["rejection"]
    return {"auc": metrics["auc"], "accuracy": metrics["accuracy"], "rejection_50": rejection.get("0.5"),
            "rejection_30": rejection.get("0.3"), "n_test": metrics["n_test"], "epochs": epochs,
            "train_jets_per_s": jets_per_s, "seconds": round(time.perf_counter() - t0, 1)}


def check_targets(results: dict, sizes: list[int]) -> dict:
    """The learning-curve targets of issue 14 at each training size."""
    out = {}
    for size in sizes:
        row = {m: r[str(size)] for m, r in results.items() if str(size) in r}
        if "bdt" not in row:
            continue
        nets = {m: r for m, r in row.items() if m != "bdt"}
        best = max(nets, key=lambda m: nets[m]["auc"])
        bdt = row["bdt"]
        entry = {"best": best, "best_auc_minus_bdt": round(nets[best]["auc"] - bdt["auc"], 4),
                 "best_rejection_over_bdt": _ratio(nets[best]["rejection_50"], bdt["rejection_50"])}
        entry["beats_bdt"] = bool(entry["best_auc_minus_bdt"] >= 0.002 and (entry["best_rejection_over_bdt"] or 0) >= 1.2)
        graphs = [m for m in ("particlenet", "transformer") if m in row]
        if graphs and "deepsets" in row:
            g = max(graphs, key=lambda m: row[m]["auc"])
            entry["graph_minus_deepsets"] = round(row[g]["auc"] - row["deepsets"]["auc"], 4)
            entry["graph_beats_deepsets"] = bool(entry["graph_minus_deepsets"] >= 0.003)
        if {"particlenet_fused", "particlenet", "dense"} <= set(row):
            parts = max(row["particlenet"]["auc"], row["dense"]["auc"])
            entry["fused_minus_best_part"] = round(row["particlenet_fused"]["auc"] - parts, 4)
            entry["fused_at_least_parts"] = bool(entry["fused_minus_best_part"] >= 0)
        out[str(size)] = entry
    return out


def _ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def markdown(results: dict, sizes: list[int]) -> str:
    head = "| model | " + " | ".join(f"AUC @ {s:,} | 1/εB@50% @ {s:,}" for s in sizes) + " | train jets/s |"
    lines = [head, "|---" * (2 * len(sizes) + 2) + "|"]
    for name, per_size in results.items():
        cells = []
        for s in sizes:
            r = per_size.get(str(s))
            cells += [f"{r['auc']:.4f}", f"{r['rejection_50']:.0f}" if r and r["rejection_50"] else "∞"] if r else ["", ""]
        speed = per_size.get(str(sizes[-1]), {}).get("train_jets_per_s")
        lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + f" | {speed or '-'} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, sizes: list[int], path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (ax_auc, ax_rej) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, per_size in results.items():
        xs = [s for s in sizes if str(s) in per_size]
        style = {"linestyle": "--", "color": "black"} if name == "bdt" else {}
        ax_auc.plot(xs, [per_size[str(s)]["auc"] for s in xs], marker="o", label=LABELS.get(name, name), **style)
        ax_rej.plot(xs, [per_size[str(s)]["rejection_50"] or np.nan for s in xs], marker="o",
                    label=LABELS.get(name, name), **style)
    for ax, ylabel in ((ax_auc, "AUC"), (ax_rej, "background rejection 1/εB at εS = 50 %")):
        ax.set_xscale("log")
        ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("training jets per class")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    ax_rej.set_yscale("log")
    ax_auc.legend(fontsize=8)
    fig.suptitle("top vs QCD (hepnn generator, truth level): learning curves")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5000,20000,80000", help="training jets per class, comma-separated")
    parser.add_argument("--models", default=",".join(MODELS), help=f"subset of {','.join(MODELS)}")
    parser.add_argument("--epochs", type=int, default=15, help="at most this many epochs (early stopping on val loss)")
    parser.add_argument("--patience", type=int, default=3, help="early-stopping patience (0: off)")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--max-length", type=int, default=50, help="constituents per jet")
    parser.add_argument("--seed", type=int, default=0, help="shifts the generator seeds of both samples")
    parser.add_argument("--jobs", type=int, default=2, help="generator worker processes")
    parser.add_argument("--cache", default=os.environ.get("HEPNN_BENCH_CACHE", str(Path(tempfile.gettempdir()) / "hepnn_physics_cache")),
                        help="folder of the generated samples (reused between runs)")
    parser.add_argument("--out", default="physics_bench", help="folder for physics.json, physics.md, physics.png")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and models (a smoke test)")
    args = parser.parse_args(argv)

    models = QUICK_MODELS if args.quick else MODELS
    if args.quick:
        # small batches: a few hundred jets must still make tens of optimizer steps
        sizes, epochs, max_length, lr, patience, batch = [150, 300], 4, 12, 5e-3, 0, 32
    else:
        sizes = sorted(int(s) for s in args.sizes.split(","))
        epochs, max_length, lr, patience, batch = args.epochs, args.max_length, args.learning_rate, args.patience, 256
    names = [m for m in args.models.split(",") if m]
    unknown = [m for m in names if m not in models]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {sorted(models)}")

    from hepnn.config import load_config
    from hepnn.io import load

    files = samples(Path(args.cache), pool_size(max(sizes)), args.seed, args.jobs)
    base = load_config(make_config(files, None, max_length, epochs, lr, patience, seed=1, batch_size=batch))
    t0 = time.perf_counter()
    data = load(base)
    print(f"loaded {len(data['label'])} jets in {time.perf_counter() - t0:.0f} s", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {m: {} for m in names}
    with tempfile.TemporaryDirectory(prefix="hepnn_physics_") as tmp:
        for size in sizes:
            part = nested_subset(data, size)
            for name in names:
                config = load_config(make_config(files, models[name], max_length, epochs, lr, patience, seed=1, batch_size=batch))
                r = train_one(name, models[name], config, part, Path(tmp) / str(size))
                results[name][str(size)] = r
                print(f"{size:7d} {name:18s} AUC {r['auc']:.4f}  1/eB@50% {r['rejection_50']}  "
                      f"epochs {r['epochs']}  {r['seconds']:.0f} s", flush=True)
                (out / "physics.json").write_text(json.dumps({"results": results}, indent=2) + "\n")  # partial
    report = {
        "command": "python bench/physics.py " + " ".join(argv if argv is not None else os.sys.argv[1:]),
        "sizes": sizes, "max_length": max_length, "epochs": epochs, "learning_rate": lr, "patience": patience,
        "batch_size": batch,
        "samples": {s: p.name for s, p in files.items()}, "split": SPLIT,
        "n_test": next((r["n_test"] for per in results.values() for r in per.values()), None),
        "models": {m: models[m] for m in names},
        "results": results,
        "targets": check_targets(results, sizes),
    }
    (out / "physics.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "physics.md").write_text(markdown(results, sizes))
    plot(results, sizes, out / "physics.png")
    print(markdown(results, sizes))
    print(json.dumps(report["targets"], indent=2))
    return report


if __name__ == "__main__":
    main()
