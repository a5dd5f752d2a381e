"""End to end: a trained run directory, explain_run and ``hepnn explain``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hepnn.cli import main
from hepnn.explain import Explanation, explain_run
from hepnn.explain.run import run_target
from hepnn.training.trainer import Trainer
from test_training_trainer import quiet, toy_config, toy_data


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("explain") / "run"
    config = toy_config(epochs=1)
    config["model"] = {"name": "dense", "units": [8], "dropout": 0.0}
    Trainer(config, log=quiet).fit(path, data=toy_data(n=400))
    return path


def test_explain_run_writes_values_summary_and_plots(run):
    expl = explain_run(run, "permutation", n_jets=30, data=toy_data(n=400), options={"n_repeats": 2})
    out = run / "explain" / "permutation"
    with np.load(out / "values.npz", allow_pickle=False) as f:
        assert f["values_jet"].shape == (30, 4) and f["values"].shape == (30, 4)
        assert f["inputs_jet"].shape == (30, 4)
        assert list(f["feature_names_jet"]) == ["a", "b", "c", "d"]
        assert f["labels"].shape == (30,)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "permutation" and summary["n_jets"] == 30
    assert summary["options"] == {"n_repeats": 2} and summary["predict_seconds"] > 0
    assert set(summary["by_class"]) <= {"background", "signal"} and summary["by_pt_bin"]
    assert "importance_jet.png" in summary["plots"] and (out / "importance_jet.png").is_file()
    back = Explanation.load(out)
    np.testing.assert_array_equal(back.values["jet"], expl.values["jet"])


def test_surrogate_writes_rules(run):
    explain_run(run, "surrogate", n_jets=50, data=toy_data(n=400))
    rules = (run / "explain" / "surrogate" / "rules.txt").read_text()
    assert "|---" in rules
    summary = json.loads((run / "explain" / "surrogate" / "summary.json").read_text())
    assert "fidelity_r2" in summary["extra"]


def test_cli_explain(run, capsys, monkeypatch):
    # the CLI reads the data from the config: give it the in-memory data instead
    import hepnn.explain.run as run_module

    original = run_module.explain_run
    monkeypatch.setattr(run_module, "explain_run", lambda *a, **k: original(*a, data=toy_data(n=400), **k))
    code = main(["explain", str(run), "--method", "saliency", "--n-jets", "12"])
    assert code == 0 and "explained 12 jets with saliency" in capsys.readouterr().out
    with np.load(run / "explain" / "saliency" / "values.npz", allow_pickle=False) as f:
        assert f["values_jet"].shape == (12, 4)
    code = main(["explain", str(run), "--method", "occlusion", "--n-jets", "5"])
    assert code == 1 and "image input" in capsys.readouterr().err
    code = main(["explain", str(run), "--method", "salency"])
    assert code == 2 and "did you mean 'saliency'" in capsys.readouterr().err
    code = main(["explain", str(run), "--method", "saliency", "--set", "explain.options.saliency.bogus=1"])
    assert code == 2 and "explain.options.saliency.bogus" in capsys.readouterr().err


def test_autoencoder_auc_drop_has_the_background_evaluate_uses(tmp_path):
    # an autoencoder trained on the label-1 class (evaluation.background: signal) flags the label-0
    # jets; the permutation AUC drop took label 1 as the anomalies, so its sign was turned round
    config = toy_config(epochs=1, train_classes=["signal"])
    config["model"] = {"name": "autoencoder", "units": [4], "latent_dim": 2}
    config["evaluation"] = {"background": "signal"}
    Trainer(config, log=quiet).fit(tmp_path / "run", data=toy_data(n=400))
    assert run_target(tmp_path / "run").background == 1
    e = explain_run(tmp_path / "run", "permutation", n_jets=60, data=toy_data(n=400), options={"n_repeats": 1})
    anomalous = e.labels != 1
    base = roc_auc_score(anomalous, e.outputs)
    # with one repeat a jet's value is its score minus its score with the feature shuffled
    expected = [base - roc_auc_score(anomalous, e.outputs - e.values["jet"][:, f]) for f in range(4)]
    np.testing.assert_allclose(e.extra["auc_drop_jet"], expected, atol=1e-6)
