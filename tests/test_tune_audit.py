"""Audit of hepnn.tune against brute-force references: search-space distributions and seeds, study
bookkeeping (trials.csv = run directories, best trial, failed and killed trials, resuming), the
objective on the validation split, and the plotted numbers."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

import hepnn.tune.objective as objective_module  # noqa: E402
import hepnn.tune.plots as plots_module  # noqa: E402
import hepnn.tune.study as study_module  # noqa: E402
from hepnn.cli import build_parser  # noqa: E402
from hepnn.config import load_config  # noqa: E402
from hepnn.exceptions import ConfigError  # noqa: E402
from hepnn.tune.space import load_space  # noqa: E402
from hepnn.tune.study import fill_queue, make_storage, open_study, run_worker, storage_url, tune  # noqa: E402
from test_io_fixtures import write_top_qcd  # noqa: E402

STATE = optuna.trial.TrialState

CONFIG = """
name: audit-tune
data:
  layout: per_jet
  files:
    - {path: top.root, tree: jets, label: 1}
    - {path: qcd.root, tree: jets, label: 0}
  inputs:
    highlevel: {kind: flat, variables: [jet_mass, jet_tau21, jet_tau32, jet_nparticles]}
model: {name: dense, units: [8]}
training: {epochs: 1, batch_size: 64, verbose: 0}
"""

SPACE = {"model.units": [[8], [4]], "training.optimizer.learning_rate": {"float": [1.0e-3, 1.0e-2], "log": True}}


def quiet(_):
    pass


@pytest.fixture
def toy(tmp_path):
    write_top_qcd(tmp_path, 150)
    (tmp_path / "config.yaml").write_text(textwrap.dedent(CONFIG))
    return tmp_path


def _rows(out):
    with open(out / "trials.csv") as handle:
        return list(csv.DictReader(handle))


def _tune_json(row):
    return json.loads((Path(row["run_dir"]) / "tune.json").read_text())


# --- search spaces -----------------------------------------------------------------------


N_DRAWS = 2000


def _draws(space, n, sampler="random", seed=3):
    study = open_study(f"draws-{sampler}", None, "minimize", sampler, seed)
    fill_queue(study, n, sampler=sampler, log=quiet)
    values = []
    run_worker(study, lambda trial: (values.append(space.suggest(trial)), 0.0)[1], log=quiet)
    return values


def test_every_dimension_samples_its_bounds_with_the_documented_distribution():
    space = load_space({
        "lr": {"float": [1e-4, 1e-1], "log": True}, "x": {"float": [-2.0, 3.0]},
        "units": {"int": [16, 256], "log": True}, "n": {"int": [1, 6]},
        "s": {"float": [0.0, 1.0], "step": 0.25}, "k": {"int": [0, 10], "step": 5},
        "cell": ["lstm", "gru", "rnn"], "layers": [[8], [16, 16]],
    })
    draws = _draws(space, N_DRAWS)
    column = {key: [d[key] for d in draws] for key in space.keys}
    lr, x, units = np.log10(column["lr"]), np.array(column["x"]), np.log(column["units"])
    assert 1e-4 <= min(column["lr"]) and max(column["lr"]) <= 1e-1
    assert -2.0 <= x.min() and x.max() <= 3.0
    quantiles = [0.1, 0.25, 0.5, 0.75, 0.9]
    # log-uniform: log10(lr) uniform on [-4, -1]; uniform: x on [-2, 3] (about 4 sigma of a quantile of 2000 draws)
    np.testing.assert_allclose(np.quantile(lr, quantiles), -4 + 3 * np.array(quantiles), atol=0.15)
    np.testing.assert_allclose(np.quantile(x, quantiles), -2 + 5 * np.array(quantiles), atol=0.25)
    # int log: log(units) ~ uniform on [log 15.5, log 256.5] (Optuna widens an int range by half a step)
    lo, hi = math.log(15.5), math.log(256.5)
    assert 16 <= min(column["units"]) and max(column["units"]) <= 256
    np.testing.assert_allclose(np.quantile(units, quantiles), lo + (hi - lo) * np.array(quantiles), atol=0.14)
    assert all(isinstance(u, int) for u in column["units"] + column["n"] + column["k"])
    for key, support in (("n", [1, 2, 3, 4, 5, 6]), ("s", [0.0, 0.25, 0.5, 0.75, 1.0]), ("k", [0, 5, 10]),
                         ("cell", ["lstm", "gru", "rnn"]), ("layers", [[8], [16, 16]])):
        counts = [sum(v == s for v in column[key]) for s in support]
        assert sum(counts) == N_DRAWS, key  # every draw is one of the allowed values
        expected = N_DRAWS / len(support)
        assert max(abs(c - expected) for c in counts) < 5 * math.sqrt(expected), (key, counts)


def _params(study):
    return [json.dumps(t.params, sort_keys=True) for t in study.trials]


@pytest.mark.parametrize("sampler", ["random", pytest.param("tpe", marks=pytest.mark.slow)])
def test_same_seed_same_trials_and_a_resumed_study_continues_the_sequence(tmp_path, sampler):
    space = load_space({"x": {"float": [-5.0, 5.0]}, "n": {"int": [1, 64], "log": True}, "c": [[1], [2, 2], "z"]})

    def objective(trial):
        values = space.suggest(trial)
        return (values["x"] - 1) ** 2 + values["n"] / 64

    def run(out, n, seed=7):
        return tune(None, space, tmp_path / out, n_trials=n, objective=objective, sampler=sampler, seed=seed,
                    plots=False, log=quiet)

    first, again = _params(run("a", 8)), _params(run("b", 8))
    run("c", 3)
    resumed = _params(run("c", 8))
    assert first == again and first == resumed and len(set(first)) == 8
    assert _params(run("d", 8, seed=8)) != first


@pytest.mark.parametrize(("spec", "match"), [
    ({"model.units": {"int": [256, 16]}}, "model.units: low 256 is above high 16"),
    ({"training.optimizer.learning_rate": {"float": [-1.0, 1.0], "log": True}}, "learning_rate: a log range needs low > 0"),
    ({"model.cell": []}, "model.cell: empty list of choices"),
    ({"model.units": {"int": [1, 4], "lgo": True}}, "model.units: unknown key 'lgo'; did you mean 'log'"),
    # nan passed `low > high` and reached Optuna only when the first trial drew (every trial failed)
    ({"training.optimizer.learning_rate": {"float": [float("nan"), 1.0]}}, "learning_rate: expected finite bounds"),
    ({"training.dropout": {"float": [0.0, float("inf")]}}, "training.dropout: expected finite bounds"),
    ({"training.dropout": {"float": [0.0, 0.5], "step": float("inf")}}, r"training.dropout.step: expected a positive"),
])
def test_invalid_spaces_are_config_errors_naming_the_key(spec, match):
    with pytest.raises(ConfigError, match=match):
        load_space(spec)


def test_unknown_config_key_fails_naming_it(toy):
    space = load_space({"training.learning_rat": {"float": [1e-3, 1e-2]}})
    with pytest.raises(ConfigError, match="search space key 'training.learning_rat'"):
        space.validate(toy / "config.yaml")


# --- study bookkeeping ---------------------------------------------------------------------


def test_a_grid_trial_killed_before_it_drew_is_requeued_with_its_grid_point(tmp_path):
    # the copy of a killed trial was queued with trial.params only: a grid trial killed before it drew its
    # values came back with no fixed values, drew a random point, and the grid ended with one point missing
    space = load_space({"x": [1, 2, 3]})
    study = open_study("grid", make_storage(storage_url(tmp_path)), "minimize", "grid", 0)
    fill_queue(study, None, space, "grid", log=quiet)
    storage, study_id = study_module._storage_and_id(study)
    trial_id = study_module._claim_waiting_trial(study)  # a worker claims it, then dies before suggesting
    number = storage.get_trial_number_from_id(trial_id)
    storage.set_trial_state_values(trial_id, state=STATE.FAIL)
    killed = study.trials[number]
    assert killed.params == {}
    study_module._requeue_stale_trial(study, killed)
    run_worker(study, lambda trial: float(space.suggest(trial)["x"]), log=quiet)
    complete = [t for t in study.trials if t.state == STATE.COMPLETE]
    assert sorted(t.params["x"] for t in complete) == [1, 2, 3]
    retry = [t for t in complete if t.user_attrs.get("retry_of") == number]
    assert len(retry) == 1 and retry[0].params == killed.system_attrs["fixed_params"]


def test_a_killed_study_resumes_without_rerunning_or_losing_trials(tmp_path):
    space = load_space({"x": {"float": [-5.0, 5.0]}})
    dead_pid = _ended_pid()
    calls = []

    def killed_at_2(trial):
        calls.append(trial.number)
        x = space.suggest(trial)["x"]
        if trial.number == 2:  # the process dies mid-trial: the trial stays RUNNING, owned by a dead pid
            storage, _ = study_module._storage_and_id(trial.study)
            worker = {**study_module._this_process(), "pid": dead_pid}
            storage.set_trial_system_attr(trial._trial_id, "hepnn_worker", worker)
            raise SystemExit("killed")
        return x**2

    with pytest.raises(SystemExit):
        tune(None, space, tmp_path, n_trials=4, objective=killed_at_2, sampler="random", plots=False, log=quiet)
    assert calls == [0, 1, 2]
    before = {t.number: t.params for t in optuna.load_study(study_name="hepnn-tune", storage=storage_url(tmp_path)).trials
              if t.state == STATE.COMPLETE}
    calls.clear()
    study = tune(None, space, tmp_path, n_trials=4, objective=killed_at_2, sampler="random", plots=False, log=quiet)
    trials = {t.number: t for t in study.trials}
    assert trials[2].state == STATE.FAIL and sorted(before) == [0, 1]
    assert all(trials[n].params == before[n] for n in before)  # finished trials kept, not run again
    retry = [t for t in trials.values() if t.user_attrs.get("retry_of") == 2]
    assert len(retry) == 1 and retry[0].params == trials[2].params
    assert sorted(calls) == sorted([3, retry[0].number])
    assert sum(t.state == STATE.COMPLETE for t in trials.values()) == 4
    rows = _rows(tmp_path)
    assert [(int(r["number"]), r["state"]) for r in rows] == [(t.number, t.state.name) for t in study.trials]


def _ended_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])  # noqa: S603
    proc.wait()
    return proc.pid


def test_trials_csv_gives_no_objective_value_to_pruned_or_failed_trials(tmp_path):
    # Optuna stores a pruned trial's last report as its value: trials.csv listed the val_auc of an epoch
    # among the rejections of a rejection@0.5 study
    class PruneOdd(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number % 2 == 1

    study = open_study("pruned", None, "maximize", "random", 0, pruner=PruneOdd())
    fill_queue(study, 4, log=quiet)

    def objective(trial):
        trial.report(0.75, 1)
        if trial.should_prune():
            raise optuna.TrialPruned
        if trial.number == 2:
            raise RuntimeError("broken")
        return 40.0 + trial.number

    run_worker(study, objective, log=quiet)
    study_module.write_results(study, tmp_path, plots=False, log=quiet)
    rows = _rows(tmp_path)
    assert [(r["state"], r["value"]) for r in rows] == [("COMPLETE", "40.0"), ("PRUNED", ""), ("FAIL", ""),
                                                         ("PRUNED", "")]
    assert study.trials[1].intermediate_values == {1: 0.75}


def test_worker_processes_draw_the_trials_of_a_one_worker_study(monkeypatch):
    # each worker process used seed + its index: which trial a worker happened to claim changed its values,
    # so a random search with --workers 2 gave other (and run to run different) trials than with one worker
    import hepnn.tune.cli as tune_cli

    seeds = []
    monkeypatch.setattr(tune_cli, "tune", lambda *args, seed, **kwargs: seeds.append(seed))
    for worker in (1, 2):
        args = build_parser().parse_args(["tune", "c.yaml", "--space", "s.yaml", "--out", "o", "--seed", "5",
                                          "--sampler", "random", "--join", "--worker-seed", str(worker)])
        tune_cli._cmd_tune(args)
    space = load_space({"x": {"float": [-5.0, 5.0]}, "c": ["a", "b", "c"]})

    def objective(trial):
        return space.suggest(trial)["x"] ** 2

    one = open_study("one", None, "minimize", "random", 5)
    fill_queue(one, 6, log=quiet)
    run_worker(one, objective, log=quiet)
    storage = optuna.storages.InMemoryStorage()  # shared by the two "workers"
    workers = [open_study("two", storage, "minimize", "random", seed) for seed in seeds]
    fill_queue(workers[0], 6, log=quiet)
    for turn in (0, 1, 1, 0, 1, 0):  # the workers take turns in some order
        assert run_worker(workers[turn], objective, log=quiet, max_trials=1) == 1
    assert _params(workers[0]) == _params(one)


def test_importance_plot_shows_optunas_importances():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    study = open_study("importances", None, "minimize", "random", 0)
    fill_queue(study, 12, log=quiet)
    run_worker(study, lambda t: t.suggest_float("a", -1, 1) ** 2 + 0.1 * t.suggest_float("b", -1, 1), log=quiet)
    expected = optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    ax = plots_module.plot_importances(study)
    drawn = {label.get_text(): bar.get_width() for label, bar in zip(ax.get_yticklabels(), ax.patches)}
    assert drawn == pytest.approx(dict(expected)) and list(drawn) == ["b", "a"]  # the largest on top
    plt.close("all")


def test_a_study_resumed_with_another_objective_is_refused(toy):
    # auc and rejection@0.5 are both maximised: the values were ranked together, best_config.yaml chosen
    # between an AUC and a rejection
    out = toy / "tune"
    tune(toy / "config.yaml", SPACE, out, objective="auc", join=True, plots=False, log=quiet)
    assert optuna.load_study(study_name="audit-tune", storage=storage_url(out)).user_attrs["objective"] == "auc"
    for other in ("rejection@0.5", "rejection@0.3"):
        with pytest.raises(ConfigError, match=f"started with --objective auc, not {other}"):
            tune(toy / "config.yaml", SPACE, out, objective=other, join=True, plots=False, log=quiet)
    tune(toy / "config.yaml", SPACE, out, objective="auc", join=True, plots=False, log=quiet)  # the same: fine
    tune(toy / "config.yaml", SPACE, toy / "rej", objective="rejection@0.50", join=True, plots=False, log=quiet)
    tune(toy / "config.yaml", SPACE, toy / "rej", objective="rejection@0.5", join=True, plots=False, log=quiet)


def test_worker_processes_join_the_named_study(toy, monkeypatch):
    # --study-name was not handed to the worker processes: they joined (created) the study named after the
    # config, found no trials, and every queued trial of the named study stayed WAITING
    seen = {}

    def fake_spawn(n_workers, argv, log=print, env=None, storage=None):
        seen["argv"] = argv
        return [0] * n_workers

    monkeypatch.setattr(study_module, "spawn_workers", fake_spawn)
    study = tune(toy / "config.yaml", SPACE, toy / "tune", n_trials=2, objective="auc", workers=2,
                 study_name="my/study", plots=False, log=quiet)
    args = build_parser().parse_args(seen["argv"])
    assert args.join and args.study_name == study.study_name == "my-study"
    assert args.objective == "auc" and args.out == str(toy / "tune")


def test_best_val_loss_skips_nan_epochs_in_any_order(tmp_path):
    objective = objective_module.TrainingObjective(
        {"model": {"name": "dense", "units": [8]}}, load_space(SPACE), tmp_path, "val_loss")
    histories = ([{"val_loss": math.nan}, {"val_loss": 0.5}, {"val_loss": 0.7}],
                 [{"val_loss": 0.7}, {"val_loss": math.nan}, {"val_loss": 0.5}])
    assert [objective.evaluate(tmp_path, h, {}) for h in histories] == [0.5, 0.5]
    assert math.isnan(objective.evaluate(tmp_path, [{"val_loss": math.nan}], {}))


@pytest.mark.slow
def test_trials_csv_matches_run_dirs_best_is_the_maximum_and_auc_is_on_the_val_split(toy, monkeypatch):
    from sklearn.metrics import roc_auc_score

    from hepnn.io import load
    from hepnn.training.evaluate import predict_split

    drawn = {}
    original = plots_module.plot_optimization_history

    def keep(study, *args, **kwargs):
        drawn["ax"] = original(study, *args, **kwargs)
        return drawn["ax"]

    monkeypatch.setattr(plots_module, "plot_optimization_history", keep)
    out = toy / "tune"
    study = tune(toy / "config.yaml", SPACE, out, n_trials=3, objective="auc", sampler="random", prune=False,
                 overrides=["training.epochs=2"], log=quiet)
    rows = _rows(out)
    assert [r["number"] for r in rows] == ["0", "1", "2"] and {r["state"] for r in rows} == {"COMPLETE"}
    data = load(load_config(toy / "config.yaml"))
    values = []
    for row, trial in zip(rows, study.trials):
        record = _tune_json(row)
        value = float(row["value"])
        values.append(value)
        assert record["state"] == "complete" and record["value"] == value and record["trial"] == int(row["number"])
        params = json.loads(row["params"])
        assert record["values"] == {"model.units": json.loads(params["model.units"]),
                                    "training.optimizer.learning_rate": params["training.optimizer.learning_rate"]}
        run_config = load_config(f"{row['run_dir']}/config.yaml")
        assert run_config.training.optimizer.learning_rate == params["training.optimizer.learning_rate"]
        # brute force: the AUC of the saved model on the validation jets (not the test jets)
        val = predict_split(row["run_dir"], "val", data=data)
        test = predict_split(row["run_dir"], "test", data=data)
        expected = roc_auc_score(np.asarray(val["label"]), np.asarray(val["outputs"]).reshape(-1))
        assert value == pytest.approx(expected, abs=2e-6)
        assert value != pytest.approx(roc_auc_score(np.asarray(test["label"]), np.asarray(test["outputs"]).reshape(-1)),
                                      abs=1e-6)
        # the pruner saw each epoch's val_auc (1-based epochs), the documented metric
        with open(f"{row['run_dir']}/history.csv") as handle:
            history = [float(h["val_auc"]) for h in csv.DictReader(handle)]
        assert trial.intermediate_values == pytest.approx(dict(enumerate(history, start=1)), rel=1e-6)
    best = int(np.argmax(values))
    assert study.best_trial.number == best
    best_params = json.loads(rows[best]["params"])
    config = load_config(out / "best_config.yaml")
    assert list(config.model.params["units"]) == json.loads(best_params["model.units"])
    assert config.training.optimizer.learning_rate == best_params["training.optimizer.learning_rate"]
    # the history plot shows the numbers of trials.csv, labelled with the objective
    ax = drawn["ax"]
    points, running_best = ax.get_lines()
    np.testing.assert_array_equal(points.get_xdata(), [0, 1, 2])
    np.testing.assert_array_equal(points.get_ydata(), values)
    np.testing.assert_array_equal(running_best.get_ydata(), np.maximum.accumulate(values))
    assert ax.get_ylabel() == "auc"


@pytest.mark.slow
def test_failed_trials_are_recorded_in_their_run_dirs_and_never_best(toy, monkeypatch):
    # a NaN value was written to tune.json as "complete" while trials.csv said FAIL; an exception in the
    # evaluation left no tune.json at all
    original = objective_module.TrainingObjective.evaluate

    def evaluate(self, run_dir, history, data):
        if run_dir.name == "1":
            return math.nan
        if run_dir.name == "2":
            raise RuntimeError("evaluation broke")
        return original(self, run_dir, history, data)

    monkeypatch.setattr(objective_module.TrainingObjective, "evaluate", evaluate)
    out = toy / "tune"
    study = tune(toy / "config.yaml", SPACE, out, n_trials=4, objective="val_loss", sampler="random", prune=False,
                 log=quiet)
    rows = _rows(out)
    assert [r["state"] for r in rows] == ["COMPLETE", "FAIL", "FAIL", "COMPLETE"]
    records = [_tune_json(r) for r in rows]
    assert [r["state"] for r in records] == ["complete", "fail", "fail", "complete"]
    assert "is NaN" in records[1]["error"] and records[2]["error"] == "RuntimeError: evaluation broke"
    for row, record in zip(rows, records):
        if record["state"] == "complete":  # val_loss: the lowest validation loss of the run's history
            with open(f"{row['run_dir']}/history.csv") as handle:
                losses = [float(h["val_loss"]) for h in csv.DictReader(handle)]
            assert float(row["value"]) == record["value"] == pytest.approx(min(losses), rel=1e-9)
    complete = {int(r["number"]): float(r["value"]) for r in rows if r["state"] == "COMPLETE"}
    assert study.best_trial.number == min(complete, key=complete.get)  # minimised


def test_rejection_objective_with_no_background_passing_is_the_background_count_not_infinity(toy, monkeypatch):
    # a perfectly separated validation split (common on small ones) gave math.inf: that trial beat every other
    # and trials.csv / tune.json held inf / Infinity; the lower bound (what one passing jet gives) is finite
    config = load_config(toy / "config.yaml")
    labels = np.array([1] * 6 + [0] * 10)
    outputs = np.where(labels == 1, 0.9, 0.1).astype(np.float32)[:, None]
    pred = {"label": labels, "outputs": outputs, "task": "binary", "classes": ["qcd", "top"], "config": config,
            "weight": np.ones(len(labels))}
    monkeypatch.setattr(objective_module, "predict_split", lambda *args, **kwargs: pred)
    objective = objective_module.TrainingObjective(toy / "config.yaml", load_space(SPACE), toy / "tune",
                                                   objective="rejection@0.5")
    value = objective._split_value(toy / "run", {})
    assert value == 10.0 and math.isfinite(value)
    outputs[np.flatnonzero(labels == 0)[:2]] = 0.95  # two background jets pass: the measured rejection, 10 / 2
    assert objective._split_value(toy / "run", {}) == pytest.approx(5.0)


def test_physics_objective_on_a_multiclass_config_is_refused_before_training(toy, monkeypatch):
    # the first trial of a 3-class config trained in full before --objective auc failed
    import shutil

    shutil.copy(toy / "qcd.root", toy / "w.root")
    text = (toy / "config.yaml").read_text().replace(
        "    - {path: qcd.root, tree: jets, label: 0}\n",
        "    - {path: qcd.root, tree: jets, label: 0}\n    - {path: w.root, tree: jets, label: 2}\n")
    (toy / "config.yaml").write_text(text)
    trained = []
    monkeypatch.setattr("hepnn.training.trainer.Trainer.fit", lambda self, *a, **k: trained.append(1))
    objective = objective_module.TrainingObjective(toy / "config.yaml", load_space(SPACE), toy / "tune",
                                                   objective="auc", log=quiet)

    class Trial:  # what __call__ uses of an Optuna trial
        number, user_attrs = 0, {}

        def suggest_categorical(self, name, choices):
            return choices[0]

        def suggest_float(self, name, low, high, log=False, step=None):
            return low

        def set_user_attr(self, key, value):
            self.user_attrs[key] = value

    with pytest.raises(ConfigError, match=r"--objective auc: needs a binary tagger .*multiclass model \(3 classes"):
        objective(Trial())
    assert trained == []
    val_loss = objective_module.TrainingObjective(toy / "config.yaml", load_space(SPACE), toy / "tune2",
                                                  objective="val_loss", log=quiet)
    val_loss._check_task(load_config(toy / "config.yaml"), val_loss._data(load_config(toy / "config.yaml")))  # fine
