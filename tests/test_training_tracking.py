"""training.tracking: a training run is also an MLflow run (local file store)."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import hepnn.io
from hepnn.config import load_config

pytest.importorskip("keras")
mlflow = pytest.importorskip("mlflow")

DATA = Path(__file__).parent / "data"


def quiet(_):
    pass


def test_params_epoch_metrics_artifacts_test_metrics_and_resume(tmp_path):
    from hepnn.training.evaluate import evaluate_run
    from hepnn.training.trainer import Trainer
    from hepnn.training.tracking import log_results

    store = tmp_path / "mlruns"
    config = load_config(DATA / "nanoaod_btag.yaml", [
        "model.name=dense", "model.units=[8]", "training.epochs=2", "training.early_stopping=null",
        f"training.tracking={{uri: {store}, experiment: btag, run_name: first}}",
    ])
    run_dir = tmp_path / "run"
    data = hepnn.io.load(config)
    Trainer(config, log=quiet).fit(run_dir, data=data)

    client = mlflow.tracking.MlflowClient(tracking_uri=store.resolve().as_uri())
    experiment = client.get_experiment_by_name("btag")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "first" and run.info.status == "FINISHED"
    assert json.loads((run_dir / "tracking.json").read_text())["run_id"] == run.info.run_id
    assert run.data.params["training.epochs"] == "2" and run.data.params["model.name"] == "dense"
    with open(run_dir / "history.csv") as f:
        history = list(csv.DictReader(f))
    losses = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in losses] == [1, 2]
    np.testing.assert_allclose([m.value for m in losses], [float(r["loss"]) for r in history], rtol=1e-6)
    assert {"val_loss", "learning_rate"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "history.csv"} <= artifacts
    assert (run_dir / "tensorboard").is_dir(), "TensorBoard keeps working beside MLflow"

    # test metrics and a report folder, as `hepnn run` logs them after its steps
    metrics = evaluate_run(run_dir)
    (run_dir / "report").mkdir()
    (run_dir / "report" / "index.html").write_text("<html>report</html>")
    assert log_results(run_dir) == [run.info.run_id]
    logged = client.get_run(run.info.run_id).data.metrics
    assert logged["test_auc"] == pytest.approx(metrics["auc"])
    assert "report/index.html" in {a.path for a in client.list_artifacts(run.info.run_id, "report")}

    # a resumed training (here: the final model removed, one more epoch asked) continues the same MLflow run
    (run_dir / "model.keras").unlink()
    longer = dataclasses.replace(config, training=dataclasses.replace(config.training, epochs=3))
    Trainer(longer, log=quiet).fit(run_dir, data=data)
    assert len(client.search_runs([experiment.experiment_id])) == 1
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2, 3]


def test_tracking_config_is_strict():
    from hepnn.exceptions import ConfigError

    with pytest.raises(ConfigError, match="experimnt"):
        load_config({"training": {"tracking": {"experimnt": "x"}}})
    assert load_config({"training": {"tracking": {}}}).training.tracking.experiment == "hepnn"
