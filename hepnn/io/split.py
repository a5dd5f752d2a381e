"""Deterministic train/val/test assignment from a hash of (file name, entry, jet, seed).

The assignment of a jet depends only on the base name of its file, its entry number,
its index within the entry and the seed: not on chunking, file order or the folder.
For a file read by URL (``root://host//eos/.../top.root``, ``https://host/top.root?token=...``)
the base name is the last part of the URL's path, without query or fragment, so a file
gets the same split read locally or remotely (and whatever token a signed URL carries).

Examples
--------
>>> import numpy as np
>>> from hepnn.io.split import assign_split
>>> s = assign_split("top.root", np.arange(1000), np.zeros(1000, int), (0.7, 0.1, 0.2), seed=42)
>>> s.dtype, sorted(set(s.tolist()))
(dtype('int8'), [0, 1, 2])
>>> bool((s == assign_split("/elsewhere/top.root", np.arange(1000), np.zeros(1000, int), (0.7, 0.1, 0.2), 42)).all())
True
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from ..exceptions import ConfigError, suggest
from .sources import is_url, url_file_name

__all__ = ["assign_split", "SPLITS", "split_code", "hash_uniform", "fold_key", "event_fold_key", "event_salt",
           "assign_fold", "file_base_name"]

#: split names in code order (0 train, 1 val, 2 test)
SPLITS = ("train", "val", "test")

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, vectorised on uint64."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def file_base_name(path: str) -> str:
    """The file name the split hash takes: the base name of a path, or of a URL's path (no query).

    Examples
    --------
    >>> file_base_name("/data/top.root"), file_base_name("root://eosuser.cern.ch//eos/user/j/jdoe/top.root")
    ('top.root', 'top.root')
    >>> file_base_name("https://host/top.root?token=abc")
    'top.root'
    """
    path = str(path)
    return url_file_name(path) if is_url(path) else os.path.basename(path)


def hash_uniform(file_name: str, entry: np.ndarray, jet: np.ndarray, seed: int) -> np.ndarray:
    """Uniform numbers in [0, 1) from (base name of file, entry, jet index, seed).

    ``file_name``: a path or URL; only :func:`file_base_name` of it is used.
    """
    base = file_base_name(file_name)
    digest = hashlib.blake2b(f"{base}|{int(seed)}".encode(), digest_size=8).digest()
    key = np.uint64(int.from_bytes(digest, "little"))
    entry = np.asarray(entry, dtype=np.int64).astype(np.uint64)
    jet = np.asarray(jet, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        h = _mix(_mix(entry ^ key) ^ (jet * _GOLDEN))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def assign_split(file_name: str, entry: np.ndarray, jet: np.ndarray, fractions, seed: int) -> np.ndarray:
    """Split code per jet: 0 train, 1 val, 2 test (``int8``).

    Parameters
    ----------
    file_name : str
        File path or URL; only its base name is used (:func:`file_base_name`).
    entry, jet : array of int
        Entry number in the file and index of the jet within the entry.
    fractions : (train, val, test)
    seed : int
    """
    u = hash_uniform(file_name, entry, jet, seed)
    train, val, _ = fractions
    out = np.full(u.shape, 2, dtype=np.int8)
    out[u < train + val] = 1
    out[u < train] = 0
    return out


def fold_key(file_name: str, entry: np.ndarray, jet: np.ndarray, seed: int) -> np.ndarray:
    """A stable 64-bit key per jet from (file base name, entry, jet index, seed), for k-fold assignment.

    Uses the split hash with another salt, so folds do not line up with the split.
    """
    u = hash_uniform(file_name, entry, jet, int(seed) + 7919)
    return (u * 9007199254740992.0).astype(np.uint64)


def event_fold_key(event: np.ndarray, seed: int) -> np.ndarray:
    """A stable 64-bit key per jet from its event number: all jets of an event share a fold.

    Examples
    --------
    >>> k = event_fold_key(np.array([7, 7, 8]), seed=42)
    >>> bool(k[0] == k[1]), bool(k[0] == k[2])
    (True, False)
    """
    with np.errstate(over="ignore"):
        return _mix(np.asarray(event, dtype=np.int64).astype(np.uint64) ^ event_salt(seed))


def event_salt(seed: int) -> np.uint64:
    """The salt :func:`event_fold_key` mixes into the event number (``splitmix64(event ^ salt)``)."""
    digest = hashlib.blake2b(f"event|{int(seed)}".encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def assign_fold(key: np.ndarray, n_folds: int) -> np.ndarray:
    """Fold index ``0 .. n_folds - 1`` of each key."""
    return (np.asarray(key, dtype=np.uint64) % np.uint64(n_folds)).astype(np.int8)


def split_code(name: str | int) -> int:
    """``"train"`` -> 0, ``"val"`` -> 1, ``"test"`` -> 2 (ints pass through)."""
    if isinstance(name, (int, np.integer)) and 0 <= int(name) <= 2:
        return int(name)
    if name not in SPLITS:
        msg = f"unknown split {name!r}{suggest(str(name), SPLITS)}; expected one of {', '.join(SPLITS)}"
        raise ConfigError(msg)
    return SPLITS.index(name)
