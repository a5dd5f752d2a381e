"""The GPU path of hepnn, measured and checked in one go (issue 17).

On a machine with a GPU (the defaults are sized for under 8 minutes on one H200, an estimate:
the script has not run on a GPU yet; no new family or section starts after ``--time-limit``):

1. environment: device, driver, CUDA/cuDNN build, TensorFlow and Keras versions;
2. throughput: each model family (dense, cnn, resnet, rnn with GRU and with LSTM, deepsets,
   autoencoder, and any other registered builder that accepts the benchmark inputs) trained
   for ``--steps`` steps on synthetic jets in memory, in float32 and in ``mixed_float16``:
   jets/s and ``input_wait_share`` measured by the trainer's own timing callback
   (``hepnn.training.diagnostics``), the same share without the one-off wait before the first
   step (``input_wait_share_steady``: a real epoch amortises it over many more steps), and
   whether Keras compiled the step with XLA;
3. checks: the recurrent layers run the cuDNN kernel (``CudnnRNNV3`` in the traced graph, and
   time per step of the cuDNN-eligible layer vs the generic kernel, ``cudnn: false``); masked
   sequence models give the same scores on the CPU and the GPU; a mixed-precision model's
   scores match the float32 model with the same weights within a stated tolerance;
4. ``MirroredStrategy`` on all visible GPUs (one GPU is a valid strategy) through the Trainer:
   its loss curve matches the single-device run within a stated tolerance;
5. streaming from ROOT files with ``training.stream_cache`` vs in memory (input wait);
6. writes ``gpu.json`` (all figures) and ``gpu.md`` (a short table) into ``--out``.

Without a visible GPU the script stops with exit code 2 and says why, unless ``--allow-cpu``
is given: then it runs every section a CPU can run (throughput in both precisions, the
mixed-precision score check, MirroredStrategy on the CPU device, streaming) and marks the
GPU-only ones (cuDNN, CPU-vs-GPU masking) ``"status": "skipped"`` with the reason; the
performance targets are then ``"met": null`` (not evaluated). Use it with small ``--steps``
to check the script itself.

Exit codes: 0 every check passed (performance targets are reported, not enforced);
1 a correctness check failed (``checks_failed`` in the JSON); 2 no GPU visible and no
``--allow-cpu``.

    python bench/gpu.py --out gpu-bench                          # on a GPU node
    python bench/gpu.py --allow-cpu --steps 4 --batch-size 64 --stream-jets 400 --out /tmp/gpu-cpu
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

SCHEMA_VERSION = 1

#: family -> (registered model, benchmark inputs, builder options). The recurrent families allow
#: cuDNN (``cudnn: true``): the synthetic sequences are right-padded with at least one element,
#: as cuDNN needs; this is the setting a GPU user should train with.
FAMILIES = {
    "dense": ("dense", ("jet",), {}),
    "cnn": ("cnn", ("image",), {}),
    "resnet": ("resnet", ("image",), {}),
    "gru": ("rnn", ("particles",), {"cell": "gru", "cudnn": True}),
    "lstm": ("rnn", ("particles",), {"cell": "lstm", "cudnn": True}),
    "deepsets": ("deepsets", ("particles", "jet"), {}),
    "autoencoder": ("autoencoder", ("image",), {}),
}
SEQUENCE_FAMILIES = ("gru", "lstm", "deepsets")
#: sections of the JSON besides the environment; cudnn and masking_cpu_vs_gpu need a GPU
SECTIONS = ("throughput", "cudnn", "masking_cpu_vs_gpu", "mirrored", "streaming")
NOT_SELECTED = "not selected (--sections)"

# stated tolerances
MIXED_SCORE_ATOL = 0.02  # max |score(mixed_float16) - score(float32)|, same weights, sigmoid scores
MIXED_AE_RTOL = 0.05  # autoencoders: max relative difference of the per-jet reconstruction error
MASKING_ATOL = 1e-3  # max |score(CPU) - score(GPU)|, float32 with TF32 off (cuDNN vs generic kernel order)
MIRRORED_RTOL = 1e-2  # max relative difference of the per-epoch training loss, mirrored vs one device

# targets of issue 17 (on one modern datacenter GPU)
TARGET_INPUT_WAIT_MEMORY = 0.10
TARGET_INPUT_WAIT_STREAM_CACHE = 0.25
TARGET_MIXED_SPEEDUP_CNN = 1.5
TARGET_CUDNN_SPEEDUP_GRU = 3.0

# synthetic input sizes: jet images as in the top-tagging landscape (37 x 37), up to 64 constituents
N_FLAT, PIXELS, MAX_LENGTH, N_PARTICLE_FEATURES = 16, 37, 64, 7


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="timed training steps per family and precision")
    parser.add_argument("--batch-size", type=int, default=512, help="jets per step")
    parser.add_argument("--families", default="all",
                        help=f"comma-separated families ({', '.join(FAMILIES)}, or other registered models), or 'all'")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default all: {', '.join(SECTIONS)}); the others "
                             "are marked skipped")
    parser.add_argument("--out", default="gpu-bench", help="folder for gpu.json and gpu.md")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="run on a machine without a GPU (GPU-only checks skipped, targets not evaluated)")
    parser.add_argument("--stream-jets", type=int, default=25000,
                        help="jets per sample (top, qcd) in the streaming files")
    parser.add_argument("--stream-family", default="deepsets", choices=["dense", "deepsets", "gru"],
                        help="model trained in the streaming section")
    parser.add_argument("--time-limit", type=float, default=390.0,
                        help="seconds after which no new section or family starts (marked skipped)")
    args = parser.parse_args(argv)
    args.sections = [x.strip() for x in args.sections.split(",") if x.strip()]
    unknown = [x for x in args.sections if x not in SECTIONS]
    if unknown:
        parser.error(f"--sections: unknown {', '.join(unknown)}; valid sections: {', '.join(SECTIONS)}")
    for name in ("steps", "batch_size", "stream_jets"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expected a positive integer, received {getattr(args, name)}")
    return args


# --- synthetic data ------------------------------------------------------------------


def synthetic(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Jets of two classes: flat features, jet images, right-padded constituents (>= 1 each)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    shift = 0.5 * y.astype("float32")
    jet = rng.normal(size=(n, N_FLAT)).astype("float32") + shift[:, None]
    image = rng.exponential(1.0, size=(n, PIXELS, PIXELS, 1)).astype("float32")
    image[:, PIXELS // 2 - 3:PIXELS // 2 + 3, PIXELS // 2 - 3:PIXELS // 2 + 3] += 3.0 * shift[:, None, None, None]
    image /= image.sum(axis=(1, 2, 3), keepdims=True)
    image *= PIXELS  # order one per pixel
    counts = rng.integers(1, MAX_LENGTH + 1, n)
    particles = rng.normal(size=(n, MAX_LENGTH, N_PARTICLE_FEATURES)).astype("float32") + shift[:, None, None]
    particles[np.arange(MAX_LENGTH)[None, :] >= counts[:, None]] = 0.0  # right padding
    return {"jet": jet, "image": image, "particles": particles, "label": y.astype("float32")}


# --- environment ---------------------------------------------------------------------


def nvidia_smi() -> dict:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {"available": False}
    try:
        out = subprocess.run([exe, "--query-gpu=name,driver_version,memory.total,compute_cap",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return {"available": True, "error": str(err)}
    if out.returncode != 0:
        return {"available": True, "error": (out.stderr or out.stdout).strip()[-300:]}
    rows = [[c.strip() for c in line.split(",")] for line in out.stdout.strip().splitlines() if line.strip()]
    keys = ("name", "driver_version", "memory_total", "compute_cap")
    return {"available": True, "gpus": [dict(zip(keys, row)) for row in rows]}


def environment(tf, keras) -> dict:
    import hepnn

    build = dict(tf.sysconfig.get_build_info())
    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        gpus.append({"name": device.name, "device_name": details.get("device_name"),
                     "compute_capability": details.get("compute_capability")})
    return {
        "python": platform.python_version(), "platform": platform.platform(),
        "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
        "hepnn": hepnn.__version__,
        "tf_cuda_build": bool(build.get("is_cuda_build", False)),
        "tf_cuda_version": build.get("cuda_version"), "tf_cudnn_version": build.get("cudnn_version"),
        "gpus": gpus, "nvidia_smi": nvidia_smi(), "cpu_count": os.cpu_count(),
    }


def no_gpu_reason(env: dict) -> str:
    smi = env["nvidia_smi"]
    if not env["tf_cuda_build"]:
        why = f"TensorFlow {env['tensorflow']} is not a CUDA build (pip install 'hepnn[gpu]')"
    elif smi.get("available") and smi.get("gpus"):
        why = (f"nvidia-smi sees {len(smi['gpus'])} GPU(s) but TensorFlow {env['tensorflow']} lists none "
               "(CUDA/cuDNN libraries or CUDA_VISIBLE_DEVICES?)")
    else:
        smi_state = "fails" if smi.get("available") else "is absent"
        why = f"TensorFlow {env['tensorflow']} lists no GPU and nvidia-smi {smi_state}"
    return f"no GPU visible: {why}"


# --- one training measurement --------------------------------------------------------


def build(keras, family: str, data: dict, extra: dict | None = None):
    """Build and compile ``family`` under the current global dtype policy (``extra``: more builder options)."""
    from hepnn.models import MODELS

    name, inputs, options = family_spec(family)
    options = {**options, **(extra or {})}
    shapes = {k: data[k].shape[1:] for k in inputs}
    if name == "autoencoder":
        model = MODELS.get(name)(shapes, task="autoencoder", **options)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    else:
        model = MODELS.get(name)(shapes, **options)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    return model


def family_spec(family: str):
    if family in FAMILIES:
        return FAMILIES[family]
    return (family, ("particles", "jet"), {})  # other registered builders (graph, attention): constituents + jet


def inputs_and_target(family: str, data: dict, rows=slice(None)):
    name, inputs, _ = family_spec(family)
    x = {k: data[k][rows] for k in inputs}
    y = x[inputs[0]] if name == "autoencoder" else data["label"][rows]
    return x, y


class FirstBatchWait:
    """Keras callback: seconds from the start of the epoch to the start of its first step."""

    def __new__(cls):
        import keras

        class _FirstBatchWait(keras.callbacks.Callback):
            seconds = 0.0

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_train_batch_begin(self, batch, logs=None):
                if batch == 0:
                    self.seconds = time.perf_counter() - self._start

        return _FirstBatchWait()


def timed_fit(keras, family: str, data: dict, steps: int, batch_size: int, policy: str, seed: int = 1,
              options: dict | None = None) -> tuple[dict, object]:
    """Build ``family`` under ``policy``, trace it on a few steps, then train ``steps`` timed steps."""
    from hepnn.training.callbacks import RunState, Timing
    from hepnn.training.feeds import InMemoryFeed

    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(seed)
    model = build(keras, family, data, options)
    n = steps * batch_size
    x, y = inputs_and_target(family, data, slice(0, n))
    # as the trainer does: an autoencoder's loss is per pixel / per slot, so weights broadcast over those axes
    weight_shape = (1,) * (y.ndim - 2) if family_spec(family)[0] == "autoencoder" and y.ndim > 2 else ()

    def feed(rows: int) -> InMemoryFeed:
        empty = {k: v[:0] for k, v in x.items()}
        return InMemoryFeed({k: v[:rows] for k, v in x.items()}, y[:rows], np.ones((rows, *weight_shape), "float32"),
                            empty, y[:0], np.ones((0, *weight_shape), "float32"), batch_size=batch_size, seed=seed)

    # trace (and XLA-compile) on two steps fed exactly like the timed ones, so the timed epoch does not retrace
    t0 = time.perf_counter()
    model.fit(**feed(min(n, 2 * batch_size)).epoch_args(0), epochs=1, verbose=0)
    trace_s = time.perf_counter() - t0
    session = RunState(state={})
    first = FirstBatchWait()
    t0 = time.perf_counter()
    epoch_args = feed(n).epoch_args(0)  # the in-memory feed's per-epoch shuffle (a permuted copy of every array)
    prepare_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    history = model.fit(**epoch_args, epochs=1, verbose=0,
                        callbacks=[Timing(session, batch_size), first]).history
    wall = time.perf_counter() - t0
    timer = session.timer
    loss = float(history["loss"][-1])
    # the wait before the first step (numpy -> tensors, iterator start-up) is paid once per epoch: a real
    # epoch amortises it over far more steps than this benchmark runs, so it is also reported apart
    total = timer.wait + timer.compute
    steady = (timer.wait - first.seconds) / (total - first.seconds) if total > first.seconds else 0.0
    result = {
        "jets_per_s": round(timer.samples_per_second, 1),
        "input_wait_share": round(timer.input_wait_share, 4),
        "input_wait_share_steady": round(max(steady, 0.0), 4),
        "first_batch_wait_s": round(first.seconds, 4),
        # the trainer prepares each epoch's arrays before model.fit, outside what input_wait_share counts
        "epoch_prepare_s": round(prepare_s, 4),
        "input_wait_share_incl_prepare": round((timer.wait + prepare_s) / (total + prepare_s), 4)
        if total + prepare_s > 0 else 0.0,
        "ms_per_step": round(1e3 * (timer.wait + timer.compute) / steps, 3),
        "fit_wall_jets_per_s": round(n / wall, 1),
        "trace_s": round(trace_s, 2),
        "steps": steps, "batch_size": batch_size, "final_loss": round(loss, 5),
        "loss_finite": bool(np.isfinite(loss)),
        "xla": bool(getattr(model, "jit_compile", False)),
        "optimizer": type(model.optimizer).__name__,
    }
    return result, model


def predict(model, x: dict, batch_size: int) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64)


def mixed_scores_check(keras, family: str, model32, data: dict, eval_rows: slice, batch_size: int) -> dict:
    """Scores of the float32 model vs the same weights under mixed_float16."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    model16 = build(keras, family, data)
    model16.set_weights(model32.get_weights())
    keras.mixed_precision.set_global_policy("float32")
    x, _ = inputs_and_target(family, data, eval_rows)
    s32, s16 = predict(model32, x, batch_size), predict(model16, x, batch_size)
    if family_spec(family)[0] == "autoencoder":  # compare per-jet reconstruction errors
        target = np.asarray(next(iter(x.values())), dtype=np.float64)
        axes = tuple(range(1, target.ndim))
        e32, e16 = ((s32 - target) ** 2).mean(axis=axes), ((s16 - target) ** 2).mean(axis=axes)
        diff = float(np.max(np.abs(e16 - e32) / np.maximum(np.abs(e32), 1e-12)))
        return {"what": "max relative difference of the per-jet reconstruction error", "n_jets": len(e32),
                "max_diff": diff, "tolerance": MIXED_AE_RTOL, "ok": bool(diff <= MIXED_AE_RTOL),
                "output_dtype_float32": str(model16.outputs[0].dtype).endswith("float32")}
    diff = float(np.max(np.abs(s16 - s32)))
    return {"what": "max |score difference|, same weights", "n_jets": len(s32), "max_diff": diff,
            "mean_diff": float(np.mean(np.abs(s16 - s32))), "tolerance": MIXED_SCORE_ATOL,
            "ok": bool(diff <= MIXED_SCORE_ATOL),
            "output_dtype_float32": str(model16.outputs[0].dtype).endswith("float32")}


# --- GPU-only checks -----------------------------------------------------------------


def graph_op_types(tf, model, x: dict) -> set[str]:
    """Op types of the traced forward pass, nested functions (cond/while branches) included."""
    fn = tf.function(lambda inputs: model(inputs, training=False), autograph=False)
    spec = {k: tf.TensorSpec((None,) + v.shape[1:], tf.float32) for k, v in x.items()}
    graph_def = fn.get_concrete_function(spec).graph.as_graph_def()
    types = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        types.update(node.op for node in function.node_def)
    return types


def cudnn_check(tf, keras, data: dict, steps: int, batch_size: int) -> dict:
    out = {"status": "ok"}
    for cell in ("gru", "lstm"):
        row = {}
        for kernel, cudnn in (("cudnn", True), ("generic", False)):
            result, model = timed_fit(keras, cell, data, steps, batch_size, "float32", options={"cudnn": cudnn})
            x, _ = inputs_and_target(cell, data, slice(0, batch_size))
            ops = sorted(t for t in graph_op_types(tf, model, x) if t.startswith("CudnnRNN"))
            row[kernel] = {"ms_per_step": result["ms_per_step"], "jets_per_s": result["jets_per_s"], "cudnn_ops": ops}
        row["speedup"] = round(row["generic"]["ms_per_step"] / row["cudnn"]["ms_per_step"], 2)
        row["cudnn_kernel_used"] = bool(row["cudnn"]["cudnn_ops"]) and not row["generic"]["cudnn_ops"]
        out[cell] = row
    return out


def masking_check(tf, keras, models: dict, data: dict, eval_rows: slice) -> dict:
    """Scores of the trained float32 sequence models on the GPU vs the same weights on the CPU (TF32 off).

    The CPU reference of a recurrent family is a twin built with ``cudnn: false``: with a GPU
    visible, Keras would otherwise try the cuDNN op under ``/CPU:0`` and soft placement could
    move it to the GPU.
    """
    if not models:
        return {"status": "skipped", "reason": f"no sequence family ({', '.join(SEQUENCE_FAMILIES)}) was trained"}
    out = {"status": "ok", "tolerance": MASKING_ATOL}
    tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        for family, model in models.items():
            x, _ = inputs_and_target(family, data, eval_rows)
            scores = {}
            for device in ("/CPU:0", "/GPU:0"):
                with tf.device(device):
                    run = model
                    if device == "/CPU:0" and family_spec(family)[0] == "rnn":
                        run = build(keras, family, data, {"cudnn": False})
                        run.set_weights(model.get_weights())
                    scores[device] = np.asarray(run({k: tf.constant(v) for k, v in x.items()}, training=False),
                                                dtype=np.float64)
            diff = float(np.max(np.abs(scores["/CPU:0"] - scores["/GPU:0"])))
            n_real = np.any(x["particles"] != 0, axis=-1).sum(axis=1)
            out[family] = {"max_abs_diff": diff, "ok": bool(diff <= MASKING_ATOL), "n_jets": int(len(n_real)),
                           "padded_share": round(float(1 - n_real.mean() / MAX_LENGTH), 3)}
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(tf32)
    return out


# --- Trainer-based sections ----------------------------------------------------------


def trainer_data(n: int, seed: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    jet = (rng.normal(size=(n, N_FLAT)) + 0.5 * y[:, None]).astype("float32")
    n_train = int(0.8 * n)
    return {"jet": jet, "label": y.astype("int32"), "weight": np.ones(n, "float32"),
            "split": np.where(np.arange(n) < n_train, 0, 1).astype("int8")}


def mirrored_check(tf, steps: int, batch_size: int, folder: Path) -> dict:
    from hepnn.training.trainer import Trainer

    steps_per_epoch = max(2, min(steps, 100))
    n = int(steps_per_epoch * batch_size / 0.8)
    data = trainer_data(n)
    losses, timing = {}, {}
    for kind in ("none", "mirrored"):
        cfg = {"data": {"inputs": {"jet": {"kind": "flat", "variables": [f"x{i}" for i in range(N_FLAT)]}}},
               "model": {"name": "dense", "units": [128, 128, 64], "dropout": 0.0},
               "training": {"epochs": 3, "batch_size": batch_size, "verbose": 0, "early_stopping": None,
                            "distribute": kind, "seed": 5}}
        trainer = Trainer(cfg, log=lambda line: None).fit(folder / f"mirrored_{kind}", data=data)
        losses[kind] = [float(row["loss"]) for row in trainer.history_]
        timing[kind] = [float(row["samples_per_s"]) for row in trainer.history_]
    strategy = tf.distribute.MirroredStrategy()
    rel = np.abs(np.subtract(losses["mirrored"], losses["none"])) / np.maximum(np.abs(losses["none"]), 1e-12)
    diff = float(rel.max())
    return {"status": "ok", "devices": [d for d in strategy.extended.worker_devices],
            "n_replicas": int(strategy.num_replicas_in_sync), "epochs": 3, "steps_per_epoch": steps_per_epoch,
            "loss_single_device": losses["none"], "loss_mirrored": losses["mirrored"],
            "jets_per_s_single_device": timing["none"], "jets_per_s_mirrored": timing["mirrored"],
            "max_rel_diff": diff, "tolerance": MIRRORED_RTOL,
            "ok": bool(diff <= MIRRORED_RTOL and np.isfinite(rel).all())}


def write_root_files(folder: Path, n: int) -> None:
    """Per-jet top.root and qcd.root with the generator's branch names (synthetic kinematics)."""
    import awkward as ak
    import uproot

    for sample, seed, width in (("top", 11, 0.25), ("qcd", 12, 0.15)):
        rng = np.random.default_rng(seed)
        counts = rng.integers(1, 2 * MAX_LENGTH, n)
        total = int(counts.sum())
        jet_eta, jet_phi = rng.uniform(-2, 2, n), rng.uniform(-np.pi, np.pi, n)
        pt = rng.exponential(20, total) + 1.0
        eta = np.repeat(jet_eta, counts) + rng.normal(0, width, total)
        phi = np.repeat(jet_phi, counts) + rng.normal(0, width, total)
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        energy = np.sqrt(px**2 + py**2 + pz**2)
        owner = np.repeat(np.arange(n), counts)
        jet_px, jet_py = np.bincount(owner, px, n), np.bincount(owner, py, n)
        unf = lambda v: ak.unflatten(v.astype(np.float32), counts)  # noqa: E731
        branches = {
            "jet_pt": np.hypot(jet_px, jet_py).astype(np.float32), "jet_eta": jet_eta.astype(np.float32),
            "jet_phi": jet_phi.astype(np.float32), "jet_energy": np.bincount(owner, energy, n).astype(np.float32),
            "jet_mass": rng.uniform(10, 250, n).astype(np.float32),
            "jet_tau21": rng.uniform(0, 1, n).astype(np.float32), "jet_tau32": rng.uniform(0, 1, n).astype(np.float32),
            "jet_nparticles": counts.astype(np.int32),
            "part_px": unf(px), "part_py": unf(py), "part_pz": unf(pz), "part_energy": unf(energy),
        }
        with uproot.recreate(folder / f"{sample}.root") as f:
            f.mktree("jets", {k: (v.type.content if isinstance(v, ak.Array) else v.dtype) for k, v in branches.items()})
            f["jets"].extend(branches)


STREAM_MODELS = {
    "dense": {"name": "dense", "inputs": ["highlevel"]},
    "deepsets": {"name": "deepsets", "inputs": ["particles"]},
    "gru": {"name": "rnn", "cell": "gru", "cudnn": False, "inputs": ["particles"]},
}


def stream_config(folder: Path, family: str, streaming: bool, batch_size: int, epochs: int) -> dict:
    files = [{"path": f"{s}.root", "tree": "jets", "label": label, "name": s} for s, label in (("top", 1), ("qcd", 0))]
    return {
        "data": {
            "layout": "per_jet", "directory": str(folder), "files": files,
            "jet_axis": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "energy": "jet_energy"},
            "constituents": {"px": "part_px", "py": "part_py", "pz": "part_pz", "energy": "part_energy"},
            "inputs": {
                "highlevel": {"kind": "flat", "variables": ["jet_mass", "jet_tau21", "jet_tau32", "jet_nparticles"]},
                "particles": {"kind": "sequence", "variables": ["rel_eta", "rel_phi", "log_pt", "log_e", "delta_r"],
                              "sort_by": {"variable": "log_pt"}, "max_length": MAX_LENGTH},
            },
            "split": {"train": 0.8, "val": 0.1, "test": 0.1, "seed": 1},
        },
        "model": STREAM_MODELS[family],
        "training": {"epochs": epochs, "batch_size": batch_size, "streaming": streaming, "stream_cache": streaming,
                     "early_stopping": None, "verbose": 0},
    }


def streaming_check(family: str, n_jets: int, batch_size: int, folder: Path) -> dict:
    from hepnn.config import load_config
    from hepnn.io import load
    from hepnn.training.trainer import Trainer

    data_dir = folder / "stream_data"
    data_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    write_root_files(data_dir, n_jets)
    out = {"status": "ok", "family": family, "n_jets": 2 * n_jets, "epochs": 3,
           "write_s": round(time.perf_counter() - t0, 2)}
    for mode, streaming in (("in_memory", False), ("stream_cache", True)):
        cfg = load_config(stream_config(data_dir, family, streaming, batch_size, epochs=3))
        t0 = time.perf_counter()
        data = None if streaming else load(cfg)
        load_s = time.perf_counter() - t0
        trainer = Trainer(cfg, log=lambda line: None).fit(folder / f"stream_{mode}", data=data)
        later = trainer.history_[1:]  # the first epoch traces (and, streaming, fills the cache)
        out[mode] = {
            "jets_per_s": round(float(np.median([r["samples_per_s"] for r in later])), 1),
            "input_wait_share": round(float(np.median([r["input_wait_share"] for r in later])), 4),
            "first_epoch_jets_per_s": round(float(trainer.history_[0]["samples_per_s"]), 1),
            "first_epoch_input_wait_share": round(float(trainer.history_[0]["input_wait_share"]), 4),
            "load_s": round(load_s, 2),
        }
    return out


# --- report --------------------------------------------------------------------------


def targets(result: dict) -> list[dict]:
    gpu = result["mode"] == "gpu"
    note = None if gpu else "not evaluated: no GPU (CPU figures)"
    rows = []

    def add(name, value, target, better):
        met = None if (not gpu or value is None) else bool(value < target if better == "below" else value >= target)
        rows.append({"name": name, "value": value, "target": target, "direction": better, "met": met,
                     **({"note": note} if note else {})})

    for family, fam in result["families"].items():
        if fam.get("status") == "ok":
            add(f"input_wait_share in memory, {family} float32 (steady: first-step wait excluded)",
                fam["float32"]["input_wait_share_steady"], TARGET_INPUT_WAIT_MEMORY, "below")
    stream = result["streaming"]
    if stream.get("status") == "ok":
        add(f"input_wait_share in memory, streaming section ({stream['family']})",
            stream["in_memory"]["input_wait_share"], TARGET_INPUT_WAIT_MEMORY, "below")
        add(f"input_wait_share with stream_cache ({stream['family']})", stream["stream_cache"]["input_wait_share"],
            TARGET_INPUT_WAIT_STREAM_CACHE, "below")
    cnn = result["families"].get("cnn", {})
    if cnn.get("status") == "ok":
        add("mixed precision speed-up, cnn", cnn["mixed_speedup"], TARGET_MIXED_SPEEDUP_CNN, "at_least")
    cudnn = result["cudnn"]
    add("cuDNN GRU speed-up over the generic kernel",
        cudnn["gru"]["speedup"] if cudnn.get("status") == "ok" else None, TARGET_CUDNN_SPEEDUP_GRU, "at_least")
    return rows


def correctness_failures(result: dict) -> list[str]:
    failed = []
    for family, fam in result["families"].items():
        if fam.get("status") == "error":
            failed.append(f"{family}: {fam['reason']}")
            continue
        if fam.get("status") != "ok":
            continue
        for policy in ("float32", "mixed_float16"):
            if not fam[policy]["loss_finite"]:
                failed.append(f"{family} {policy}: training loss is not finite")
        if not fam["mixed_scores"]["ok"]:
            failed.append(f"{family}: mixed-precision scores differ from float32 by {fam['mixed_scores']['max_diff']:.3g} "
                          f"(tolerance {fam['mixed_scores']['tolerance']})")
        if not fam["mixed_scores"]["output_dtype_float32"]:
            failed.append(f"{family}: mixed-precision output is not float32")
    if result["cudnn"].get("status") == "ok":
        for cell in ("gru", "lstm"):
            if not result["cudnn"][cell]["cudnn_kernel_used"]:
                failed.append(f"{cell}: no CudnnRNN op in the graph of the cuDNN-eligible layer")
    if result["masking_cpu_vs_gpu"].get("status") == "ok":
        for family, row in result["masking_cpu_vs_gpu"].items():
            if isinstance(row, dict) and not row["ok"]:
                failed.append(f"{family}: masked scores differ between CPU and GPU by {row['max_abs_diff']:.3g}")
    mirrored = result["mirrored"]
    if mirrored.get("status") == "ok" and not mirrored["ok"]:
        failed.append(f"MirroredStrategy: loss differs from one device by {mirrored['max_rel_diff']:.3g} (relative)")
    for name in ("cudnn", "masking_cpu_vs_gpu", "mirrored", "streaming"):
        if result[name].get("status") == "error":
            failed.append(f"{name}: {result[name]['reason']}")
    return failed


def fmt(value, spec=",.0f") -> str:
    return "-" if value is None else format(value, spec)


def table(result: dict) -> str:
    env = result["environment"]
    device = ", ".join(g.get("device_name") or g["name"] for g in env["gpus"]) or "CPU only (no GPU visible)"
    smi = env["nvidia_smi"].get("gpus") or [{}]
    lines = [
        f"# hepnn GPU benchmark ({result['mode']} mode, {result['started_utc']})",
        "",
        f"Device: {device}; driver {smi[0].get('driver_version', '-')}; TensorFlow {env['tensorflow']} "
        f"(CUDA {env['tf_cuda_version'] or '-'}, cuDNN {env['tf_cudnn_version'] or '-'}); Keras {env['keras']}; "
        f"{result['settings']['steps']} steps of {result['settings']['batch_size']} jets; wall {result['wall_s']:.0f} s.",
        "",
        "| family | float32 jets/s | mixed_float16 jets/s | speed-up | input wait f32 (steady) "
        "| input wait mixed (steady) | XLA | mixed vs f32 scores |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for family, fam in result["families"].items():
        if fam.get("status") != "ok":
            lines.append(f"| {family} | {fam.get('status')}: {fam.get('reason', '')} |||||||")
            continue
        f32, f16, ms = fam["float32"], fam["mixed_float16"], fam["mixed_scores"]
        lines.append(f"| {family} | {fmt(f32['jets_per_s'])} | {fmt(f16['jets_per_s'])} | {fam['mixed_speedup']:.2f}x | "
                     f"{f32['input_wait_share']:.1%} ({f32['input_wait_share_steady']:.1%}) | "
                     f"{f16['input_wait_share']:.1%} ({f16['input_wait_share_steady']:.1%}) | {'yes' if f32['xla'] else 'no'} | "
                     f"{ms['max_diff']:.2g} (tol {ms['tolerance']}) |")
    lines.append("")
    cudnn = result["cudnn"]
    if cudnn.get("status") == "ok":
        for cell in ("gru", "lstm"):
            row = cudnn[cell]
            lines.append(f"- cuDNN {cell}: {row['cudnn']['ms_per_step']:.2f} ms/step vs generic "
                         f"{row['generic']['ms_per_step']:.2f} ms/step, **{row['speedup']:.1f}x**; "
                         f"ops {', '.join(row['cudnn']['cudnn_ops']) or 'none'}")
    else:
        lines.append(f"- cuDNN check: {cudnn.get('status')} ({cudnn.get('reason', '')})")
    masking = result["masking_cpu_vs_gpu"]
    if masking.get("status") == "ok":
        diffs = ", ".join(f"{k} {v['max_abs_diff']:.2g}" for k, v in masking.items() if isinstance(v, dict))
        lines.append(f"- masked scores CPU vs GPU, max |diff| (tol {masking['tolerance']}): {diffs}")
    else:
        lines.append(f"- masked scores CPU vs GPU: {masking.get('status')} ({masking.get('reason', '')})")
    mirrored = result["mirrored"]
    if mirrored.get("status") == "ok":
        lines.append(f"- MirroredStrategy on {mirrored['n_replicas']} device(s) ({', '.join(mirrored['devices'])}): "
                     f"max relative loss difference {mirrored['max_rel_diff']:.2g} (tol {mirrored['tolerance']})")
    else:
        lines.append(f"- MirroredStrategy: {mirrored.get('status')} ({mirrored.get('reason', '')})")
    stream = result["streaming"]
    if stream.get("status") == "ok":
        lines.append(f"- streaming ({stream['family']}, {stream['n_jets']} jets): in memory "
                     f"{fmt(stream['in_memory']['jets_per_s'])} jets/s, input wait {stream['in_memory']['input_wait_share']:.1%}; "
                     f"stream_cache {fmt(stream['stream_cache']['jets_per_s'])} jets/s, input wait "
                     f"{stream['stream_cache']['input_wait_share']:.1%}")
    else:
        lines.append(f"- streaming: {stream.get('status')} ({stream.get('reason', '')})")
    lines += ["", "| target | value | goal | met |", "|---|---|---|---|"]
    for row in result["targets"]:
        goal = ("< " if row["direction"] == "below" else ">= ") + str(row["target"])
        met = {True: "yes", False: "**no**", None: "not evaluated"}[row["met"]]
        value = "-" if row["value"] is None else f"{row['value']:.3g}"
        lines.append(f"| {row['name']} | {value} | {goal} | {met} |")
    if result["checks_failed"]:
        lines += ["", "Checks failed:", *[f"- {line}" for line in result["checks_failed"]]]
    return "\n".join(lines) + "\n"


# --- main ----------------------------------------------------------------------------


def run_section(result: dict, name: str, deadline: float, gpu_only: str | None, fn, selected: bool = True) -> None:
    if not selected:
        result[name] = {"status": "skipped", "reason": NOT_SELECTED}
    elif gpu_only is not None:
        result[name] = {"status": "skipped", "reason": gpu_only}
    elif time.perf_counter() > deadline:
        result[name] = {"status": "skipped", "reason": "time limit (--time-limit) reached"}
    else:
        t0 = time.perf_counter()
        try:
            result[name] = fn()
        except Exception as err:  # noqa: BLE001 - one failing section must not lose the others' figures
            result[name] = {"status": "error", "reason": f"{type(err).__name__}: {str(err)[:500]}"}
        result[name]["section_s"] = round(time.perf_counter() - t0, 2)
    print(f"[gpu.py] {name}: {result[name].get('status')} {result[name].get('reason', '')}", flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    deadline = start + args.time_limit
    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # many models are built in one process: retracing warnings are expected

    for device in tf.config.list_physical_devices("GPU"):
        try:  # grow as needed rather than take the whole card (only possible before TensorFlow uses it)
            tf.config.experimental.set_memory_growth(device, True)
        except RuntimeError:
            pass
    env = environment(tf, keras)
    gpu = bool(env["gpus"])
    reason = None if gpu else no_gpu_reason(env)
    if not gpu and not args.allow_cpu:
        print(f"{reason}.\nNothing was run. On a GPU node: pip install 'hepnn[gpu]' and check `nvidia-smi`; "
              "to check this script on a CPU instead, pass --allow-cpu (GPU-only checks are then skipped).",
              file=sys.stderr)
        return 2
    if reason:
        print(f"[gpu.py] {reason}: running the CPU sections only (--allow-cpu)", flush=True)

    from hepnn.models import MODELS

    if args.families == "all":
        families = list(FAMILIES) + [n for n in MODELS.names() if n not in {spec[0] for spec in FAMILIES.values()}]
    else:
        families = [f.strip() for f in args.families.split(",") if f.strip()]
        unknown = [f for f in families if f not in FAMILIES and f not in MODELS]
        if unknown:
            print(f"--families: unknown {', '.join(unknown)}; valid: {', '.join([*FAMILIES, *MODELS.names()])}",
                  file=sys.stderr)
            return 2
    n = args.steps * args.batch_size
    eval_n = min(n, 2048)
    data = synthetic(n + eval_n)
    eval_rows = slice(n, n + eval_n)
    result = {
        "schema_version": SCHEMA_VERSION, "mode": "gpu" if gpu else "cpu", "gpu_visible": gpu,
        "no_gpu_reason": reason,
        "started_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "settings": {"sections": args.sections, "steps": args.steps, "batch_size": args.batch_size,
                     "families": families,
                     "stream_jets": args.stream_jets, "stream_family": args.stream_family,
                     "time_limit_s": args.time_limit, "image_pixels": PIXELS, "max_length": MAX_LENGTH},
        "environment": env, "families": {},
    }
    print(f"[gpu.py] {result['mode']} mode: TensorFlow {env['tensorflow']}, Keras {env['keras']}, "
          f"GPUs: {[g.get('device_name') or g['name'] for g in env['gpus']] or 'none'}, "
          f"driver: {(env['nvidia_smi'].get('gpus') or [{}])[0].get('driver_version', '-')}", flush=True)

    trained = {}
    # the cuDNN section trains the recurrent families itself; the masking one needs the trained sequence models
    measured = families if "throughput" in args.sections else [
        f for f in families if f in SEQUENCE_FAMILIES and "masking_cpu_vs_gpu" in args.sections]
    for family in families:
        if family not in measured:
            result["families"][family] = {"status": "skipped", "reason": NOT_SELECTED}
            continue
        if time.perf_counter() > deadline:
            result["families"][family] = {"status": "skipped", "reason": "time limit (--time-limit) reached"}
            continue
        name, inputs, options = family_spec(family)
        entry = {"status": "ok", "model": name, "inputs": list(inputs), "options": options}
        try:
            entry["float32"], model32 = timed_fit(keras, family, data, args.steps, args.batch_size, "float32")
            entry["mixed_float16"], _ = timed_fit(keras, family, data, args.steps, args.batch_size, "mixed_float16")
            keras.mixed_precision.set_global_policy("float32")
            entry["mixed_speedup"] = round(entry["mixed_float16"]["jets_per_s"] / entry["float32"]["jets_per_s"], 3)
            entry["mixed_scores"] = mixed_scores_check(keras, family, model32, data, eval_rows, args.batch_size)
            trained[family] = model32
        except Exception as err:  # noqa: BLE001 - report, continue with the other families
            entry = {"status": "error" if family in FAMILIES else "skipped", "model": name,
                     "reason": f"{type(err).__name__}: {str(err)[:300]}"}
        finally:
            keras.mixed_precision.set_global_policy("float32")
        result["families"][family] = entry
        print(f"[gpu.py] {family}: " + (f"float32 {entry['float32']['jets_per_s']:,.0f} jets/s, mixed "
              f"{entry['mixed_float16']['jets_per_s']:,.0f} jets/s, input wait {entry['float32']['input_wait_share']:.1%}"
              if entry["status"] == "ok" else f"{entry['status']}: {entry['reason']}"), flush=True)

    gpu_only = None if gpu else reason
    with tempfile.TemporaryDirectory(prefix="hepnn_gpu_bench_") as tmp:
        folder = Path(tmp)
        selected = args.sections
        run_section(result, "cudnn", deadline, gpu_only,
                    lambda: cudnn_check(tf, keras, data, min(args.steps, 100), args.batch_size), "cudnn" in selected)
        sequence_models = {f: m for f, m in trained.items() if f in SEQUENCE_FAMILIES}
        run_section(result, "masking_cpu_vs_gpu", deadline, gpu_only,
                    lambda: masking_check(tf, keras, sequence_models, data, eval_rows),
                    "masking_cpu_vs_gpu" in selected)
        run_section(result, "mirrored", deadline, None, lambda: mirrored_check(tf, args.steps, args.batch_size, folder),
                    "mirrored" in selected)
        run_section(result, "streaming", deadline, None,
                    lambda: streaming_check(args.stream_family, args.stream_jets, args.batch_size, folder),
                    "streaming" in selected)
    keras.mixed_precision.set_global_policy("float32")
    result["wall_s"] = round(time.perf_counter() - start, 1)
    result["targets"] = targets(result)
    result["checks_failed"] = correctness_failures(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    text = table(result)
    (out / "gpu.md").write_text(text)
    print(text)
    print(f"[gpu.py] wrote {out / 'gpu.json'} and {out / 'gpu.md'} in {result['wall_s']:.0f} s", flush=True)
    return 1 if result["checks_failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
