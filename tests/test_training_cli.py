"""`hepnn train` / `hepnn evaluate` on ROOT files, resume after SIGKILL, streaming and step checkpoints."""

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
from sklearn.metrics import roc_auc_score

from hepnn.cli import main
from hepnn.config import load_config
from hepnn.training.trainer import Trainer
from test_io_fixtures import make_per_event, make_per_jet

TINY_RNN = ["model.name=rnn", "model.units=[8]", "model.dense_units=[8]", "training.epochs=2",
            "training.batch_size=16", "training.verbose=0"]


def hepnn_cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "hepnn", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_train_and_evaluate_multiclass_from_root_files(tmp_path, capsys):
    config = make_per_event(tmp_path, n_files=2, n_events=60)
    run = tmp_path / "run"
    args = ["train", str(config), "--out", str(run)]
    for item in TINY_RNN:
        args += ["--set", item]
    assert main(args) == 0
    assert main(["evaluate", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "multiclass"
    assert set(metrics["classes"]) <= {"light", "c", "b"}
    # independent check of one per-class AUC on the same predictions
    from hepnn.training.evaluate import predict_split

    pred = predict_split(run, "test")
    b = pred["classes"].index("b")
    if "b" in metrics["classes"]:
        expected = roc_auc_score(pred["label"] == b, pred["outputs"][:, b])
        assert metrics["classes"]["b"]["auc"] == pytest.approx(expected, abs=1e-4)
    assert metrics["n_test"] == len(pred["label"])
    assert set(metrics["classes"][next(iter(metrics["classes"]))]["rejection"]) == {"0.3", "0.5", "0.6", "0.7", "0.77", "0.85"}


def weights_of(run: Path) -> list[np.ndarray]:
    from hepnn.models import load_model

    return load_model(run / "model.keras").get_weights()


@pytest.mark.slow  # 20-35 s; tests/test_faults_training.py kills training in a subprocess too (os._exit)
@pytest.mark.parametrize("layout", ["per_jet"])
def test_sigkill_and_rerun_gives_identical_weights(tmp_path, layout):
    config = make_per_jet(tmp_path, n=150)
    common = ["--set", "model.name=dense", "--set", "model.units=[32,32]", "--set", "model.inputs=[highlevel]",
              "--set", "training.epochs=6", "--set", "training.batch_size=8", "--set", "training.deterministic=true",
              "--set", "training.early_stopping=null", "--set", "training.verbose=0"]
    full = hepnn_cli("train", str(config), "--out", str(tmp_path / "full"), *common)
    cut = hepnn_cli("train", str(config), "--out", str(tmp_path / "cut"), *common)
    state = tmp_path / "cut" / "checkpoints" / "state.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if state.is_file():
            try:
                if json.loads(state.read_text())["epoch"] >= 2:
                    break
            except (json.JSONDecodeError, KeyError):
                pass
        time.sleep(0.05)
    cut.send_signal(signal.SIGKILL)
    cut.wait()
    assert full.wait() == 0, full.stderr.read()
    assert not (tmp_path / "cut" / "model.keras").exists(), "the kill came too late to test resuming"
    rerun = hepnn_cli("train", str(config), "--out", str(tmp_path / "cut"), *common)
    out, err = rerun.communicate()
    assert rerun.returncode == 0, err
    assert "resuming from epoch" in out
    for a, b in zip(weights_of(tmp_path / "full"), weights_of(tmp_path / "cut")):
        np.testing.assert_array_equal(a, b)


def test_mid_epoch_step_checkpoint_resumes_identically(tmp_path):
    import keras

    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    data = {"jet": (rng.normal(size=(n, 3)) + y[:, None]).astype("float32"), "label": y.astype("int32"),
            "weight": np.ones(n, "float32"), "split": np.where(np.arange(n) < 320, 0, 1).astype("int8")}
    cfg = {"data": {"inputs": {"jet": {"kind": "flat", "variables": ["a", "b", "c"]}}},
           "model": {"name": "dense", "units": [8], "dropout": 0.2},
           "training": {"epochs": 3, "batch_size": 32, "deterministic": True, "early_stopping": None,
                        "checkpoint_every_n_steps": 4, "verbose": 0}}
    full = Trainer(cfg, log=lambda s: None).fit(tmp_path / "full", data=data)

    class Crash(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 5:  # step 6 of epoch 2: last checkpoint at step 4
                raise RuntimeError("simulated crash")

    original_fit = keras.Model.fit

    def crashing_fit(self, *args, callbacks=None, **kwargs):
        return original_fit(self, *args, callbacks=[*callbacks, Crash()], **kwargs)

    keras.Model.fit = crashing_fit
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            Trainer(cfg, log=lambda s: None).fit(tmp_path / "cut", data=data)
    finally:
        keras.Model.fit = original_fit
    state = json.loads((tmp_path / "cut" / "checkpoints" / "state.json").read_text())
    assert (state["epoch"], state["step"]) == (1, 4)
    lines = []
    resumed = Trainer(cfg, log=lines.append).fit(tmp_path / "cut", data=data)
    assert any("resuming from epoch 1, step 4" in line for line in lines)
    for a, b in zip(full.model_.get_weights(), resumed.model_.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_streaming_training_from_root_files(tmp_path):
    config = make_per_jet(tmp_path, n=120)
    overrides = ["model.name=dense", "model.units=[8]", "model.inputs=[highlevel, particles]",
                 "training.streaming=true", "training.epochs=2", "training.batch_size=16", "training.verbose=0"]
    trainer = Trainer(load_config(config, overrides), log=lambda s: None).fit(tmp_path / "run")
    assert len(trainer.history_) == 2
    assert all(np.isfinite(row["loss"]) for row in trainer.history_)
    assert all(0.0 <= row["reader_wait_s"] <= row["epoch_time_s"] + 1e-3 for row in trainer.history_)
    prov = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert prov["streaming"] is True
    assert {Path(i["path"]).name for i in prov["inputs"]} == {"top.root", "qcd.root"}
    assert (tmp_path / "run" / "preprocessing.json").is_file()
    with pytest.raises(ValueError, match="training.streaming: class_weight 'balanced'"):
        Trainer(load_config(config, [*overrides, "training.class_weight=balanced"]), log=lambda s: None).fit(
            tmp_path / "run2")


def test_stream_cache_trains_like_streaming_resumes_identically_and_is_removed(tmp_path):
    config = make_per_jet(tmp_path, n=120)
    overrides = ["model.name=dense", "model.units=[8]", "model.inputs=[highlevel]", "training.streaming=true",
                 "training.stream_cache=true", "training.batch_size=16", "training.verbose=0",
                 "training.deterministic=true", "training.early_stopping=null"]
    full = Trainer(load_config(config, [*overrides, "training.epochs=3"]), log=lambda s: None).fit(tmp_path / "full")
    assert not (tmp_path / "full" / "stream_cache").exists(), "removed when training ends"
    # interrupted after epoch 2: the cache written in epoch 1 is still there and complete
    Trainer(load_config(config, [*overrides, "training.epochs=2"]), log=lambda s: None).fit(tmp_path / "cut")
    (tmp_path / "cut" / "model.keras").unlink()
    lines = []
    resumed = Trainer(load_config(config, [*overrides, "training.epochs=3"]), log=lines.append).fit(tmp_path / "cut")
    assert any("resuming from epoch 2" in line for line in lines)
    assert any("removed the stream cache" in line for line in lines)
    for a, b in zip(full.model_.get_weights(), resumed.model_.get_weights()):
        np.testing.assert_array_equal(a, b)
    # the same jets per epoch as plain streaming: equal first-epoch loss (same file pass)
    plain = Trainer(load_config(config, [o for o in overrides if "stream_cache" not in o] + ["training.epochs=1"]),
                    log=lambda s: None).fit(tmp_path / "plain")
    assert plain.history_[0]["loss"] == full.history_[0]["loss"]
