"""A streaming pass kept on local disk: later passes read processed chunks, not ROOT files.

Streaming re-reads, decompresses, links, sorts and pads every jet in every epoch, on
the same CPU cores that train the model. :class:`ChunkCache` keeps what the first pass
produced (the chunks after the split filter and the preprocessing) in a folder; once a
pass has completed, the next passes read those chunks, so memory stays bounded by the
chunk size as before. The disk holds the training tensors (``jets x features x 4`` bytes).

Format: one file per chunk, ``chunks/FFFFFF-CCCCCCC.rows``, holding the chunk's arrays
one after the other as raw bytes (no header; widest dtypes first, so every array starts
aligned). The arrays' names, dtypes and per-jet shapes are in ``complete.json``; a
file's jet count is its size divided by the bytes per jet. TensorFlow reads this with
its own ops (``tf.io.read_file``, ``tf.io.decode_raw``): :meth:`ChunkCache.dataset`
is a pure ``tf.data`` pipeline, with no Python thread competing with training, and
:meth:`ChunkCache.read` gives the same chunks as numpy arrays. ``complete.json`` also
records the pass's number of input files, so :func:`hepnn.io.stream.batches` replays
the files' seeded order from the cache: a cached pass gives the batches of the uncached
pass with the same seed.

A cache is valid only for what wrote it: its ``fingerprint`` (data config, split,
preprocessing parameters, chunk size, the input files with their sizes and modification
times, the analysis plugin's code and its settings from
:meth:`hepnn.analysis.Analysis.cache_key`; see :func:`hepnn.io.stream.chunk_cache` for
what is not in it: files that cannot be stat-ed enter by name only) and the format are
stored in ``complete.json``, written last and atomically.
With ``data.skip_bad_files`` a file that fails part-way through the pass is skipped whole,
so none of its chunks are in the cache. A pass that stops early, a crash, or a different
fingerprint leaves no ``complete.json`` that matches, and the next pass reads the files
again and rewrites the cache.

Examples
--------
>>> ds = hepnn.io.make_dataset(config, "train", cache_dir="scratch/train_cache")   # doctest: +SKIP
>>> model.fit(ds, epochs=10)      # epoch 1 reads the ROOT files, epochs 2-10 the cache  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from .._fileio import atomic_path, atomic_write_text
from .._tfdata import without_autotune

__all__ = ["ChunkCache", "fingerprint", "FORMAT"]

#: the on-disk format written into ``complete.json`` (a cache in another format is rebuilt)
FORMAT = "rows-v2"
_SUFFIX = ".rows"


def fingerprint(*parts: Any) -> str:
    """A short stable hash of ``parts`` (anything with a deterministic ``repr`` or JSON form)."""
    text = json.dumps([_plain(p) for p in parts], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _plain(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return repr(obj)


def _layout(chunk: Mapping[str, np.ndarray]) -> list[list]:
    """``[[name, dtype, per-jet shape], ...]`` in file order: widest items first (alignment), then by name."""
    fields = [[k, np.asarray(v).dtype.str, list(np.shape(v)[1:])] for k, v in chunk.items()]
    return sorted(fields, key=lambda f: (-np.dtype(f[1]).itemsize, f[0]))


def _jet_bytes(field: Sequence) -> int:
    return np.dtype(field[1]).itemsize * math.prod(field[2])


class ChunkCache:
    """Processed chunks of one streaming pass in ``directory`` (see the module docs).

    Parameters
    ----------
    directory : path
        Created when the first chunk is written; should be on local disk.
    fingerprint : str
        What the chunks depend on (see :func:`fingerprint`).
    """

    def __init__(self, directory: str | os.PathLike, fingerprint: str):
        self.directory = Path(directory)
        self.fingerprint = fingerprint
        self._marker = self.directory / "complete.json"
        self._chunks = self.directory / "chunks"
        self._written = 0
        self._jets = 0
        self._fields: list[list] | None = None

    def __repr__(self) -> str:
        state = "complete" if self.is_complete() else "incomplete"
        return f"ChunkCache({str(self.directory)!r}, {state})"

    def _read_marker(self) -> dict:
        try:
            info = json.loads(self._marker.read_text())
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def is_complete(self) -> bool:
        """True when a full pass with this fingerprint (and this format) has been written, and its
        chunk files are all there with the sizes written (a truncated or missing one: False)."""
        info = self._read_marker()
        if info.get("fingerprint") != self.fingerprint or info.get("format") != FORMAT:
            return False
        paths = self.paths()
        return len(paths) == info.get("n_chunks") and sum(p.stat().st_size for p in paths) == info.get("bytes")

    def info(self) -> dict:
        """``complete.json``: format, fingerprint, n_chunks, n_jets, bytes, fields (empty when incomplete)."""
        return self._read_marker() if self.is_complete() else {}

    def paths(self) -> list[Path]:
        """Chunk files in canonical order (file index, chunk index), whatever order wrote them."""
        if not self._chunks.is_dir():
            return []
        return sorted(p for p in self._chunks.iterdir() if p.suffix == _SUFFIX and not p.name.startswith("."))

    # --- writing ------------------------------------------------------------------------

    def begin(self) -> None:
        """Start a new pass: remove whatever an earlier, incomplete or different pass left."""
        self.clear()
        self._chunks.mkdir(parents=True, exist_ok=True)
        self._written = self._jets = 0
        self._fields = None

    def add(self, key: tuple[int, int], chunk: Mapping[str, np.ndarray]) -> None:
        """Store one chunk under ``key`` = (file index, chunk index within the file)."""
        fields = _layout(chunk)
        if self._fields is None:
            self._fields = fields
        elif fields != self._fields:
            msg = f"stream cache {self.directory}: chunk {key} has arrays {fields}, the earlier ones {self._fields}"
            raise ValueError(msg)
        n = len(next(iter(chunk.values()))) if chunk else 0
        path = self._chunks / f"{key[0]:06d}-{key[1]:07d}{_SUFFIX}"
        with atomic_path(path, suffix=".part") as tmp:
            with open(tmp, "wb") as handle:
                for name, dtype, shape in fields:
                    array = np.ascontiguousarray(chunk[name], dtype=np.dtype(dtype))
                    if array.shape != (n, *shape):
                        msg = f"stream cache: array {name!r} has shape {array.shape}, expected {(n, *shape)}"
                        raise ValueError(msg)
                    array.tofile(handle)
        self._written += 1
        self._jets += n

    def finish(self, n_files: int | None = None) -> None:
        """Mark the pass complete (the marker is written last, atomically).

        ``n_files``: the number of input files of the pass (files without chunks included),
        kept so that :meth:`by_file` readers can replay the pass's file order.
        """
        size = sum(p.stat().st_size for p in self.paths())
        atomic_write_text(self._marker, json.dumps({
            "format": FORMAT, "fingerprint": self.fingerprint, "n_chunks": self._written, "n_jets": self._jets,
            "bytes": size, "fields": self._fields or [], "n_files": n_files,
        }))

    def clear(self) -> None:
        """Remove the cache folder."""
        shutil.rmtree(self.directory, ignore_errors=True)

    # --- reading ------------------------------------------------------------------------

    def _complete_info(self) -> dict:
        info = self.info()
        if not info:
            msg = f"stream cache {self.directory} is not complete (no matching complete.json): write a pass first"
            raise ValueError(msg)
        return info

    def order(self, rng: np.random.Generator | None = None) -> list[Path]:
        """The chunk files in canonical order, or permuted by ``rng``."""
        paths = self.paths()
        return paths if rng is None else [paths[i] for i in rng.permutation(len(paths))]

    def by_file(self) -> dict[int, list[Path]]:
        """The chunk files of each input file (by file index), each file's in chunk order."""
        out: dict[int, list[Path]] = {}
        for path in self.paths():
            out.setdefault(int(path.stem.split("-")[0]), []).append(path)
        return out

    def read(self, rng: np.random.Generator | None = None) -> Iterator[dict]:
        """Yield the cached chunks one at a time as numpy arrays: in canonical order, or permuted by ``rng``."""
        return self.read_paths(self.order(rng))

    def read_paths(self, paths: Sequence[Path]) -> Iterator[dict]:
        """Yield the chunks of ``paths`` (files of this cache) one at a time as numpy arrays, in that order."""
        fields = self._complete_info()["fields"]
        for path in paths:
            yield self.read_chunk(path, fields)

    @staticmethod
    def read_chunk(path: Path, fields: Sequence) -> dict:
        """One chunk file as numpy arrays; ``fields`` from :meth:`info` (checked complete by the caller)."""
        row = sum(_jet_bytes(f) for f in fields)
        raw = np.fromfile(path, dtype=np.uint8)
        n = raw.size // row if row else 0
        out, offset = {}, 0
        for name, dtype, shape in fields:
            size = n * _jet_bytes([name, dtype, shape])
            out[name] = raw[offset:offset + size].view(np.dtype(dtype)).reshape(n, *shape)
            offset += size
        return out

    def dataset(self, batch_size: int, keys: Sequence[str] | None = None, seed: int | None = None,
                shuffle_buffer: int = 0, passes: int | None = 1, parallel_reads: int = 2):
        """The cached pass as a ``tf.data.Dataset`` of dicts of batches, read by TensorFlow's own ops.

        Without ``seed``: the chunks in canonical order, batched. With ``seed``: the chunks
        in a random order, and the jets shuffled in consecutive blocks of ``shuffle_buffer``
        jets (rounded up to whole batches), both by TensorFlow's stateless random ops seeded
        by ``seed``: the same batches for the same seed, every jet once per pass, and no
        element-wise work (every step copies whole arrays). A pass's last batch may be short.

        Parameters
        ----------
        batch_size : int
        keys : names of the arrays to read (default: all)
        seed : int, optional
            Seed of the first pass; pass ``p`` uses ``seed + p``.
        shuffle_buffer : int
            Jets mixed together (at least one batch).
        passes : int or None
            Passes one after the other (``None``: without end; with a seed each pass is
            shuffled anew, and pass ``p`` equals the single pass of ``seed + p``).
        parallel_reads : int
            Chunk files read and decoded ahead, in TensorFlow's threads.

        Examples
        --------
        >>> ds = cache.dataset(256, keys=["jets", "label", "weight"], seed=3, shuffle_buffer=10000)  # doctest: +SKIP
        """
        import tensorflow as tf  # lazy: reading a cache with numpy must not import TensorFlow

        fields = self._complete_info()["fields"]
        row = sum(_jet_bytes(f) for f in fields)
        names = [f[0] for f in fields]
        wanted = set(names if keys is None else keys)
        unknown = sorted(wanted.difference(names))
        if unknown:
            msg = f"stream cache {self.directory}: no arrays {unknown}; it holds {names}"
            raise KeyError(msg)

        def decode(path):
            content = tf.io.read_file(path)
            n = tf.strings.length(content, unit="BYTE") // row if row else tf.constant(0)
            out, offset = {}, 0
            for name, dtype, shape in fields:
                size = _jet_bytes([name, dtype, shape])
                if name in wanted:
                    flat = tf.io.decode_raw(tf.strings.substr(content, n * offset, n * size),
                                            tf.as_dtype(np.dtype(dtype)))
                    out[name] = tf.reshape(flat, [-1, *shape])
                offset += size
            return out

        paths = tf.constant([str(p) for p in self.paths()], tf.string)
        block = -(-max(int(shuffle_buffer), batch_size) // batch_size) * batch_size

        def one_pass(pass_seed):
            files = paths
            if seed is not None:  # the chunk order of this pass
                files = tf.gather(paths, tf.random.experimental.stateless_shuffle(
                    tf.range(tf.shape(paths)[0]), seed=tf.stack([pass_seed, tf.constant(-1, tf.int64)])))
            ds = tf.data.Dataset.from_tensor_slices(files)
            ds = ds.map(decode, num_parallel_calls=max(1, parallel_reads), deterministic=True)
            if seed is not None:

                def mix(index, chunk):
                    n = tf.shape(next(iter(chunk.values())))[0]
                    order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.stack([pass_seed, index]))
                    return {k: tf.gather(v, order) for k, v in chunk.items()}

                ds = ds.rebatch(block).enumerate().map(mix)
            return ds.rebatch(batch_size)

        first = 0 if seed is None else int(seed)
        seeds = tf.data.Dataset.range(first, first + passes if passes is not None else 2**62)
        if passes == 1:
            return without_autotune(one_pass(tf.constant(first, tf.int64)))
        return without_autotune(seeds.flat_map(one_pass))
