"""A training loop for ``MultiWorkerMirroredStrategy``.

Keras 3's ``model.fit`` does not run under ``MultiWorkerMirroredStrategy``
(keras-team/keras#20585), so multi-worker runs use this loop: the dataset is
sharded across workers by batch (``AutoShardPolicy.DATA``: ``experimental_distribute_dataset``
splits every batch of ``training.batch_size`` among the replicas, so the batch size is the global
one, as on one worker), each replica computes its share of the weighted loss scaled by the
size of the global batch it is part of, and the Keras
optimiser applies the all-reduced gradients. The loop reports the same history
columns as ``fit`` for the loss, and measures input wait and compute per step.
"""

from __future__ import annotations

import time
from typing import Any

from .._optional import require_keras
from .diagnostics import EpochTimer

__all__ = ["DistributedLoop"]


class DistributedLoop:
    """Train and validate a compiled Keras model under a ``tf.distribute`` strategy.

    Parameters
    ----------
    model : keras.Model
        Built and compiled inside ``strategy.scope()``.
    strategy : tf.distribute.Strategy
    loss : str
        Keras loss name (per-sample function from ``keras.losses.get``).
    task : str
        ``binary`` reshapes labels to the output shape.
    global_batch_size : int
    """

    def __init__(self, model, strategy, loss: str, task: str, global_batch_size: int):
        keras = require_keras()
        import tensorflow as tf

        self.model, self.strategy, self.task = model, strategy, task
        self.global_batch_size = global_batch_size
        loss_fn = keras.losses.get(loss)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        self.options = options

        def per_sample(y, pred, w):
            if task == "binary":
                y = tf.reshape(tf.cast(y, pred.dtype), tf.shape(pred))
            values = loss_fn(y, pred)
            values = tf.reshape(values, [-1])
            return values * tf.cast(tf.reshape(w, [-1]), values.dtype)

        def train_replica(x, y, w):
            with tf.GradientTape() as tape:
                pred = model(x, training=True)
                # without global_batch_size: this replica's batch x replicas in sync, the size of the
                # batch it was split from
                loss = tf.nn.compute_average_loss(per_sample(y, pred, w))
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            grads = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        def val_replica(x, y, w):
            pred = model(x, training=False)
            return tf.nn.compute_average_loss(per_sample(y, pred, w))

        @tf.function
        def train_step(batch):
            return strategy.reduce("SUM", strategy.run(train_replica, args=batch), axis=None)

        @tf.function
        def val_step(batch):
            return strategy.reduce("SUM", strategy.run(val_replica, args=batch), axis=None)

        self._train_step, self._val_step = train_step, val_step

    def _distribute(self, dataset):
        return self.strategy.experimental_distribute_dataset(dataset.with_options(self.options))

    def run_epoch(self, x, validation_data=None, on_step=None, start=None, **_: Any) -> tuple[dict, EpochTimer]:
        """One pass over dataset ``x``; returns ``({"loss": ..., "val_loss": ...}, timer)``.

        ``on_step(done, [loss sum, steps])`` is called after each step (``done`` counted from this
        call). ``start``: the ``[loss sum, steps]`` of the steps an interrupted epoch did before (a
        resumed step checkpoint), so the epoch's loss is the mean over all its steps.
        """
        timer = EpochTimer()
        total, steps = (float(start[0]), int(start[1])) if start else (0.0, 0)
        done = 0
        iterator = iter(self._distribute(x))
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                break
            t1 = time.perf_counter()
            total += float(self._train_step(batch))
            steps += 1
            done += 1
            timer.add_wait(t1 - t0)
            timer.add_compute(time.perf_counter() - t1, self.global_batch_size)
            if on_step is not None:
                on_step(done, [total, steps])
        logs = {"loss": total / max(steps, 1)}
        if validation_data is not None:
            val_total, val_steps = 0.0, 0
            for batch in self._distribute(validation_data):
                val_total += float(self._val_step(batch))
                val_steps += 1
            logs["val_loss"] = val_total / max(val_steps, 1)
        return logs, timer
