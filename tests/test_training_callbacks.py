"""Training policy as Keras callbacks: each policy alone, and one model.fit per run."""

from __future__ import annotations

import types

import pytest

from test_training_trainer import quiet, toy_config, toy_data

cb = pytest.importorskip("hepnn.training.callbacks")


def _run_policy(values, patience=2, decay=0.5, monitor="val_loss", mode="auto"):
    run = cb.RunState(state={"epoch": 0, "best": None, "wait": 0, "lr": 1.0, "history": []})
    model = types.SimpleNamespace(stop_training=False)
    schedule = types.SimpleNamespace(name="plateau", patience=1, decay_rate=decay, min_learning_rate=0.3)
    policy = [cb.BestWeights(run, monitor, mode=mode), cb.PlateauDecay(run, schedule), cb.EarlyStop(run, monitor, patience)]
    for c in policy:
        c.set_model(model)
    trace = []
    for epoch, value in enumerate(values):
        run.row = {"epoch": epoch + 1, monitor: value}
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


def test_a_higher_is_better_monitor_is_maximised():
    """val_auc rising: no wait, no plateau decay, no stop; the best is the highest value."""
    run, trace = _run_policy([0.90, 0.95, 0.97, 0.96, 0.98], monitor="val_auc")
    assert [(best, wait, stop) for best, wait, _, stop in trace] == [
        (0.90, 0, False), (0.95, 0, False), (0.97, 0, False), (0.97, 1, False), (0.98, 0, False)]
    run, trace = _run_policy([0.97, 0.96, 0.95], monitor="val_auc")  # falling: stops after patience epochs
    assert trace[-1] == (0.97, 2, 0.3, True) and run.stop_reasons == ["val_auc did not improve for 2 epochs"]


@pytest.mark.parametrize(("monitor", "mode", "expected"), [
    ("val_loss", "auto", "min"), ("loss", "auto", "min"), ("val_mae", "auto", "min"),
    ("val_auc", "auto", "max"), ("auc", "auto", "max"), ("val_binary_accuracy", "auto", "max"),
    ("val_sparse_categorical_accuracy", "auto", "max"), ("val_auc", "min", "min"), ("val_loss", "max", "max"),
])
def test_the_direction_follows_the_metric_unless_the_mode_is_given(monitor, mode, expected):
    assert cb.monitor_mode(monitor, mode) == expected
    values = [3.0, 1.0, 2.0] if expected == "min" else [1.0, 3.0, 2.0]
    _, trace = _run_policy(values, patience=5, monitor=monitor, mode=mode)
    assert [(best, wait) for best, wait, _, _ in trace] == [(values[0], 0), (values[1], 0), (values[1], 1)]


def test_min_delta_counts_in_the_direction_of_the_monitor():
    run = cb.RunState(state={"epoch": 0, "best": 0.9, "wait": 0, "lr": 1.0, "history": []})
    best = cb.BestWeights(run, "val_auc", min_delta=0.01)
    assert not best.improved(0.905, 0.9) and best.improved(0.92, 0.9) and not best.improved(0.5, 0.9)
    assert not best.improved(float("nan"), None)


def test_a_monitor_the_run_does_not_log_is_a_config_error_naming_what_it_logs():
    from hepnn.exceptions import ConfigError

    run = cb.RunState(state={"epoch": 0, "best": None, "wait": 0, "lr": 1.0, "history": []})
    logs = {"loss": 0.5, "auc": 0.8, "val_loss": 0.6, "val_auc": 0.7}
    run.row = {"epoch": 1, "learning_rate": 1e-3, **logs}
    with pytest.raises(ConfigError, match=r"^training.early_stopping.monitor: 'val_acu' is not logged by this run; "
                                          r"did you mean 'val_auc'\?; it logs auc, loss, val_auc, val_loss"):
        cb.BestWeights(run, "val_acu").on_epoch_end(0, logs)
    assert run.state["wait"] == 0  # not counted as an epoch without improvement


def test_training_on_val_auc_keeps_and_restores_the_highest_auc(tmp_path):
    """The monitored val_auc rises: training does not stop early, and the best is the highest AUC."""
    import json

    from hepnn.training.trainer import Trainer

    config = toy_config(epochs=4, early_stopping={"patience": 2, "monitor": "val_auc"})
    trainer = Trainer(config, log=quiet).fit(tmp_path / "run", data=toy_data(n=600))
    aucs = [row["val_auc"] for row in trainer.history_]
    state = json.loads((tmp_path / "run" / "checkpoints" / "state.json").read_text())
    assert state["best"] == max(aucs) and state["best"] > min(aucs), aucs
    assert state["wait"] == len(aucs) - 1 - aucs.index(max(aucs))
    assert not trainer.stopped_early_ and len(aucs) == 4


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


@pytest.mark.parametrize("n_train, expected", [(240, 240), (256, 256)])
def test_timing_counts_the_jets_of_the_short_last_batch(n_train, expected):
    """samples_per_s counted batch_size jets for the epoch's short last batch too (240 jets in
    batches of 32 were counted as 256)."""
    run = types.SimpleNamespace(timer=None)
    steps = -(-n_train // 32)
    timing = cb.Timing(run, 32, n_train=n_train, steps_per_epoch=steps)
    timing.on_epoch_begin(0)
    for b in range(steps):
        timing.on_train_batch_begin(b)
        timing.on_train_batch_end(b)
    timing.on_epoch_end(0)
    assert run.timer.n_samples == expected
