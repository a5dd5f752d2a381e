"""Fault injection: kill training and ``hepnn convert`` at chosen points, resume, compare.

Training is stopped through the points of ``hepnn._faults`` (after a step, between a
checkpoint's model file and its ``state.json``, after an epoch's checkpoint), in
process with an exception or, for a real kill, in a subprocess with
``HEPNN_FAULT_AT`` (``os._exit``: no cleanup runs). After the resume, the final weights
and every history number except timings must equal an uninterrupted run's, bit for bit
(``training.deterministic: true``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hepnn._faults as faults
import hepnn.training.trainer as trainer_module
from hepnn.training.trainer import Trainer

N_JETS, BATCH, EPOCHS, EVERY = 300, 32, 3, 2
N_TRAIN = 240  # the first 240 jets are the training split: 8 steps per epoch, the last one of 16 jets
STEPS = -(-N_TRAIN // BATCH)


def toy_data():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, N_JETS)
    return {"jet": (rng.normal(size=(N_JETS, 3)) + y[:, None]).astype("float32"), "label": y.astype("int32"),
            "weight": np.ones(N_JETS, "float32"),
            "split": np.where(np.arange(N_JETS) < N_TRAIN, 0, 1).astype("int8")}


CONFIG = {"data": {"inputs": {"jet": {"kind": "flat", "variables": ["a", "b", "c"]}}},
          "model": {"name": "dense", "units": [8], "dropout": 0.2},
          "training": {"epochs": EPOCHS, "batch_size": BATCH, "deterministic": True, "early_stopping": None,
                       "checkpoint_every_n_steps": EVERY, "verbose": 0}}


def numbers(history):
    """The history without its timing columns (those differ between any two runs)."""
    keep = lambda k: k in ("epoch", "learning_rate") or k.endswith("loss") or "auc" in k or "accuracy" in k  # noqa: E731
    return [{k: v for k, v in row.items() if keep(k)} for row in history]


class Killed(BaseException):
    """Raised by the fault hook (a BaseException, like KeyboardInterrupt: nothing catches it)."""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("faults") / "full"
    trainer = Trainer(CONFIG, log=lambda s: None).fit(run, data=toy_data())
    return [w.copy() for w in trainer.model_.get_weights()], numbers(trainer.history_)


def kill_at(point, when):
    def hook(name, info):
        if name == point and when(info):
            raise Killed(f"{point} {info}")
    return hook


RNG = np.random.default_rng(12)
RANDOM_STEPS = sorted({(int(RNG.integers(0, EPOCHS)), int(RNG.integers(1, STEPS))) for _ in range(2)})

CASES = {
    # after a step in the middle of an epoch, and at random steps (seeded, so reproducible)
    "mid-epoch step 5 of epoch 2": ("step", lambda i: (i["epoch"], i["step"]) == (1, 5)),
    **{f"random step {s} of epoch {e + 1}": ("step", lambda i, e=e, s=s: (i["epoch"], i["step"]) == (e, s))
       for e, s in RANDOM_STEPS},
    # the last step of an epoch: its step checkpoint would skip the epoch's history row
    "last step of epoch 1": ("step", lambda i: (i["epoch"], i["step"]) == (0, STEPS)),
    # at the epoch boundary, after the epoch's checkpoint and history
    "epoch boundary after epoch 2": ("epoch", lambda i: i["epoch"] == 2),
    # between a checkpoint's model file and its state.json (the old two-file window)
    "inside the end-of-epoch-1 checkpoint": ("checkpoint", lambda i: (i["epoch"], i["step"]) == (1, 0)),
    "inside a step checkpoint": ("checkpoint", lambda i: (i["epoch"], i["step"]) == (2, 4)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_killed_training_resumes_bit_identically(tmp_path, reference, case, monkeypatch):
    point, when = CASES[case]
    run = tmp_path / "cut"
    data = toy_data()
    monkeypatch.setattr(faults, "HOOK", kill_at(point, when))
    with pytest.raises(Killed):
        Trainer(CONFIG, log=lambda s: None).fit(run, data=data)
    monkeypatch.setattr(faults, "HOOK", None)
    assert not (run / "model.keras").exists(), "the kill came too late"
    if point == "checkpoint":  # a kill while the model file was being written leaves its temporary file
        (run / "checkpoints" / ".last-000099.keras.x.part.keras").write_bytes(b"half a zip")
        (run / ".history.csv.x.part.csv").write_text("epoch,lo")
    lines = []
    resumed = Trainer(CONFIG, log=lines.append).fit(run, data=data)
    weights, history = reference
    assert len(resumed.history_) == EPOCHS
    assert numbers(resumed.history_) == history  # every epoch's row, complete and identical
    for a, b in zip(weights, resumed.model_.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not list(run.rglob("*.part*")), "temporary files left behind"
    assert [p.suffix for p in (run / "checkpoints").glob("last*")] == [".npz"]  # one checkpoint, the committed one


def test_no_step_checkpoint_after_the_last_step_of_an_epoch(tmp_path, monkeypatch):
    """Every committed step checkpoint is strictly inside an epoch."""
    seen = []
    monkeypatch.setattr(faults, "HOOK", lambda name, info: seen.append(info) if name == "checkpoint" else None)
    config = {**CONFIG, "training": {**CONFIG["training"], "epochs": 1, "checkpoint_every_n_steps": 4}}
    Trainer(config, log=lambda s: None).fit(tmp_path / "run", data=toy_data())
    assert [(i["epoch"], i["step"]) for i in seen] == [(0, 4), (1, 0)]  # step 8 == STEPS is the epoch end
    state = json.loads((tmp_path / "run" / "checkpoints" / "state.json").read_text())
    assert (state["epoch"], state.get("step", 0), state["model"]) == (1, 0, "last-000002.npz")


def test_old_format_checkpoint_still_resumes(tmp_path, reference, monkeypatch):
    """A checkpoint written before the one-file commit (last.keras beside a state.json without "model")."""
    run = tmp_path / "old"
    data = toy_data()
    monkeypatch.setattr(trainer_module, "CHECKPOINT_SUFFIX", ".keras")  # whole Keras models, as hepnn wrote then
    faults.HOOK = kill_at("epoch", lambda i: i["epoch"] == 2)
    try:
        with pytest.raises(Killed):
            Trainer(CONFIG, log=lambda s: None).fit(run, data=data)
    finally:
        faults.HOOK = None
    monkeypatch.undo()
    ckpt = run / "checkpoints"
    state = json.loads((ckpt / "state.json").read_text())
    (ckpt / state.pop("model")).rename(ckpt / "last.keras")
    (ckpt / "state.json").write_text(json.dumps(state))
    resumed = Trainer(CONFIG, log=lambda s: None).fit(run, data=data)
    for a, b in zip(reference[0], resumed.model_.get_weights()):
        np.testing.assert_array_equal(a, b)
    # and an old step checkpoint taken at the last step of an epoch is refused with a clear message
    (run / "model.keras").unlink()
    state.update(epoch=1, step=STEPS)
    (ckpt / "state.json").write_text(json.dumps(state))
    for p in ckpt.glob("last*"):  # refused before the model file is read
        p.rename(ckpt / "last.keras")
    from hepnn.exceptions import InputDataError

    with pytest.raises(InputDataError, match=r"last step of epoch 2 .*cannot resume exactly.*remove"):
        Trainer(CONFIG, log=lambda s: None).fit(run, data=data)


def test_corrupt_checkpoint_state_is_a_clear_error(tmp_path):
    from hepnn.exceptions import InputDataError

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / ".hepnn").write_text("{}\n")
    (run / "checkpoints" / "state.json").write_text('{"epoch": 1, "mod')
    with pytest.raises(InputDataError, match=r"state.json: the checkpoint state is unreadable.*remove"):
        Trainer(CONFIG, log=lambda s: None).fit(run, data=toy_data())


@pytest.mark.parametrize("point", [("epoch", lambda i: i["epoch"] == 3),
                                   ("step", lambda i: (i["epoch"], i["step"]) == (3, 5))],
                         ids=["epoch boundary after epoch 3", "mid-epoch step 5 of epoch 4"])
def test_killed_run_monitoring_val_auc_resumes_with_its_best_and_wait(tmp_path, monkeypatch, point):
    """A higher-is-better monitor: the best (the highest val_auc) and the epochs without improvement
    come back from state.json, and the resumed run ends as the uninterrupted one."""
    config = {**CONFIG, "training": {**CONFIG["training"], "epochs": 6,
                                     "optimizer": {"name": "adam", "learning_rate": 0.1},
                                     "early_stopping": {"patience": 3, "monitor": "val_auc"}}}
    data = toy_data()
    full = Trainer(config, log=lambda s: None).fit(tmp_path / "full", data=data)
    aucs = [row["val_auc"] for row in full.history_]
    state = json.loads((tmp_path / "full" / "checkpoints" / "state.json").read_text())
    assert len(aucs) == 6 and state["best"] == max(aucs) > aucs[0], aucs
    monkeypatch.setattr(faults, "HOOK", kill_at(*point))
    with pytest.raises(Killed):
        Trainer(config, log=lambda s: None).fit(tmp_path / "cut", data=data)
    monkeypatch.setattr(faults, "HOOK", None)
    cut = json.loads((tmp_path / "cut" / "checkpoints" / "state.json").read_text())
    assert cut["best"] == max(aucs[:3]) and cut["wait"] == 2 - aucs.index(max(aucs[:3]))
    resumed = Trainer(config, log=lambda s: None).fit(tmp_path / "cut", data=data)
    assert numbers(resumed.history_) == numbers(full.history_)
    again = json.loads((tmp_path / "cut" / "checkpoints" / "state.json").read_text())
    assert (again["best"], again["wait"], again.get("stopped_early")) == (state["best"], state["wait"], None)
    for a, b in zip(full.model_.get_weights(), resumed.model_.get_weights()):  # the best epoch's weights
        np.testing.assert_array_equal(a, b)


# --- real kills (os._exit: no cleanup) in a subprocess --------------------------------------------

SCRIPT = """
import json, sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_faults_training import CONFIG, toy_data
from hepnn.training.trainer import Trainer
t = Trainer(CONFIG, log=lambda s: None).fit(sys.argv[1], data=toy_data())
np.savez(sys.argv[2], *t.model_.get_weights())
"""


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["checkpoint:3"])  # killed between a checkpoint's model and state
def test_hard_kill_in_a_subprocess_resumes_bit_identically(tmp_path, reference, fault):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "HEPNN_FAULT_AT": fault, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = tmp_path / "run"
    killed = subprocess.run([sys.executable, str(script), str(run), str(tmp_path / "w.npz")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == 137, killed.stderr[-2000:]
    assert not (run / "model.keras").exists()
    env.pop("HEPNN_FAULT_AT")
    done = subprocess.run([sys.executable, str(script), str(run), str(tmp_path / "w.npz")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(tmp_path / "w.npz") as f:
        weights = [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]
    for a, b in zip(reference[0], weights):
        np.testing.assert_array_equal(a, b)
    assert not list(run.rglob("*.part*"))


# --- hepnn convert -------------------------------------------------------------------------------


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".hepnn.lock"}


def _two_configs(tmp_path):
    from test_io_fixtures import make_per_jet

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    return make_per_jet(tmp_path / "a", n=20), make_per_jet(tmp_path / "b", n=30)


@pytest.mark.parametrize("point", ["convert-split:2", "convert-staged:1", "convert-swap:2"])
def test_killed_convert_leaves_no_mixed_set_and_a_rerun_completes(tmp_path, point, monkeypatch):
    from hepnn.io.convert import OUTPUTS, convert

    out = tmp_path / "converted"
    first, second = _two_configs(tmp_path)
    convert(first, out)
    old = _tree(out)
    name, nth = point.rsplit(":", 1)
    calls = []

    def hook(p, info):
        if p == name:
            calls.append(info)
            if len(calls) == int(nth):
                raise Killed(point)

    monkeypatch.setattr(faults, "HOOK", hook)
    with pytest.raises(Killed):
        convert(second, out)
    monkeypatch.setattr(faults, "HOOK", None)
    now = {k: v for k, v in _tree(out).items() if not k.startswith(".convert.part/")}
    if name == "convert-swap":  # killed between two renames: the complete new set waits in the staging folder
        assert (out / ".convert.part" / ".staged").is_file()
    else:  # the previous set is untouched and nothing else was added
        assert now == old
    convert(second, out)  # a rerun completes (and rolls a half-done swap forward)
    new = _tree(out)
    assert not (out / ".convert.part").exists() and not list(out.rglob("*.part*"))
    assert set(OUTPUTS) <= set(new)
    fresh = tmp_path / "fresh"
    convert(second, fresh)
    for name in ("train.npz", "val.npz", "test.npz", "preprocessing.json"):
        assert new[name] == _tree(fresh)[name], name  # the new set, complete, none of the old files


def test_killed_convert_subprocess_leaves_old_set(tmp_path):
    """A real kill (no cleanup) after the first split of the new set was written."""
    from hepnn.io.convert import convert

    first, second = _two_configs(tmp_path)
    out = tmp_path / "converted"
    convert(first, out)
    old = _tree(out)
    env = {**os.environ, "HEPNN_FAULT_AT": "convert-split:1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    killed = subprocess.run([sys.executable, "-m", "hepnn", "convert", str(second), "--out",
                             str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == 137, killed.stderr[-2000:]
    assert {k: v for k, v in _tree(out).items() if not k.startswith(".convert.part/")} == old
    env.pop("HEPNN_FAULT_AT")
    done = subprocess.run([sys.executable, "-m", "hepnn", "convert", str(second), "--out",
                           str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (out / ".convert.part").exists()
    assert _tree(out)["train.npz"] != old["train.npz"]


def test_fault_sleep_pauses_only_at_its_point(monkeypatch):
    slept = []
    monkeypatch.setattr(faults.time, "sleep", slept.append)
    monkeypatch.setenv("HEPNN_FAULT_SLEEP", "epoch:1.5")
    faults.fault("step")
    faults.fault("epoch", {"epoch": 1})
    faults.fault("epoch", {"epoch": 2})
    assert slept == [1.5, 1.5]


def test_a_kill_before_the_epochs_commit_never_restores_that_epochs_best_weights(tmp_path, monkeypatch):
    """restore_best_weights: the improving epoch wrote best.weights.npz before its checkpoint committed
    the state; killed in between, the resumed run kept an old ``best`` in state.json beside the weights
    of the lost epoch, and restored those at the end if the rerun epoch (not bit-exact: a GPU) did not
    improve again. The best weights now go to a file named after the epoch that the commit names."""
    config = {**CONFIG, "training": {**CONFIG["training"], "checkpoint_every_n_steps": None,
                                     "early_stopping": {"monitor": "val_loss", "patience": 5,
                                                        "restore_best_weights": True}}}
    data = toy_data()
    monkeypatch.setattr(faults, "HOOK", kill_at("checkpoint", lambda i: (i["epoch"], i["step"]) == (2, 0)))
    with pytest.raises(Killed):
        Trainer(config, log=lambda s: None).fit(tmp_path / "run", data=data)
    monkeypatch.setattr(faults, "HOOK", None)
    ckpt = tmp_path / "run" / "checkpoints"
    state = json.loads((ckpt / "state.json").read_text())
    assert state["epoch"] == 1
    with np.load(ckpt / state.get("best_weights", "best.weights.npz")) as best, np.load(ckpt / state["model"]) as last:
        model_keys = [k for k in best.files if k.startswith("model")]
        assert model_keys
        for key in model_keys:  # the best weights the state names are epoch 1's, the committed epoch
            np.testing.assert_array_equal(best[key], last[key])
    resumed = Trainer(config, log=lambda s: None).fit(tmp_path / "run", data=data)
    final = json.loads((ckpt / "state.json").read_text())
    assert sorted(p.name for p in ckpt.glob("best*")) == [final["best_weights"]]
    best_epoch = 1 + int(np.argmin([row["val_loss"] for row in resumed.history_]))
    assert final["best_weights"] == f"best-{best_epoch:06d}.weights.npz"
