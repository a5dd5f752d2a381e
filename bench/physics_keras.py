"""Learning-curve points of the constituent taggers on any Keras 3 backend (a GPU through JAX or PyTorch).

hepnn's model builders (``hepnn.models``) use Keras operations only, so the same
networks train on the JAX or PyTorch backend, e.g. on a GPU node whose software stack
has no TensorFlow. This script is the GPU companion of ``bench/physics.py``:

1. ``export`` (here, with hepnn's readers): the samples of ``bench/physics.py`` (same
   generator seeds, split and nested training subsets) are read once and written as a
   compact ``.npz``: per constituent only (Δη, Δφ, log pT, log E) in float16, sorted by
   pT, plus the jet four-momentum, the jet-level features, the jet mass, labels and split.
2. ``train`` (anywhere with Keras 3 and numpy): the inputs of ``bench/physics.py`` are
   rebuilt from those four numbers and the jet (the seven ``particles`` features; the
   ``cloud`` features with the four-momenta for ParT's pair features and the EFN's pT
   fraction), standardised on the training jets, and each model is built by its
   registered hepnn builder, trained with Adam, the cosine schedule and early stopping
   on the validation loss, and scored on the test split: AUC, 1/εB at 30 % and 50 %
   signal efficiency, 1/JSD of the background mass at 50 % (``hepnn.metrics``,
   ``hepnn.training.sculpting``), training and inference jets/s. One JSON per
   (model, size) in ``--out/results`` (resumable), and a markdown table.

    python bench/physics_keras.py export --cache /work/physics-cache --pool-for 80000 --size 80000 \\
        --max-length 30 --out gpu_data/top_qcd_80000.npz
    KERAS_BACKEND=jax python bench/physics_keras.py train --data gpu_data/top_qcd_80000.npz \\
        --models deepsets,pfn,particlenet,transformer --epochs 30 --out gpu_out

The export keeps float16 inputs (0.2 % on pT), so the numbers are close to, not the
same as, those of ``bench/physics.py``; every model compared here sees the same inputs.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # hepnn from this checkout where it is not installed (a GPU node)
    sys.path.insert(0, str(HERE.parent))

from hepnn.metrics import efficiency_auc, efficiency_curve, rejection_at  # noqa: E402
from hepnn.models import build_model  # noqa: E402  (imports no Keras: the backend is chosen later)
from hepnn.models.registry import MODELS as BUILDERS  # noqa: E402
from hepnn.training.sculpting import sculpting_metrics  # noqa: E402

BASE = ["rel_eta", "rel_phi", "log_pt", "log_e"]  # stored per constituent
JET = ["jet_pt", "jet_eta", "jet_phi", "jet_energy"]  # the jet axis and energy
SPLITS = {"train": 0, "val": 1, "test": 2}

# the models of bench/physics.py, and the paper-size configurations a GPU affords
MODELS = {
    "deepsets": {"name": "deepsets", "inputs": ["particles"], "phi_units": [64, 64, 128], "dense_units": [64, 64]},
    "pfn": {"name": "pfn", "inputs": ["particles"], "phi_units": [64, 64, 128], "dense_units": [64, 64]},
    "efn": {"name": "efn", "inputs": ["cloud"], "phi_units": [64, 64, 128], "dense_units": [64, 64]},
    "particlenet": {"name": "particlenet", "preset": "lite", "inputs": ["particles"]},
    "particlenet_full": {"name": "particlenet", "preset": "full", "inputs": ["particles"]},
    "transformer": {"name": "transformer", "inputs": ["cloud"], "embed_units": [64, 64], "num_heads": 4,
                    "num_layers": 2, "num_class_layers": 1, "pair_units": [32, 32], "ffn_ratio": 2},
    "transformer_medium": {"name": "transformer", "inputs": ["cloud"], "embed_units": [128, 128], "num_heads": 8,
                           "num_layers": 4, "num_class_layers": 2, "pair_units": [64, 64], "ffn_ratio": 4},
    "dense": {"name": "dense", "inputs": ["highlevel"], "units": [64, 64, 32]},
    "pfn_fused": {"name": "pfn", "inputs": ["particles", "highlevel"], "phi_units": [64, 64, 128],
                  "dense_units": [64, 64], "branch_units": 64},
    "particlenet_fused": {"name": "particlenet", "preset": "lite", "inputs": ["particles", "highlevel"],
                          "branch_units": 64},
}
# --quick: tiny versions (the test of this script)
QUICK = {
    "deepsets": {"name": "deepsets", "inputs": ["particles"], "phi_units": [8, 8], "dense_units": [8]},
    "particlenet": {"name": "particlenet", "inputs": ["particles"], "k": 3, "channels": [[8, 8]], "dense_units": [8]},
    "transformer": {"name": "transformer", "inputs": ["cloud"], "embed_units": [8], "num_heads": 2, "num_layers": 1,
                    "num_class_layers": 1, "pair_units": [4], "ffn_ratio": 2},
    "efn": {"name": "efn", "inputs": ["cloud"], "phi_units": [8, 8], "dense_units": [8]},
    "pfn_fused": {"name": "pfn", "inputs": ["particles", "highlevel"], "phi_units": [8, 8], "dense_units": [8],
                  "branch_units": 8},
}
STANDARDISED_CLOUD = 4  # the first four cloud features are standardised, the rest stay in physical units


# --- export (needs hepnn's readers) ---------------------------------------------------------


def export(args) -> Path:
    """Read the samples of ``bench/physics.py`` and write the compact ``.npz`` (see the module docstring)."""
    if str(HERE) not in sys.path:  # bench/physics.py, when this file is imported rather than run
        sys.path.insert(0, str(HERE))
    import physics

    from hepnn.config import load_config
    from hepnn.io import load

    files = physics.samples(Path(args.cache), physics.pool_size(args.pool_for), args.seed, args.jobs)
    settings = {"max_length": args.max_length, "epochs": 1, "learning_rate": 1e-3, "patience": 0,
                "batch_size": 256, "schedule": "none", "min_steps": 0, "seed": 1}
    raw = physics.make_config(files, None, settings)
    raw["data"]["inputs"] = {
        "base": {"kind": "sequence", "max_length": args.max_length, "variables": BASE, "standardize": False,
                 "sort_by": {"variable": "log_pt", "descending": True}},
        "jet": {"kind": "flat", "variables": JET, "standardize": False},
        "highlevel": {"kind": "flat", "variables": physics.HIGHLEVEL, "standardize": False},
    }
    t0 = time.perf_counter()
    data = physics.nested_subset(load(load_config(raw)), args.size)
    if args.test_size:
        from hepnn.training.trainer import subset

        split, label = np.asarray(data["split"]), np.asarray(data["label"])
        keep = split != SPLITS["test"]
        for cls in np.unique(label):
            keep[np.flatnonzero((split == SPLITS["test"]) & (label == cls))[: args.test_size]] = True
        data = subset(data, keep)
    base = np.asarray(data["base"])
    n_real = np.count_nonzero(np.any(base != 0, axis=-1), axis=1).astype(np.uint8)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part.npz")
    np.savez_compressed(
        tmp, base=base.astype(np.float16), n_real=n_real, jet=np.asarray(data["jet"], np.float32),
        highlevel=np.asarray(data["highlevel"], np.float32), mass=np.asarray(data[f"spec_{physics.MASS}"], np.float32),
        label=np.asarray(data["label"], np.int8), split=np.asarray(data["split"], np.int8),
        meta=np.array(json.dumps({"samples": {k: p.name for k, p in files.items()}, "size": args.size,
                                  "max_length": args.max_length, "highlevel": physics.HIGHLEVEL})),
    )
    os.replace(tmp, out)
    counts = {part: int(np.sum(data["split"] == code)) for part, code in SPLITS.items()}
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB, {counts}) in {time.perf_counter() - t0:.0f} s")
    return out


# --- the inputs, rebuilt from the export -----------------------------------------------------


def _standardise(x: np.ndarray, real: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Standardise the features of real constituents with the training jets' mean and std; padding stays 0."""
    rows = x[train][real[train]]
    mean, std = rows.mean(axis=0), rows.std(axis=0)
    std[std == 0] = 1.0
    out = np.where(real[..., None], (x - mean) / std, 0.0)
    return out.astype(np.float32)


def build_inputs(d: dict) -> dict[str, np.ndarray]:
    """The ``particles``, ``cloud`` and ``highlevel`` inputs of ``bench/physics.py`` from the export."""
    base = d["base"].astype(np.float64)
    length = base.shape[1]
    real = np.arange(length)[None, :] < d["n_real"][:, None]
    train = d["split"] == SPLITS["train"]
    eta, phi, log_pt, log_e = (base[..., i] for i in range(4))
    jet = d["jet"].astype(np.float64)
    jet_pt, jet_eta, jet_phi, jet_e = (jet[:, i : i + 1] for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        particles = np.stack([eta, phi, log_pt, log_e, log_pt - np.log(jet_pt), log_e - np.log(jet_e),
                              np.hypot(eta, phi)], axis=-1)
    pt, energy = np.exp(log_pt), np.exp(log_e)
    abs_phi, abs_eta = jet_phi + phi, jet_eta + eta
    physical = np.stack([pt / jet_pt, pt * np.cos(abs_phi), pt * np.sin(abs_phi), pt * np.sinh(abs_eta), energy],
                        axis=-1)
    physical = np.where(real[..., None], physical, 0.0).astype(np.float32)
    cloud = np.concatenate([_standardise(base, real, train), physical], axis=-1)
    high = d["highlevel"].astype(np.float64)
    mean, std = high[train].mean(axis=0), high[train].std(axis=0)
    std[std == 0] = 1.0
    return {"particles": _standardise(particles, real, train), "cloud": cloud,
            "highlevel": ((high - mean) / std).astype(np.float32)}


FEATURES = {
    "particles": ["rel_eta", "rel_phi", "log_pt", "log_e", "log_pt_frac", "log_e_frac", "delta_r"],
    "cloud": ["rel_eta", "rel_phi", "log_pt", "log_e", "pt_frac", "px", "py", "pz", "energy"],
}


# --- training --------------------------------------------------------------------------------


def device_info(keras) -> dict:
    backend = keras.backend.backend()
    info = {"backend": backend, "keras": keras.__version__, "python": platform.python_version()}
    if backend == "jax":
        import jax

        info.update(jax=jax.__version__, devices=[str(d) for d in jax.devices()])
    elif backend == "torch":
        import torch

        info.update(torch=torch.__version__, devices=[torch.cuda.get_device_name(0)] if torch.cuda.is_available()
                    else ["cpu"])
    elif backend == "tensorflow":
        import tensorflow as tf

        info.update(tensorflow=tf.__version__, devices=[d.name for d in tf.config.list_logical_devices()])
    return info


def train_one(keras, name: str, spec: dict, inputs: dict, d: dict, args) -> dict:
    model_config, spec = dict(spec), dict(spec)
    model_name, input_names = spec.pop("name"), spec.pop("inputs")
    x = {k: inputs[k] for k in input_names}
    shapes = {k: v.shape[1:] for k, v in x.items()}
    feature_names = {k: FEATURES.get(k, [f"f{i}" for i in range(v.shape[-1])]) for k, v in x.items()}
    keras.utils.set_random_seed(args.seed)
    if "feature_names" in inspect.signature(BUILDERS.get(model_name)).parameters:
        spec["feature_names"] = feature_names
    model = build_model(model_name, shapes, n_outputs=1, task="binary", mask_value=0.0, **spec)
    parts = {p: d["split"] == c for p, c in SPLITS.items()}
    label = d["label"].astype(np.float32)
    n_train = int(parts["train"].sum())
    steps = math.ceil(n_train / args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, decay_steps=steps * args.epochs, alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="binary_crossentropy", jit_compile="auto",
                  steps_per_execution=args.steps_per_execution)
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    class Deadline(keras.callbacks.Callback):
        """Stop training once the run is past ``--deadline`` (the model is still scored)."""

        def on_epoch_end(self, epoch, logs=None):
            if args.deadline and time.perf_counter() - args.start > args.deadline:
                self.model.stop_training = True
                stopped.append(epoch + 1)

    stopped: list[int] = []
    callbacks = [Timer(), Deadline()]
    if args.patience:
        callbacks.append(keras.callbacks.EarlyStopping(patience=args.patience, restore_best_weights=True))
    t0 = time.perf_counter()
    history = model.fit({k: v[parts["train"]] for k, v in x.items()}, label[parts["train"]],
                        validation_data=({k: v[parts["val"]] for k, v in x.items()}, label[parts["val"]]),
                        batch_size=args.batch_size, epochs=args.epochs, shuffle=True, verbose=0, callbacks=callbacks)
    seconds = time.perf_counter() - t0
    test = {k: v[parts["test"]] for k, v in x.items()}
    model.predict(test, batch_size=args.predict_batch_size, verbose=0)  # compiled; the next call is timed
    t1 = time.perf_counter()
    scores = np.asarray(model.predict(test, batch_size=args.predict_batch_size, verbose=0), np.float64).reshape(-1)
    predict_s = time.perf_counter() - t1
    y = d["label"][parts["test"]].astype(int)
    eff_s, eff_b, _ = efficiency_curve(y, scores)
    rejection = rejection_at(eff_s, eff_b, np.array([0.3, 0.5]))
    sculpt = sculpting_metrics(d["mass"][parts["test"]], scores, y == 1, name="jet_mass")
    val_loss = history.history.get("val_loss", [])
    median_epoch = float(np.median(times[1:] if len(times) > 1 else times))
    return {
        "model": name, "auc": round(float(efficiency_auc(eff_s, eff_b)), 6),
        "rejection_30": round(float(rejection[0]), 4), "rejection_50": round(float(rejection[1]), 4),
        "inv_jsd_50": sculpt.get("inv_jsd_50"), "n_train": n_train, "n_test": int(len(y)),
        "epochs": len(times), "best_epoch": int(np.argmin(val_loss)) + 1 if val_loss else None,
        "best_val_loss": round(float(np.min(val_loss)), 5) if val_loss else None,
        "train_jets_per_s": round(n_train / median_epoch), "first_epoch_s": round(times[0], 1),
        "predict_jets_per_s": round(len(y) / predict_s), "seconds": round(seconds, 1),
        "params": int(model.count_params()), "stopped_at_deadline": bool(stopped), "model_config": model_config,
    }


def markdown(results: list[dict], info: dict) -> str:
    lines = [f"Keras {info['keras']} on {info['backend']} ({', '.join(info.get('devices', []))})", "",
             "| model | AUC | 1/εB @ 30% | 1/εB @ 50% | 1/JSD @ 50% | epochs (best) | train jets/s | predict jets/s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['model']} | {r['auc']:.4f} | {r['rejection_30']:.0f} | {r['rejection_50']:.0f} | "
                     f"{r['inv_jsd_50'] or float('nan'):.2f} | {r['epochs']} ({r['best_epoch']}) | "
                     f"{r['train_jets_per_s']} | {r['predict_jets_per_s']} |")
    return "\n".join(lines) + "\n"


def train(args) -> list[dict]:
    import keras

    info = device_info(keras)
    print(json.dumps(info), flush=True)
    with np.load(args.data) as f:
        d = {k: f[k] for k in f.files}
    meta = json.loads(str(d.pop("meta")))
    if args.max_length:
        if args.max_length > d["base"].shape[1]:
            raise SystemExit(f"--max-length {args.max_length}: the export holds {d['base'].shape[1]} constituents per jet")
        # the constituents are sorted by pT: the first ones are those a shorter export would hold
        d["base"] = d["base"][:, : args.max_length]
        d["n_real"] = np.minimum(d["n_real"], args.max_length).astype(d["n_real"].dtype)
        meta["max_length"] = args.max_length
    models = QUICK if args.quick else MODELS
    names = [m for m in args.models.split(",") if m] if args.models else list(models)
    unknown = [m for m in names if m not in models]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {sorted(models)}")
    t0 = time.perf_counter()
    inputs = build_inputs(d)
    print(f"inputs built in {time.perf_counter() - t0:.1f} s: "
          + ", ".join(f"{k} {v.shape}" for k, v in inputs.items()), flush=True)
    out = Path(args.out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        if args.deadline and time.perf_counter() - args.start > args.deadline:
            print(f"{name}: not started, past the --deadline of {args.deadline:.0f} s", flush=True)
            continue
        path = out / "results" / f"{name}_{meta['size']}_L{meta['max_length']}.json"
        if path.is_file() and not args.force:
            results.append(json.loads(path.read_text()))
            print(f"{name}: stored in {path}", flush=True)
            continue
        r = train_one(keras, name, models[name], inputs, d, args)
        r.update(size=meta["size"], samples=meta["samples"], max_length=meta["max_length"], device=info,
                 settings={k: getattr(args, k) for k in ("epochs", "batch_size", "learning_rate", "patience", "seed")})
        tmp = path.with_suffix(".json.part")
        tmp.write_text(json.dumps(r, indent=2) + "\n")
        os.replace(tmp, path)
        results.append(r)
        print(f"{name:20s} AUC {r['auc']:.4f}  1/eB@50% {r['rejection_50']:.0f}  1/eB@30% {r['rejection_30']:.0f}  "
              f"epochs {r['epochs']} (best {r['best_epoch']})  train {r['train_jets_per_s']} jets/s  "
              f"{r['seconds']:.0f} s", flush=True)
    table = markdown(results, info)
    (out / "physics_keras.md").write_text(table)
    print(table)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="read the samples of bench/physics.py into a compact .npz")
    ex.add_argument("--cache", default=os.environ.get("HEPNN_BENCH_CACHE", "/tmp/hepnn_physics_cache"))
    ex.add_argument("--pool-for", type=int, default=80000, help="the pool of bench/physics.py (--pool-for)")
    ex.add_argument("--size", type=int, default=80000, help="training jets per class (the nested subset)")
    ex.add_argument("--max-length", type=int, default=30)
    ex.add_argument("--test-size", type=int, default=None, help="at most this many test jets per class (default: all)")
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument("--jobs", type=int, default=2)
    ex.add_argument("--out", required=True)
    tr = sub.add_parser("train", help="train and score models on the current Keras backend")
    tr.add_argument("--data", required=True)
    tr.add_argument("--models", default=None)
    tr.add_argument("--max-length", type=int, default=None, help="use the first N constituents (default: all exported)")
    tr.add_argument("--epochs", type=int, default=30)
    tr.add_argument("--batch-size", type=int, default=256)
    tr.add_argument("--predict-batch-size", type=int, default=2048)
    tr.add_argument("--learning-rate", type=float, default=1e-3)
    tr.add_argument("--patience", type=int, default=6, help="early stopping on the validation loss (0: off)")
    tr.add_argument("--seed", type=int, default=1)
    tr.add_argument("--steps-per-execution", type=int, default=1, help="optimizer steps per compiled call (GPU: 8+)")
    tr.add_argument("--deadline", type=float, default=None, metavar="SECONDS",
                    help="stop training (and start no model) after this many seconds; what was trained is scored")
    tr.add_argument("--quick", action="store_true", help="tiny models (the test of this script)")
    tr.add_argument("--force", action="store_true", help="retrain models whose result is stored")
    tr.add_argument("--out", default="physics_keras")
    args = parser.parse_args(argv)
    args.start = time.perf_counter()
    return export(args) if args.command == "export" else train(args)


if __name__ == "__main__":
    main()
