"""Commands killed part-way: ``hepnn tune``, ``hepnn explain`` and k-fold training run again end as
uninterrupted ones, and ``hepnn run --jobs`` leaves no worker behind.

A real kill is ``HEPNN_FAULT_AT=POINT:N`` in a subprocess (``os._exit(137)`` the N-th time
POINT is reached: no cleanup, no ``finally``); an in-process kill raises a ``BaseException``
that nothing catches. The rerun's numbers are compared with an uninterrupted run's.

Checked without finding a difference (no test here): ``hepnn run`` of
two variants killed in the second one's training (in process and with a real kill: metrics,
weights, history and explanations equal), k-fold training killed inside fold 0 and at the last
fold's last epoch (weights of every fold and metrics equal, ``folds.json`` only once every
fold is trained).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import hepnn._faults as faults

optuna = pytest.importorskip("optuna")
STATE = optuna.trial.TrialState


class Killed(BaseException):
    """Raised where a test kills a command in process (a BaseException: nothing catches it)."""


def _write_root(path: Path, n: int, shift: float, seed: int) -> None:
    import uproot

    rng = np.random.default_rng(seed)
    with uproot.recreate(path) as f:
        f["jets"] = {"jet_pt": rng.uniform(500, 700, n), "jet_eta": rng.uniform(-2, 2, n),
                     "jet_mass": rng.normal(100 + 50 * shift, 40, n),
                     "jet_tau21": rng.normal(0.6 - 0.2 * shift, 0.2, n),
                     "jet_tau32": rng.normal(0.7 - 0.1 * shift, 0.2, n)}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A folder with two ROOT files (200 jets each) and ``config.yaml``: a dense tagger, 2 epochs,
    9 steps per epoch, deterministic."""
    folder = tmp_path_factory.mktemp("commands")
    _write_root(folder / "sig.root", 200, 1, 1)
    _write_root(folder / "bkg.root", 200, 0, 2)
    (folder / "config.yaml").write_text(textwrap.dedent(f"""
        name: faults_demo
        data:
          directory: {folder}
          files: [{{path: sig.root, tree: jets, label: 1}}, {{path: bkg.root, tree: jets, label: 0}}]
          inputs: {{hl: {{kind: flat, variables: [jet_mass, jet_tau21, jet_tau32]}}}}
        model: {{name: dense, inputs: [hl], units: [8]}}
        training: {{epochs: 2, batch_size: 32, seed: 4, deterministic: true, checkpoint_every_n_steps: 3,
                    verbose: 0}}
        explain: {{methods: [permutation], n_jets: 40}}
    """))
    (folder / "space.yaml").write_text("training.optimizer.learning_rate: {float: [1.0e-4, 1.0e-2], log: true}\n")
    return folder


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg", **extra}


def _rows(out: Path) -> list[dict]:
    import csv

    with open(out / "trials.csv", newline="") as handle:
        return list(csv.DictReader(handle))


# --- hepnn tune ---------------------------------------------------------------------------------


@pytest.mark.slow  # 17-30 s; tests/test_tune_audit.py resumes a killed study and redraws its values in CI
def test_tune_killed_in_a_trial_and_rerun_at_once_ends_as_an_uninterrupted_study(project, tmp_path):
    """``hepnn tune --trials 3`` killed in trial 1's training and rerun at once: the killed trial is
    failed and re-queued with its values, and the study ends with the trials, values and
    best_config.yaml of an uninterrupted one. (The trial stayed RUNNING until its heartbeat went
    stale, 60 s later: the rerun ran one trial and chose best_config.yaml among two.)"""
    from hepnn.tune.study import tune

    args = dict(n_trials=3, sampler="random", plots=False, log=lambda s: None)
    reference = tmp_path / "reference"
    tune(project / "config.yaml", project / "space.yaml", reference, **args)
    expected = {json.loads(r["params"])["training.optimizer.learning_rate"]: float(r["value"])
                for r in _rows(reference)}
    assert len(expected) == 3

    out = tmp_path / "cut"
    killed = subprocess.run(
        [sys.executable, "-m", "hepnn", "tune", str(project / "config.yaml"), "--space", str(project / "space.yaml"),
         "--out", str(out), "--trials", "3", "--sampler", "random", "--quiet"],
        env=_env(HEPNN_FAULT_AT="step:22"),  # 18 steps in trial 0, then step 4 of trial 1
        capture_output=True, text=True, timeout=300)
    assert killed.returncode == 137, killed.stderr[-3000:]

    study = tune(project / "config.yaml", project / "space.yaml", out, **args)  # at once: the heartbeat is fresh
    states = {t.number: t.state for t in study.trials}
    assert states == {0: STATE.COMPLETE, 1: STATE.FAIL, 2: STATE.COMPLETE, 3: STATE.COMPLETE}
    assert study.trials[3].user_attrs["retry_of"] == 1
    assert study.trials[3].params == study.trials[1].params
    got = {json.loads(r["params"])["training.optimizer.learning_rate"]: float(r["value"])
           for r in _rows(out) if r["state"] == "COMPLETE"}
    assert got == expected  # the same values drawn and the same objective values, to the last bit
    assert (out / "best_config.yaml").read_text() == (reference / "best_config.yaml").read_text()


def test_a_resumed_search_draws_the_values_of_an_uninterrupted_one(tmp_path):
    """A study run again with more trials (as after a kill) draws for trial n what an uninterrupted
    study draws: the sampler is seeded per trial. (Its sequence started again in the new process,
    so trials 2 and 3 repeated the values of trials 0 and 1.)"""
    from hepnn.tune.study import tune

    def objective(trial):
        return trial.suggest_float("x", -5.0, 5.0) ** 2

    space = {"x": {"float": [-5, 5]}}
    for sampler in ("random", "tpe"):
        whole = tune(None, space, tmp_path / f"{sampler}-whole", n_trials=4, objective=objective, sampler=sampler,
                     plots=False, log=lambda s: None)
        tune(None, space, tmp_path / sampler, n_trials=2, objective=objective, sampler=sampler, plots=False,
             log=lambda s: None)
        resumed = tune(None, space, tmp_path / sampler, n_trials=4, objective=objective, sampler=sampler, plots=False,
                       log=lambda s: None)
        values = [t.params["x"] for t in resumed.trials]
        assert values == [t.params["x"] for t in whole.trials], sampler
        assert len(set(values)) == 4, sampler


def test_a_dead_worker_is_recognised_and_a_live_one_is_not():
    """The rerun fails a RUNNING trial only when its worker is a process of this machine that ended."""
    from hepnn.tune import study as study_module

    me = study_module._this_process()
    if me is None:
        pytest.skip("no /proc: only the heartbeat tells a dead worker")
    assert not study_module._worker_gone(me)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert study_module._worker_gone({**me, "pid": int(dead.stdout)})
    assert study_module._worker_gone({**me, "start": "0"})  # the pid runs another process now
    assert study_module._worker_gone({**me, "boot": "another boot"})
    assert not study_module._worker_gone({**me, "host": "elsewhere", "pid": int(dead.stdout)})  # heartbeat tells
    assert not study_module._worker_gone({**me, "ns": "pid:[1]", "pid": int(dead.stdout)})
    assert not study_module._worker_gone(None)


# --- hepnn explain ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(project, tmp_path_factory) -> Path:
    from hepnn.training.trainer import Trainer

    run = tmp_path_factory.mktemp("explain") / "run"
    Trainer(project / "config.yaml", log=lambda s: None).fit(run)
    return run


def _explanation(folder: Path) -> dict:
    with np.load(folder / "values.npz") as f:
        values = {k: f[k] for k in f.files}
    return {"values": values, "summary": json.loads((folder / "summary.json").read_text()),
            "plots": sorted(p.name for p in folder.glob("*.png"))}


def _same(a: dict, b: dict) -> bool:
    timing = ("seconds", "predict_seconds", "seconds_per_1000_jets")
    return (sorted(a["values"]) == sorted(b["values"])
            and all(np.array_equal(a["values"][k], b["values"][k]) for k in a["values"] if "seconds" not in k)
            and {k: v for k, v in a["summary"].items() if k not in timing + ("extra",)}
            == {k: v for k, v in b["summary"].items() if k not in timing + ("extra",)}
            and a["plots"] == b["plots"])


def test_explain_killed_while_writing_keeps_the_previous_explanation_whole(trained, tmp_path, monkeypatch):
    """``hepnn explain`` run again with other settings and killed after writing the new values.npz
    leaves the previous explanation as it was (it left the new values.npz beside the old summary.json
    and plots, which the report and Explanation.load read as one explanation); the rerun completes."""
    from hepnn.explain.explanation import Explanation
    from hepnn.explain.run import explain_run

    folder = trained / "explain" / "permutation"
    explain_run(trained, "permutation", n_jets=30)
    before = _explanation(folder)
    assert before["summary"]["n_jets"] == 30 and before["plots"]

    save = Explanation.save

    def save_then_die(self, directory):
        save(self, directory)
        raise Killed("after values.npz")

    monkeypatch.setattr(Explanation, "save", save_then_die)
    with pytest.raises(Killed):
        explain_run(trained, "permutation", n_jets=60)
    monkeypatch.undo()
    assert _same(_explanation(folder), before)
    assert len(Explanation.load(folder).values["hl"]) == 30

    # a real kill leaves its staging folder; the rerun removes it and completes
    env = _env(HEPNN_FAULT_AT="explain-write:1")
    killed = subprocess.run([sys.executable, "-m", "hepnn", "explain", str(trained), "--method", "permutation",
                             "--n-jets", "60"], env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == 137, killed.stderr[-3000:]
    assert _same(_explanation(folder), before)
    assert [p.name for p in trained.glob(".explain-*")] == [".explain-permutation.part"]
    explain_run(trained, "permutation", n_jets=60)
    after = _explanation(folder)
    assert after["summary"]["n_jets"] == 60 and not list(trained.glob(".explain-*"))

    fresh = tmp_path / "fresh"
    shutil.copytree(trained, fresh, ignore=shutil.ignore_patterns("explain", ".hepnn.lock"))
    explain_run(fresh, "permutation", n_jets=60)
    assert _same(after, _explanation(fresh / "explain" / "permutation"))


def test_explain_killed_between_the_renames_is_completed_by_the_rerun(trained, monkeypatch):
    """A kill between the swap's two renames leaves the folder absent, never mixed; the next write
    completes the swap. A file the user put into the folder is kept throughout."""
    from hepnn.explain.run import explain_run

    folder = trained / "explain" / "permutation"
    explain_run(trained, "permutation", n_jets=25)
    (folder / "notes.txt").write_text("my notes\n")

    def hook(point, info):
        if point == "explain-swap":
            raise Killed(point)

    monkeypatch.setattr(faults, "HOOK", hook)
    with pytest.raises(Killed):
        explain_run(trained, "permutation", n_jets=20)
    monkeypatch.setattr(faults, "HOOK", None)
    assert not folder.exists()  # absent, never mixed
    assert (trained / ".explain-permutation.old" / "notes.txt").read_text() == "my notes\n"
    explain_run(trained, "permutation", n_jets=20)
    assert _explanation(folder)["summary"]["n_jets"] == 20
    assert (folder / "notes.txt").read_text() == "my notes\n"
    assert not list(trained.glob(".explain-*"))
    (folder / "notes.txt").unlink()


# --- hepnn run --jobs ---------------------------------------------------------------------------


def _tagged(tag: str) -> list[int]:
    """The live processes whose environment holds ``HEPNN_TEST_TAG=tag`` (this test's, and their children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"HEPNN_TEST_TAG={tag}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
                    if state != "Z":
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").is_file(), reason="needs Linux /proc")
def test_jobs_workers_end_when_hepnn_run_is_killed(project, tmp_path):
    """``hepnn run --jobs 2`` killed while its workers start: they end too. (They waited for work for
    ever, re-parented to init; one that had its variant trained it unsupervised, holding its lock.)"""
    import signal
    import time
    import uuid

    folder = tmp_path / "ana"
    folder.mkdir()
    config = (project / "config.yaml").read_text().replace("model: {name: dense, inputs: [hl], units: [8]}", "")
    (folder / "config.yaml").write_text(config + textwrap.dedent("""
        variants:
          small: {model: {name: dense, inputs: [hl], units: [8]}}
          wide: {model: {name: dense, inputs: [hl], units: [16]}}
    """))
    tag = uuid.uuid4().hex
    log = tmp_path / "log"
    with open(log, "w") as out:  # a file, not a pipe: an orphan holding a pipe blocks its reader too
        killed = subprocess.run(
            [sys.executable, "-m", "hepnn", "run", str(folder), "--out", str(tmp_path / "out"), "--jobs", "2",
             "--steps", "train"],
            env=_env(HEPNN_FAULT_AT="run-jobs:1", HEPNN_FAULT_SLEEP="run-jobs:3", HEPNN_TEST_TAG=tag),
            stdout=out, stderr=subprocess.STDOUT, timeout=300)
    assert killed.returncode == 137, log.read_text()[-3000:]
    deadline = time.monotonic() + 20
    while _tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _tagged(tag)
    for pid in left:  # this test's own orphans
        os.kill(pid, signal.SIGKILL)
    assert not left, "worker processes outlived their killed parent"


# --- k-fold training ----------------------------------------------------------------------------


def test_kfold_run_killed_in_a_fold_resumes_only_with_its_config_and_exactly(project, tmp_path, monkeypatch):
    """A k-fold run killed in fold 1 and rerun with other epochs is refused before anything is written,
    naming the k-fold run (the new config was written to its config.yaml, and the error named the
    finished fold 0 as a run of its own); rerun with its config it resumes to the weights and metrics
    of an uninterrupted run, and folds.json appears only once every fold is trained."""
    import keras

    from hepnn.config import load_config
    from hepnn.exceptions import OutputDirError
    from hepnn.training.evaluate import evaluate_run
    from hepnn.training.trainer import Trainer

    config = load_config(project / "config.yaml", ["training.folds=3"])
    full, run = tmp_path / "full", tmp_path / "cut"
    Trainer(config, log=lambda s: None).fit(full)

    steps = []

    def hook(point, info):
        if point == "step":
            steps.append(info)
            if len(steps) == 2 * 9 + 9 + 4:  # fold 0's 2 epochs of 9 steps, then step 4 of fold 1's epoch 2
                raise Killed(info)

    monkeypatch.setattr(faults, "HOOK", hook)
    with pytest.raises(Killed):
        Trainer(config, log=lambda s: None).fit(run)
    monkeypatch.setattr(faults, "HOOK", None)
    assert (run / "folds/0/model.keras").is_file() and (run / "folds/1/checkpoints/state.json").is_file()
    assert not (run / "folds/1/model.keras").exists() and not (run / "folds.json").exists()

    saved = (run / "config.yaml").read_bytes()
    other = load_config(project / "config.yaml", ["training.folds=3", "training.epochs=3"])
    with pytest.raises(OutputDirError, match=rf"{re.escape(str(run))} is an interrupted k-fold run whose fold 0 .*training.epochs: 2 -> 3"):
        Trainer(other, log=lambda s: None).fit(run)
    assert (run / "config.yaml").read_bytes() == saved

    Trainer(config, log=lambda s: None).fit(run)
    assert json.loads((run / "folds.json").read_text()) == json.loads((full / "folds.json").read_text())
    for k in range(3):
        for a, b in zip(keras.saving.load_model(full / f"folds/{k}/model.keras").get_weights(),
                        keras.saving.load_model(run / f"folds/{k}/model.keras").get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    assert evaluate_run(run) == evaluate_run(full)
