"""Training throughput per model family: streaming tf.data pipeline vs in-memory arrays.

For each family (dense on high-level features, CNN on images, GRU and Deep Sets on
constituents) the same model is trained for a few epochs through the Trainer twice
on the same generated top/QCD files: once from arrays loaded in memory
(``training.streaming: false``, the Keras-on-numpy baseline) and once streamed from
the ROOT files (``training.streaming: true``), once re-reading the files every epoch and
once with ``training.stream_cache: true`` (epochs after the first read the processed
chunks from disk). Printed: samples/s of each (median of the epochs after the first,
which includes tracing) and their ratio to in-memory (target >= 0.9).

The Tagger-side figures (``Tagger.predict`` vs ``model.predict`` vs ONNX Runtime) are
in ``bench/tagger.py``.

    python bench/train.py --n-jets 3000 --epochs 4
"""

from __future__ import annotations

import argparse
import json
import os
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
            "inputs": {
                "highlevel": {"kind": "flat", "variables": ["jet_mass", "jet_sdmass", "jet_tau21", "jet_tau32", "jet_nparticles"]},
                "particles": {"kind": "sequence", "variables": ["rel_eta", "rel_phi", "log_pt", "log_e", "delta_r"],
                              "sort_by": {"variable": "log_pt"}, "max_length": 40},
                "image": {"kind": "image", "pixels": 25, "extent": 1.6},
            },
            "split": {"train": 0.8, "val": 0.1, "test": 0.1, "seed": 1},
            "step_size": 2000,
        },
        "model": model,
        "training": {"epochs": epochs, "batch_size": 256, "streaming": streaming, "stream_cache": stream_cache,
                     "early_stopping": None, "verbose": 0},
    }


def rate(history: list[dict]) -> float:
    rates = [row["samples_per_s"] for row in history[1:]] or [history[0]["samples_per_s"]]
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-jets", type=int, default=3000, help="jets per sample (top and qcd)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--data", default=None, help="folder with top.root and qcd.root (generated if missing)")
    parser.add_argument("--copies", type=int, default=1,
                        help="read each file this many times (links with other names: other split hashes), "
                             "for longer epochs without generating more")
    args = parser.parse_args()

    from hepnn.config import load_config
    from hepnn.datasets import generate
    from hepnn.io import load
    from hepnn.training.trainer import Trainer

    folder = Path(args.data or tempfile.mkdtemp(prefix="hepnn_bench_train_"))
    folder.mkdir(parents=True, exist_ok=True)
    for sample in ("top", "qcd"):
        if not (folder / f"{sample}.root").is_file():
            generate(sample, args.n_jets, seed=7, out=folder / f"{sample}.root", jobs=2, progress=False)
        for i in range(1, args.copies):
            link = folder / f"{sample}_copy{i}.root"
            if not link.exists():
                link.symlink_to(f"{sample}.root")
    results = {}
    for family in args.families.split(","):
        model = FAMILIES[family]
        memory_cfg = load_config(config(folder, model, False, args.epochs, copies=args.copies))
        t0 = time.perf_counter()
        data = load(memory_cfg)
        load_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            memory = Trainer(memory_cfg, log=lambda s: None).fit(Path(tmp) / "memory", data=data)
            stream = Trainer(load_config(config(folder, model, True, args.epochs, copies=args.copies)), log=lambda s: None).fit(Path(tmp) / "stream")
            cached = Trainer(load_config(config(folder, model, True, args.epochs, stream_cache=True, copies=args.copies)),
                             log=lambda s: None).fit(Path(tmp) / "cached")
        r_mem, r_stream, r_cached = rate(memory.history_), rate(stream.history_), rate(cached.history_)
        results[family] = {
            "in_memory_jets_per_s": round(r_mem),
            "streaming_jets_per_s": round(r_stream),
            "ratio": round(r_stream / r_mem, 3),
            "streaming_cached_jets_per_s": round(r_cached),
            "ratio_cached": round(r_cached / r_mem, 3),
            "streaming_first_epoch_jets_per_s": round(stream.history_[0]["samples_per_s"]),
            "cached_first_epoch_jets_per_s": round(cached.history_[0]["samples_per_s"]),
            "streaming_input_wait_share": round(statistics.median(r["input_wait_share"] for r in stream.history_), 3),
            "load_s": round(load_s, 2),
        }
        print(f"{family:9s} in-memory {r_mem:9.0f} jets/s   streaming {r_stream:9.0f} jets/s "
              f"(ratio {r_stream / r_mem:5.2f})   stream_cache {r_cached:9.0f} jets/s (ratio {r_cached / r_mem:5.2f}; "
              "target >= 0.9)", flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
