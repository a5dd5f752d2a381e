"""Where training batches come from: numpy arrays in memory, or the streaming ``tf.data`` pipeline.

Both give ``model.fit`` arguments for one epoch. The in-memory feed permutes the
training jets with a generator seeded by ``(seed, epoch)``; the streaming feed asks
the reader for a pass whose file order and shuffle buffer are seeded the same way.
With ``training.stream_cache`` the first epoch streams the files and keeps the
processed chunks (:class:`hepnn.io.cache.ChunkCache`); every later epoch is a pure
``tf.data`` pipeline over that cache (TensorFlow's file reads, a seeded block shuffle,
batching and prefetching in its own threads). Either way an interrupted run that
resumes sees the batches an uninterrupted one would, and ``skip_steps`` resumes in
the middle of an epoch.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .._tfdata import without_autotune
from ..exceptions import ConfigError, InputDataError
from ..io import make_dataset
from ..io.cache import ChunkCache
from ..io.stream import batches, chunk_cache, file_stamps

__all__ = ["InMemoryFeed", "StreamingFeed", "augment_images"]


def augment_images(x: dict, augment, rng: np.random.Generator) -> dict:
    """Flip each image input along eta (axis 1) and/or phi (axis 2) with probability 1/2 per jet.

    Other inputs pass unchanged. The same jet gets the same flips in every image input.

    Examples
    --------
    >>> from hepnn.config.schema import AugmentConfig
    >>> img = np.arange(8.0).reshape(2, 2, 2, 1)
    >>> out = augment_images({"image": img}, AugmentConfig(), np.random.default_rng(0))
    >>> sorted(np.unique(out["image"].sum(axis=(1, 2, 3))).tolist())
    [6.0, 22.0]
    """
    images = [n for n, v in x.items() if np.ndim(v) == 4]
    if not images:
        return x
    n = len(x[images[0]])
    flip_eta = rng.random(n) < 0.5 if augment.flip_eta else np.zeros(n, bool)
    flip_phi = rng.random(n) < 0.5 if augment.flip_phi else np.zeros(n, bool)
    out = dict(x)
    for name in images:
        img = np.array(x[name], copy=True)
        img[flip_eta] = img[flip_eta, ::-1]
        img[flip_phi] = img[flip_phi, :, ::-1]
        out[name] = img
    return out


class InMemoryFeed:
    """Training and validation arrays held in memory."""

    streaming = False

    def __init__(self, x_train, y_train, w_train, x_val, y_val, w_val, batch_size: int, seed: int, augment=None):
        self.augment = augment
        self.x_train, self.y_train, self.w_train = x_train, y_train, w_train
        self.x_val, self.y_val, self.w_val = x_val, y_val, w_val
        self.batch_size, self.seed = batch_size, seed
        self.n_train = len(w_train)
        if self.n_train == 0:
            msg = "no training jets: check data.files, data.cuts and data.split"
            raise InputDataError(msg)
        self.has_val = len(w_val) > 0
        self.input_shapes = {n: tuple(x.shape[1:]) for n, x in x_train.items()}
        self._val_dataset = None

    def steps_per_epoch(self) -> int:
        return -(-self.n_train // self.batch_size)

    def epoch_args(self, epoch: int, skip_steps: int = 0, as_dataset: bool = False) -> dict[str, Any]:
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.n_train)
        x_epoch = {n: x[perm] for n, x in self.x_train.items()}
        if self.augment is not None:  # the flips of the whole epoch, so a resumed epoch's jets get the same ones
            x_epoch = augment_images(x_epoch, self.augment, np.random.default_rng([self.seed, epoch, 1]))
        if skip_steps:  # a resumed epoch: the batches after the steps done
            rest = slice(skip_steps * self.batch_size, None)
            perm, x_epoch = perm[rest], {n: x[rest] for n, x in x_epoch.items()}
        if as_dataset:  # tf.distribute strategies shard a dataset, not a dict of numpy arrays
            import tensorflow as tf

            train = without_autotune(tf.data.Dataset.from_tensor_slices(
                (x_epoch, self.y_train[perm], self.w_train[perm])
            ).batch(self.batch_size))
            val = None
            if self.has_val:
                val = without_autotune(
                    tf.data.Dataset.from_tensor_slices((self.x_val, self.y_val, self.w_val)).batch(self.batch_size))
            return {"x": train, "validation_data": val, "shuffle": False}
        return {
            "x": x_epoch,
            "y": self.y_train[perm],
            "sample_weight": self.w_train[perm],
            "batch_size": self.batch_size,
            "shuffle": False,
            **self.validation_args(),
        }

    def fit_args(self, first: int) -> dict[str, Any]:
        """``model.fit`` arguments for every epoch from ``first`` on, in one call."""
        # lazy: keeps importing this module free of keras
        from .batches import EpochBatches

        import keras

        batches = EpochBatches(self, first)
        # on TensorFlow a tf.data pipeline of our own, without the autotuning thread (hepnn._tfdata)
        x = batches.tf_dataset() if keras.backend.backend() == "tensorflow" else batches
        return {"x": x, "steps_per_epoch": self.steps_per_epoch(), "shuffle": False, **self.validation_args()}

    def validation_args(self) -> dict[str, Any]:
        """The validation split for ``model.fit``, in batches of ``batch_size`` whichever way ``fit`` is called.

        On TensorFlow, one ``tf.data`` pipeline of ready batches made once: Keras would otherwise
        make its own pipeline from the arrays, whose iterator costs ~30 ms to start at every
        epoch's validation (a plain batched one 4 ms), more than the small models' whole
        validation pass. The batches are the same either way.
        """
        if not self.has_val:
            return {"validation_data": None}
        import keras

        if keras.backend.backend() != "tensorflow":
            return {"validation_data": (self.x_val, self.y_val, self.w_val), "validation_batch_size": self.batch_size}
        if self._val_dataset is None:
            import tensorflow as tf

            options = tf.data.Options()
            options.experimental_optimization.apply_default_optimizations = False  # nothing to gain, ~2 ms a pass
            options.autotune.enabled = False  # see hepnn._tfdata
            self._val_dataset = tf.data.Dataset.from_tensor_slices(
                (self.x_val, self.y_val, self.w_val)).batch(self.batch_size).with_options(options)
        return {"validation_data": self._val_dataset}


class StreamingFeed:
    """Batches streamed from the ROOT files through ``hepnn.io.make_dataset``.

    Supports per-class weights given as a mapping; ``class_weight: balanced`` and
    kinematic reweighting need the whole sample and are refused with a clear error.
    With ``cache_dir`` (``training.stream_cache``) epoch 0 streams the files and keeps
    its processed chunks on disk; every later epoch reads them through
    :meth:`ChunkCache.dataset <hepnn.io.cache.ChunkCache.dataset>` (TensorFlow ops only,
    no Python in the pipeline). A later epoch that finds no complete cache (a resumed run
    whose cache was removed) first writes it with one unshuffled pass, so its batches are
    those of an uninterrupted run.
    """

    streaming = True

    def __init__(self, config, names: list[str], classes: list[str], task: str, preprocessing, analysis=None,
                 cache_dir=None):
        tcfg = config.training
        if tcfg.class_weight == "balanced" or tcfg.reweight is not None:
            msg = ("training.streaming: class_weight 'balanced' and training.reweight need the whole sample in "
                   "memory; give class weights as a mapping ({signal: 2.0}) or set training.streaming: false")
            raise ConfigError(msg)
        if task == "autoencoder" or tcfg.train_classes:
            msg = "training.streaming: autoencoders and training.train_classes are supported in memory only"
            raise ConfigError(msg)
        import dataclasses

        # read only what the model takes: every epoch is a fresh pass over the files
        data = dataclasses.replace(config.data, inputs={n: config.data.inputs[n] for n in names})
        self.config = dataclasses.replace(config, data=data)
        self.names, self.classes = names, classes
        self.preprocessing, self.analysis = preprocessing, analysis
        self.batch_size, self.seed = tcfg.batch_size, tcfg.seed
        self.cache_dir = cache_dir
        # the input files as training starts: part of the cache's fingerprint, kept so that later
        # epochs read the cache whatever happens to the files meanwhile
        self._files = file_stamps(config.data) if cache_dir is not None else None
        self.class_weight = None
        if isinstance(tcfg.class_weight, Mapping):
            table = np.ones(len(classes), np.float32)
            for name, value in tcfg.class_weight.items():
                if name not in classes:
                    msg = f"training.class_weight.{name}: unknown class; classes are {', '.join(classes)}"
                    raise ConfigError(msg)
                table[classes.index(name)] = value
            self.class_weight = table
        probe = self._dataset("train", shuffle=False, seed=0)
        spec = probe.element_spec[0]
        self.input_shapes = {n: tuple(int(d) for d in spec[n].shape[1:]) for n in names}
        self.has_val = config.data.split.val > 0
        self.n_train = None
        # the validation jets are read once and kept (a small share): later epochs reuse them
        self._val = self._dataset("val", shuffle=False, seed=0).cache() if self.has_val else None

    def cache(self) -> ChunkCache | None:
        """The training pass's chunk cache (None without ``cache_dir``), with the reader's fingerprint.

        The fingerprint is the one :func:`hepnn.io.stream.batch_runs` gives a training pass
        of ``make_dataset`` (data config, split, preprocessing, chunk size, arrays, analysis):
        the cache the reader wrote in epoch 0 is the cache read afterwards.
        """
        return chunk_cache(self.cache_dir, self.config.data, "train", self.preprocessing, None, self.analysis,
                           files=self._files)

    @property
    def cached(self) -> bool:
        """Epochs after the first read the chunk cache (``training.stream_cache``)."""
        return self.cache_dir is not None

    def _cached(self, epoch: int, passes: int | None = 1):
        """Epochs ``epoch, epoch + 1, ...`` (``passes`` of them, None: no end) read from the
        cache by tf.data; the cache is written first when missing."""
        import tensorflow as tf

        cache = self.cache()
        if not cache.is_complete():
            # a resumed run without its cache: one unshuffled pass writes the same chunks epoch 0 wrote
            for _ in batches(self.config, "train", batch_size=self.batch_size, preprocessing=self.preprocessing,
                             shuffle=False, analysis=self.analysis, cache_dir=self.cache_dir):
                pass
        if self.n_train is None:
            self.n_train = cache.info()["n_jets"]
        ds = cache.dataset(self.batch_size, keys=[*self.names, "label", "weight"], seed=self.seed * 100003 + epoch,
                           shuffle_buffer=self.config.data.shuffle_buffer, passes=passes)
        names, table = self.names, self.class_weight
        table = None if table is None else tf.constant(table)

        def select(chunk):
            weight = chunk["weight"]
            if table is not None:
                weight = weight * tf.gather(table, tf.cast(chunk["label"], tf.int32))
            return {n: chunk[n] for n in names}, chunk["label"], weight

        return without_autotune(ds.map(select).prefetch(tf.data.AUTOTUNE))

    def _dataset(self, split: str, shuffle: bool, seed: int, cache_dir=None):
        ds = make_dataset(
            self.config, split=split, batch_size=self.batch_size, preprocessing=self.preprocessing,
            shuffle=shuffle, seed=seed, analysis=self.analysis, include_masks=False, cache_dir=cache_dir,
        )
        names = self.names
        table = self.class_weight

        import tensorflow as tf

        def select(inputs, label, weight):
            x = {n: inputs[n] for n in names}
            if table is not None:
                weight = weight * tf.gather(tf.constant(table), tf.cast(label, tf.int32))
            return x, label, weight

        return ds.map(select)

    def steps_per_epoch(self) -> int | None:
        return None

    def epoch_args(self, epoch: int, skip_steps: int = 0, as_dataset: bool = True) -> dict[str, Any]:
        if self.cache_dir is not None and epoch > 0:
            train = self._cached(epoch)
        else:
            train = self._dataset("train", shuffle=True, seed=self.seed * 100003 + epoch, cache_dir=self.cache_dir)
        if skip_steps:
            train = train.skip(skip_steps)
        return {"x": train, "validation_data": self._val, "shuffle": False}

    def fit_args(self, first: int, skip_steps: int = 0) -> dict[str, Any]:
        """``model.fit`` arguments for the cached epochs from ``first`` (>= 1) on, in one call.

        The epochs follow one another in one ``tf.data`` pipeline and ``fit`` gets
        ``steps_per_epoch``: Keras keeps one iterator across the epochs, so prefetching
        runs on into the next epoch, and every fit of cached epochs steps the same way
        (a resumed run trains as an uninterrupted one). With ``skip_steps``, the rest of
        epoch ``first`` only (its own ``fit``). Epoch ``e`` has the batches
        :meth:`epoch_args` gives for ``e``. Needs ``cache_dir``.
        """
        if not self.cached or first < 1:
            msg = f"StreamingFeed.fit_args: cached epochs need the stream cache and epoch >= 1 (received {first})"
            raise ValueError(msg)
        if skip_steps:
            train = self._cached(first).skip(skip_steps)
            steps = -(-self.n_train // self.batch_size) - skip_steps
        else:
            train = self._cached(first, passes=None)
            steps = -(-self.n_train // self.batch_size)
        return {"x": train, "steps_per_epoch": steps, "validation_data": self._val, "shuffle": False}
