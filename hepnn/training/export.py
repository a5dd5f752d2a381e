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
from typing import Mapping

import numpy as np

from .._fileio import atomic_path, durable_replace
from .._optional import require, require_keras
from ..config import load_config
from ..exceptions import HepnnError
from ..io.split import event_salt
from ..models import load_model
from ..outdir import claim
from ..preprocessing import Preprocessor
from ..runs.spec import load_spec
from .onnx_deploy import deploy_metadata, finish_export, first_test_jets
from .kfold import fold_dirs, is_kfold_run
from .rundir import RunDirectory, read_json, write_json

__all__ = ["export_onnx", "verification_batch", "real_batch", "fold_rule"]


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


def _write_onnx(model, path: Path, batch: Mapping[str, np.ndarray], opset: int | None = None) -> None:
    """Keras 3's own ONNX export (tf2onnx underneath; dynamic batch axis) of a model called on ``batch``."""
    model.predict(dict(batch), verbose=0)  # Keras exports only models that have been called
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(os.fspath(path), format="onnx", verbose=False, opset_version=opset)


def real_batch(config, names: list[str], preprocessing_path: Path, n: int = 256) -> dict[str, np.ndarray] | None:
    """Up to ``n`` real test-split jets of the run's data (first chunk read), preprocessed; None if unreadable."""
    chunk = first_test_jets(config, n)
    if chunk is None:
        return None
    if preprocessing_path.is_file():
        chunk = Preprocessor.load(preprocessing_path).transform(chunk)
    return {name: np.asarray(chunk[name], dtype=np.float32) for name in names}


def _max_diff(model, session, batch: Mapping[str, np.ndarray]) -> float:
    expected = np.asarray(model.predict(dict(batch), verbose=0))
    feed = {i.name: np.asarray(batch[i.name], dtype=np.float32) for i in session.get_inputs()}
    got = np.asarray(session.run(None, feed)[0])
    if expected.size == 0:
        return 0.0
    got = got.reshape(expected.shape).astype(np.float64)
    # NaN on one side only is a disagreement (nanmax skipped it); NaN on both sides agrees
    diff = np.where(np.isnan(got) & np.isnan(expected), 0.0, np.abs(got - expected))
    return float(np.max(np.where(np.isnan(diff), np.inf, diff)))


def export_onnx(run_dir, out=None, tolerance: float = 1e-5, data: Mapping[str, np.ndarray] | None = None,
                with_preprocessing: bool = False, opset: int | None = None, force: bool = False) -> Path:
    """Export the run's model to ONNX and check it against Keras; return the ``.onnx`` path.

    The check runs Keras and ONNX Runtime on a random batch (sequences with padded
    tails, some jets fully padded) and on real test-split jets: ``data`` if given
    (preprocessed tensors keyed by input name), else the first chunk of the run's input
    files when they are readable. Nothing is written when they disagree.

    Parameters
    ----------
    run_dir : path
        A trained run directory.
    out : path, optional
        Output folder (default ``RUN_DIR/export``).
    tolerance : float
        Largest accepted absolute difference between Keras and ONNX Runtime outputs.
    data : dict of arrays, optional
        Preprocessed model inputs to verify on.
    with_preprocessing : bool
        Put the run's transforms and standardisation inside the ONNX graph, so it takes
        raw tensors (see :mod:`hepnn.training.onnx_deploy`); verified against Keras on
        the preprocessed test jets when the run's files are readable.
    opset : int, optional
        ONNX opset of the exported graph (default: the converter's).
    force : bool
        Write into an existing ``out`` that holds files hepnn did not write. ``out`` is
        claimed for hepnn and locked while the export runs (see :mod:`hepnn.outdir`).

    Returns
    -------
    pathlib.Path
        ``OUT/model.onnx``; ``OUT/preprocessing.json`` and ``OUT/metadata.json`` beside it.
        For a k-fold run, each fold model is exported into ``OUT/folds/<k>/`` and the path
        returned is ``OUT/folds.json``: the models and how to pick a jet's (:func:`fold_rule`).

    Raises
    ------
    HepnnError
        No trained model, an export that fails, or outputs that disagree by more than
        ``tolerance``.
    OutputDirError
        ``out`` is a file, or a folder with files hepnn did not write (unless ``force``).

    Examples
    --------
    >>> export_onnx("runs/top_dense")   # doctest: +SKIP
    PosixPath('runs/top_dense/export/model.onnx')
    """
    require("onnx")
    ort = require("onnxruntime")
    require("tf2onnx")
    require_keras()
    _check_opset(opset)
    run = RunDirectory(run_dir)
    kfold = is_kfold_run(run.path)
    if not kfold and not run.is_trained():
        msg = f"{run.model}: no trained model in {run_dir}; run `hepnn train` first"
        raise HepnnError(msg)
    out_dir = Path(out) if out is not None else run.path / "export"
    with claim(out_dir, "export", force=force):
        if kfold:
            return _export_folds(run, out_dir, ort, tolerance, data, with_preprocessing, opset)
        return _export(run, out_dir, ort, tolerance, data, with_preprocessing, opset)


def _check_opset(opset) -> None:
    """``opset`` is None or an opset the installed converter writes; else ``HepnnError`` saying which it writes.

    (The converter's own error came out as "a layer without an ONNX conversion makes the export fail".)
    """
    if opset is None:
        return
    import tf2onnx
    from tf2onnx import constants

    supported = sorted(constants.OPSET_TO_IR_VERSION)
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or int(opset) not in supported:
        msg = (f"opset: received {opset!r}; the installed ONNX converter (tf2onnx {tf2onnx.__version__}) writes "
               f"opsets {supported[0]} to {supported[-1]}: choose one of them (e.g. --opset {min(17, supported[-1])}), "
               "or leave the option out for the converter's default")
        raise HepnnError(msg)


def _export_folds(run: RunDirectory, out_dir: Path, ort, tolerance: float, data: Mapping[str, np.ndarray] | None,
                  with_preprocessing: bool, opset: int | None) -> Path:
    """Every fold model of a k-fold run into ``OUT/folds/<k>/`` and ``OUT/folds.json``, how to pick one."""
    folds = read_json(run.path / "folds.json")
    n_folds = int(folds["n_folds"])
    paths = fold_dirs(run.path, n_folds)
    missing = [str(p) for p in paths if not RunDirectory(p).is_trained()]
    if missing:
        msg = f"{run.path}: k-fold run without the models of {', '.join(missing)}; finish it with `hepnn train` first"
        raise HepnnError(msg)
    models = []
    for k, path in enumerate(paths):
        target = out_dir / "folds" / str(k)
        target.mkdir(parents=True, exist_ok=True)
        models.append(_export(RunDirectory(path), target, ort, tolerance, data, with_preprocessing, opset)
                      .relative_to(out_dir).as_posix())
    config = load_config(run.config)
    record = {"n_folds": n_folds, "models": models, "key": folds.get("key"), **fold_rule(config)}
    write_json(out_dir / "folds.json", record)
    return out_dir / "folds.json"


def fold_rule(config) -> dict:
    """How a deployment picks the fold model of a jet (``folds.json`` of a k-fold export).

    With ``data.event_key``: ``fold = splitmix64(uint64(event) ^ event_salt) % n_folds``, the
    same for every jet of an event (``splitmix64``: add 0x9E3779B97F4A7C15, then
    ``x ^= x >> 30; x *= 0xBF58476D1CE4E5B9; x ^= x >> 27; x *= 0x94D049BB133111EB; x ^= x >> 31``,
    all modulo 2**64). Without it the folds follow the file name and entry of the training
    files: any fold model (or their mean) is unbiased for events that were not in them.
    """
    if config.data.event_key:
        return {"event_branch": config.data.event_key, "event_salt": int(event_salt(config.data.split.seed)),
                "fold": "splitmix64(uint64(event) ^ event_salt) % n_folds",
                "splitmix64": ("x += 0x9E3779B97F4A7C15; x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9; "
                               "x = (x ^ (x >> 27)) * 0x94D049BB133111EB; x ^= x >> 31 (uint64 arithmetic)")}
    return {"event_branch": None,
            "fold": ("hash of (training file name, entry, jet index): for events that were not in the training "
                     "files any fold model, or the mean of all, is unbiased")}


def _export(run: RunDirectory, out_dir: Path, ort, tolerance: float, data: Mapping[str, np.ndarray] | None,
            with_preprocessing: bool, opset: int | None) -> Path:
    """:func:`export_onnx` into the claimed folder ``out_dir``."""
    config = load_config(run.config)
    model = load_model(run.model)
    spec = load_spec(run.path, config)
    names = list(spec.names)
    mask_value = spec.mask_value
    batches = {"random": verification_batch(model, mask_value=mask_value)}
    real = dict(data) if data is not None else real_batch(config, names, run.preprocessing)
    if real is not None:
        batches["test_data"] = {name: np.asarray(real[name], dtype=np.float32) for name in names}

    target = out_dir / "model.onnx"
    tmp = out_dir / ".model.onnx.part"
    try:
        _write_onnx(model, tmp, batches["random"], opset)
        session = ort.InferenceSession(os.fspath(tmp), providers=["CPUExecutionProvider"])
        diffs = {key: _max_diff(model, session, batch) for key, batch in batches.items()}
    except HepnnError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as err:  # noqa: BLE001 - converter failures come in many types
        tmp.unlink(missing_ok=True)
        layers = sorted({type(layer).__name__ for layer in model.layers})
        msg = (
            f"cannot export {run.model} to ONNX ({type(err).__name__}: {err}); "
            f"the model's layers are {', '.join(layers)}: a layer without an ONNX conversion makes the export fail"
        )
        raise HepnnError(msg) from err
    diff = max(diffs.values())
    if not diff <= tolerance:
        tmp.unlink(missing_ok=True)
        detail = ", ".join(f"{k}: {v:.3g}" for k, v in diffs.items())
        msg = (
            f"ONNX export of {run.model} disagrees with Keras by {diff:.3g} (> tolerance {tolerance:g}; {detail}); "
            "no ONNX file written"
        )
        raise HepnnError(msg)
    classes = list(spec.classes)
    shapes = {i.name: [d if isinstance(d, int) else None for d in i.shape] for i in session.get_inputs()}

    try:
        diffs.update(finish_export(tmp, config, names, classes, spec.task, shapes, run,
                                   with_preprocessing, tolerance, model))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    record = _metadata(spec, config, shapes, bool(with_preprocessing), diffs, batches, tolerance)
    deployed = deploy_metadata(config, names, classes, spec.task, shapes, bool(with_preprocessing))
    # metadata.json is the commit point, written last: a kill before it leaves no metadata beside a
    # model it does not describe (an earlier export's), and each file is replaced whole
    try:
        (out_dir / "metadata.json").unlink(missing_ok=True)
        if run.preprocessing.is_file():
            with atomic_path(out_dir / "preprocessing.json") as part:
                shutil.copyfile(run.preprocessing, part)
        else:  # an earlier export's file would describe another model
            (out_dir / "preprocessing.json").unlink(missing_ok=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    durable_replace(tmp, target)
    # the model's own metadata too, but ``inputs`` stays the shapes (the full description is in the model)
    write_json(out_dir / "metadata.json", {**{k: v for k, v in deployed.items() if k != "inputs"}, **record})
    return target


def _metadata(spec, config, shapes, with_preprocessing: bool, diffs: dict, batches: dict, tolerance: float) -> dict:
    """``export/metadata.json``: inputs, feature names, mask value, classes, task and the verification."""
    return {
        "inputs": shapes,
        "preprocessing_in_graph": with_preprocessing,
        "feature_names": {n: list(getattr(config.data.inputs[n], "variables", ()) or ()) for n in spec.names},
        "mask_value": spec.mask_value,
        "classes": list(spec.classes),
        "task": spec.task,
        "max_abs_diff_vs_keras": max(diffs.values()),
        "verified_on": {k: {"n_jets": int(len(next(iter(b.values())))), "max_abs_diff": diffs[k]}
                        for k, b in batches.items()},
        "verified_raw_inputs": diffs.get("test_data_raw"),
        "tolerance": tolerance,
    }
