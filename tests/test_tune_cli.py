"""``hepnn tune`` end to end on tiny ROOT files, and the study plots."""

from __future__ import annotations

import csv
import json
import textwrap

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from hepnn.cli import main  # noqa: E402
from hepnn.config import load_config  # noqa: E402
from test_io_fixtures import write_top_qcd  # noqa: E402

CONFIG = """
name: toy-tune
data:
  layout: per_jet
  files:
    - {path: top.root, tree: jets, label: 1}
    - {path: qcd.root, tree: jets, label: 0}
  inputs:
    highlevel: {kind: flat, variables: [jet_mass, jet_tau21, jet_tau32, jet_nparticles]}
model: {name: dense, units: [8]}
training: {epochs: 2, batch_size: 64, verbose: 0}
"""

SPACE = """
model.units: [[8], [4]]
training.optimizer.learning_rate: {float: [1.0e-3, 1.0e-2], log: true}
"""


@pytest.fixture
def toy(tmp_path):
    write_top_qcd(tmp_path, 150)
    (tmp_path / "config.yaml").write_text(textwrap.dedent(CONFIG))
    (tmp_path / "space.yaml").write_text(textwrap.dedent(SPACE))
    return tmp_path


def test_tune_end_to_end(toy, capsys):
    out = toy / "tune"
    code = main(["tune", str(toy / "config.yaml"), "--space", str(toy / "space.yaml"), "--trials", "2",
                 "--out", str(out), "--sampler", "random", "--objective", "auc", "--set", "training.epochs=1"])
    assert code == 0, capsys.readouterr().err
    for n in (0, 1):
        run = out / "trials" / str(n)
        assert (run / "model.keras").is_file() and (run / "history.csv").is_file()
        assert load_config(run / "config.yaml").training.epochs == 1
        assert json.loads((run / "tune.json").read_text())["state"] == "complete"
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE"]
    values = [float(r["value"]) for r in rows]
    assert all(0.0 <= v <= 1.0 for v in values)
    best = rows[int(np.argmax(values))]
    params = json.loads(best["params"])
    config = load_config(out / "best_config.yaml")
    assert list(config.model.params["units"]) == json.loads(params["model.units"])
    assert config.training.optimizer.learning_rate == pytest.approx(params["training.optimizer.learning_rate"])
    assert config.training.epochs == 1 and config.name == "toy-tune"
    assert (out / "plots" / "optimization_history.png").is_file()
    assert "tuning finished" in capsys.readouterr().out


def test_space_typo_exits_2_before_any_trial(toy, capsys):
    (toy / "space.yaml").write_text("model.unitz: [[8], [4]]\n")
    code = main(["tune", str(toy / "config.yaml"), "--space", str(toy / "space.yaml"), "--trials", "2",
                 "--out", str(toy / "tune")])
    err = capsys.readouterr().err
    assert code == 2
    assert "model.unitz" in err and "did you mean 'units'" in err
    assert not (toy / "tune" / "trials").exists()


def test_unknown_objective_exits_2(toy, capsys):
    code = main(["tune", str(toy / "config.yaml"), "--space", str(toy / "space.yaml"), "--trials", "2",
                 "--out", str(toy / "tune"), "--objective", "aucc"])
    assert code == 2 and "did you mean 'auc'" in capsys.readouterr().err


def test_pruned_trial_stops_training_early(toy):
    from hepnn.tune.objective import TrainingObjective
    from hepnn.tune.space import load_space
    from hepnn.tune.study import fill_queue, open_study, run_worker

    class PruneAll(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    space = load_space(toy / "space.yaml")
    objective = TrainingObjective(toy / "config.yaml", space, toy / "tune", "val_loss",
                                  overrides=["training.epochs=3"], log=lambda _: None)
    study = open_study("prune", None, "minimize", "random", 0, pruner=PruneAll())
    fill_queue(study, 1, log=lambda _: None)
    run_worker(study, objective, log=lambda _: None)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]
    history = list(csv.DictReader(open(toy / "tune" / "trials" / "0" / "history.csv")))
    assert len(history) == 1


def test_kfold_trials_report_their_first_fold_and_stop_when_pruned(toy):
    # training.folds: the trainer dropped the epoch callback, so a k-fold trial was never
    # reported or pruned (every trial trained all its folds to the end)
    from hepnn.tune.objective import TrainingObjective
    from hepnn.tune.space import load_space
    from hepnn.tune.study import fill_queue, open_study, run_worker

    class PruneAll(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    space = load_space(toy / "space.yaml")
    for pruner, name in ((optuna.pruners.NopPruner(), "keep"), (PruneAll(), "prune")):
        objective = TrainingObjective(toy / "config.yaml", space, toy / name, "val_loss",
                                      overrides=["training.epochs=3", "training.folds=3", "training.early_stopping=null"],
                                      log=lambda _: None)
        study = open_study(name, None, "minimize", "random", 0, pruner=pruner)
        fill_queue(study, 1, log=lambda _: None)
        run_worker(study, objective, log=lambda _: None)
        trial, run = study.trials[0], toy / name / "trials" / "0"
        fold0 = [float(r["val_loss"]) for r in csv.DictReader(open(run / "folds" / "0" / "history.csv"))]
        if name == "keep":  # one report per epoch, fold 0's values
            assert trial.state == optuna.trial.TrialState.COMPLETE
            assert [trial.intermediate_values[e] for e in (1, 2, 3)] == pytest.approx(fold0, rel=1e-6)
            assert (run / "folds.json").is_file()
        else:  # pruned after fold 0's first epoch; folds 1 and 2 never trained
            assert trial.state == optuna.trial.TrialState.PRUNED
            assert list(trial.intermediate_values) == [1] and len(fold0) == 1
            assert not (run / "folds" / "1").exists() and not (run / "folds.json").exists()


def _toy_study(n=12):
    from hepnn.tune.study import fill_queue, open_study, run_worker

    study = open_study("plots", None, "maximize", "random", 0)
    fill_queue(study, n, log=lambda _: None)
    run_worker(study, lambda t: -(t.suggest_float("x", -1, 1) ** 2) + 0.01 * t.suggest_float("y", -1, 1),
               log=lambda _: None)
    return study


def test_plots_draw_history_and_importances():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hepnn.tune.plots import plot_importances, plot_optimization_history

    study = _toy_study()
    ax = plot_optimization_history(study, target_name="auc")
    trials, best = ax.get_lines()
    assert trials.get_label() == "trials" and best.get_label() == "best so far"
    values = [t.value for t in study.trials]
    np.testing.assert_allclose(trials.get_ydata(), values)
    np.testing.assert_allclose(best.get_ydata(), np.maximum.accumulate(values))
    assert ax.get_ylabel() == "auc" and ax.get_xlabel() == "trial"
    ax2 = plot_importances(study)
    names = [t.get_text() for t in ax2.get_yticklabels()]
    assert sorted(names) == ["x", "y"] and names[-1] == "x"  # x matters most: on top
    assert len(ax2.patches) == 2
    plt.close("all")


def test_auc_objective_is_weighted_like_evaluate(toy):
    # evaluation.weighted: the tuned AUC was the unweighted one while `hepnn evaluate` reported the weighted one
    from sklearn.metrics import roc_auc_score

    from hepnn.io import load
    from hepnn.training.evaluate import predict_split
    from hepnn.training.trainer import Trainer
    from hepnn.tune.objective import TrainingObjective
    from hepnn.tune.space import load_space

    text = textwrap.dedent(CONFIG).replace("  layout: per_jet\n", "  layout: per_jet\n  weight: jet_tau21\n")
    (toy / "weighted.yaml").write_text(text + "evaluation: {weighted: true}\n")
    config = load_config(toy / "weighted.yaml")
    data = load(config)
    trainer = Trainer(config, log=lambda _: None)
    trainer.fit(toy / "run", data=data)
    space = load_space(toy / "space.yaml")
    objective = TrainingObjective(toy / "weighted.yaml", space, toy / "study", objective="auc", data=data)
    value = objective.evaluate(toy / "run", trainer.history_, data)
    pred = predict_split(toy / "run", "val", data=data)
    y, s, w = np.asarray(pred["label"]), np.asarray(pred["outputs"]).reshape(-1), np.asarray(pred["weight"], float)
    assert value == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-6)
    assert abs(value - roc_auc_score(y, s)) > 1e-4  # the weights matter here


def test_auc_objective_of_kfold_trials(toy, capsys):
    # training.folds: every trial failed after training ("model file not found: .../trials/0/model.keras"):
    # the objective read the validation split of a run with no model of its own
    from sklearn.metrics import roc_auc_score

    from hepnn.io import load
    from hepnn.io.split import assign_fold
    from hepnn.training.evaluate import predict_split
    from hepnn.training.kfold import fold_data

    out = toy / "tune"
    code = main(["tune", str(toy / "config.yaml"), "--space", str(toy / "space.yaml"), "--trials", "1",
                 "--out", str(out), "--objective", "auc", "--set", "training.epochs=1", "--set", "training.folds=3"])
    assert code == 0, capsys.readouterr().err
    run = out / "trials" / "0"
    value = float(next(csv.DictReader(open(out / "trials.csv")))["value"])
    data = load(load_config(run / "config.yaml"))
    fold = assign_fold(data["fold_key"], 3)
    aucs = []
    for k in range(3):
        pred = predict_split(run / "folds" / str(k), "val", data=fold_data(data, fold, k))
        aucs.append(roc_auc_score(np.asarray(pred["label"]), np.asarray(pred["outputs"]).reshape(-1)))
    assert value == pytest.approx(np.mean(aucs), abs=1e-5)


def test_val_loss_objective_of_kfold_trials_averages_the_folds(toy, capsys):
    # the objective took fold 0's history only (the trainer's history_ is fold 0's)
    out = toy / "tune"
    code = main(["tune", str(toy / "config.yaml"), "--space", str(toy / "space.yaml"), "--trials", "1",
                 "--out", str(out), "--objective", "val_loss", "--set", "training.epochs=2",
                 "--set", "training.folds=3"])
    assert code == 0, capsys.readouterr().err
    value = float(next(csv.DictReader(open(out / "trials.csv")))["value"])
    best = [min(float(r["val_loss"]) for r in csv.DictReader(open(out / "trials" / "0" / "folds" / str(k) / "history.csv")))
            for k in range(3)]
    assert len(set(best)) == 3 and value == pytest.approx(np.mean(best), rel=1e-6)
