"""The run directory: what a training run leaves behind, written atomically.

::

    RUN_DIR/
      config.yaml          resolved configuration (reloads to the same object)
      spec.json            the run specification (hepnn.runs.RunSpec: task, classes, inputs, pad value)
      model.keras          the trained model (final name appears only when complete)
      preprocessing.json   standardisation fitted on the training split
      history.csv          per epoch: loss, metrics, learning rate, input-wait share, samples/s, memory
      metrics.json         test-split metrics (``hepnn evaluate``)
      provenance.json      versions, git commit, seeds, input checksums, split, host and devices
      checkpoints/         state.json naming the variables it goes with (last-NNNNNN.npz), for resuming a
                           killed run; best-NNNNNN.weights.npz (named there too) with restore_best_weights
      tensorboard/         TensorBoard logs
      .hepnn               marker: the directory belongs to hepnn (written first, see hepnn.outdir)
      .hepnn.lock          flock held while a command writes into the run
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Mapping

from .._fileio import atomic_path, atomic_write_text
from .._redact import redact, redact_args
from .._threads import cpu_cores
from ..config import Config, load_config, to_dict
from ..exceptions import ConfigError, InputDataError
from ..io.sources import group_files, is_url
from ..models import load_model
from ..preprocessing import Preprocessor

__all__ = ["RunDirectory", "write_json", "read_json", "file_checksum", "provenance", "config_differences",
           "load_run_model", "clear_model_cache"]

#: models kept by :func:`load_run_model` (least recently used dropped first); more than the
#: variants of an analysis, so that a report cycling over its runs never reloads one
MODEL_CACHE_SIZE = 16

# resolved model.keras path -> (file stamp, model, weights when cached)
_MODELS: "OrderedDict[str, tuple[tuple, Any, list]]" = OrderedDict()


def _stamp(path: Path) -> tuple:
    st = path.stat()
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _weights(model: Any) -> list:
    import numpy as np

    return [np.array(w, copy=True) for w in model.get_weights()]


def _unchanged(model: Any, weights: list) -> bool:
    import numpy as np

    now = model.get_weights()
    return len(now) == len(weights) and all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(now, weights))


def _remember(path: Path, model: Any) -> None:
    key = str(path.resolve())
    _MODELS[key] = (_stamp(path), model, _weights(model))
    _MODELS.move_to_end(key)
    while len(_MODELS) > MODEL_CACHE_SIZE:
        _MODELS.popitem(last=False)


def load_run_model(path: str | os.PathLike) -> Any:
    """The Keras model of ``path`` (a ``model.keras`` file), loaded once per process.

    ``hepnn run`` trains, evaluates, explains and reports in one process; each step asks
    for the same models. A model is loaded (and its inference function traced) once and
    kept while the file is unchanged (same modification time, size and inode) and its
    weights are those it had when cached: a model trained further in memory is not
    handed out again. The model a trainer saved with :meth:`RunDirectory.save_model`
    is kept as saved, so the steps after training load nothing.

    Examples
    --------
    >>> model = load_run_model("runs/top/dense/model.keras")  # doctest: +SKIP
    >>> model is load_run_model("runs/top/dense/model.keras")  # doctest: +SKIP
    True
    """
    path = Path(path)
    key = str(path.resolve())
    hit = _MODELS.get(key)
    if hit is not None and path.is_file() and hit[0] == _stamp(path) and _unchanged(hit[1], hit[2]):
        _MODELS.move_to_end(key)
        return hit[1]
    _MODELS.pop(key, None)
    model = load_model(path)
    _remember(path, model)
    return model


def clear_model_cache() -> None:
    """Forget the models kept by :func:`load_run_model`."""
    _MODELS.clear()


def _plain_variables(model: Any) -> bool:
    """True when no weight of ``model`` is a distributed (mirrored) variable."""
    try:
        import tensorflow as tf
    except ModuleNotFoundError:  # another Keras backend: nothing distributed by tf.distribute
        return True
    return not any(isinstance(getattr(v, "value", v), tf.distribute.DistributedValues) for v in model.weights)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def missing_preprocessing(run: "RunDirectory", recorded: str | None, config: Config | None = None) -> str | None:
    """Why ``run`` cannot be scored: it was trained with a ``preprocessing.json`` that is gone; else None.

    Scores without the file's transforms and standardisation would be silently wrong. The run
    records that it was trained with one in ``spec.json`` (``recorded``, :attr:`RunSpec.preprocessing`).
    A run copied without ``spec.json`` too is judged by ``provenance.json``: its data came through
    hepnn's reader (``streaming``, or ``dropped_labels`` counted by :func:`hepnn.io.load`; for a k-fold
    run, fold 0's), which always fits and saves the preprocessing, and ``config`` (default: the run's
    ``config.yaml``) transforms or standardises an input. A run trained on hand-built arrays, or
    written by an hepnn older than those records, legitimately has no ``preprocessing.json``.

    Examples
    --------
    >>> import tempfile
    >>> missing_preprocessing(RunDirectory(tempfile.mkdtemp()), None) is None
    True
    """
    if run.preprocessing.is_file():
        return None
    if not recorded and (run.spec.is_file() or not _read_by_hepnn(run) or not _preprocesses(run, config)):
        return None
    gone = " and ".join(p.name for p in (run.preprocessing, run.spec) if not p.is_file())
    if recorded:
        why = "spec.json says so" if run.spec.is_file() else "its spec says so"
    else:
        why = ("provenance.json says its data came through hepnn's reader, which always saves it, and config.yaml "
               "transforms or standardises an input; spec.json, which records it, is missing too")
    return (f"{run.preprocessing}: missing, but the run was trained with it ({why}); scores without its transforms "
            f"and standardisation would be wrong. Copy {gone} from the run's original folder into {run.path}, "
            "or train the run again")


def _read_by_hepnn(run: "RunDirectory") -> bool:
    """``provenance.json`` (a k-fold run: fold 0's) says the training data came through hepnn's reader."""
    for path in (run.provenance, run.path / "folds" / "0" / "provenance.json"):
        if path.is_file():
            try:
                record = json.loads(path.read_text())
            except ValueError:
                return False
            return isinstance(record, dict) and (record.get("streaming") is True
                                                 or isinstance(record.get("dropped_labels"), dict))
    return False


def _preprocesses(run: "RunDirectory", config: Config | None) -> bool:
    """``config`` (default: the run's ``config.yaml``) transforms or standardises one of its inputs."""
    if config is None:
        if not run.config.is_file():
            return False
        config = load_config(run.config)
    return not Preprocessor.from_config(config.data).is_identity()


def read_json(path: str | os.PathLike) -> Any:
    """The JSON document in ``path``; a damaged file raises ``InputDataError`` naming it."""
    text = Path(path).read_text()
    try:
        return json.loads(text)
    except ValueError as err:
        msg = (f"{path}: damaged JSON file ({err}); hepnn writes its files atomically, so it was changed by hand "
               "or by another program: restore it, or rerun the command that writes it")
        raise InputDataError(msg) from None


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    msg = f"cannot write {type(obj).__name__} to JSON"
    raise TypeError(msg)


def file_checksum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """``sha256:<hex>`` of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or not commit:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True,
        timeout=5, check=False,
    ).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("hepnn", "tensorflow", "keras", "numpy", "uproot", "awkward", "scikit-learn"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def input_files(data_config) -> list[Path | str]:
    """The files a data config reads, found as the reader finds them (:func:`hepnn.io.sources.group_files`:
    ``~`` expanded, relative to ``data.directory``, globs sorted by name); a remote file (``root://``,
    ``https://``...) as its URL, a string as written. A group that matches no file (a run trained on
    in-memory data, files moved since) adds none: reading the data is what reports it."""
    files: list[Path | str] = []
    for i in range(len(data_config.files)):
        try:
            matches = group_files(data_config, i)
        except (InputDataError, ConfigError):
            continue
        files.extend(m if is_url(m) else Path(m) for m in matches)
    return files


def _input_record(path: Path | str) -> dict[str, Any]:
    """Provenance of one input file: path, checksum and size; a remote file's URL only (tokens masked)."""
    if isinstance(path, str):
        return {"path": redact(path)}
    return {"path": str(path), "checksum": file_checksum(path), "bytes": path.stat().st_size}


def _devices() -> list[str]:
    try:
        import tensorflow as tf

        return [f"{d.device_type}:{d.name}" for d in tf.config.list_logical_devices()]
    except Exception:  # noqa: BLE001 - provenance must never fail a run
        return []


def _tensorflow_threads() -> int | None:
    """The intra-op threads TensorFlow's CPU kernels split their work over (it changes the last bits of
    sums, so a run's numbers depend on it): ``TF_NUM_INTRAOP_THREADS``, the configured count, or the cores."""
    setting = os.environ.get("TF_NUM_INTRAOP_THREADS", "").strip()
    if setting.isdigit() and int(setting) > 0:
        return int(setting)
    try:
        import tensorflow as tf

        configured = tf.config.threading.get_intra_op_parallelism_threads()
    except Exception:  # noqa: BLE001 - provenance must never fail a run
        return None
    if configured > 0:
        return int(configured)
    return cpu_cores()


def provenance(config, seeds: Mapping[str, int], extra: Mapping[str, Any] | None = None) -> dict:
    """Everything needed to trace a run back to code, data and machine."""
    files = input_files(config.data)
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": _versions(),
        "git_commit": _git_commit(),
        "command": " ".join(redact_args(sys.argv)),  # no passwords or tokens (hepnn._redact)
        "seeds": dict(seeds),
        "split": asdict(config.data.split),
        "inputs": [_input_record(f) for f in files],
        "host": {"name": socket.gethostname(), "platform": platform.platform(), "cpus": os.cpu_count(),
                 "tensorflow_threads": _tensorflow_threads()},
        "devices": _devices(),
        **(dict(extra) if extra else {}),
    }


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value
    return out


def config_differences(old, new) -> list[str]:
    """``["training.epochs: 2 -> 4", ...]``: the dotted keys whose values differ between two configs.

    Examples
    --------
    >>> config_differences({"training": {"epochs": 2}}, {"training": {"epochs": 4}, "name": "x"})
    ['name: (unset) -> x', 'training.epochs: 2 -> 4']
    """
    a = _flatten(to_dict(old) if isinstance(old, Config) else old, "", {})
    b = _flatten(to_dict(new) if isinstance(new, Config) else new, "", {})
    missing = object()
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            show = lambda v: "(unset)" if v is missing else (v if isinstance(v, str) else json.dumps(v, default=str))  # noqa: E731
            out.append(f"{key}: {show(va)} -> {show(vb)}")
    return out


class RunDirectory:
    """Paths and atomic writers of one run directory.

    Examples
    --------
    >>> import tempfile
    >>> run = RunDirectory(tempfile.mkdtemp())
    >>> run.model.name, run.is_trained()
    ('model.keras', False)
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # file names are part of the contract
    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def spec(self) -> Path:
        return self.path / "spec.json"

    @property
    def model(self) -> Path:
        return self.path / "model.keras"

    @property
    def preprocessing(self) -> Path:
        return self.path / "preprocessing.json"

    @property
    def predictions(self) -> Path:
        """``predictions/<split>.npz``: the model's outputs on a split, with the key they are valid for."""
        return self.path / "predictions"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def provenance(self) -> Path:
        return self.path / "provenance.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    def create(self) -> RunDirectory:
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def is_trained(self) -> bool:
        return self.model.is_file()

    def save_model(self, model, path: Path | None = None) -> Path:
        """Save a Keras model atomically (Keras wants the ``.keras`` suffix).

        The final model (``model.keras``) is also kept for :func:`load_run_model`, so
        that evaluating it in the same process does not load it again (unless trained
        with a distribution strategy: then a loaded copy has plain variables).
        """
        target = path or self.model
        with atomic_path(target, suffix=".part.keras") as tmp:
            model.save(tmp)
        if Path(target) == self.model and _plain_variables(model):
            _remember(Path(target), model)
        return target

    def load_model(self) -> Any:
        """The trained model, loaded once per process (see :func:`load_run_model`)."""
        return load_run_model(self.model)

    def write_history(self, rows: Iterable[Mapping[str, Any]]) -> Path:
        rows = list(rows)
        columns: list[str] = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return atomic_write_text(self.history, buffer.getvalue())

    def read_history(self) -> list[dict[str, float]]:
        if not self.history.is_file():
            return []
        with open(self.history, newline="") as handle:
            return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _number(text: str) -> Any:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
