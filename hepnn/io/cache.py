"""A streaming pass kept on local disk: later passes read processed chunks, not ROOT files.

Streaming re-reads, decompresses, links, sorts and pads every jet in every epoch, on
the same CPU cores that train the model. :class:`ChunkCache` keeps what the first pass
produced (the chunks after the split filter and the preprocessing, float32 ``.npy`` in
one uncompressed ``.npz`` per chunk) in a folder; once a pass has completed, the next
passes load those chunks one at a time, so memory stays bounded by the chunk size as
before. The disk holds the training tensors (``jets x features x 4`` bytes).

A cache is valid only for what wrote it: its ``fingerprint`` (data config, split,
preprocessing parameters, chunk size) is stored in ``complete.json``, written last and
atomically. A pass that stops early, a crash, or a different fingerprint leaves no
``complete.json`` that matches, and the next pass reads the files again and rewrites
the cache.

Examples
--------
>>> ds = hepnn.io.make_dataset(config, "train", cache_dir="scratch/train_cache")   # doctest: +SKIP
>>> model.fit(ds, epochs=10)      # epoch 1 reads the ROOT files, epochs 2-10 the cache  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from .._fileio import atomic_path, atomic_write_text

__all__ = ["ChunkCache", "fingerprint"]


def fingerprint(*parts: Any) -> str:
    """A short stable hash of ``parts`` (anything with a deterministic ``repr`` or JSON form)."""
    text = json.dumps([_plain(p) for p in parts], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _plain(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return repr(obj)


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

    def __repr__(self) -> str:
        state = "complete" if self.is_complete() else "incomplete"
        return f"ChunkCache({str(self.directory)!r}, {state})"

    def is_complete(self) -> bool:
        """True when a full pass with this fingerprint has been written."""
        try:
            info = json.loads(self._marker.read_text())
        except (OSError, ValueError):
            return False
        return info.get("fingerprint") == self.fingerprint and len(self.paths()) == info.get("n_chunks")

    def info(self) -> dict:
        """``complete.json``: fingerprint, n_chunks, n_jets, bytes (empty when incomplete)."""
        return json.loads(self._marker.read_text()) if self.is_complete() else {}

    def paths(self) -> list[Path]:
        """Chunk files in canonical order (file index, chunk index), whatever order wrote them."""
        if not self._chunks.is_dir():
            return []
        return sorted(p for p in self._chunks.iterdir() if p.suffix == ".npz" and not p.name.startswith("."))

    # --- writing ------------------------------------------------------------------------

    def begin(self) -> None:
        """Start a new pass: remove whatever an earlier, incomplete or different pass left."""
        self.clear()
        self._chunks.mkdir(parents=True, exist_ok=True)
        self._written = self._jets = 0

    def add(self, key: tuple[int, int], chunk: Mapping[str, np.ndarray]) -> None:
        """Store one chunk under ``key`` = (file index, chunk index within the file)."""
        path = self._chunks / f"{key[0]:06d}-{key[1]:07d}.npz"
        with atomic_path(path, suffix=".part.npz") as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **{k: np.asarray(v) for k, v in chunk.items()})
        self._written += 1
        self._jets += len(next(iter(chunk.values()))) if chunk else 0

    def finish(self) -> None:
        """Mark the pass complete (the marker is written last, atomically)."""
        size = sum(p.stat().st_size for p in self.paths())
        atomic_write_text(self._marker, json.dumps({
            "fingerprint": self.fingerprint, "n_chunks": self._written, "n_jets": self._jets, "bytes": size,
        }))

    def clear(self) -> None:
        """Remove the cache folder."""
        shutil.rmtree(self.directory, ignore_errors=True)

    # --- reading ------------------------------------------------------------------------

    def read(self, rng: np.random.Generator | None = None) -> Iterator[dict]:
        """Yield the cached chunks one at a time: in canonical order, or permuted by ``rng``."""
        paths = self.paths()
        order = range(len(paths)) if rng is None else rng.permutation(len(paths))
        for i in order:
            with np.load(paths[i]) as data:
                yield {k: data[k] for k in data.files}
