"""hepnn.tune: the pruner's warm-up in hepnn's 1-based epochs, integer ranges, categorical choices that
Python considers equal, and float ranges on integer config keys (all checked before any trial runs)."""

from __future__ import annotations

import math

import pytest

optuna = pytest.importorskip("optuna")

from hepnn.exceptions import ConfigError  # noqa: E402
from hepnn.tune.space import Dimension, SearchSpace, load_space  # noqa: E402
from hepnn.tune.study import FIRST_PRUNABLE_EPOCH, fill_queue, make_pruner, open_study, run_worker  # noqa: E402

STATE = optuna.trial.TrialState
BASE = {"model": {"name": "dense", "units": [8]}, "training": {"epochs": 1}}


def quiet(_):
    pass


# --- 1. a trial is never pruned on its first epoch ---------------------------------------------


def _study_with_finished_trials(curves):
    """An in-memory study (hepnn's default pruner) holding complete trials with these per-epoch values
    (epochs numbered from 1, as hepnn's trainer reports them)."""
    study = open_study("pruning", None, "minimize", "random", 0)
    for curve in curves:
        study.add_trial(optuna.trial.create_trial(
            state=STATE.COMPLETE, value=min(curve), intermediate_values=dict(enumerate(curve, start=1))))
    return study


def test_a_trial_far_worse_than_the_median_is_not_pruned_on_epoch_1_but_is_on_epoch_2():
    study = _study_with_finished_trials([[1.0, 0.9, 0.8], [1.1, 1.0, 0.9], [0.9, 0.8, 0.7], [1.0, 0.95, 0.9]])
    trial = study.ask()
    trial.report(100.0, 1)  # epoch 1: 100x the median; Optuna's n_warmup_steps=1 allowed pruning here
    assert not trial.should_prune()
    trial.report(100.0, 2)
    assert trial.should_prune()
    good = study.ask()  # a trial better than the median is kept at epoch 2
    good.report(0.5, 1)
    good.report(0.5, 2)
    assert not good.should_prune()


def test_the_default_pruner_is_the_documented_one():
    pruner = make_pruner()
    assert FIRST_PRUNABLE_EPOCH == 2
    assert isinstance(pruner, optuna.pruners.MedianPruner)
    assert pruner._n_warmup_steps == FIRST_PRUNABLE_EPOCH and pruner._n_startup_trials == 3
    study = open_study("default-pruner", None, "minimize", "random", 0)
    assert study.pruner._n_warmup_steps == FIRST_PRUNABLE_EPOCH


def test_pruning_waits_for_three_finished_trials():
    study = _study_with_finished_trials([[1.0, 0.9], [1.1, 1.0]])
    trial = study.ask()
    trial.report(100.0, 1)
    trial.report(100.0, 2)
    assert not trial.should_prune()


# --- 2. integer ranges ----------------------------------------------------------------------------


def _draw(space, n, sampler="random", seed=1):
    """(values each trial trained with, each trial's stored parameters decoded to config values)."""
    study = open_study(f"draws-{sampler}", None, "minimize", sampler, seed)
    fill_queue(study, n, space, sampler, log=quiet)
    drawn = []
    run_worker(study, lambda trial: (drawn.append(space.suggest(trial)), 0.0)[1], log=quiet)
    stored = [space.decode(t.params) for t in study.trials]
    assert [t.state for t in study.trials] == [STATE.COMPLETE] * len(drawn)
    return drawn, stored


def _same(a, b):
    """Equal values of the same types (True is not 1, 1.0 is not 1)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_int_ranges_draw_integers_within_the_bounds(sampler):
    space = load_space({"units": {"int": [3, 700], "log": True}, "n": {"int": [2, 9]},
                        "k": {"int": [4, 16], "step": 4}, "m": {"int": [1, 10], "log": True, "step": 1}})
    drawn, stored = _draw(space, 60, sampler)
    for key, low, high in (("units", 3, 700), ("n", 2, 9), ("k", 4, 16), ("m", 1, 10)):
        values = [d[key] for d in drawn]
        assert all(type(v) is int and low <= v <= high for v in values), (key, values)
    assert {d["k"] for d in drawn} <= {4, 8, 12, 16}
    assert all(_same(d, s) for d, s in zip(drawn, stored))


def test_an_int_step_range_reaches_its_high_end_in_the_grid():
    space = load_space({"k": {"int": [4, 16], "step": 4}, "m": {"int": [1, 5], "log": True}})
    drawn, stored = _draw(space, None, "grid")
    assert sorted((d["k"], d["m"]) for d in drawn) == [(k, m) for k in (4, 8, 12, 16) for m in range(1, 6)]
    assert all(_same(d, s) for d, s in zip(drawn, stored))


@pytest.mark.parametrize(("spec", "match"), [
    ({"model.units": {"int": [0, 64], "log": True}}, r"model.units: .*log.* low >= 1.* received 0"),
    ({"model.units": {"int": [-4, 64], "log": True}}, r"model.units: .*low >= 1.* received -4"),
    ({"model.units": {"int": [64, 8]}}, "model.units: low 64 is above high 8"),
    ({"model.units": {"int": [1, 64], "log": True, "step": 2}}, "model.units: log and step cannot be combined"),
    ({"model.units": {"int": [8, 64], "step": 1.5}}, r"model.units.step: expected a positive int, received 1.5"),
    # Optuna silently cut such a range to [4, 28]: the documented high end was never drawn
    ({"model.units": {"int": [4, 30], "step": 8}}, r"model.units: .*\[4, 30\] with step 8 .*28.*36"),
    ({"training.dropout": {"float": [0.0, 0.5], "step": 0.2}}, r"training.dropout: .*\[0.0, 0.5\] with step 0.2 .*0.4.*0.6"),
])
def test_invalid_int_ranges_are_refused_naming_the_key_and_value(spec, match):
    with pytest.raises(ConfigError, match=match):
        load_space(spec)


@pytest.mark.parametrize(("dimension", "match"), [
    # built in Python, these were passed through int(): [1.5, 20.7] drew 1 (below the range), a log range
    # from 0.5 became [0, 20] and failed every trial in Optuna, and step 2.5 became 2
    (dict(key="n", kind="int", low=1.5, high=20.7, log=True), r"n: expected int: \[low, high\] .*1.5"),
    (dict(key="n", kind="int", low=0.5, high=20, log=True), r"n: expected int: \[low, high\] .*0.5"),
    (dict(key="n", kind="int", low=0, high=20, log=True), r"n: .*low >= 1.* received 0"),
    (dict(key="n", kind="int", low=1, high=21, step=2.5), r"n.step: expected a positive int, received 2.5"),
    (dict(key="n", kind="int", low=True, high=4), r"n: expected int: \[low, high\]"),
    (dict(key="x", kind="float", low=1.0, high=math.inf), "x: expected finite bounds"),
    (dict(key="x", kind="float", low=1.0, high=2.0, step=0.5, log=True), "x: log and step cannot be combined"),
    (dict(key="x", kind="integer", low=1, high=2), "x: unknown kind 'integer'; did you mean 'int'"),
    (dict(key="c", kind="categorical", choices=()), "c: empty list of choices"),
])
def test_dimensions_built_in_python_are_checked_like_space_files(dimension, match):
    with pytest.raises(ConfigError, match=match):
        Dimension(**dimension)


def test_an_invalid_space_passed_to_tune_fails_before_any_trial(tmp_path):
    from hepnn.tune.study import tune

    calls = []
    with pytest.raises(ConfigError, match="expected int"):
        space = SearchSpace((Dimension("n", "int", 0.5, 20, log=True),))
        tune(None, space, tmp_path / "tune", n_trials=2, objective=lambda t: calls.append(t) or 0.0, log=quiet)
    assert calls == [] and not (tmp_path / "tune").exists()


# --- 3. categorical choices that Python considers equal -----------------------------------------


@pytest.mark.parametrize(("choices", "shown"), [
    ([1, True], "1 and true"),
    ([0, False], "0 and false"),
    ([1, 1.0], "1 and 1.0"),
    (["a", True, 2, 1], "true and 1"),
    ([[1, 2], [True, 2]], "[1, 2] and [true, 2]"),
    ([{"a": 0}, {"a": False}], '{"a": 0} and {"a": false}'),
])
def test_choices_equal_in_python_are_refused_naming_the_key_and_values(choices, shown):
    with pytest.raises(ConfigError, match="model.flag: choices ") as info:
        load_space({"model.flag": choices})
    assert shown in str(info.value) and "equal" in str(info.value)


def test_distinct_choices_of_mixed_types_are_stored_as_trained():
    # before: [1, true] drew True for a trial but stored (and wrote to trials.csv / best_config) 1
    space = load_space({"a": [1, "1", 2.5, None, "true"], "b": [[1], [2, 2], {"x": 1}, "z"], "c": [True, False]})
    drawn, stored = _draw(space, 40)
    assert all(_same(d, s) for d, s in zip(drawn, stored))
    assert {repr(d["a"]) for d in drawn} == {"1", "'1'", "2.5", "None", "'true'"}
    assert {repr(d["c"]) for d in drawn} == {"True", "False"}


# --- 4. a float range on an integer config key ------------------------------------------------


def test_a_float_range_on_an_int_key_fails_before_any_trial():
    # the edges 1 and 3 load (an integral float is accepted for an int key), so the space passed
    # the check and the first trial failed on training.epochs=1.76...
    space = load_space({"training.epochs": {"float": [1, 3]}})
    with pytest.raises(ConfigError, match=r"search space key 'training.epochs' \(value 1\.7"):
        space.validate(BASE)
    load_space({"training.epochs": {"int": [1, 3]}}).validate(BASE)
    load_space({"training.epochs": {"float": [1, 3], "step": 1}}).validate(BASE)  # draws 1.0, 2.0, 3.0
    load_space({"training.optimizer.learning_rate": {"float": [1e-4, 1e-2], "log": True}}).validate(BASE)


def test_every_value_checked_against_the_config_is_one_the_sampler_can_draw():
    assert Dimension("x", "float", 1, 3).edges() == [1.0, 3.0, pytest.approx(1.763932)]
    assert all(type(v) is float for v in Dimension("x", "float", 1, 3).edges())
    assert Dimension("x", "float", 0, 1, step=0.25).edges() == [0.0, 1.0, 0.25]
    assert Dimension("x", "float", 1, 3, step=1).edges() == [1.0, 3.0]
    assert Dimension("n", "int", 1, 3).edges() == [1, 3]


# --- 5. keys whose values the trial would not train with ---------------------------------------


@pytest.mark.parametrize("spec", [
    {"training.optimizer.learning_rate": [0.001, 0.002], "training.optimizer": [{"name": "adam", "learning_rate": 0.1}]},
    {"training.optimizer": [{"name": "adam"}, {"name": "sgd"}], "training.optimizer.learning_rate": [0.001, 0.002]},
])
def test_a_key_inside_another_searched_key_is_refused(spec):
    # before: the later override replaced the other's value, and the study recorded
    # training.optimizer.learning_rate=0.002 for a trial that trained with 0.1
    with pytest.raises(ConfigError, match=r"space: training.optimizer.learning_rate is inside training.optimizer"):
        load_space(spec)
    with pytest.raises(ConfigError, match="searched twice"):
        SearchSpace((Dimension("a.b", "int", 1, 2), Dimension("a.b", "int", 1, 3)))
    load_space({"training.optimizer.learning_rate": [0.1], "training.optimizer_x": [1]})  # a prefix, not a key inside


@pytest.mark.parametrize("override", ["training.optimizer.learning_rate=0.1", "model.units=[4]"])
def test_a_set_override_of_a_searched_key_is_refused_before_any_trial(override):
    space = load_space({"training.optimizer.learning_rate": {"float": [1e-3, 1e-2]}, "model": [
        {"name": "dense", "units": [8]}, {"name": "dense", "units": [16]}]})
    with pytest.raises(ConfigError, match=rf"--set {override.replace('[', '.').replace(']', '.')}: the search space varies"):
        space.validate(BASE, [override])
    space.validate(BASE, ["training.epochs=2"])  # other keys stay free
    load_space({"model.units": [[8], [4]]}).validate(BASE, ["model={name: dense, units: [2]}"])  # a parent: kept


class _CurveTrainer:
    """Stands in for hepnn.training.Trainer: "trains" one validation-loss curve per trial, reporting each
    epoch to ``epoch_callback`` as the trainer does (1-based epochs), and stops when it returns True."""

    curves: dict[int, list[float]] = {}

    def __init__(self, config, log=None):
        self.config = config

    def fit(self, run_dir, data=None, epoch_callback=None):
        run_dir.mkdir(parents=True, exist_ok=True)
        self.history_ = []
        for epoch, value in enumerate(self.curves[int(run_dir.name)], start=1):
            row = {"epoch": epoch, "val_loss": value}
            self.history_.append(row)
            if epoch_callback(epoch, row):
                break
        return self


def test_a_bad_trial_of_a_study_is_pruned_after_its_second_epoch_not_its_first(tmp_path, monkeypatch):
    import json
    import sys
    import types

    from hepnn.tune.objective import TrainingObjective

    fake = types.ModuleType("hepnn.training.trainer")
    fake.Trainer = _CurveTrainer
    monkeypatch.setitem(sys.modules, "hepnn.training.trainer", fake)
    monkeypatch.setattr(_CurveTrainer, "curves", {0: [1.0, 0.9, 0.8], 1: [1.1, 1.0, 0.9], 2: [0.9, 0.8, 0.7],
                                                 3: [50.0, 40.0, 30.0], 4: [0.8, 0.7, 0.6]})
    space = load_space({"training.optimizer.learning_rate": {"float": [1e-3, 1e-2]}})
    objective = TrainingObjective(BASE, space, tmp_path, "val_loss", data={"unused": None}, log=quiet)
    study = open_study("curves", None, "minimize", "random", 0)  # hepnn's default pruner
    fill_queue(study, 5, log=quiet)
    run_worker(study, objective, log=quiet)
    states = [t.state for t in study.trials]
    assert states == [STATE.COMPLETE] * 3 + [STATE.PRUNED, STATE.COMPLETE]
    assert study.trials[3].intermediate_values == {1: 50.0, 2: 40.0}  # epoch 1 reported, not pruned on it
    assert json.loads((tmp_path / "trials" / "3" / "tune.json").read_text())["epoch"] == 2
    assert study.trials[4].intermediate_values == {1: 0.8, 2: 0.7, 3: 0.6} and study.trials[4].value == 0.6


def test_a_training_objective_built_directly_checks_the_space_and_overrides(tmp_path):
    # only tune() validated: TrainingObjective (what run_worker and user code build) failed in its first trial
    from hepnn.tune.objective import TrainingObjective

    with pytest.raises(ConfigError, match=r"search space key 'training.epochs'"):
        TrainingObjective(BASE, load_space({"training.epochs": {"float": [1, 3]}}), tmp_path / "t")
    space = load_space({"training.optimizer.learning_rate": {"float": [1e-3, 1e-2]}})
    with pytest.raises(ConfigError, match=r"--set training.optimizer.learning_rate=0.1: the search space varies"):
        TrainingObjective(BASE, space, tmp_path / "t", overrides=["training.optimizer.learning_rate=0.1"])
    assert TrainingObjective(BASE, space, tmp_path / "t", overrides=["training.epochs=2"]).base.training.epochs == 2


def test_numpy_numbers_as_dimension_bounds_are_python_numbers():
    """Bounds computed with numpy (``np.int64(16)``, ``np.float32(0.5)``) were refused as "not int"."""
    import numpy as np

    from hepnn.tune.space import Dimension

    dim = Dimension("model.units", "int", low=np.int64(16), high=np.int32(256), step=np.int64(16))
    assert (dim.low, dim.high, dim.step) == (16, 256, 16)
    assert all(type(v) is int for v in (dim.low, dim.high, dim.step))
    rate = Dimension("training.optimizer.learning_rate", "float", low=np.float32(1e-4), high=np.float64(0.1), log=True)
    assert type(rate.low) is float and type(rate.high) is float and rate.high == 0.1
    with pytest.raises(ConfigError, match="int"):
        Dimension("model.units", "int", low=np.float64(1.5), high=8)
    with pytest.raises(ConfigError):
        Dimension("model.units", "int", low=np.bool_(True), high=8)
