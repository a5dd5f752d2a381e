"""Physics benchmark: learning curves of every tagger on top vs QCD jets.

Each model (the BDT baseline on jet-level features, a dense network on the same
features, Deep Sets, PFN, EFN, ParticleNet-Lite, a small Particle Transformer and
ParticleNet-Lite fused with the jet-level features) is trained at several training
sizes (``--sizes``, jets per class) and scored on one fixed test set. The samples are
generated with hepnn's own generator (Pythia 8 + FastJet, truth level), once per
(sample, seed, size) into a cache folder: one pool per class large enough for the
largest size; the smaller training sets are the first jets of the largest one
(nested), the test split is the same for every size.

Resumable: each (model, size) result is its own JSON, ``--out/results/<model>_<size>.json``,
written as soon as that model is trained and skipped on the next run (``--force``
retrains). Runs can therefore be split by ``--models`` and ``--sizes`` (e.g. a slow model
with fewer epochs), killed and resumed; every run rebuilds the report from all the
results in ``--out`` that were scored on the same samples (cells never run are shown as
"not run"). Each result keeps the settings it was trained with.

Written to ``--out``: ``physics.json`` (every figure, the targets of issue 14 checked
per size), ``physics.md`` (the table) and ``physics.png`` (AUC and 1/εB at 50 % signal
efficiency against the training size, one curve per model).

``--decorrelate STRENGTH`` also trains each selected network with DisCo (distance
correlation between score and jet mass on background jets, ``training.decorrelate``) at
that strength, as ``<model>_disco<STRENGTH>``; every result carries the mass sculpting at
50 % signal efficiency (1/JSD of passing vs failing background mass), so the report
compares each DisCo model with the same model trained without it.

    python bench/physics.py --sizes 5000,20000 --epochs 12 --max-length 40
    python bench/physics.py --sizes 80000 --models dense --decorrelate 10
    python bench/physics.py --sizes 5000 --pool-for 80000 --models transformer --epochs 8
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
MASS = "jet_mass"  # the spectator whose sculpting is measured (and that DisCo decorrelates from)

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
    "pfn_fused": {"name": "pfn", "inputs": ["particles", "highlevel"], "phi_units": [64, 64, 128],
                  "dense_units": [64, 64], "branch_units": 64},
    "particlenet_fused": {"name": "particlenet", "preset": "lite", "inputs": ["particles", "highlevel"],
                          "branch_units": 64},
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
    "pfn_fused": {"name": "pfn", "inputs": ["particles", "highlevel"], "phi_units": [16, 16], "dense_units": [16],
                  "branch_units": 16},
    "particlenet_fused": {"name": "particlenet", "inputs": ["particles", "highlevel"], "k": 4, "channels": [[16, 16]],
                          "dense_units": [16], "branch_units": 16},
}
LABELS = {"bdt": "BDT (jet features)", "dense": "dense (jet features)", "deepsets": "Deep Sets", "pfn": "PFN",
          "efn": "EFN", "particlenet": "ParticleNet-Lite", "transformer": "ParT (small)",
          "pfn_fused": "PFN + jet features", "particlenet_fused": "ParticleNet-Lite + jet features"}
# a fused model -> its two parts: the constituent network alone and the network on the jet features alone
FUSED_PARTS = {"pfn_fused": ("pfn", "dense"), "particlenet_fused": ("particlenet", "dense")}
DISCO_TAG = "_disco"


def pool_size(max_size: int) -> int:
    """Jets generated per class so that the train split holds ``max_size`` of them (5 % margin)."""
    return int(math.ceil(max_size / SPLIT["train"] * 1.05 / 100.0) * 100)


def samples(cache: Path, n_jets: int, seed: int, jobs: int, generate_missing: bool = True) -> dict[str, Path]:
    """The top and QCD pools, generated once per (sample, seed, size) into ``cache``."""
    from hepnn.datasets import generate

    files = {}
    for sample, base in SEEDS.items():
        path = cache / f"{sample}_seed{base + seed}_n{n_jets}.root"
        if generate_missing and not path.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            generate(sample, n_jets, seed=base + seed, out=path, jobs=jobs, progress=False)
            print(f"generated {path.name} in {time.perf_counter() - t0:.0f} s", flush=True)
        files[sample] = path
    return files


def disco_name(model: str, strength: float) -> str:
    """Result name of ``model`` trained with DisCo at ``strength``: ``dense_disco10``."""
    return f"{model}{DISCO_TAG}{strength:g}"


def split_name(name: str) -> tuple[str, float | None]:
    """``dense_disco10`` -> ``("dense", 10.0)``; a plain model name -> ``(name, None)``."""
    base, tag, strength = name.rpartition(DISCO_TAG)
    if tag and base:
        try:
            return base, float(strength)
        except ValueError:
            pass
    return name, None


def label(name: str) -> str:
    base, strength = split_name(name)
    text = LABELS.get(base, base)
    return text if strength is None else f"{text} + DisCo (λ={strength:g})"


def epochs_for(size: int, settings: dict) -> int:
    """The epoch cap at ``size``: ``epochs``, raised so that the run makes at least ``min_steps`` steps (at most 100)."""
    steps_per_epoch = math.ceil(2 * size / settings["batch_size"])
    wanted = math.ceil(settings.get("min_steps", 0) / steps_per_epoch)
    return max(settings["epochs"], min(wanted, 100))


def make_config(files: dict[str, Path], model: dict | None, settings: dict, inputs=None, size: int | None = None,
                decorrelate: float | None = None) -> dict:
    """The hepnn config of one model; ``inputs``: the data inputs to read (default: all)."""
    sequence = {"kind": "sequence", "max_length": settings["max_length"],
                "sort_by": {"variable": "log_pt", "descending": True}}
    all_inputs = {
        "highlevel": {"kind": "flat", "variables": HIGHLEVEL},
        "particles": {**sequence, "variables": PARTICLES},
        "cloud": {**sequence, "variables": CLOUD, "standardize": False,
                  "transforms": {v: {"standardize": True} for v in ("rel_eta", "rel_phi", "log_pt", "log_e")}},
    }
    epochs = epochs_for(size, settings) if size else settings["epochs"]
    training = {"epochs": epochs, "batch_size": settings["batch_size"], "verbose": 0, "seed": settings["seed"],
                "optimizer": {"name": "adam", "learning_rate": settings["learning_rate"]},
                "early_stopping": {"patience": settings["patience"]} if settings["patience"] else None}
    if settings.get("schedule") == "cosine":
        training["schedule"] = {"name": "cosine", "decay_epochs": epochs,
                                "min_learning_rate": settings["learning_rate"] / 100}
    if decorrelate is not None:
        training["decorrelate"] = {"method": "disco", "variable": MASS, "strength": decorrelate}
    return {
        "data": {
            "layout": "per_jet",
            "files": [{"path": str(files["qcd"]), "tree": "jets", "label": 0, "name": "qcd"},
                      {"path": str(files["top"]), "tree": "jets", "label": 1, "name": "top"}],
            "jet_axis": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "energy": "jet_energy"},
            "constituents": {"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
            "inputs": {k: v for k, v in all_inputs.items() if inputs is None or k in inputs},
            "spectators": [MASS],
            "split": {**SPLIT, "seed": 42},
        },
        "model": model or {"name": "dense", "inputs": ["highlevel"]},
        "training": training,
    }


def inputs_of(models: dict, names) -> list[str]:
    """The data inputs the models ``names`` read (the BDT: the jet-level features)."""
    needed = []
    for name in names:
        model = models[split_name(name)[0]]
        for key in (model or {"inputs": ["highlevel"]})["inputs"]:
            if key not in needed:
                needed.append(key)
    return needed


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
    from hepnn.training.sculpting import sculpting_metrics
    from hepnn.training.trainer import Trainer, subset

    t0 = time.perf_counter()
    if model is None:
        metrics = train_bdt(data, ["highlevel"], root / name, seed=config.training.seed, working_points=(0.3, 0.5),
                            classes=["qcd", "top"])
        scores = np.load(root / name / "scores.npz")
        test = subset(data, "test")
        metrics["sculpting"] = sculpting_metrics(test[f"spec_{MASS}"], scores["outputs"], scores["label"] == 1,
                                                 name=MASS)
        epochs, jets_per_s = None, None
    else:
        trainer = Trainer(config, log=lambda s: None).fit(root / name, data=data)
        metrics = evaluate_run(root / name, data=data)
        epochs = len(trainer.history_)
        jets_per_s = round(float(np.median([row["samples_per_s"] for row in trainer.history_])))
    rejection = metrics["rejection"]
    sculpting = metrics.get("sculpting") or {}
    return {"auc": metrics["auc"], "accuracy": metrics["accuracy"], "rejection_50": rejection.get("0.5"),
            "rejection_30": rejection.get("0.3"), "inv_jsd_50": sculpting.get("inv_jsd_50"),
            "n_test": metrics["n_test"], "epochs": epochs,
            "epochs_cap": None if model is None else config.training.epochs,
            "train_jets_per_s": jets_per_s, "seconds": round(time.perf_counter() - t0, 1)}


# --- the per-result store -------------------------------------------------------------


def result_path(out: Path, name: str, size: int) -> Path:
    return out / "results" / f"{name}_{size}.json"


def save_result(out: Path, name: str, size: int, result: dict) -> Path:
    """Write one (model, size) result atomically (a killed run leaves no half-written file)."""
    path = result_path(out, name, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)
    return path


def load_results(out: Path, sample_names: dict) -> tuple[dict, list[str]]:
    """``{model: {size: result}}`` of every stored result scored on ``sample_names``, and the files skipped."""
    results: dict[str, dict] = {}
    skipped = []
    for path in sorted((out / "results").glob("*.json")):
        try:
            r = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            skipped.append(f"{path.name} ({err})")
            continue
        if r.get("samples") != sample_names:
            skipped.append(f"{path.name} (other samples: {r.get('samples')})")
            continue
        results.setdefault(r["model"], {})[str(r["size"])] = r
    return results, skipped


def order(names) -> list[str]:
    """Models in the order of MODELS, each followed by its DisCo variants (by strength)."""
    known = list(MODELS)

    def key(name):
        base, strength = split_name(name)
        return (known.index(base) if base in known else len(known), base, strength is not None, strength or 0.0)

    return sorted(set(names), key=key)


# --- the report ------------------------------------------------------------------------


def check_targets(results: dict, sizes: list[int]) -> dict:
    """The targets of issue 14 at each training size (those whose models were run)."""
    out = {}
    for size in sizes:
        row = {m: r[str(size)] for m, r in results.items() if str(size) in r}
        entry = {}
        nets = {m: r for m, r in row.items() if m != "bdt" and split_name(m)[1] is None}
        if "bdt" in row and nets:
            best = max(nets, key=lambda m: nets[m]["auc"])
            bdt = row["bdt"]
            entry.update({"best": best, "best_auc_minus_bdt": round(nets[best]["auc"] - bdt["auc"], 4),
                          "best_rejection_over_bdt": _ratio(nets[best]["rejection_50"], bdt["rejection_50"])})
            entry["beats_bdt"] = bool(entry["best_auc_minus_bdt"] >= 0.002
                                      and (entry["best_rejection_over_bdt"] or 0) >= 1.2)
        graphs = [m for m in ("particlenet", "transformer") if m in row]
        if graphs and "deepsets" in row:
            g = max(graphs, key=lambda m: row[m]["auc"])
            entry["graph_minus_deepsets"] = round(row[g]["auc"] - row["deepsets"]["auc"], 4)
            entry["graph_beats_deepsets"] = bool(entry["graph_minus_deepsets"] >= 0.003)
        fused = {}
        for name, parts in FUSED_PARTS.items():
            if name in row and set(parts) <= set(row):
                best_part = max(parts, key=lambda m: row[m]["auc"])
                fused[name] = {"best_part": best_part,
                               "minus_best_part": round(row[name]["auc"] - row[best_part]["auc"], 4),
                               "rejection_over_best_part": _ratio(row[name]["rejection_50"],
                                                                  row[best_part]["rejection_50"])}
                if "bdt" in row:
                    fused[name]["minus_bdt"] = round(row[name]["auc"] - row["bdt"]["auc"], 4)
                fused[name]["at_least_parts"] = bool(fused[name]["minus_best_part"] >= 0)
        if fused:
            entry["fused"] = fused
            entry["fused_at_least_parts"] = any(f["at_least_parts"] for f in fused.values())
        disco = {}
        for name in row:
            base, strength = split_name(name)
            if strength is None or base not in row:
                continue
            plain, decorrelated = row[base], row[name]
            disco[name] = {"strength": strength, "inv_jsd_50": decorrelated.get("inv_jsd_50"),
                           "inv_jsd_50_without": plain.get("inv_jsd_50"),
                           "inv_jsd_ratio": _ratio(decorrelated.get("inv_jsd_50"), plain.get("inv_jsd_50")),
                           "rejection_50": decorrelated["rejection_50"], "rejection_50_without": plain["rejection_50"],
                           "auc": decorrelated["auc"], "auc_without": plain["auc"]}
        if disco:
            entry["disco"] = disco
            entry["disco_5x_jsd"] = any((d["inv_jsd_ratio"] or 0) >= 5 for d in disco.values())
        if entry:
            out[str(size)] = entry
    return out


def _ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def _rejection(value) -> str:
    return f"{value:.0f}" if value else "∞"


def markdown(results: dict, sizes: list[int]) -> str:
    """The learning-curve table (one row per model, ``not run`` where a cell is missing), then the sculpting table."""
    curves = [m for m in order(results) if split_name(m)[1] is None]
    head = "| model | " + " | ".join(f"AUC @ {s:,} | 1/εB@50% @ {s:,}" for s in sizes) + " | epochs (cap) | train jets/s |"
    lines = [head, "|---" * (2 * len(sizes) + 3) + "|"]
    for name in curves:
        per_size = results[name]
        cells = []
        for s in sizes:
            r = per_size.get(str(s))
            cells += [f"{r['auc']:.4f}", _rejection(r["rejection_50"])] if r else ["not run", "not run"]
        largest = per_size[str(max(int(k) for k in per_size))] if per_size else {}
        epochs = f"{largest['epochs']} ({largest.get('epochs_cap')})" if largest.get("epochs") else "-"
        lines.append(f"| {label(name)} | " + " | ".join(cells) + f" | {epochs} | {largest.get('train_jets_per_s') or '-'} |")
    decorrelated = [m for m in order(results) if split_name(m)[1] is not None]
    if decorrelated:
        lines += ["", "| model | jets per class | AUC | 1/εB@50% | 1/JSD@50% | 1/JSD ratio to the same model without DisCo |",
                  "|---|---|---|---|---|---|"]
        for name in order([split_name(m)[0] for m in decorrelated] + decorrelated):
            if name not in results:
                continue
            base = split_name(name)[0]
            for s in sizes:
                r = results[name].get(str(s))
                if r is None or (name == base and not any(str(s) in results[m] for m in decorrelated
                                                          if split_name(m)[0] == base)):
                    continue
                plain = results.get(base, {}).get(str(s), {})
                ratio = _ratio(r.get("inv_jsd_50"), plain.get("inv_jsd_50")) if name != base else None
                jsd = f"{r['inv_jsd_50']:.3g}" if r.get("inv_jsd_50") else "-"
                lines.append(f"| {label(name)} | {s:,} | {r['auc']:.4f} | {_rejection(r['rejection_50'])} | {jsd} | "
                             f"{ratio if ratio is not None else '-'} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, sizes: list[int], path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (ax_auc, ax_rej) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name in order(results):
        if split_name(name)[1] is not None:
            continue
        per_size = results[name]
        xs = [s for s in sizes if str(s) in per_size]
        style = {"linestyle": "--", "color": "black"} if name == "bdt" else {}
        if name.endswith("_fused"):
            style = {"linewidth": 2.2}
        ax_auc.plot(xs, [per_size[str(s)]["auc"] for s in xs], marker="o", label=label(name), **style)
        ax_rej.plot(xs, [per_size[str(s)]["rejection_50"] or np.nan for s in xs], marker="o",
                    label=label(name), **style)
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


def plot_sculpting(results: dict, size: int, path: Path):
    """Background rejection against 1/JSD of the mass at 50 % signal efficiency, every model at ``size``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    drawn = []
    for name in order(results):
        r = results[name].get(str(size))
        if not r or not r.get("inv_jsd_50") or not r.get("rejection_50"):
            continue
        decorrelated = split_name(name)[1] is not None
        ax.scatter(r["inv_jsd_50"], r["rejection_50"], marker="*" if decorrelated else "o", s=120 if decorrelated else 50,
                   color=plt.cm.tab20(len(drawn) % 20), label=label(name))  # more models than the 10 default colours
        drawn.append(name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("1/JSD of the background mass, passing vs failing (εS = 50 %)")
    ax.set_ylabel("background rejection 1/εB at εS = 50 %")
    ax.set_title(f"mass sculpting at {size:,} training jets per class")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


def report(out: Path, files: dict[str, Path], sizes: list[int], models: dict, settings: dict) -> dict:
    """Build physics.json, physics.md, physics.png (and physics_sculpting.png) from every stored result."""
    sample_names = {s: p.name for s, p in files.items()}
    results, skipped = load_results(out, sample_names)
    for line in skipped:
        print(f"not in this report: {line}", flush=True)
    results = {m: results[m] for m in order(results)}
    sizes = sorted(set(sizes) | {int(s) for per in results.values() for s in per})
    commands = []
    for per in results.values():
        for r in per.values():
            if r.get("command") and r["command"] not in commands:
                commands.append(r["command"])
    summary = {
        "commands": commands, "sizes": sizes, "settings": settings,
        "samples": sample_names, "split": SPLIT,
        "n_test": next((r["n_test"] for per in results.values() for r in per.values()), None),
        "models": {m: models.get(split_name(m)[0]) for m in results},
        "results": results,
        "targets": check_targets(results, sizes),
    }
    (out / "physics.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "physics.md").write_text(markdown(results, sizes))
    plot(results, sizes, out / "physics.png")
    sculpted = [s for s in sizes if any(r.get(str(s), {}).get("inv_jsd_50") for r in results.values())]
    if sculpted:
        plot_sculpting(results, max(sculpted), out / "physics_sculpting.png")
    return summary


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=None, help="training jets per class, comma-separated (default 5000,20000,80000)")
    parser.add_argument("--models", default=None, help=f"subset of {','.join(MODELS)} (default: all)")
    parser.add_argument("--epochs", type=int, default=15, help="at most this many epochs (early stopping on val loss)")
    parser.add_argument("--min-steps", type=int, default=0,
                        help="raise the epoch cap of small sizes so that a run can make this many optimizer steps (<= 100 epochs)")
    parser.add_argument("--patience", type=int, default=3, help="early-stopping patience (0: off)")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--schedule", choices=("cosine", "none"), default="cosine",
                        help="learning rate: cosine decay to 1/100 over the epoch cap, or constant")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=50, help="constituents per jet")
    parser.add_argument("--decorrelate", type=float, default=None, metavar="STRENGTH",
                        help="also train each selected network with DisCo against the jet mass at this strength")
    parser.add_argument("--pool-for", type=int, default=None, metavar="SIZE",
                        help="use the pools generated for this largest training size (default: the largest of --sizes); "
                             "keep it fixed when a benchmark is split into several runs, so that they share one test set")
    parser.add_argument("--seed", type=int, default=0, help="shifts the generator seeds of both samples")
    parser.add_argument("--jobs", type=int, default=2, help="generator worker processes")
    parser.add_argument("--cache", default=os.environ.get("HEPNN_BENCH_CACHE", str(Path(tempfile.gettempdir()) / "hepnn_physics_cache")),
                        help="folder of the generated samples (reused between runs)")
    parser.add_argument("--out", default="physics_bench",
                        help="folder for results/<model>_<size>.json, physics.json, physics.md, physics.png")
    parser.add_argument("--force", action="store_true", help="retrain the selected (model, size) results already in --out")
    parser.add_argument("--report", action="store_true",
                        help="only rebuild physics.json, physics.md and the plots from the results stored in --out")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and models (a smoke test)")
    args = parser.parse_args(argv)

    models = QUICK_MODELS if args.quick else MODELS
    if args.quick:
        # small batches: a few hundred jets must still make tens of optimizer steps
        default_sizes = "150,300"
        settings = {"max_length": 12, "epochs": 4, "learning_rate": 5e-3, "patience": 0, "batch_size": 32,
                    "schedule": "none", "min_steps": 0, "seed": 1}
    else:
        default_sizes = "5000,20000,80000"
        settings = {"max_length": args.max_length, "epochs": args.epochs, "learning_rate": args.learning_rate,
                    "patience": args.patience, "batch_size": args.batch_size, "schedule": args.schedule,
                    "min_steps": args.min_steps, "seed": 1}
    try:
        sizes = sorted({int(s) for s in (args.sizes or default_sizes).split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes: expected comma-separated integers such as 5000,20000, received {args.sizes!r}")
    if not sizes or min(sizes) <= 0:
        parser.error(f"--sizes: expected positive integers, received {args.sizes!r}")
    names = [m for m in (args.models or ",".join(models)).split(",") if m]
    unknown = [m for m in names if m not in models]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {sorted(models)}")
    if args.decorrelate is not None:
        if not (args.decorrelate > 0 and math.isfinite(args.decorrelate)):
            parser.error(f"--decorrelate: expected a strength > 0, received {args.decorrelate}")
        names += [disco_name(m, args.decorrelate) for m in names if models[m] is not None]

    from hepnn.config import load_config
    from hepnn.io import load

    out = Path(args.out)
    pool_for = args.pool_for or max(sizes)
    if pool_for < max(sizes):
        parser.error(f"--pool-for {pool_for} is smaller than the largest of --sizes ({max(sizes)})")
    files = samples(Path(args.cache), pool_size(pool_for), args.seed, args.jobs, generate_missing=not args.report)
    sample_names = {s: p.name for s, p in files.items()}
    command = "python bench/physics.py " + " ".join(argv if argv is not None else os.sys.argv[1:])
    todo = [] if args.report else [(size, name) for size in sizes for name in names
                                   if args.force or not result_path(out, name, size).is_file()]
    for size in sizes:
        for name in names:
            if not args.report and (size, name) not in todo:
                print(f"{size:7d} {name:22s} stored in {result_path(out, name, size)} (--force retrains)", flush=True)
    if todo:
        inputs = inputs_of(models, {name for _, name in todo})
        # the config that reads the data: any network of this run (the BDT alone: the dense default on highlevel)
        reader = next((models[split_name(n)[0]] for _, n in todo if models[split_name(n)[0]] is not None), None)
        base = load_config(make_config(files, reader, settings, inputs=inputs))
        t0 = time.perf_counter()
        data = load(base)
        print(f"loaded {len(data['label'])} jets ({', '.join(inputs)}) in {time.perf_counter() - t0:.0f} s", flush=True)
        with tempfile.TemporaryDirectory(prefix="hepnn_physics_") as tmp:
            for size in sorted(sizes, reverse=True):  # largest first: the points of the targets are stored first
                names_now = [name for s, name in todo if s == size]
                if not names_now:
                    continue
                part = nested_subset(data, size)
                for name in names_now:
                    model_name, strength = split_name(name)
                    model = models[model_name]
                    config = load_config(make_config(files, model, settings, inputs=inputs, size=size,
                                                     decorrelate=strength))
                    r = train_one(name, model, config, part, Path(tmp) / str(size))
                    r.update({"model": name, "size": size, "samples": sample_names, "command": command,
                              "settings": {**settings, "epochs_cap": r["epochs_cap"]},
                              "model_config": model, "decorrelate": strength})
                    save_result(out, name, size, r)
                    print(f"{size:7d} {name:22s} AUC {r['auc']:.4f}  1/eB@50% {r['rejection_50']}  "
                          f"1/JSD@50% {r['inv_jsd_50']}  epochs {r['epochs']}/{r['epochs_cap']}  {r['seconds']:.0f} s",
                          flush=True)
    summary = report(out, files, sizes, models, settings)
    print((out / "physics.md").read_text())
    print(json.dumps(summary["targets"], indent=2))
    return summary


if __name__ == "__main__":
    main()
