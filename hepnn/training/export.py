"""``hepnn export RUN_DIR --format onnx``: an ONNX model plus its preprocessing, verified.

Writes ``OUT/model.onnx``, ``OUT/preprocessing.json`` (the run's standardisation) and
``OUT/metadata.json`` (input names, shapes, feature names, pad values, classes, task and
the measured Keras-vs-ONNX-Runtime difference). The export fails if ONNX Runtime and
Keras disagree by more than ``tolerance`` on a verification batch.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from pathlib import Path

import numpy as np

from ..exceptions import HepnnError

__all__ = ["export_onnx", "verification_batch"]


def verification_batch(model, n: int = 64, seed: int = 0, mask_value: float = 0.0) -> dict[str, np.ndarray]:
    """Random standardised-looking inputs for every model input; sequences get padded tails."""
    rng = np.random.default_rng(seed)
    batch = {}
    for tensor in model.inputs:
        name = tensor.name.split(":")[0]
        shape = tuple(int(d) for d in tensor.shape[1:])
        x = rng.normal(size=(n, *shape)).astype(np.float32)
        if len(shape) == 2:  # sequence: pad a random tail of each jet (some jets fully padded)
            lengths = rng.integers(0, shape[0] + 1, size=n)
            x[np.arange(shape[0])[None, :] >= lengths[:, None]] = mask_value
        batch[name] = x
    return batch


def export_onnx(run_dir, out=None, tolerance: float = 1e-5) -> Path:
    """Export the run's model to ONNX and check it against Keras; return the ``.onnx`` path."""
    from .._optional import require, require_keras
    from ..config import load_config
    from ..models import load_model
    from .rundir import RunDirectory, write_json
    from .trainer import _mask_value, class_names, infer_task, model_inputs

    require("onnx")
    ort = require("onnxruntime")
    require("tf2onnx")
    require_keras()
    run = RunDirectory(run_dir)
    if not run.is_trained():
        msg = f"{run.model}: no trained model in {run_dir}; run `hepnn train` first"
        raise HepnnError(msg)
    out_dir = Path(out) if out is not None else run.path / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    config = load_config(run.config)
    model = load_model(run.model)
    names = model_inputs(config)
    mask_value = _mask_value(config, names)
    batch = verification_batch(model, mask_value=mask_value)
    expected = np.asarray(model.predict(batch, verbose=0))

    target = out_dir / "model.onnx"
    tmp = out_dir / ".model.onnx.part"
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(os.fspath(tmp), format="onnx", verbose=False)
    session = ort.InferenceSession(os.fspath(tmp), providers=["CPUExecutionProvider"])
    feed = {i.name: batch[i.name] for i in session.get_inputs()}
    got = np.asarray(session.run(None, feed)[0])
    diff = float(np.max(np.abs(got.reshape(expected.shape) - expected))) if expected.size else 0.0
    if diff > tolerance:
        tmp.unlink(missing_ok=True)
        msg = f"ONNX export of {run.model} disagrees with Keras by {diff:.3g} (> {tolerance:g}); not written"
        raise HepnnError(msg)
    os.replace(tmp, target)
    if run.preprocessing.is_file():
        shutil.copyfile(run.preprocessing, out_dir / "preprocessing.json")
    classes = class_names(config)
    write_json(out_dir / "metadata.json", {
        "inputs": {i.name: [d if isinstance(d, int) else None for d in i.shape] for i in session.get_inputs()},
        "feature_names": {n: list(getattr(config.data.inputs[n], "variables", ()) or ()) for n in names},
        "mask_value": mask_value,
        "classes": classes,
        "task": infer_task(config, len(classes)),
        "max_abs_diff_vs_keras": diff,
    })
    return target
