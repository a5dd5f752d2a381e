"""A training loop for ``MultiWorkerMirroredStrategy``.

Keras 3's ``model.fit`` does not run under ``MultiWorkerMirroredStrategy``
(keras-team/keras#20585), so multi-worker runs use this loop: the dataset is
sharded across workers by batch (``AutoShardPolicy.DATA``: ``experimental_distribute_dataset``
splits every batch of ``training.batch_size`` among the replicas, so the batch size is the global
one, as on one worker), each replica computes its share of the weighted loss scaled by the
size of the global batch it is part of, and the Keras
optimiser applies the all-reduced gradients. The loop reports the same history
columns as ``fit`` for the loss, with ``fit``'s values: the epoch's ``loss`` and ``val_loss``
are means over jets, ``sum(w * loss) / n_jets`` (each batch counts with its number of jets, so
a short last batch is not over-weighted), and measures input wait and compute per step.
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
            """The weighted loss terms, flat: one per jet, or one per slot or pixel row of an autoencoder
            (its per-jet weights broadcast over them, as ``fit`` broadcasts them)."""
            if task == "binary":
                y = tf.reshape(tf.cast(y, pred.dtype), tf.shape(pred))
            values = loss_fn(y, pred)
            w = tf.reshape(tf.cast(w, values.dtype), [-1] + [1] * (values.shape.rank - 1))
            return tf.reshape(values * w, [-1])

        def jet_sums(values, extra):
            """``(sum of the jets' loss terms + n_jets * extra, n_jets)`` of this replica's share: summed
            over replicas and batches, then divided, the mean over jets that ``fit`` logs."""
            n = tf.cast(tf.size(values), values.dtype)
            return tf.reduce_sum(values) + n * extra, n

        def train_replica(x, y, w):
            with tf.GradientTape() as tape:
                pred = model(x, training=True)
                values = per_sample(y, pred, w)
                # without global_batch_size: this replica's batch x replicas in sync, the size of the
                # batch it was split from
                loss = tf.nn.compute_average_loss(values)
                regularization = tf.add_n(model.losses) if model.losses else tf.zeros((), values.dtype)
                loss += tf.nn.scale_regularization_loss(regularization)
            grads = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
            # and the jets of this share, for the timer (a short last batch holds fewer than batch_size)
            return (*jet_sums(values, tf.cast(regularization, values.dtype)), tf.cast(tf.shape(w)[0], values.dtype))

        def val_replica(x, y, w):
            pred = model(x, training=False)
            values = per_sample(y, pred, w)
            regularization = tf.add_n(model.losses) if model.losses else tf.zeros((), values.dtype)
            return jet_sums(values, tf.cast(regularization, values.dtype))

        def reduced(per_replica):
            return tuple(strategy.reduce("SUM", part, axis=None) for part in per_replica)

        @tf.function
        def train_step(batch):
            return reduced(strategy.run(train_replica, args=batch))

        @tf.function
        def val_step(batch):
            return reduced(strategy.run(val_replica, args=batch))

        self._train_step, self._val_step = train_step, val_step

    def _distribute(self, dataset):
        return self.strategy.experimental_distribute_dataset(dataset.with_options(self.options))

    def run_epoch(self, x, validation_data=None, on_step=None, start=None, **_: Any) -> tuple[dict, EpochTimer]:
        """One pass over dataset ``x``; returns ``({"loss": ..., "val_loss": ...}, timer)``.

        Both losses are means over jets, as ``fit`` logs them: ``sum(w * loss) / n_jets`` (plus
        the regularisation losses), whatever the size of the last batch (an autoencoder's: over
        its loss terms, one per sequence slot or image row, as ``fit``'s).
        ``on_step(done, [loss sum, jets])`` is called after each step (``done`` counted from this
        call; ``loss sum``: the jets' weighted loss terms so far). ``start``: the ``[loss sum, jets]``
        of the steps an interrupted epoch did before (a resumed step checkpoint), so the epoch's
        loss is the mean over all its jets.
        """
        timer = EpochTimer()
        total, jets = (float(start[0]), int(start[1])) if start else (0.0, 0)
        done = 0
        iterator = iter(self._distribute(x))
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                break
            t1 = time.perf_counter()
            loss_sum, n, n_jets = self._train_step(batch)
            total += float(loss_sum)
            jets += int(round(float(n)))
            done += 1
            timer.add_wait(t1 - t0)
            timer.add_compute(time.perf_counter() - t1, int(round(float(n_jets))))
            if on_step is not None:
                on_step(done, [total, jets])
        logs = {"loss": total / max(jets, 1)}
        if validation_data is not None:
            val_total, val_jets = 0.0, 0
            for batch in self._distribute(validation_data):
                loss_sum, n = self._val_step(batch)
                val_total += float(loss_sum)
                val_jets += int(round(float(n)))
            logs["val_loss"] = val_total / max(val_jets, 1)
        return logs, timer
