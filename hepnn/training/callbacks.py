"""Training policy as Keras callbacks: one small stateful class per policy.

The trainer builds the list in :func:`policy_callbacks` and calls ``model.fit`` once;
each policy lives in its own class, as Keras keeps its own
(``keras.callbacks.EarlyStopping``, ``ReduceLROnPlateau``, ``BackupAndRestore``).
Policies that must survive a resume keep their state in the shared :class:`RunState`
(``checkpoints/state.json``), never in attributes alone.

Order matters: Keras calls the callbacks in list order, and at the end of an epoch
the history row is made first, the policies read it, and the checkpoint (the commit
point of the epoch) comes last. A new policy is one class here plus one line in
:func:`policy_callbacks`.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._faults import fault as _fault
from .._optional import require_keras
from ..exceptions import ConfigError, TrainingError, suggest
from .checkpoint import save_variables
from .diagnostics import INPUT_BOUND_SHARE, EpochTimer
from .optimizers import learning_rate_at

keras = require_keras()

__all__ = [
    "RunState", "LearningRate", "Timing", "FiniteLoss", "StepCheckpoint", "EpochHistory", "InputWaitWarning",
    "BestWeights", "PlateauDecay", "EarlyStop", "EpochHook", "EpochCheckpoint", "InputBoundWarning", "monitor_mode",
]

logger = logging.getLogger("hepnn.training")


class InputBoundWarning(RuntimeWarning):
    """Training spends a large share of its time waiting for input batches."""


@dataclass
class RunState:
    """What the policies share: the checkpointed ``state`` dict, the history and the epoch in progress."""

    state: dict
    history: list = field(default_factory=list)
    row: dict = field(default_factory=dict)
    timer: EpochTimer = field(default_factory=EpochTimer)
    stop_reasons: list = field(default_factory=list)

    def stop(self, model, reason: str) -> None:
        self.stop_reasons.append(reason)
        self.state["stopped_early"] = True
        model.stop_training = True


class LearningRate(keras.callbacks.Callback):
    """Set the learning rate of each epoch: the schedule's, or the plateau state's (``state["lr"]``)."""

    def __init__(self, run: RunState, base: float, schedule):
        super().__init__()
        self.run, self.base, self.schedule = run, base, schedule

    def on_epoch_begin(self, epoch, logs=None):
        plateau = self.schedule is not None and self.schedule.name == "plateau"
        lr = self.run.state["lr"] if plateau else learning_rate_at(epoch, self.base, self.schedule)
        self.model.optimizer.learning_rate.assign(lr)
        self.run.row = {"epoch": epoch + 1, "learning_rate": float(lr)}


class Timing(keras.callbacks.Callback):
    """Time between steps counts as waiting for input, time inside a step as compute.

    Each step counts ``batch_size`` jets; with ``n_train`` and ``steps_per_epoch`` known (in
    memory) the epoch's last, short batch counts the jets it has (``samples_per_s``).
    """

    def __init__(self, run: RunState, batch_size: int, reader_wait: Callable[[], float] | None = None,
                 n_train: int | None = None, steps_per_epoch: int | None = None):
        super().__init__()
        self.run, self.batch_size, self.reader_wait = run, batch_size, reader_wait
        self.short = 0  # jets the epoch's last batch lacks
        if n_train and steps_per_epoch:
            self.short = max(steps_per_epoch * batch_size - n_train, 0) % batch_size
        self._last = self._begin = 0.0
        self._reader_start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        import time

        self.run.timer = EpochTimer()
        self._last = time.perf_counter()
        self._reader_start = self.reader_wait() if self.reader_wait else 0.0

    def on_train_batch_begin(self, batch, logs=None):
        import time

        now = time.perf_counter()
        self.run.timer.add_wait(now - self._last)
        self._begin = now

    def on_train_batch_end(self, batch, logs=None):
        import time

        now = time.perf_counter()
        self.run.timer.add_compute(now - self._begin, self.batch_size)
        self._last = now

    def on_epoch_end(self, epoch, logs=None):
        # the epoch ends after its last batch (a stop takes effect at the epoch's end), which was short
        if self.short and self.run.timer.n_samples >= self.batch_size:
            self.run.timer.n_samples -= self.short

    def reader_wait_s(self) -> float | None:
        """Seconds the streaming input pipeline waited for the file reader this epoch (None in memory)."""
        return round(self.reader_wait() - self._reader_start, 3) if self.reader_wait else None


class FiniteLoss(keras.callbacks.Callback):
    """Stop training with a clear error as soon as the loss (or a weight) is NaN or infinite."""

    def __init__(self, learning_rate: float, checkpoints=None):
        super().__init__()
        self.learning_rate, self.checkpoints = learning_rate, checkpoints
        self.epoch, self.offset = 0, 0

    def begin(self, epoch: int, skip: int) -> None:
        self.epoch, self.offset = epoch, skip

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self.epoch:  # a later epoch of the same fit starts from step 0
            self.epoch, self.offset = epoch, 0

    def on_train_batch_end(self, batch, logs=None):
        self.check_logs({"loss": (logs or {}).get("loss")}, step=self.offset + batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        self.check_logs(logs, step=None)
        self.check_weights(self.model, step=None)

    def check_logs(self, logs, step: int | None) -> None:
        for key in ("loss", "val_loss"):
            value = (logs or {}).get(key)
            if value is None:
                continue
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if not np.isfinite(value):
                raise TrainingError(self._message(f"the training {key.replace('_', ' ')} became {value}", step))

    def check_weights(self, model, step: int | None) -> None:
        """The weights can turn NaN while the (clipped) loss stays finite: check them too."""
        for var in model.trainable_variables:
            if not np.all(np.isfinite(var.numpy())):
                raise TrainingError(self._message(f"the model weights ({var.path}) became NaN or infinite", step))

    def _message(self, what: str, step: int | None) -> str:
        where = f"epoch {self.epoch + 1}" + (f", step {step}" if step is not None else "")
        saved = self.checkpoints is not None and (Path(self.checkpoints) / "state.json").is_file()
        ckpt = f" (the last checkpoint in {self.checkpoints} is from before)" if saved else ""
        return (f"{what} at {where}: training stopped and no model was saved as finished{ckpt}. Lower "
                f"training.optimizer.learning_rate (now {self.learning_rate:g}) or check the inputs for NaN "
                "or infinite values, then train into a new --out (a run resumes only with its own config)")


class StepCheckpoint(keras.callbacks.Callback):
    """Checkpoints every N steps inside an epoch (``training.checkpoint_every_n_steps``).

    The saved state records the epoch in progress, the steps done and the metric
    accumulators; a resumed run skips those steps of the same epoch permutation and
    adds the accumulators back after its first step. A checkpoint due after step k is
    written when step k + 1 begins, so none is taken after the last step of an epoch:
    the end-of-epoch checkpoint (with that epoch's history row) covers it.
    """

    def __init__(self, run: RunState, save: Callable[[dict], None], every: int | None, guard: FiniteLoss,
                 steps_per_epoch: int | None = None):
        super().__init__()
        self.run, self.save, self.every, self.guard = run, save, every, guard
        self.steps_per_epoch = steps_per_epoch
        self.epoch, self.offset, self.pending, self.restore = 0, 0, None, None

    def begin(self, epoch: int, skip: int, metric_states: list | None = None) -> None:
        """Start epoch ``epoch`` with ``skip`` steps already done (a resumed step checkpoint)."""
        self.epoch, self.offset, self.pending, self.restore = epoch, skip, None, metric_states

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self.epoch:
            self.begin(epoch, 0)
        self.pending = None

    def on_train_batch_begin(self, batch, logs=None):
        self.flush()

    def on_train_batch_end(self, batch, logs=None):
        if self.restore is not None:
            self.restore_metrics()
        step = self.offset + batch + 1
        if self.every and step % self.every == 0:
            self.pending = step
        _fault("step", {"epoch": self.epoch, "step": step})

    def restore_metrics(self) -> None:
        """Add the saved metric accumulators to the current ones (the metrics accumulate sums,
        and a + b == b + a exactly, so the epoch ends with the uninterrupted run's values)."""
        saved, self.restore = self.restore, None
        variables = metric_variables(self.model)
        if saved is None or len(saved) != len(variables):
            return
        for var, value in zip(variables, saved):
            var.assign(var.numpy() + np.asarray(value, dtype=var.dtype))

    def flush(self) -> None:
        """Write the checkpoint due after the previous step (called when the next step begins)."""
        if self.pending is not None:
            step, self.pending = self.pending, None
            self._save(step)

    def on_step(self, steps_done: int, loss_sums: list | None = None) -> None:
        """Called after each step by loops without a begin hook (1-based count since the epoch (re)started;
        ``loss_sums``: the loop's ``[weighted loss sum, loss terms]`` of the epoch, saved as ``loop_loss``)."""
        step = self.offset + steps_done
        if self.every and step % self.every == 0 and step != self.steps_per_epoch:
            self._save(step, loss_sums)
        _fault("step", {"epoch": self.epoch, "step": step})

    def _save(self, step: int, loss_sums: list | None = None) -> None:
        self.guard.check_weights(self.model, step)  # never checkpoint a model whose weights are not finite
        partial = dict(self.run.state, epoch=self.epoch, step=step)
        partial["metric_states"] = [np.asarray(v.numpy()).tolist() for v in metric_variables(self.model)]
        if loss_sums is not None:  # the custom loop's running loss (it keeps no Keras metrics)
            partial["loop_loss"] = [float(loss_sums[0]), int(loss_sums[1])]  # the epoch's loss: their ratio
        self.save(partial)


class TensorBoardLog(keras.callbacks.Callback):
    """The run's epoch metrics in one TensorBoard log, however many ``fit`` calls the run takes.

    Keras's own ``TensorBoard`` callback opens new event files on every ``fit`` (streamed and
    mirrored runs call ``fit`` once per epoch, and the multi-worker loop calls none); this one
    keeps one writer per split (``train/``, ``validation/``) for the trainer's lifetime and
    writes ``epoch_<metric>`` scalars and the learning rate with the epoch as step, like Keras.
    :meth:`close` ends the log.
    """

    def __init__(self, log_dir: Any):
        super().__init__()
        self.log_dir = str(log_dir)
        self._writers: dict = {}

    def _writer(self, split: str) -> Any:
        import os

        import tensorflow as tf

        if split not in self._writers:
            self._writers[split] = tf.summary.create_file_writer(os.path.join(self.log_dir, split))
        return self._writers[split]

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        scalars: dict[str, dict[str, float]] = {}
        for key, value in (logs or {}).items():
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            scalars.setdefault(split, {})[f"epoch_{name}"] = float(value)
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and "epoch_learning_rate" not in scalars.get("train", {}):
            scalars.setdefault("train", {})["epoch_learning_rate"] = float(np.asarray(optimizer.learning_rate))
        for split, values in scalars.items():
            with self._writer(split).as_default():
                for name, value in values.items():
                    tf.summary.scalar(name, value, step=epoch)
            self._writer(split).flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


class EpochHistory(keras.callbacks.Callback):
    """The epoch's history row (logs, learning rate, timing); appended, tracked and logged."""

    def __init__(self, run: RunState, timing: Timing, epochs: int, log: Callable[[str], None], tracker=None):
        super().__init__()
        self.run, self.timing, self.epochs, self.log, self.tracker = run, timing, epochs, log, tracker

    def on_epoch_end(self, epoch, logs=None):
        row = self.run.row
        row.update({k: float(v) for k, v in (logs or {}).items()})
        row.update(self.run.timer.summary())
        wait = self.timing.reader_wait_s()
        if wait is not None:  # streaming: time the input pipeline waited for the file reader
            row["reader_wait_s"] = wait
            if row["epoch_time_s"] > 0:
                row["input_wait_share"] = round(max(row["input_wait_share"], wait / row["epoch_time_s"]), 4)
        self.run.history.append(row)
        if self.tracker is not None:
            self.tracker.log_epoch(row)
        self.log(format_row(row, self.epochs))


class InputWaitWarning(keras.callbacks.Callback):
    """Warn when an epoch spent more than ``INPUT_BOUND_SHARE`` of its time waiting for input."""

    def __init__(self, run: RunState, n_train: int | None, batch_size: int):
        super().__init__()
        self.run, self.enough = run, (n_train or 0) >= 20 * batch_size

    def on_epoch_end(self, epoch, logs=None):
        share = self.run.row.get("input_wait_share", 0.0)
        if share > INPUT_BOUND_SHARE and self.enough:
            warnings.warn(
                f"epoch {epoch + 1}: {share:.0%} of the time was spent waiting for input: "
                "training is input-bound (raise data.step_size or batch size; when streaming, set "
                "training.stream_cache: true, or train in memory with training.streaming: false)",
                InputBoundWarning, stacklevel=2,
            )


#: words in a monitored name that make higher values better (``early_stopping.mode: auto``);
#: the other quantities (losses, mae) are better lower
HIGHER_IS_BETTER = ("auc", "accuracy", "precision", "recall", "f1", "iou")


def monitor_mode(monitor: str, mode: str = "auto") -> str:
    """``"max"`` when higher values of ``monitor`` are better, else ``"min"`` (``mode`` other than
    ``"auto"`` is returned as it is).

    Examples
    --------
    >>> monitor_mode("val_auc"), monitor_mode("val_loss"), monitor_mode("val_mae", mode="max")
    ('max', 'min', 'max')
    """
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    return "max" if any(word in name for word in HIGHER_IS_BETTER) else "min"


def best_weights_name(epoch: int) -> str:
    """The file of the best weights found at ``epoch`` (1-based), named in ``state["best_weights"]``.

    Examples
    --------
    >>> best_weights_name(7)
    'best-000007.weights.npz'
    """
    return f"best-{epoch:06d}.weights.npz"


class BestWeights(keras.callbacks.Callback):
    """Track the best value of ``monitor`` (``state["best"]``, ``state["wait"]``: epochs without
    improvement) and, with ``restore_best_weights``, save those weights into the folder ``path``.

    The weights go to a file named after the epoch (:func:`best_weights_name`), which
    ``state["best_weights"]`` names: the epoch's checkpoint commits both at once, so a run killed
    before that commit never restores the weights of an epoch its history does not record.

    ``mode`` says which way is better (see :func:`monitor_mode`). A ``monitor`` that the epoch's
    logs lack is an error at the end of the first epoch, naming the logged quantities.
    """

    def __init__(self, run: RunState, monitor: str, min_delta: float = 0.0, path=None, mode: str = "auto"):
        super().__init__()
        self.run, self.monitor, self.min_delta, self.path = run, monitor, min_delta, path
        self.mode = monitor_mode(monitor, mode)

    def improved(self, current: float, best: float | None) -> bool:
        """True when ``current`` beats ``best`` by more than ``min_delta`` in the direction of ``mode``."""
        if not np.isfinite(current):
            return False
        if best is None:
            return True
        return current > best + self.min_delta if self.mode == "max" else current < best - self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        state = self.run.state
        current = self.run.row.get(self.monitor)
        if current is None:
            logged = sorted(logs if logs else self.run.row)
            msg = (f"training.early_stopping.monitor: {self.monitor!r} is not logged by this run"
                   f"{suggest(self.monitor, logged)}; it logs {', '.join(logged)}: monitor one of those")
            raise ConfigError(msg)
        if self.improved(current, state["best"]):
            state["best"], state["wait"] = current, 0
            if self.path is not None:
                self.path.mkdir(parents=True, exist_ok=True)
                state["best_weights"] = best_weights_name(epoch + 1)
                save_variables(self.path / state["best_weights"], self.model, optimizer=False)
        else:
            state["wait"] += 1


class PlateauDecay(keras.callbacks.Callback):
    """``schedule: plateau``: multiply ``state["lr"]`` by ``decay_rate`` every ``patience`` epochs
    without improvement (down to ``min_learning_rate``)."""

    def __init__(self, run: RunState, schedule):
        super().__init__()
        self.run, self.schedule = run, schedule

    def on_epoch_end(self, epoch, logs=None):
        state, s = self.run.state, self.schedule
        if state["wait"] and state["wait"] % s.patience == 0:
            state["lr"] = max(state["lr"] * s.decay_rate, s.min_learning_rate)


class EarlyStop(keras.callbacks.Callback):
    """Stop after ``patience`` epochs without improvement of the monitored value."""

    def __init__(self, run: RunState, monitor: str, patience: int):
        super().__init__()
        self.run, self.monitor, self.patience = run, monitor, patience

    def on_epoch_end(self, epoch, logs=None):
        if self.run.state["wait"] >= self.patience:
            self.run.stop(self.model, f"{self.monitor} did not improve for {self.patience} epochs")


class EpochHook(keras.callbacks.Callback):
    """``epoch_callback(epoch, row)`` after each epoch; True stops training (pruning by ``hepnn tune``)."""

    def __init__(self, run: RunState, function: Callable[[int, dict], bool]):
        super().__init__()
        self.run, self.function = run, function

    def on_epoch_end(self, epoch, logs=None):
        if self.function(epoch + 1, dict(self.run.row)):
            self.run.stop(self.model, "stopped by the epoch callback")


class EpochCheckpoint(keras.callbacks.Callback):
    """The end-of-epoch checkpoint, the commit point of an epoch: state, model and history."""

    def __init__(self, run: RunState, save: Callable[[dict], None], write_history: Callable[[list], Any],
                 log: Callable[[str], None]):
        super().__init__()
        self.run, self.save, self.write_history, self.log = run, save, write_history, log

    def on_epoch_end(self, epoch, logs=None):
        state = self.run.state
        state["epoch"] = epoch + 1
        state["history"] = self.run.history
        self.save(state)
        self.write_history(self.run.history)
        _fault("epoch", {"epoch": epoch + 1})
        if self.run.stop_reasons:
            self.log(f"stopping after epoch {epoch + 1}: {self.run.stop_reasons[0]}")


def metric_variables(model) -> list:
    return list(getattr(model, "metrics_variables", []))


def format_row(row, epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}"]
    for key in ("loss", "val_loss", "auc", "val_auc", "accuracy", "val_accuracy"):
        if key in row:
            parts.append(f"{key} {row[key]:.4g}")
    parts.append(f"{row['samples_per_s']:.0f} jets/s")
    parts.append(f"input wait {row['input_wait_share']:.0%}")
    return ", ".join(parts)
