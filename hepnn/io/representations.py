"""Representations: flat features, padded and masked sequences, jet images.

:data:`REPRESENTATIONS` maps the ``kind`` of a ``data.inputs`` entry to the function
that builds its array. All are vectorised: no Python loop over jets.

Examples
--------
>>> import numpy as np
>>> from hepnn.io.representations import pad_sequences
>>> x, mask = pad_sequences(np.array([2, 0, 1]), np.array([[1.0], [3.0], [5.0]]),
...                         max_length=2, sort_key=np.array([1.0, 3.0, 5.0]), pad_value=-1)
>>> x[..., 0].tolist(), mask.tolist()
([[3.0, 1.0], [-1.0, -1.0], [5.0, -1.0]], [[True, True], [False, False], [True, False]])
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..registry import Registry
from .images import jet_images

__all__ = ["REPRESENTATIONS", "flat_features", "pad_sequences", "jet_images", "sort_within_jets"]

#: registry of representations: input kind -> builder function
REPRESENTATIONS = Registry("representation")


@REPRESENTATIONS.register("flat")
def flat_features(jets: Mapping[str, np.ndarray], variables: Sequence[str]) -> np.ndarray:
    """Stack jet-level variables into ``(n_jets, n_features)`` float32.

    Examples
    --------
    >>> flat_features({"a": np.array([1, 2]), "b": np.array([3, 4])}, ["b", "a"]).tolist()
    [[3.0, 1.0], [4.0, 2.0]]
    """
    n = len(next(iter(jets.values()))) if jets else 0
    if not variables:
        return np.zeros((n, 0), dtype=np.float32)
    return np.stack([np.asarray(jets[v], dtype=np.float32) for v in variables], axis=1)


def _sortable_uint32(k32: np.ndarray) -> np.ndarray:
    """Order-preserving unsigned 32-bit codes of float32 ``k32`` (no NaN)."""
    bits = (k32 + np.float32(0.0)).view(np.uint32)  # + 0.0 turns -0.0 into +0.0 (they compare equal)
    # negative floats: flip every bit; positive: flip the sign bit
    return bits ^ ((np.uint32(0) - (bits >> np.uint32(31))) | np.uint32(0x80000000))


def sort_within_jets(counts: np.ndarray, key: np.ndarray, descending: bool = True) -> np.ndarray:
    """Permutation ordering elements by ``key`` inside each jet (stable; NaN keys last).

    Examples
    --------
    >>> sort_within_jets(np.array([3, 1]), np.array([1.0, 3.0, 2.0, 0.0])).tolist()
    [1, 2, 0, 3]
    """
    counts = np.asarray(counts, dtype=np.int64)
    jet = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    key = np.asarray(key, dtype=np.float64)
    k = -key if descending else key
    k = np.where(np.isnan(k), np.inf, k)
    if len(counts) < 2**31:
        # One stable sort on (jet, key rounded to float32) packed in 64 bits. Rounding to
        # nearest is monotonic, so the order is exact except among keys that round to the
        # same float32: if any such tie holds different float64 keys, sort exactly instead.
        codes = _sortable_uint32(k.astype(np.float32))
        composite = (jet.astype(np.uint64) << np.uint64(32)) | codes.astype(np.uint64)
        order = np.argsort(composite, kind="stable")
        ranked = composite[order]
        ties = ranked[1:] == ranked[:-1]
        if not ties.any():
            return order
        ranked_k = k[order]
        if np.array_equal(ranked_k[1:][ties], ranked_k[:-1][ties]):
            return order
    order = np.argsort(k, kind="stable")
    return order[np.argsort(jet[order], kind="stable")]


@REPRESENTATIONS.register("sequence")
def pad_sequences(
    counts: np.ndarray,
    features: np.ndarray,
    max_length: int,
    sort_key: np.ndarray | None = None,
    descending: bool = True,
    pad_value: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Sort, truncate and pad elements into ``(n_jets, max_length, n_features)`` plus a mask.

    Parameters
    ----------
    counts : int array (n_jets,)
        Elements per jet; ``features`` rows are grouped jet by jet in this order.
    features : array (n_elements, n_features)
    max_length : int
        Elements kept per jet (the first ones after sorting).
    sort_key : array (n_elements,), optional
        Sort elements within each jet by this key (stable); ``None`` keeps file order.
    descending : bool
    pad_value : float
        Value of every feature of padded slots.

    Returns
    -------
    x : float32 array (n_jets, max_length, n_features)
    mask : bool array (n_jets, max_length), True for real elements
    """
    counts = np.asarray(counts, dtype=np.int64)
    features = np.asarray(features)
    if features.ndim == 1:
        features = features[:, None]
    n_jets, n_features = len(counts), features.shape[1]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if n_jets else np.zeros(0, np.int64)
    shape = (n_jets * max_length, n_features)
    x = np.zeros(shape, np.float32) if pad_value == 0 and not np.signbit(pad_value) else np.full(shape, pad_value, np.float32)  # zeros: calloc, no fill pass
    if sort_key is None and (not n_jets or int(counts.max()) <= max_length):
        # every element is kept in its order: element i goes to slot i + (jet * max_length - start of jet)
        slot = np.arange(len(features), dtype=np.int64) + np.repeat(np.arange(n_jets, dtype=np.int64) * max_length - starts, counts)
        x[slot] = features
    else:
        jet = np.repeat(np.arange(n_jets, dtype=np.int64), counts)
        position = np.arange(len(jet), dtype=np.int64) - starts[jet]
        keep = position < max_length
        # slot (jet, position) of the sorted order takes element source[slot]: one gather, one scatter
        source = np.flatnonzero(keep) if sort_key is None else sort_within_jets(counts, sort_key, descending)[keep]
        x[jet[keep] * max_length + position[keep]] = features[source]
    mask = np.arange(max_length)[None, :] < np.minimum(counts, max_length)[:, None]
    return x.reshape(n_jets, max_length, n_features), mask


REPRESENTATIONS.register("image", jet_images)
