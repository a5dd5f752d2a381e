"""Training throughput per model family: streaming tf.data pipeline vs in-memory arrays.

For each family (dense on high-level features, CNN on images; GRU, Deep Sets, PFN, EFN,
ParticleNet and the Particle Transformer on constituents, the last two at small sizes)
the same model is trained for a few epochs through the Trainer on the same generated
top/QCD files (Pythia + FastJet, kept in ``--data`` and reused), three ways: from arrays loaded in memory
(``training.streaming: false``, the Keras-on-numpy baseline), streamed from the ROOT
files re-read every epoch (``training.streaming: true``), and streamed with
``training.stream_cache: true`` (epochs after the first read the processed chunks from
disk). The three take turns, ``--rounds`` times. Printed: samples/s of each (median of the epochs after the first,
which includes tracing, and the best of those epochs: on a noisy machine the best epoch
is the steadier estimate of what each feed sustains) and their ratio to in-memory
(target for ``stream_cache``: >= 0.95 on the median epoch), with the load average of the
machine before and after.

The Tagger-side figures (``Tagger.predict`` vs ``model.predict`` vs ONNX Runtime) are
in ``bench/tagger.py``.

    python bench/train.py --n-jets 10000 --epochs 3 --rounds 2 --copies 4
    python bench/train.py --n-jets 10000 --epochs 3 --rounds 2 --copies 1 --families particlenet,transformer
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FAMILIES = {
    "dense": {"name": "dense", "inputs": ["highlevel"]},
    "cnn": {"name": "cnn", "inputs": ["image"], "filters": [16, 32], "dense_units": [64]},
    "gru": {"name": "rnn", "cell": "gru", "inputs": ["particles"], "units": [32], "dense_units": [32]},
    "deepsets": {"name": "deepsets", "inputs": ["particles"]},
    "pfn": {"name": "pfn", "inputs": ["particles"], "phi_units": [64, 64], "dense_units": [64]},
    "efn": {"name": "efn", "inputs": ["angular"], "phi_units": [64, 64], "dense_units": [64]},
    "particlenet": {"name": "particlenet", "inputs": ["particles"], "k": 8, "channels": [[32, 32], [64, 64]],
                    "dense_units": [64], "coordinates": ["rel_eta", "rel_phi"]},
    "transformer": {"name": "transformer", "inputs": ["four_momenta"], "embed_units": [32, 32], "num_heads": 2,
                    "num_layers": 1, "num_class_layers": 1, "pair_units": [8],
                    "four_momentum": ["px", "py", "pz", "energy"]},
}

INPUTS = {
    "highlevel": {"kind": "flat", "variables": ["jet_mass", "jet_sdmass", "jet_tau21", "jet_tau32", "jet_nparticles"]},
    "particles": {"kind": "sequence", "variables": ["rel_eta", "rel_phi", "log_pt", "log_e", "delta_r"],
                  "sort_by": {"variable": "log_pt"}, "max_length": 40},
    "image": {"kind": "image", "pixels": 25, "extent": 1.6},
    # EFN: the pT fraction z stays raw (infrared safety)
    "angular": {"kind": "sequence", "variables": ["rel_eta", "rel_phi", "pt_frac"], "sort_by": {"variable": "pt_frac"},
                "max_length": 40, "standardize": False},
    # ParT: four-momenta in physical units for its pair features
    "four_momenta": {"kind": "sequence", "variables": ["px", "py", "pz", "energy", "rel_eta", "rel_phi"],
                     "sort_by": {"variable": "pt"}, "max_length": 30, "standardize": False},
}


def config(folder: Path, model: dict, streaming: bool, epochs: int, stream_cache: bool = False, copies: int = 1) -> dict:
    names = {s: [f"{s}.root"] + [f"{s}_copy{i}.root" for i in range(1, copies)] for s in ("top", "qcd")}
    files = [{"path": path, "tree": "jets", "label": label, "name": sample}
             for sample, label in (("top", 1), ("qcd", 0)) for path in names[sample]]
    return {
        "data": {
            "layout": "per_jet",
            "directory": str(folder),
            "files": files,
            "jet_axis": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "energy": "jet_energy"},
            "constituents": {"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
            "inputs": {name: INPUTS[name] for name in model["inputs"]},  # only what the model reads
            "split": {"train": 0.8, "val": 0.1, "test": 0.1, "seed": 1},
            "step_size": 2000,
        },
        "model": model,
        "training": {"epochs": epochs, "batch_size": 256, "streaming": streaming, "stream_cache": stream_cache,
                     "early_stopping": None, "verbose": 0},
    }


def copy_sample(folder: Path, sample: str, copies: int) -> None:
    """``{sample}_copy1.root`` ... beside ``{sample}.root`` in ``folder``: ``copies`` files in all, each a real copy.

    The reader refuses one file matched by two entries of ``data.files`` (it compares device and
    inode), so neither a hard link nor a symlink would do; links left by older runs of this script
    are replaced by copies. Each copy is written atomically: a run killed while copying leaves no
    truncated copy that the next run would keep.
    """
    from hepnn._fileio import atomic_path

    original = folder / f"{sample}.root"
    for i in range(1, copies):
        copy = folder / f"{sample}_copy{i}.root"
        if copy.is_symlink() or (copy.exists() and os.path.samefile(copy, original)):
            copy.unlink()
        if not copy.exists():
            with atomic_path(copy) as part:
                shutil.copyfile(original, part)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-jets", type=int, default=3000, help="jets per sample (top and qcd)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--data", default=None,
                        help="folder with top.root and qcd.root (generated if missing and kept; default "
                             "$HEPNN_BENCH_DATA or the temp folder, /hepnn_bench/train_<n-jets>)")
    parser.add_argument("--rounds", type=int, default=2, help="times each feed trains (taking turns)")
    parser.add_argument("--copies", type=int, default=1,
                        help="read each file this many times (copies with other names: other split hashes), "
                             "for longer epochs without generating more")
    args = parser.parse_args()

    from hepnn.config import load_config
    from hepnn.datasets import generate
    from hepnn.io import load
    from hepnn.training.trainer import Trainer

    root = Path(os.environ.get("HEPNN_BENCH_DATA", Path(tempfile.gettempdir()) / "hepnn_bench"))
    folder = Path(args.data or root / f"train_{args.n_jets}")
    folder.mkdir(parents=True, exist_ok=True)
    for sample in ("top", "qcd"):
        if not (folder / f"{sample}.root").is_file():
            generate(sample, args.n_jets, seed=7, out=folder / f"{sample}.root", jobs=2, progress=False)
        copy_sample(folder, sample, args.copies)
    results = {}
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores", flush=True)
    for family in args.families.split(","):
        model = FAMILIES[family]
        memory_cfg = load_config(config(folder, model, False, args.epochs, copies=args.copies))
        t0 = time.perf_counter()
        data = load(memory_cfg)
        load_s = time.perf_counter() - t0
        configs = {
            "memory": memory_cfg,
            "stream": load_config(config(folder, model, True, args.epochs, copies=args.copies)),
            "cached": load_config(config(folder, model, True, args.epochs, stream_cache=True, copies=args.copies)),
        }
        # the three feeds take turns, round after round: a slow spell of a shared machine then
        # hits all of them instead of one
        histories: dict[str, list] = {mode: [] for mode in configs}
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                for mode, cfg in configs.items():
                    trainer = Trainer(cfg, log=lambda s: None).fit(
                        Path(tmp) / f"{mode}{r}", data=data if mode == "memory" else None)
                    histories[mode].append(trainer.history_)
        later = {mode: [row for h in hs for row in h[1:]] or [hs[0][0]] for mode, hs in histories.items()}
        median = {mode: statistics.median(row["samples_per_s"] for row in rows) for mode, rows in later.items()}
        best = {mode: max(row["samples_per_s"] for row in rows) for mode, rows in later.items()}
        r_mem, r_stream, r_cached = median["memory"], median["stream"], median["cached"]
        b_mem, b_stream, b_cached = best["memory"], best["stream"], best["cached"]
        results[family] = {
            "best_epoch": {"in_memory": round(b_mem), "streaming": round(b_stream), "stream_cache": round(b_cached),
                           "ratio": round(b_stream / b_mem, 3), "ratio_cached": round(b_cached / b_mem, 3)},
            "in_memory_jets_per_s": round(r_mem),
            "streaming_jets_per_s": round(r_stream),
            "ratio": round(r_stream / r_mem, 3),
            "streaming_cached_jets_per_s": round(r_cached),
            "ratio_cached": round(r_cached / r_mem, 3),
            "streaming_first_epoch_jets_per_s": round(statistics.median(h[0]["samples_per_s"] for h in histories["stream"])),
            "cached_first_epoch_jets_per_s": round(statistics.median(h[0]["samples_per_s"] for h in histories["cached"])),
            "streaming_input_wait_share": round(statistics.median(r["input_wait_share"] for r in later["stream"]), 3),
            "load_s": round(load_s, 2),
            "load_average_1min": round(os.getloadavg()[0], 2),
        }
        print(f"{family:9s} median epochs: in-memory {r_mem:9.0f} jets/s   streaming {r_stream:9.0f} jets/s "
              f"(ratio {r_stream / r_mem:5.2f})   stream_cache {r_cached:9.0f} jets/s (ratio {r_cached / r_mem:5.2f}; "
              "target >= 0.95)", flush=True)
        print(f"{'':9s} best epochs:   in-memory {b_mem:9.0f} jets/s   streaming {b_stream:9.0f} jets/s "
              f"(ratio {b_stream / b_mem:5.2f})   stream_cache {b_cached:9.0f} jets/s (ratio {b_cached / b_mem:5.2f})",
              flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
