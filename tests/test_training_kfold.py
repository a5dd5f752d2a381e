"""k-fold training: stable fold keys, out-of-fold metrics, and a Tagger that never scores a jet with its own model."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot

import hepnn
from hepnn.config import load_config
from hepnn.io import load
from hepnn.io.split import assign_fold, event_fold_key
from hepnn.training.kfold import fold_data, fold_dirs
from hepnn.training.trainer import Trainer

pytest.importorskip("pythia8mc")

CONFIG = """
data:
  layout: per_event
  files: [{path: ttbar.root, tree: Events}]
  event_key: event
  label: {branch: Jet_hadronFlavour, classes: {light: 0, b: 5}}
  inputs:
    jet: {kind: flat, variables: [Jet_pt, Jet_eta, Jet_mass, Jet_nConstituents]}
  split: {train: 0.7, val: 0.15, test: 0.15, seed: 3}
model: {name: dense, units: [8], dropout: 0.0}
training: {epochs: 1, batch_size: 32, folds: 3, verbose: 0}
"""


@pytest.fixture(scope="module")
def kfold_run(tmp_path_factory):
    from hepnn.datasets import generate

    folder = tmp_path_factory.mktemp("kfold")
    generate("ttbar", 400, seed=5, out=folder / "ttbar.root", layout="per_event", progress=False)
    (folder / "config.yaml").write_text(CONFIG)
    config = load_config(folder / "config.yaml")
    data = load(config)
    Trainer(config, log=lambda s: None).fit(folder / "run", data=data)
    return folder, config, data


def test_fold_keys_follow_events(kfold_run):
    folder, config, data = kfold_run
    events = uproot.open(folder / "ttbar.root")["Events"].arrays(["event", "nJet"], library="np")
    event_of_jet = np.repeat(events["event"], events["nJet"])
    # no cuts in this config and only light/b jets kept: compare on the kept jets
    flav = np.concatenate(uproot.open(folder / "ttbar.root")["Events"]["Jet_hadronFlavour"].array(library="np"))
    kept = np.isin(flav, [0, 5])
    np.testing.assert_array_equal(data["fold_key"], event_fold_key(event_of_jet[kept], config.data.split.seed))
    fold = assign_fold(data["fold_key"], 3)
    assert set(np.unique(fold)) == {0, 1, 2}
    for event in np.unique(event_of_jet[kept]):
        assert len(set(fold[event_of_jet[kept] == event])) == 1  # an event is never split across folds


def test_each_model_never_trains_on_the_jets_it_scores(kfold_run):
    folder, config, data = kfold_run
    fold = assign_fold(data["fold_key"], 3)
    for k in range(3):
        part = fold_data(data, fold, k)
        assert np.all(part["split"][fold == k] == 2)
        assert not np.any(part["split"][fold != k] == 2)
    info = json.loads((folder / "run" / "folds.json").read_text())
    assert info["n_folds"] == 3 and sum(info["jets_per_fold"]) == data.n_jets
    assert all((p / "model.keras").is_file() for p in fold_dirs(folder / "run", 3))


def test_out_of_fold_metrics_and_spread(kfold_run):
    folder, config, data = kfold_run
    from hepnn.training.evaluate import evaluate_run

    metrics = evaluate_run(folder / "run", data=data)
    assert metrics["scored_out_of_fold"] is True
    assert metrics["n_test"] == data.n_jets  # every jet scored once, by the model that did not train on it
    spread = metrics["folds"]["auc"]
    assert set(spread) == {"mean", "std"} and 0.0 <= spread["std"] < 0.5
    per_fold = [json.loads((p / "metrics.json").read_text())["auc"] for p in fold_dirs(folder / "run", 3)]
    assert spread["mean"] == pytest.approx(np.mean(per_fold), abs=1e-5)


def test_out_of_fold_evaluation_scores_each_fold_model_once(kfold_run, monkeypatch):
    """Each fold's own metrics and the out-of-fold scores come from one prediction per fold model."""
    import hepnn.training.evaluate as evaluate

    folder, config, data = kfold_run
    calls, real = [], evaluate.predict

    def counting(model, x, **kwargs):
        calls.append(len(next(iter(x.values()))))
        return real(model, x, **kwargs)

    monkeypatch.setattr(evaluate, "predict", counting)
    metrics = evaluate.evaluate_run(folder / "run", data=data)
    assert len(calls) == 3 and sum(calls) == data.n_jets == metrics["n_test"]


def test_tagger_uses_the_fold_model_of_each_jet(kfold_run):
    folder, config, data = kfold_run
    from hepnn.models import load_model

    tagger = hepnn.Tagger.load(folder / "run")
    assert not tagger.keyed_by_position  # folds follow the event number, wherever the jet is read
    events = uproot.open(folder / "ttbar.root")["Events"].arrays()
    scores = ak.flatten(tagger.predict(events)).to_numpy()
    flav = ak.flatten(events["Jet_hadronFlavour"]).to_numpy()
    kept = np.isin(flav, [0, 5])
    fold = assign_fold(data["fold_key"], 3)
    x = {"jet": data["jet"]}
    per_model = [load_model(p / "model.keras").predict(x, verbose=0).reshape(-1) for p in fold_dirs(folder / "run", 3)]
    expected = np.choose(fold, per_model)
    np.testing.assert_allclose(scores[kept], expected, rtol=1e-5, atol=1e-6)
    for k in range(3):  # and not the other models
        other = per_model[(k + 1) % 3][fold == k]
        assert not np.allclose(scores[kept][fold == k], other)
    # without the event number the folds cannot be told apart: the average of all models
    no_key = tagger.predict(events[[f for f in events.fields if f != "event"]])
    np.testing.assert_allclose(ak.flatten(no_key).to_numpy()[kept], np.mean(per_model, axis=0), rtol=1e-5, atol=1e-6)


def test_report_shows_the_fold_spread_as_a_band(kfold_run, tmp_path):
    folder, config, data = kfold_run
    from hepnn.plotting.report import build_report

    report = build_report(folder / "run", out=tmp_path / "report", data=data, progress=False)
    figure = report.figure("rejection_folds_run")
    per_fold = [json.loads((p / "metrics.json").read_text())["auc"] for p in fold_dirs(folder / "run", 3)]
    assert figure.summary["folds"] == 3
    assert figure.summary["auc_mean"] == pytest.approx(np.mean(per_fold), abs=1e-4)
    assert figure.summary["auc_std"] == pytest.approx(np.std(per_fold, ddof=1), abs=1e-4)
    band = figure.result["band"]
    assert band.axes.get_yscale() == "log"
    assert (tmp_path / "report" / "plots" / "rejection_folds_run.png").is_file()
    assert "rejection_folds_run.png" in (tmp_path / "report" / "index.html").read_text()


def test_kfold_run_is_a_composite_with_one_spec(kfold_run):
    from hepnn.runs import load_spec
    from hepnn.training.kfold import KFoldTagger

    folder, config, data = kfold_run
    spec = load_spec(folder / "run")
    assert json.loads((folder / "run" / "spec.json").read_text())["classes"] == ["light", "b"]
    assert spec == load_spec(fold_dirs(folder / "run", 3)[0]) and spec.names == ("jet",)
    tagger = hepnn.Tagger.load(folder / "run")
    assert isinstance(tagger, KFoldTagger) and tagger.n_folds == 3 and tagger.spec == spec
    assert tagger.classes == ["light", "b"] and tagger.task == "binary"


def test_a_fold_run_read_on_its_own_gets_its_own_fold(kfold_run):
    # `hepnn evaluate RUN/folds/<k>` read the config's test split, two thirds of which that model trained on
    from hepnn.training.evaluate import evaluate_run, load_run_data, split_data
    from hepnn.training.kfold import fold_position

    folder, config, data = kfold_run
    fold = assign_fold(data["fold_key"], 3)
    for k, path in enumerate(fold_dirs(folder / "run", 3)):
        assert fold_position(path) == (folder / "run", k, 3)
        own = load_run_data(path, load_config(path / "config.yaml"))
        np.testing.assert_array_equal(own["split"], fold_data(data, fold, k)["split"])
        assert len(split_data(path, "test")["label"]) == np.count_nonzero(fold == k)
    assert fold_position(folder / "run") is None
    per_fold = json.loads((fold_dirs(folder / "run", 3)[1] / "metrics.json").read_text())
    alone = evaluate_run(fold_dirs(folder / "run", 3)[1])
    assert alone["n_test"] == np.count_nonzero(fold == 1) and alone["auc"] == pytest.approx(per_fold["auc"], abs=1e-6)


def test_explain_cli_explains_each_fold_model_on_its_own_fold(kfold_run, capsys):
    from hepnn.cli import main
    from hepnn.explain import Explanation
    from hepnn.explain.run import explain_run
    from hepnn.models import load_model

    folder, config, data = kfold_run
    assert main(["explain", str(folder / "run"), "--method", "permutation", "--n-jets", "100000"]) == 0
    assert capsys.readouterr().out.count("explained") == 3
    fold = assign_fold(data["fold_key"], 3)
    for k, path in enumerate(fold_dirs(folder / "run", 3)):
        expl = Explanation.load(path / "explain" / "permutation")
        mine = fold_data(data, fold, k)
        test = np.asarray(mine["split"]) == 2
        expected = load_model(path / "model.keras").predict({"jet": mine["jet"][test]}, verbose=0).reshape(-1)
        assert expl.n_jets == np.count_nonzero(fold == k)  # every jet of its fold, and only those
        np.testing.assert_allclose(np.sort(np.asarray(expl.outputs).reshape(-1)), np.sort(expected), rtol=1e-5,
                                   atol=1e-6)
    with pytest.raises(hepnn.exceptions.ConfigError, match="k-fold run"):
        explain_run(folder / "run", "permutation")


def test_export_of_a_kfold_run_writes_every_fold_and_the_rule_to_pick_one(kfold_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    from hepnn.models import load_model
    from hepnn.training.export import export_onnx

    folder, config, data = kfold_run
    path = export_onnx(folder / "run", out=tmp_path / "export")
    rule = json.loads(path.read_text())
    assert path.name == "folds.json" and rule["n_folds"] == 3 and rule["event_branch"] == "event"
    x = {"jet": np.asarray(data["jet"][:50], np.float32)}
    for k, model in enumerate(rule["models"]):
        session = ort.InferenceSession(str(tmp_path / "export" / model), providers=["CPUExecutionProvider"])
        keras_out = load_model(fold_dirs(folder / "run", 3)[k] / "model.keras").predict(x, verbose=0)
        np.testing.assert_allclose(session.run(None, x)[0], keras_out, rtol=1e-5, atol=1e-5)

    def splitmix64(v):  # the rule as written in folds.json, in plain Python integers
        m = 2**64 - 1
        v = (v + 0x9E3779B97F4A7C15) & m
        v = ((v ^ (v >> 30)) * 0xBF58476D1CE4E5B9) & m
        v = ((v ^ (v >> 27)) * 0x94D049BB133111EB) & m
        return v ^ (v >> 31)

    events = [0, 1, 7, 123456, 2**40 + 3]
    by_rule = [splitmix64(e ^ rule["event_salt"]) % 3 for e in events]
    assert by_rule == assign_fold(event_fold_key(np.array(events), config.data.split.seed), 3).tolist()
