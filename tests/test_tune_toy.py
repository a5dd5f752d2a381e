"""Toy objectives and a worker entry point for the hepnn.tune tests (no training).

Run as a script, it is one tuning worker process::

    python tests/test_tune_toy.py STORAGE_URL STUDY_NAME OBJECTIVE SEED HEARTBEAT
"""

from __future__ import annotations

import os
import sys
import time

import pytest


def quadratic(trial) -> float:
    """Minimum 0 at x = 1, y = -2."""
    x = trial.suggest_float("x", -5.0, 5.0)
    y = trial.suggest_float("y", -5.0, 5.0)
    return (x - 1.0) ** 2 + (y + 2.0) ** 2


def slow_quadratic(trial) -> float:
    """``quadratic`` that takes a while and records which process ran it."""
    trial.set_user_attr("pid", os.getpid())
    value = quadratic(trial)
    time.sleep(float(os.environ.get("HEPNN_TOY_SLEEP", "0.3")))
    return value


OBJECTIVES = {"quadratic": quadratic, "slow_quadratic": slow_quadratic}


def worker(url: str, name: str, objective: str, seed: int, heartbeat: int) -> int:
    from hepnn.tune.study import make_storage, open_study, run_worker

    study = open_study(name, make_storage(url, heartbeat_interval=heartbeat), "minimize", "random", seed)
    return run_worker(study, OBJECTIVES[objective], log=lambda line: print(line, flush=True))


def test_quadratic_minimum():
    optuna = pytest.importorskip("optuna")
    assert quadratic(optuna.trial.FixedTrial({"x": 1.0, "y": -2.0})) == 0.0


if __name__ == "__main__":
    url, name, objective, seed, heartbeat = sys.argv[1:6]
    worker(url, name, objective, int(seed), int(heartbeat))
