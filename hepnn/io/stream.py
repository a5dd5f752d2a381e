"""Streaming ``tf.data`` pipeline: chunks -> split filter -> preprocessing -> shuffle -> batches.

Files are read in a seeded random order, chunks of up to ``cycle_length`` files are
interleaved, and a shuffle buffer of ``data.shuffle_buffer`` jets mixes them before
batching; memory stays bounded by the chunk size and the buffer. Chunks are read,
converted and standardised in a background thread (``read_ahead`` chunks ahead), so
reading overlaps training; whole numpy batches are handed to ``tf.data``.

Examples
--------
>>> import hepnn.io
>>> ds = hepnn.io.make_dataset("config.yaml", split="train", batch_size=256)   # doctest: +SKIP
>>> model.fit(ds, epochs=3)                                                   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import os
import queue
import sys
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .._plugin_settings import instance_settings, overridden_data_hooks, settings_fingerprint
from ..exceptions import HepnnError, PluginError, PluginOutputError
from .._optional import require
from .._tfdata import without_autotune
from .cache import ChunkCache, fingerprint
from .chunks import ReferencePlan, data_config, iterate_chunks
from .load import fit_preprocessing
from .._memory import bound_allocator
from .representations import input_kind
from .sources import is_url, resolve_files
from .selection import plugin_name
from .split import split_code

__all__ = ["make_dataset", "batches", "batch_runs", "read_ahead", "settings_key"]

logger = logging.getLogger("hepnn.io")


def _interleave(iterators: list[Iterator[dict]]) -> Iterator[dict]:
    active = list(iterators)
    while active:
        for it in list(active):
            try:
                yield next(it)
            except StopIteration:
                active.remove(it)


_DONE = object()

#: seconds the consumers of :func:`read_ahead` spent blocked waiting for the reader (all threads);
#: the trainer reports its growth per epoch as ``reader_wait_s`` (input-bound streaming)
READER_WAIT = {"seconds": 0.0}
_WAIT_LOCK = threading.Lock()


def read_ahead(iterator: Iterator, depth: int = 2, count_wait: bool = True) -> Iterator:
    """Run ``iterator`` in a background thread, up to ``depth`` items ahead of the consumer.

    Reading (decompression in uproot) and numpy conversion release the GIL for most of
    their time, so the next chunk is prepared while the model trains on the current one.
    Exceptions are re-raised in the consumer; closing the returned generator stops the thread.
    ``depth=0`` iterates in the calling thread. Time spent waiting is added to
    :data:`READER_WAIT` unless ``count_wait`` is False.

    Examples
    --------
    >>> list(read_ahead(iter(range(5))))
    [0, 1, 2, 3, 4]
    """
    if depth <= 0:
        yield from iterator
        return
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in iterator:
                if not put((item, None)):
                    return
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            put((_DONE, err))
            return
        put((_DONE, None))

    thread = threading.Thread(target=work, name="hepnn-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item, err = items.get_nowait()
            except queue.Empty:
                t0 = time.perf_counter()
                item, err = items.get()
                if count_wait:
                    with _WAIT_LOCK:
                        READER_WAIT["seconds"] += time.perf_counter() - t0
            if item is _DONE:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _array_keys(config: Any) -> list[str]:
    """The arrays a pass hands over: every input, then the masks of the masked ones."""
    return list(config.inputs) + [f"{n}_mask" for n, i in config.inputs.items() if input_kind(i).masked]


def chunk_cache(cache_dir: Any, config: Any, split: str | int | None = "train", preprocessing: Any = None,
                step_size: Any = None, analysis: Any = None, files: Any = None) -> ChunkCache | None:
    """The chunk cache of a streamed pass (None without ``cache_dir``).

    Its fingerprint is everything the processed chunks depend on: data config, split,
    preprocessing, chunk size, the arrays kept, the analysis plugin (its class and the
    source of the module defining it, so a cache written before a ``select`` or ``labels``
    hook was edited is not served), and the input files the config's patterns match with
    their sizes and modification times (a file written again, or one more file matching a
    glob, is read again instead of served stale). The
    training feed calls this too, so the cache the reader writes in epoch 0 is the one
    read afterwards; it passes ``files``, the :func:`file_stamps` taken when training
    started, so that later epochs read the cache even where the files are gone.

    The analysis plugin's instance settings enter the key through its
    :meth:`~hepnn.analysis.Analysis.cache_key` (default: a fingerprint of its public attributes,
    e.g. a cut threshold given to ``__init__``), when it has ``select`` or ``labels`` hooks: two
    instances of one class with different settings never share a cache. A plugin whose settings
    cannot be fingerprinted (``cache_key()`` gives None: an attribute that is an object, a model,
    a function) gets a cache for that instance only, in this process, and a warning in the log.

    Not in the key: the size and time of a file that cannot be stat-ed, which enters by name
    only (:func:`file_stamps`). Files given by URL in ``data.files`` (``root://``, ``https://``,
    ...) enter by their URL string only (the server is not asked), as do files on a remote file
    system without modification times, or passed in ``files`` by a caller: one rewritten under
    the same name or URL is served stale. Nor are settings an analysis plugin keeps
    in ``_``-prefixed attributes or outside the instance (unless its ``cache_key()`` covers
    them). After rewriting such a file or changing such a setting, remove ``cache_dir``.
    """
    if cache_dir is None:
        return None
    config = data_config(config)
    code = None if split is None else split_code(split)
    keys = _array_keys(config)
    plugin = _plugin_key(analysis)
    files = file_stamps(config) if files is None else files
    return ChunkCache(cache_dir, fingerprint(config, code, preprocessing, step_size, keys, plugin, files))


def _plugin_key(analysis: Any) -> tuple | None:
    """The analysis plugin as the cache sees it: its class name and a hash of the source of the
    module defining it (the ``select``/``labels`` hooks and what they call), so editing a hook
    invalidates a cache written with the old one; and, when it has data hooks, its settings
    (:func:`settings_key`)."""
    if analysis is None:
        return None
    return (*_class_key(type(analysis)), settings_key(analysis))


#: analysis plugin instance -> the token that stands for settings its cache_key() cannot fingerprint
_UNKNOWN_SETTINGS: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()
#: the same for plugin objects that cannot be weakly referenced: id -> (the object, kept alive, token)
_UNKNOWN_BY_ID: dict[int, tuple[Any, str]] = {}


def settings_key(analysis: Any) -> Any:
    """The part of the stream cache key that an analysis plugin instance's settings give.

    ``None`` for a plugin without ``select``/``labels`` hooks (its settings change no jet);
    else its :meth:`~hepnn.analysis.Analysis.cache_key` (for an object that is no
    :class:`~hepnn.analysis.Analysis`: a fingerprint of its public attributes, when plain data).
    When that is ``None`` (unknown), a token drawn once for this instance in this process: its
    cache serves this instance only, and a warning is logged naming the plugin.

    Raises
    ------
    PluginOutputError
        When ``cache_key()`` returns something that is not text or JSON data.
    PluginError
        When ``cache_key()`` raises.
    """
    if not overridden_data_hooks(analysis):
        return None
    hook = getattr(analysis, "cache_key", None)
    try:
        key = hook() if callable(hook) else settings_fingerprint(analysis)
    except HepnnError:
        raise
    except Exception as err:
        msg = f"analysis plugin {plugin_name(analysis)}: its cache_key() hook raised {type(err).__name__}: {err}"
        raise PluginError(msg) from err
    if key is None:
        return ["unknown settings", _instance_token(analysis)]
    try:
        json.dumps(key, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        msg = (f"analysis plugin {plugin_name(analysis)}: its cache_key() must return text or JSON data (or None), "
               f"received a {type(key).__name__} ({err})")
        raise PluginOutputError(msg) from None
    return key


def _instance_token(analysis: Any) -> str:
    """A random token that stays the same for ``analysis`` as long as it lives (logged once)."""
    try:
        token = _UNKNOWN_SETTINGS.get(analysis)
    except TypeError:  # not weakly referable, or unhashable: kept by id (and alive, so the id is not reused)
        token = _UNKNOWN_BY_ID.get(id(analysis), (None, None))[1]
    if token is not None:
        return token
    token = uuid.uuid4().hex
    _, odd = instance_settings(analysis)
    names = ", ".join(map(repr, odd))
    why = (f"its attribute {names} is not plain data" if len(odd) == 1 else
           f"its attributes {names} are not plain data" if odd else "its cache_key() returned None")
    logger.warning("stream cache: analysis plugin %s: %s, so its settings are not in the cache key; the cache "
                   "serves this instance only (define cache_key() returning text that changes with every setting "
                   "its select/labels hooks use, to share a cache across runs)", plugin_name(analysis), why)
    try:
        _UNKNOWN_SETTINGS[analysis] = token
    except TypeError:
        _UNKNOWN_BY_ID[id(analysis)] = (analysis, token)
    return token


@functools.lru_cache(maxsize=None)
def _class_key(cls: type) -> tuple:
    """:func:`_plugin_key` of a class, read once per process (the code that runs is the code imported):
    the source file of its module, and the source (else the byte code) of the methods it and its
    bases outside hepnn define (which covers a class whose module file cannot be found)."""
    digest = hashlib.sha256()
    own = [k for k in cls.__mro__ if k.__module__ != "hepnn" and not k.__module__.startswith("hepnn.")]
    functions = [v for k in own for _, v in sorted(vars(k).items()) if hasattr(v, "__code__")]
    for function in functions:
        try:
            digest.update(inspect.getsource(function).encode())
        except (OSError, TypeError):
            digest.update(function.__code__.co_code)
    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    try:
        digest.update(Path(path).read_bytes() if path else b"")
    except OSError:
        pass
    return f"{cls.__module__}.{cls.__qualname__}", digest.hexdigest()


def file_stamps(config: Any) -> list[tuple[str, int | None, int | None]]:
    """``(path, size, mtime_ns)`` of every input file of ``config`` (``None`` where it cannot be stat-ed).

    A local file enters by its real path; a URL (``root://``, ``https://``, ``file://``, ...:
    :func:`~hepnn.io.sources.is_url`) by its string as written, with size and time ``None``:
    the server is not asked, so a remote file rewritten in place under the same URL is not
    detected and the chunk cache must be removed by hand (delete ``cache_dir``).

    Examples
    --------
    >>> url = "root://eosuser.cern.ch//eos/user/j/jdoe/top.root"
    >>> file_stamps({"data": {"files": [{"path": url, "label": 0}, {"path": "https://host/b.root", "label": 1}]}})
    [('root://eosuser.cern.ch//eos/user/j/jdoe/top.root', None, None), ('https://host/b.root', None, None)]
    """
    config = data_config(config)
    return [file_stamp(source.path) for source in resolve_files(config)]


def file_stamp(path: str) -> tuple[str, int | None, int | None]:
    """``(name, size, mtime_ns)`` of one input file: see :func:`file_stamps`."""
    if is_url(path):
        return (path, None, None)
    try:
        st = os.stat(path)
    except OSError:
        return (os.path.realpath(path), None, None)
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns)


def batch_runs(config: Any, split: str | int | None = "train", batch_size: int = 256, preprocessing: Any = None,
               shuffle: bool = True, seed: int = 0, analysis: Any = None, cycle_length: int = 4,
               drop_remainder: bool = False, step_size: Any = None, read_ahead_chunks: int = 2,
               cache_dir: Any = None) -> Iterator[tuple[dict, np.ndarray, np.ndarray]]:
    """Like :func:`batches`, but consecutive batches of equal size come stacked as
    ``(n_batches, batch_size, ...)`` arrays: one hand-over per chunk instead of per batch.

    With ``data.skip_bad_files``, a file that fails part-way through (a corrupt basket after
    its first chunks) is skipped whole, as :func:`hepnn.io.load` skips it: none of its jets
    enter the pass or the cache. For that, each file's chunks are held back until the file
    has been read to the end, so memory grows by the chunks of up to ``cycle_length`` files
    (the files read interleaved) while the option is on; without it, chunks flow as read.
    """
    bound_allocator()
    config = data_config(config)
    code = None if split is None else split_code(split)
    rng = np.random.default_rng(seed)
    keys = _array_keys(config)
    cache = chunk_cache(cache_dir, config, split, preprocessing, step_size, analysis)
    if cache is not None and cache.is_complete() and (not shuffle or cache.info().get("n_files") is not None):
        # later passes: the processed chunks from disk, in the order the files would give them
        # (a cache that does not record its number of files, from an older hepnn, is written again)
        chunks = _cached_chunks(cache, rng, cycle_length) if shuffle else cache.read()
    else:
        files = list(enumerate(resolve_files(config)))
        # the dataset's first file, for files whose branches are guessed: found once per pass, not per file
        reference = ReferencePlan(config, files[0][1] if files else None)
        if shuffle:
            files = [files[i] for i in rng.permutation(len(files))]
        groups = [files[i:i + cycle_length] for i in range(0, len(files), cycle_length)] if shuffle else [files]
        n_files = len(files)

        def file_chunks(index: int, source: Any) -> Iterator[tuple[tuple[int, int], dict]]:
            its = iterate_chunks(config, analysis, step_size=step_size, files=[source], split=code,
                                 reference=reference)
            for j, chunk in enumerate(its):
                yield (index, j), chunk

        def read_files() -> Iterator[dict]:
            if cache is not None:
                cache.begin()
            for group in groups:
                its = [file_chunks(i, f) for i, f in group]
                for key, chunk in _interleave(its) if shuffle else (c for it in its for c in it):
                    chunk = {k: chunk[k] for k in keys + ["label", "weight"]}
                    if preprocessing is not None:
                        chunk = preprocessing.transform(chunk)
                    if cache is not None:
                        cache.add(key, chunk)
                    yield chunk
            if cache is not None:
                cache.finish(n_files)

        chunks = read_files()

    fields = keys + ["label", "weight"]
    if shuffle:
        pool = ShuffleBuffer(max(config.shuffle_buffer, batch_size), rng)
        for chunk in read_ahead(chunks, read_ahead_chunks):
            out = pool.add({k: chunk[k] for k in fields}, batch_size)
            if out is not None:
                yield _run(out, keys, 0, len(out["label"]), batch_size)
        rest = pool.drain()
        if rest is not None:
            n = len(rest["label"])
            full = n // batch_size * batch_size
            if full:
                yield _run(rest, keys, 0, full, batch_size)
            if n > full and not drop_remainder:
                yield _run(rest, keys, full, n, n - full)
        return
    buffer: dict | None = None
    for chunk in read_ahead(chunks, read_ahead_chunks):
        chunk = {k: chunk[k] for k in fields}
        buffer = chunk if buffer is None else {k: np.concatenate([buffer[k], chunk[k]]) for k in fields}
        n = len(buffer["label"])
        if n < batch_size:
            continue
        n_out = n // batch_size * batch_size
        yield _run(buffer, keys, 0, n_out, batch_size)
        buffer = {k: v[n_out:] for k, v in buffer.items()}
    if buffer is not None and len(buffer["label"]) and not drop_remainder:
        n = len(buffer["label"])
        yield _run(buffer, keys, 0, n, n)


def _cached_chunks(cache: ChunkCache, rng: np.random.Generator, cycle_length: int) -> Iterator[dict]:
    """A shuffled pass's chunks from a complete ``cache`` in the order reading the files gives them:
    the files permuted by ``rng`` (drawn now, before the shuffle buffer's draws), interleaved
    ``cycle_length`` at a time. The batches then equal those of the uncached pass with the same seed."""
    info, by_file = cache.info(), cache.by_file()
    order = rng.permutation(info["n_files"]).tolist()
    groups = [order[i:i + cycle_length] for i in range(0, len(order), cycle_length)]

    def one_file(index: int) -> Iterator[dict]:
        for path in by_file.get(index, []):
            yield cache.read_chunk(path, info["fields"])

    def chunks() -> Iterator[dict]:
        for group in groups:
            yield from _interleave([one_file(i) for i in group])

    return chunks()


class ShuffleBuffer:
    """A shuffle buffer over chunks of rows: every row leaves in a uniformly random order.

    :meth:`add` puts a chunk in; once the buffer holds at least ``capacity`` rows it
    returns a random subset of whole batches (in random order), keeping
    ``capacity - batch_size`` or more rows. It copies only the rows that move (the
    chunk and the rows taken out), not the whole buffer: the holes the taken rows leave
    are filled with the chunk's other rows. Draws come from ``rng`` only, in order, so a
    seeded generator gives the same batches every time.

    Examples
    --------
    >>> buf = ShuffleBuffer(4, np.random.default_rng(0))
    >>> buf.add({"x": np.arange(3)}, 2) is None
    True
    >>> out = buf.add({"x": np.arange(3, 6)}, 2)
    >>> len(out["x"]), len(buf)     # whole batches out, capacity - batch_size rows kept
    (4, 2)
    >>> sorted(out["x"].tolist() + buf.drain()["x"].tolist())
    [0, 1, 2, 3, 4, 5]
    """

    def __init__(self, capacity: int, rng: np.random.Generator):
        self.capacity = int(capacity)
        self.rng = rng
        self._store: dict[str, np.ndarray] = {}
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def _reserve(self, chunk: dict, rows: int) -> None:
        if not self._store:
            self._store = {k: np.empty((max(rows, self.capacity), *v.shape[1:]), v.dtype) for k, v in chunk.items()}
            return
        have = len(next(iter(self._store.values())))
        if rows > have:
            size = max(rows, 2 * have)
            for k, v in self._store.items():
                grown = np.empty((size, *v.shape[1:]), v.dtype)
                grown[:self._n] = v[:self._n]
                self._store[k] = grown

    def add(self, chunk: dict, batch_size: int) -> dict | None:
        """Add ``chunk`` (dict of equal-length arrays); return whole batches of random rows, or None."""
        m = len(next(iter(chunk.values())))
        n, total = self._n, self._n + m
        if total < self.capacity:
            self._reserve(chunk, total)
            for k, v in chunk.items():
                self._store[k][n:total] = v
            self._n = total
            return None
        n_out = (total - (self.capacity - batch_size)) // batch_size * batch_size
        pick = self.rng.permutation(total)[:n_out]
        in_buffer = pick < n
        from_chunk = ~in_buffer
        buffer_rows, chunk_rows = pick[in_buffer], pick[from_chunk] - n
        taken = np.sort(buffer_rows)  # holes left in the buffer
        left = np.ones(m, bool)
        left[chunk_rows] = False
        rest = np.flatnonzero(left)  # chunk rows that stay
        fill = min(len(taken), len(rest))
        new_n = n - len(taken) + len(rest)
        self._reserve(chunk, new_n)
        out = {}
        for k, v in chunk.items():
            store = self._store[k]
            out[k] = np.empty((n_out, *v.shape[1:]), v.dtype)
            out[k][in_buffer] = store[buffer_rows]
            out[k][from_chunk] = v[chunk_rows]
            store[taken[:fill]] = v[rest[:fill]]
            if len(rest) > fill:  # more chunk rows than holes: append
                store[n:new_n] = v[rest[fill:]]
        if len(taken) > fill:  # more holes than chunk rows: move the last rows into them
            holes = taken[fill:]
            keep_holes = holes[holes < new_n]
            tail = np.setdiff1d(np.arange(new_n, n), holes, assume_unique=True)
            for store in self._store.values():
                store[keep_holes] = store[tail]
        self._n = new_n
        return out if n_out else None

    def drain(self) -> dict | None:
        """The remaining rows in random order (the buffer is then empty), or None."""
        if not self._n:
            return None
        order = self.rng.permutation(self._n)
        out = {k: v[:self._n][order] for k, v in self._store.items()}
        self._n = 0
        return out


def _run(buffer: dict, keys: list, start: int, stop: int, size: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """Jets ``start:stop`` of the buffer as ``(n_batches, size, ...)`` arrays (views)."""

    def cut(v: np.ndarray) -> np.ndarray:
        return v[start:stop].reshape((stop - start) // size, size, *v.shape[1:])

    return {k: cut(buffer[k]) for k in keys}, cut(buffer["label"]), cut(buffer["weight"])


def batches(config: Any, split: str | int | None = "train", batch_size: int = 256, preprocessing: Any = None,
            shuffle: bool = True, seed: int = 0, analysis: Any = None, cycle_length: int = 4,
            drop_remainder: bool = False, step_size: Any = None, read_ahead_chunks: int = 2,
            cache_dir: Any = None) -> Iterator[tuple[dict, np.ndarray, np.ndarray]]:
    """Yield ``(inputs, label, weight)`` numpy batches (one pass over the data).

    Every jet of ``split`` is yielded exactly once. Chunks are prepared ``read_ahead_chunks``
    ahead in a background thread (0: in the calling thread); the batches do not depend on it.
    With ``cache_dir`` a completed pass is kept on disk and later passes read it (see
    :func:`make_dataset`).
    """
    for inputs, label, weight in batch_runs(config, split, batch_size, preprocessing, shuffle, seed, analysis,
                                            cycle_length, drop_remainder, step_size, read_ahead_chunks,
                                            cache_dir):
        for i in range(len(label)):
            yield {k: v[i] for k, v in inputs.items()}, label[i], weight[i]


def _signature(config: Any, tf: Any) -> tuple:
    spec = {}
    for name, inp in config.inputs.items():
        for key, (shape, dtype) in input_kind(inp).tensors(name, inp).items():
            spec[key] = tf.TensorSpec((None, *shape), getattr(tf, dtype))
    return spec, tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None,), tf.float32)


def make_dataset(config: Any, split: str | int | None = "train", batch_size: int = 256, preprocessing: Any = "fit",
                 shuffle: bool = True, seed: int = 0, analysis: Any = None, include_masks: bool = True,
                 step_size: Any = None, drop_remainder: bool = False, read_ahead_chunks: int = 2,
                 cache_dir: Any = None):
    """A ``tf.data.Dataset`` of ``(inputs_dict, label, weight)`` batches streamed from the files.

    Parameters
    ----------
    config : Config, DataConfig, mapping or path
    split : "train", "val", "test" or None (all jets)
    batch_size : int
    preprocessing : Preprocessor, "fit" or None
        Applied to every chunk; ``"fit"`` fits one on the training split first (one extra pass),
        ``None`` streams raw values.
    shuffle : bool
        Shuffle file order (per pass, from ``seed``) and jets through ``data.shuffle_buffer``.
    include_masks : bool
        Add ``<input>_mask`` for sequence inputs to the inputs dict.
    read_ahead_chunks : int
        Chunks read and converted ahead in a background thread while the model trains
        (0: read in the ``tf.data`` thread). Memory grows by about this many chunks.
    cache_dir : path, optional
        Keep the first complete pass's processed chunks in this folder (local disk) and
        read later passes from there instead of the ROOT files (see
        :mod:`hepnn.io.cache`): the same jets, shuffled anew every pass, at a fraction
        of the CPU cost. A pass read from the cache gives the same batches, in the same
        order, as reading the files with the same seed. Disk use: the pass's tensors, float32.
        A cache is reused only for the same data config, split, preprocessing, input files
        (sizes and times) and analysis plugin (code and settings, see
        :meth:`hepnn.analysis.Analysis.cache_key` and :func:`chunk_cache`).

    Returns
    -------
    tf.data.Dataset
        Each iteration is a fresh pass over the files (so ``model.fit(ds, epochs=n)`` works);
        batches are prefetched.
    """
    tf = require("tensorflow")
    config = data_config(config)
    if isinstance(preprocessing, str) and preprocessing == "fit":
        preprocessing = fit_preprocessing(config, analysis)
    inputs_spec, label_spec, weight_spec = _signature(config, tf)
    if not include_masks:
        inputs_spec = {k: v for k, v in inputs_spec.items() if not k.endswith("_mask") or k[:-5] not in config.inputs}
    epoch = {"n": 0}

    def generator():
        epoch["n"] += 1
        for inputs, label, weight in batch_runs(config, split, batch_size, preprocessing, shuffle,
                                                seed + epoch["n"], analysis, step_size=step_size,
                                                drop_remainder=drop_remainder, read_ahead_chunks=read_ahead_chunks,
                                                cache_dir=cache_dir):
            yield {k: inputs[k] for k in inputs_spec}, label, weight

    def stacked(spec: Any) -> Any:
        return tf.TensorSpec((None, *spec.shape), spec.dtype)

    # one generator element per run of batches (a Python hand-over per chunk, not per batch);
    # unbatch splits the leading axis back into batches inside tf.data
    signature = ({k: stacked(v) for k, v in inputs_spec.items()}, stacked(label_spec), stacked(weight_spec))
    ds = tf.data.Dataset.from_generator(generator, output_signature=signature).unbatch()
    return without_autotune(ds.prefetch(tf.data.AUTOTUNE))
