"""The ``tf.data`` options of every pipeline hepnn builds: no autotuning model thread.

With ``tf.data``'s autotuning on (TensorFlow's default), each iterator runs a model thread
that re-optimises the pipeline at growing intervals, and destroying the iterator waits
for that thread. Measured (TensorFlow 2.21, two ``hepnn run --jobs 2`` workers on two
cores): at the end of ``model.fit`` the training iterator's destruction waited 5-19 s
with both cores idle, in three runs out of five, while a run without the model thread
never did (``bench/README.md``, "The demo on two cores"). hepnn's pipelines have nothing
to tune: their parallelism is fixed (``parallel_reads``), and ``prefetch(AUTOTUNE)`` still
grows its buffer with its own (legacy) tuner when the model is off. The batches, and so the
numbers, are the same either way.

Examples
--------
>>> import tensorflow as tf  # doctest: +SKIP
>>> without_autotune(tf.data.Dataset.range(3)).options().autotune.enabled  # doctest: +SKIP
False
"""

from __future__ import annotations

from typing import Any

__all__ = ["without_autotune"]


def without_autotune(dataset: Any) -> Any:
    """``dataset`` with ``tf.data``'s autotuning model switched off (see the module docstring)."""
    import tensorflow as tf  # lazy: importing hepnn must not import TensorFlow

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
