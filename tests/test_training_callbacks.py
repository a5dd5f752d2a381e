"""Training policy as Keras callbacks: each policy alone, and one model.fit per run."""

from __future__ import annotations

import types

import pytest

from test_training_trainer import quiet, toy_config, toy_data

cb = pytest.importorskip("hepnn.training.callbacks")


def _run_policy(values, patience=2, decay=0.5):
    run = cb.RunState(state={"epoch": 0, "best": None, "wait": 0, "lr": 1.0, "history": []})
    model = types.SimpleNamespace(stop_training=False)
    schedule = types.SimpleNamespace(name="plateau", patience=1, decay_rate=decay, min_learning_rate=0.3)
    policy = [cb.BestWeights(run, "val_loss"), cb.PlateauDecay(run, schedule), cb.EarlyStop(run, "val_loss", patience)]
    for c in policy:
        c.set_model(model)
    trace = []
    for epoch, value in enumerate(values):
        run.row = {"epoch": epoch + 1, "val_loss": value}
        for c in policy:
            c.on_epoch_end(epoch)
        trace.append((run.state["best"], run.state["wait"], run.state["lr"], model.stop_training))
        if model.stop_training:
            break
    return run, trace


def test_best_plateau_and_early_stopping_share_the_checkpointed_state():
    run, trace = _run_policy([1.0, 0.9, 0.95, 0.96, 0.5])
    assert trace == [(1.0, 0, 1.0, False), (0.9, 0, 1.0, False), (0.9, 1, 0.5, False), (0.9, 2, 0.3, True)]
    assert run.state["stopped_early"] and run.stop_reasons == ["val_loss did not improve for 2 epochs"]


def test_one_fit_and_one_tensorboard_log_per_run(tmp_path, monkeypatch):
    import keras

    calls = []
    fit = keras.Model.fit

    def counting_fit(self, *args, **kwargs):
        calls.append((kwargs.get("initial_epoch"), kwargs.get("epochs")))
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", counting_fit)
    from hepnn.training.trainer import Trainer

    trainer = Trainer(toy_config(epochs=3, verbose=1), log=quiet).fit(tmp_path / "run", data=toy_data(n=400))
    assert calls == [(0, 3)]
    assert [row["epoch"] for row in trainer.history_] == [1, 2, 3]
    assert len(trainer.history_) == 3 and len({row["learning_rate"] for row in trainer.history_}) == 1
    events = list((tmp_path / "run" / "tensorboard" / "train").glob("events.out.tfevents*"))
    assert len(events) == 1, events


def test_streamed_runs_also_write_one_tensorboard_log(tmp_path):
    """Streamed runs call fit once per epoch; their epoch metrics still land in one event file per split."""
    import tensorflow as tf

    from hepnn.training.callbacks import TensorBoardLog

    log = TensorBoardLog(tmp_path / "tb")

    class Model:
        optimizer = None

    log.set_model(Model())
    for epoch in range(3):  # three separate fit calls, as a streamed run makes
        log.on_train_begin()
        log.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "val_loss": 2.0 / (epoch + 1)})
        log.on_train_end()
    log.close()
    for split, scale in (("train", 1.0), ("validation", 2.0)):
        files = list((tmp_path / "tb" / split).glob("events.out.tfevents*"))
        assert len(files) == 1, files
        values = []
        for event in tf.compat.v1.train.summary_iterator(str(files[0])):
            for v in event.summary.value:
                if v.tag == "epoch_loss":
                    values.append((event.step, float(tf.make_ndarray(v.tensor))))
        assert values == [(0, scale), (1, scale / 2), (2, pytest.approx(scale / 3))]
