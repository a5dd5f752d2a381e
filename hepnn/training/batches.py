"""The training batches of many epochs as one Keras ``PyDataset``, so ``model.fit`` is called once.

Batch ``i`` (counted from the first epoch of the fit) is batch ``i mod n`` of epoch
``first + i // n``, and epoch ``e`` is the permutation :class:`~hepnn.training.feeds.InMemoryFeed`
draws from ``(seed, e)``: the batches do not depend on which ``fit`` call asks for them,
so a resumed run sees what an uninterrupted one would. The dataset reports no length
(``fit`` gets ``steps_per_epoch``), so Keras reads it as one stream across epochs and
its prefetching may run ahead into the next epoch without changing a batch. On TensorFlow
``fit`` gets :meth:`EpochBatches.tf_dataset`, the same batches in a ``tf.data`` pipeline
without the autotuning thread (:mod:`hepnn._tfdata`).
"""

from __future__ import annotations

import itertools

from .._optional import require_keras
from .._tfdata import without_autotune

keras = require_keras()

__all__ = ["EpochBatches"]


class EpochBatches(keras.utils.PyDataset):
    """Batches of ``feed`` for epochs ``first, first + 1, ...`` (see the module docstring)."""

    def __init__(self, feed, first: int):
        super().__init__()
        self.feed, self.first = feed, first
        self.steps = feed.steps_per_epoch()
        self._epoch, self._arrays = None, None

    @property
    def num_batches(self):
        return None  # one stream over all epochs; fit is given steps_per_epoch

    def __getitem__(self, index: int):
        epoch, step = self.first + index // self.steps, index % self.steps
        if epoch != self._epoch:
            self._epoch, self._arrays = epoch, self.feed.epoch_args(epoch)
        args, size = self._arrays, self.feed.batch_size
        part = slice(step * size, (step + 1) * size)
        return {n: x[part] for n, x in args["x"].items()}, args["y"][part], args["sample_weight"][part]

    def tf_dataset(self):
        """These batches as a ``tf.data`` pipeline (TensorFlow backend), with ``tf.data``'s
        autotuning model off (:mod:`hepnn._tfdata`): Keras' own pipeline for a ``PyDataset``
        keeps it on, and ``fit`` then waited up to 19 s at its end for the model thread."""
        import tensorflow as tf

        x, y, w = self[0]

        def spec(a):
            return tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype))

        def generate():
            for index in itertools.count():
                yield self[index]

        signature = ({n: spec(a) for n, a in x.items()}, spec(y), spec(w))
        ds = tf.data.Dataset.from_generator(generate, output_signature=signature)
        return without_autotune(ds.prefetch(tf.data.AUTOTUNE))
