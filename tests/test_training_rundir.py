"""The run directory's model cache and the shared data of runs: what ``hepnn run`` reuses between steps."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from hepnn.config import load_config
from hepnn.models import load_model
from hepnn.models.inference import predict
from hepnn.preprocessing import Preprocessor
from hepnn.training import evaluate as evaluate_module
from hepnn.training.evaluate import load_run_data, predict_split, split_data
from hepnn.training.rundir import RunDirectory, clear_model_cache, load_run_model
from hepnn.training.step import evaluate_step
from hepnn.training.trainer import Trainer
from test_training_trainer import quiet, toy_config, toy_data


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("rundir") / "run"
    config = toy_config(epochs=2)
    config["model"] = {"name": "dense", "units": [8], "dropout": 0.0}
    trainer = Trainer(config, log=quiet).fit(path, data=toy_data(n=400))
    return trainer, path


def test_the_saved_model_is_the_trained_one_and_predicts_as_a_fresh_load(trained):
    trainer, path = trained
    model = load_run_model(path / "model.keras")
    assert model is trainer.model_ and RunDirectory(path).load_model() is model
    x = {"jet": toy_data(n=400)["jet"]}
    fresh = load_model(path / "model.keras")
    assert fresh is not model
    np.testing.assert_array_equal(predict(model, x, batch_size=64), predict(fresh, x, batch_size=64))


def test_a_model_changed_in_memory_or_on_disk_is_loaded_again(trained, tmp_path):
    _, path = trained
    run = tmp_path / "copy"
    shutil.copytree(path, run)
    first = load_run_model(run / "model.keras")
    assert load_run_model(run / "model.keras") is first
    saved = [w.copy() for w in first.get_weights()]
    # trained further in memory: the cache hands out the file's model, not the changed one
    first.set_weights([w + 1.0 for w in saved])
    second = load_run_model(run / "model.keras")
    assert second is not first
    for a, b in zip(second.get_weights(), saved):
        np.testing.assert_array_equal(a, b)
    # a new file (another model saved there): loaded again, with its weights
    other = load_model(run / "model.keras")
    other.set_weights([w * 0.5 for w in saved])
    RunDirectory(run).save_model(other)
    third = load_run_model(run / "model.keras")
    assert third is other
    clear_model_cache()
    fourth = load_run_model(run / "model.keras")
    assert fourth is not other
    np.testing.assert_array_equal(fourth.get_weights()[0], saved[0] * 0.5)


def test_checkpoints_are_not_kept(trained, tmp_path):
    trainer, _ = trained
    target = RunDirectory(tmp_path).save_model(trainer.model_, tmp_path / "last-000001.keras")
    assert load_run_model(target) is not trainer.model_


@pytest.fixture
def reads(monkeypatch):
    """The data configs of every data read by the evaluate module (each read gives 400 toy jets)."""
    seen = []

    def fake_load(config, analysis=None, standardize=True):
        seen.append(config.data)
        return toy_data(n=400)

    monkeypatch.setattr(evaluate_module, "load", fake_load)
    return seen


def test_runs_with_the_same_data_and_preprocessing_share_one_read(trained, tmp_path, reads):
    _, path = trained
    first, same, other = tmp_path / "first", tmp_path / "same", tmp_path / "other"
    config = load_config(path / "config.yaml")
    for run in (first, same, other):
        shutil.copytree(path, run)
        Preprocessor({"jet": {"kind": "flat", "variables": list("abcd"), "standardize": True}}).fit(toy_data(n=400, seed=1 if run == other else 0)).save(
            RunDirectory(run).preprocessing)
    cache: dict = {}
    a = load_run_data(first, config, cache=cache)
    b = load_run_data(same, config, cache=cache)
    assert a is b and len(reads) == 1
    c = load_run_data(other, config, cache=cache)  # another standardisation: read and transformed again
    assert c is not a and len(reads) == 2
    assert not np.allclose(a["jet"], c["jet"])
    assert abs(float(np.mean(a["jet"]))) < abs(float(np.mean(toy_data(n=400)["jet"])))  # transformed
    assert load_run_data(first, config) is not a and len(reads) == 3  # no cache: read again


def test_split_data_is_predict_split_without_outputs(trained):
    _, path = trained
    data = toy_data(n=400)
    pred = predict_split(path, "test", data=data)
    jets = split_data(path, "test", data=data)
    assert "outputs" not in jets and set(pred) == set(jets) | {"outputs"}
    np.testing.assert_array_equal(jets["label"], pred["label"])
    assert len(pred["outputs"]) == len(jets["label"]) == int(np.sum(data["split"] == 2))


def test_the_evaluate_step_reads_the_data_of_its_runs_once(trained, tmp_path, reads):
    _, path = trained
    for name in ("a", "b"):
        shutil.copytree(path, tmp_path / name)
    analysis = SimpleNamespace(name="toy", config=SimpleNamespace(variants={"a": {}, "b": {}}))
    results = evaluate_step(analysis, tmp_path, log=quiet)
    assert len(reads) == 1 and set(results) == {"a", "b"}
    assert results["a"]["auc"] == results["b"]["auc"] and 0.5 < results["a"]["auc"] <= 1.0
    alone = evaluate_module.evaluate_run(tmp_path / "a")  # no cache: read again, same metrics
    assert len(reads) == 2 and alone["auc"] == results["a"]["auc"]
