"""hepnn.tune.study on toy objectives: grid coverage, TPE vs random, shared storage, killed workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from hepnn.tune.space import load_space  # noqa: E402
from hepnn.tune.study import fill_queue, make_storage, open_study, run_worker, storage_url, tune  # noqa: E402

HERE = Path(__file__).parent
TOY = HERE / "test_tune_toy.py"
STATE = optuna.trial.TrialState


def quiet(_):
    pass


def _spawn(url, name, objective, seed, heartbeat=30, env=None):
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, str(TOY), url, name, objective, str(seed), str(heartbeat)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_grid_search_visits_every_point_exactly_once(tmp_path):
    space = load_space({"x": [1, 2, 3], "y": {"int": [0, 8], "step": 4}, "z": [[8], [16, 16]]})
    seen = []

    def objective(trial):
        values = space.suggest(trial)
        seen.append((values["x"], values["y"], tuple(values["z"])))
        return float(values["x"] + values["y"])

    study = tune(None, space, tmp_path, objective=objective, sampler="grid", plots=False, log=quiet)
    expected = {(x, y, z) for x in (1, 2, 3) for y in (0, 4, 8) for z in ((8,), (16, 16))}
    assert len(seen) == 18 and set(seen) == expected
    assert [t.state for t in study.trials] == [STATE.COMPLETE] * 18
    # a rerun of the finished study queues nothing and runs nothing
    again = tune(None, space, tmp_path, objective=objective, sampler="grid", plots=False, log=quiet)
    assert len(seen) == 18 and len(again.trials) == 18
    rows = (tmp_path / "trials.csv").read_text().splitlines()
    assert rows[0].startswith("number,state,value,params,run_dir") and len(rows) == 19


def test_grid_search_caps_trials_and_rejects_continuous_ranges(tmp_path):
    from hepnn.exceptions import ConfigError

    space = load_space({"x": [1, 2]})
    study = tune(None, space, tmp_path, n_trials=5, objective=lambda t: space.suggest(t)["x"], sampler="grid",
                 plots=False, log=quiet)
    assert sorted(t.params["x"] for t in study.trials) == [1, 2]
    with pytest.raises(ConfigError, match="lr: a grid search needs discrete"):
        tune(None, load_space({"lr": {"float": [0.1, 1.0]}}), tmp_path / "b", objective=quadratic_xy,
             sampler="grid", log=quiet)


def quadratic_xy(trial):
    x = trial.suggest_float("x", -5.0, 5.0)
    y = trial.suggest_float("y", -5.0, 5.0)
    return (x - 1.0) ** 2 + (y + 2.0) ** 2


def _best_of(sampler: str, seed: int, n: int = 30) -> float:
    study = open_study(f"{sampler}-{seed}", None, "minimize", sampler, seed)
    fill_queue(study, n, sampler=sampler, log=quiet)
    assert run_worker(study, quadratic_xy, log=quiet) == n
    return study.best_value


def test_tpe_beats_random_on_average():
    seeds = range(5)
    tpe = np.mean([_best_of("tpe", s) for s in seeds])
    random = np.mean([_best_of("random", s) for s in seeds])
    assert tpe < random, (tpe, random)


def test_two_worker_processes_run_exactly_n_trials(tmp_path):
    n = 16
    url = storage_url(tmp_path)
    study = open_study("shared", make_storage(url), "minimize", "random", 0)
    assert fill_queue(study, n, log=quiet) == n
    assert fill_queue(study, n, log=quiet) == 0  # a second coordinator adds nothing
    procs = [_spawn(url, "shared", "slow_quadratic", seed) for seed in (1, 2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n\n".join(outputs)  # a str: shown whole
    trials = optuna.load_study(study_name="shared", storage=url).trials
    assert len(trials) == n
    assert [t.state for t in trials] == [STATE.COMPLETE] * n
    assert sorted(t.number for t in trials) == list(range(n))
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == n
    assert len({t.user_attrs["pid"] for t in trials}) == 2, "both workers should have run trials"


def test_fast_workers_never_claim_the_same_trial(tmp_path):
    """Four workers with an instant objective race for 60 queued trials: each is run exactly once.
    (SQLite's driver used to read WAITING outside the write transaction, and two workers then both
    claimed a trial: 3-8 trials twice per run, and a worker died telling a trial already told.)"""
    n = 60
    url = storage_url(tmp_path)
    study = open_study("race", make_storage(url), "minimize", "random", 0)
    fill_queue(study, n, log=quiet)
    procs = [_spawn(url, "race", "slow_quadratic", seed, env={"HEPNN_TOY_SLEEP": "0"}) for seed in range(4)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, "\n\n".join(outputs)
    told = sorted(int(line.split()[1].rstrip(":")) for out in outputs for line in out.splitlines()
                  if line.startswith("trial "))
    assert told == list(range(n)), "\n\n".join(outputs)
    trials = optuna.load_study(study_name="race", storage=url).trials
    assert [t.state for t in trials] == [STATE.COMPLETE] * n


def test_killed_worker_trial_is_failed_and_the_study_continues(tmp_path):
    n = 3
    url = storage_url(tmp_path)
    storage = make_storage(url, heartbeat_interval=1, grace_period=2)
    study = open_study("killed", storage, "minimize", "random", 0)
    fill_queue(study, n, log=quiet)
    proc = _spawn(url, "killed", "slow_quadratic", 1, heartbeat=1, env={"HEPNN_TOY_SLEEP": "120"})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            running = study.get_trials(deepcopy=False, states=(STATE.RUNNING,))
            if running:
                break
            time.sleep(0.2)
        assert running, "the worker never started a trial"
        killed = running[0].number
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    time.sleep(3.0)  # past the grace period: the killed trial's heartbeat is stale
    study = open_study("killed", make_storage(url, heartbeat_interval=1, grace_period=2), "minimize", "random", 5)
    assert run_worker(study, quadratic_xy, log=quiet) == n
    trials = {t.number: t for t in study.trials}
    assert trials[killed].state == STATE.FAIL
    complete = [t for t in trials.values() if t.state == STATE.COMPLETE]
    assert len(complete) == n and len(trials) == n + 1
    retry = [t for t in complete if t.user_attrs.get("retry_of") == killed]
    assert len(retry) == 1 and retry[0].params == trials[killed].params


def test_failing_trial_is_marked_failed_and_the_worker_goes_on(tmp_path):
    calls = []

    def objective(trial):
        calls.append(trial.number)
        if trial.number == 1:
            raise RuntimeError("boom")
        return quadratic_xy(trial)

    study = tune(None, {"x": {"float": [-5, 5]}, "y": {"float": [-5, 5]}}, tmp_path, n_trials=3,
                 objective=objective, sampler="random", plots=False, log=quiet)
    assert calls == [0, 1, 2]
    assert [t.state for t in study.trials] == [STATE.COMPLETE, STATE.FAIL, STATE.COMPLETE]


def test_a_locked_database_is_waited_out_not_fatal(tmp_path, monkeypatch):
    """SQLite answers "database is locked" at once when two workers start writing together; the worker
    tries again instead of dying with the trial it holds (seen with two workers on a loaded machine)."""
    import sqlalchemy

    import hepnn.tune.study as study_module

    url = storage_url(tmp_path)
    study = open_study("locked", make_storage(url), "minimize", "random", 0)
    fill_queue(study, 3, log=quiet)
    storage, _ = study_module._storage_and_id(study)  # the storage the worker claims and beats through
    failures = {"record_heartbeat": 2, "set_trial_state_values": 2}
    for name in failures:

        def flaky(*args, _name=name, _original=getattr(storage, name), **kwargs):
            if failures[_name]:
                failures[_name] -= 1
                raise sqlalchemy.exc.OperationalError("UPDATE trials", {}, Exception("database is locked"))
            return _original(*args, **kwargs)

        monkeypatch.setattr(storage, name, flaky)
    monkeypatch.setattr(study_module, "_DB_ATTEMPTS", 5)
    assert run_worker(study, quadratic_xy, log=quiet) == 3
    assert failures == {"record_heartbeat": 0, "set_trial_state_values": 0}
    assert [t.state for t in optuna.load_study(study_name="locked", storage=url).trials] == [STATE.COMPLETE] * 3
    with pytest.raises(ValueError, match="not a lock"):
        study_module._retrying(lambda: (_ for _ in ()).throw(ValueError("not a lock")))
