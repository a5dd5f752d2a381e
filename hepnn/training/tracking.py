"""Experiment tracking with MLflow (``training.tracking``; needs ``pip install hepnn[tracking]``).

With ``training.tracking: {uri: ..., experiment: ..., run_name: ...}`` in the config, a
training run is also an MLflow run:

* at the start: the resolved config as parameters (dotted keys, ``training.epochs``);
* after every epoch: the epoch's row of ``history`` (losses, metrics, learning rate, timing)
  as metrics at ``step = epoch``;
* at the end: the run directory's ``config.yaml``, ``history`` and ``provenance.json`` as
  artifacts;
* after ``hepnn run``: the test metrics (``metrics.json``, prefixed ``test_``) and the report
  folder as artifacts.

The MLflow run id is kept in ``RUN_DIR/tracking.json``, so a resumed training continues the
same MLflow run. TensorBoard logging (``RUN_DIR/tensorboard``) is unaffected. A local path or
``file:`` URI is an MLflow file store (allowed through ``MLFLOW_ALLOW_FILE_STORE``, which MLflow 3
requires for it); ``sqlite:///mlflow.db`` or a server URL work as well.
``mlflow ui --backend-store-uri URI`` shows the runs.

Examples
--------
>>> flat_params({"training": {"epochs": 3, "optimizer": {"name": "adam"}}, "name": None})
{'training.epochs': '3', 'training.optimizer.name': 'adam', 'name': 'None'}
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

from .._optional import require
from ..config.loader import to_dict

__all__ = ["Tracker", "start_tracking", "log_results", "flat_params", "TRACKING_FILE"]

TRACKING_FILE = "tracking.json"


def flat_params(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings as ``{"a.b": "value"}`` strings (MLflow parameters, at most 500 characters)."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flat_params(value, f"{name}."))
        else:
            out[name] = str(value)[:500]
    return out


def _numbers(row: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in row.items():
        if isinstance(value, Mapping):
            out.update(_numbers(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[f"{prefix}{key}".replace("@", "_at_")] = float(value)
    return out


def _mlflow():
    return require("mlflow", extra="tracking")


def _uri(uri: str | None) -> str | None:
    """A plain folder becomes an absolute ``file:`` URI; URIs pass through."""
    if not uri:
        return None
    if "://" in uri or uri.startswith(("file:", "databricks", "sqlite:")):
        return uri
    return Path(uri).expanduser().resolve().as_uri()


def _allow_file_store(uri: str | None) -> None:
    """MLflow 3 refuses file stores unless ``MLFLOW_ALLOW_FILE_STORE`` is set: a config that names a
    folder asks for one, so it is allowed for this process (a value the user set is kept)."""
    if uri is None or uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


class Tracker:
    """One MLflow run for one hepnn run directory (see the module docstring)."""

    def __init__(self, tracking: Any, run_dir: str | os.PathLike):
        self.tracking = tracking
        self.run_dir = Path(run_dir)
        self.mlflow = _mlflow()
        self.client = None
        self.run_id: str | None = None

    def start(self, config: Any) -> "Tracker":
        mlflow = self.mlflow
        uri = _uri(self.tracking.uri)
        _allow_file_store(uri)
        self.client = mlflow.tracking.MlflowClient(tracking_uri=uri)
        saved = self.run_dir / TRACKING_FILE
        if saved.is_file():
            self.run_id = json.loads(saved.read_text())["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            return self
        experiment = self.client.get_experiment_by_name(self.tracking.experiment)
        experiment_id = (experiment.experiment_id if experiment is not None
                         else self.client.create_experiment(self.tracking.experiment))
        run = self.client.create_run(experiment_id, run_name=self.tracking.run_name or self.run_dir.name,
                                     tags={"hepnn.run_dir": str(self.run_dir.resolve())})
        self.run_id = run.info.run_id
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps({"run_id": self.run_id, "tracking_uri": self.client.tracking_uri,
                                     "experiment": self.tracking.experiment}))
        params = flat_params(to_dict(config))
        items = [self.mlflow.entities.Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100])
        return self

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        import time

        step = int(row.get("epoch", 0))
        now = int(time.time() * 1000)
        metrics = [self.mlflow.entities.Metric(k, v, now, step)
                   for k, v in _numbers(row).items() if k != "epoch"]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, status: str = "FINISHED") -> None:
        for name in ("config.yaml", "history.csv", "history.json", "provenance.json"):
            path = self.run_dir / name
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, status=status)


def start_tracking(config: Any, run_dir: str | os.PathLike) -> Tracker | None:
    """A started :class:`Tracker` when ``config.training.tracking`` is set, else None."""
    tracking = getattr(config.training, "tracking", None)
    if tracking is None:
        return None
    return Tracker(tracking, run_dir).start(config)


def log_results(out_dir: str | os.PathLike) -> list[str]:
    """Log the test metrics and the report of every tracked run under ``out_dir``; return the run ids."""
    out_dir = Path(out_dir)
    found = sorted(out_dir.glob(TRACKING_FILE)) + sorted(out_dir.glob(f"*/{TRACKING_FILE}"))
    if not found:
        return []
    mlflow = _mlflow()
    ids = []
    for saved in found:
        info = json.loads(saved.read_text())
        _allow_file_store(info["tracking_uri"])
        client = mlflow.tracking.MlflowClient(tracking_uri=info["tracking_uri"])
        run_dir = saved.parent
        metrics_file = run_dir / "metrics.json"
        if metrics_file.is_file():
            for key, value in _numbers(json.loads(metrics_file.read_text()), "test_").items():
                client.log_metric(info["run_id"], key, value)
        for report in (run_dir / "report", out_dir / "report"):
            if report.is_dir():
                client.log_artifacts(info["run_id"], str(report), artifact_path="report")
                break
        ids.append(info["run_id"])
    return ids
