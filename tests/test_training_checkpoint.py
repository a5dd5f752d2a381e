"""Array checkpoints (hepnn.training.checkpoint): exact round trip, clear errors, and what a resumed run refuses."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hepnn._faults as faults
from hepnn.exceptions import InputDataError, OutputDirError
from hepnn.training.checkpoint import restore_variables, save_variables
from hepnn.training.trainer import Trainer

keras = pytest.importorskip("keras")


def _trained(units: int = 4, seed: int = 0):
    """A small model with batch normalisation, dropout and an Adam optimiser after a few steps."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units), keras.layers.BatchNormalization(),
                              keras.layers.Dropout(0.3, seed=seed), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(64, 3)).astype("float32"), rng.integers(0, 2, 64).astype("float32")
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    return model, x, y


def _values(model, optimizer=True):
    out = [np.asarray(v.numpy()) for v in model.variables]
    return out + ([np.asarray(v.numpy()) for v in model.optimizer.variables] if optimizer else [])


def test_round_trip_restores_model_and_optimizer_bit_for_bit_and_training_continues_identically(tmp_path):
    model, x, y = _trained(seed=0)
    path = save_variables(tmp_path / "last-000001.npz", model)
    assert not list(tmp_path.glob(".*")), "the temporary file was left behind"
    fresh, _, _ = _trained(seed=1)  # same architecture, other weights, other optimiser moments
    before = _values(fresh)
    assert any(not np.array_equal(a, b) for a, b in zip(_values(model), before))
    restore_variables(path, fresh)
    for a, b in zip(_values(model), _values(fresh)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert int(fresh.optimizer.iterations.numpy()) == 8
    # the moments came back too: one more identical step gives identical weights
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
    fresh.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weights_only_leave_the_optimizer_alone(tmp_path):
    model, _, _ = _trained(seed=0)
    path = save_variables(tmp_path / "best.weights.npz", model, optimizer=False)
    fresh, _, _ = _trained(seed=1)
    moments = [np.asarray(v.numpy()) for v in fresh.optimizer.variables]
    restore_variables(path, fresh, optimizer=False)
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, v in zip(moments, fresh.optimizer.variables):
        np.testing.assert_array_equal(a, v.numpy())
    with pytest.raises(InputDataError, match="holds 0 optimizer variables"):
        restore_variables(path, fresh)  # asked for the optimiser too: that file has none


def test_another_architecture_or_a_broken_file_is_a_clear_error(tmp_path):
    model, _, _ = _trained(units=4)
    path = save_variables(tmp_path / "last-000003.npz", model)
    wider, _, _ = _trained(units=5)
    with pytest.raises(InputDataError, match=r"last-000003.npz: model variable .*kernel was saved as float32 "
                                             r"\(3, 4\).*\(3, 5\).*another model; remove .* restart"):
        restore_variables(path, wider)
    deeper = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(4), keras.layers.Dense(1)])
    with pytest.raises(InputDataError, match=r"holds 9 model variables, the model being resumed has 6"):
        restore_variables(path, deeper, optimizer=False)
    broken = tmp_path / "last-000004.npz"
    broken.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputDataError, match=r"last-000004.npz: the checkpoint is unreadable"):
        restore_variables(broken, model)


CONFIG = {"data": {"inputs": {"jet": {"kind": "flat", "variables": ["a", "b", "c"]}}},
          "model": {"name": "dense", "units": [8], "batch_norm": True},
          "training": {"epochs": 3, "batch_size": 32, "deterministic": True, "verbose": 0,
                       "early_stopping": {"patience": 5, "restore_best_weights": True}}}


def _toy():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    return {"jet": (rng.normal(size=(300, 3)) + y[:, None]).astype("float32"), "label": y.astype("int32"),
            "weight": np.ones(300, "float32"), "split": np.where(np.arange(300) < 240, 0, 1).astype("int8")}


class _Killed(BaseException):
    pass


def _kill_after_epoch(n):
    def hook(name, info):
        if name == "epoch" and info["epoch"] == n:
            raise _Killed
    return hook


def test_checkpoints_are_arrays_and_a_resume_with_another_model_is_refused(tmp_path, monkeypatch):
    data = _toy()
    monkeypatch.setattr(faults, "HOOK", _kill_after_epoch(2))
    with pytest.raises(_Killed):
        Trainer(CONFIG, log=lambda s: None).fit(tmp_path / "run", data=data)
    monkeypatch.setattr(faults, "HOOK", None)
    ckpt = tmp_path / "run" / "checkpoints"
    state = json.loads((ckpt / "state.json").read_text())
    assert state["best_weights"] in ("best-000001.weights.npz", "best-000002.weights.npz")
    assert state["model"] == "last-000002.npz" and sorted(p.name for p in ckpt.iterdir()) == [
        state["best_weights"], "last-000002.npz", "state.json"]
    other = {**CONFIG, "model": {**CONFIG["model"], "units": [16]}}
    with pytest.raises(OutputDirError, match=r"interrupted run trained with a different config .*model.units: \[8\] -> \[16\]"):
        Trainer(other, log=lambda s: None).fit(tmp_path / "run", data=data)
    # without its config.yaml, the checkpoint itself refuses the other model
    saved = (tmp_path / "run" / "config.yaml").read_bytes()
    (tmp_path / "run" / "config.yaml").unlink()
    with pytest.raises(InputDataError, match=r"last-000002.npz: model variable .* another model; remove .*checkpoints"):
        Trainer(other, log=lambda s: None).fit(tmp_path / "run", data=data)
    (tmp_path / "run" / "config.yaml").write_bytes(saved)
    resumed = Trainer(CONFIG, log=lambda s: None).fit(tmp_path / "run", data=data)
    full = Trainer(CONFIG, log=lambda s: None).fit(tmp_path / "full", data=data)
    assert [r["val_loss"] for r in resumed.history_] == [r["val_loss"] for r in full.history_]
    for a, b in zip(full.model_.get_weights(), resumed.model_.get_weights()):
        np.testing.assert_array_equal(a, b)
