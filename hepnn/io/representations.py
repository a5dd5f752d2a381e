"""Input kinds: flat features, padded and masked sequences, jet images.

:data:`REPRESENTATIONS` maps the ``kind`` of a ``data.inputs`` entry to its
:class:`InputKind` class: what the reader plans to read for it, how it builds the
arrays of a chunk, the shapes and feature names it gives. The reader
(:func:`hepnn.io.load`, :func:`hepnn.io.iterate`), the streaming path
(:func:`hepnn.io.make_dataset`), the tagger and the config loader all dispatch
through it, so a new kind is one class registered with :func:`register_input_kind`.
The array functions (:func:`flat_features`, :func:`pad_sequences`, :func:`jet_images`)
are vectorised: no Python loop over jets.

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

from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from ..config.schema import INPUT_CONFIGS, FlatInput, ImageInput, SequenceInput
from ..exceptions import ConfigError, InputDataError
from ..registry import Registry
from .derived import ELEMENTWISE, compute_derived, wrap_phi
from .images import jet_images
from .threads import in_threads, reader_threads

__all__ = [
    "REPRESENTATIONS", "InputKind", "register_input_kind", "input_kind", "mask_value", "flat_features", "pad_sequences",
    "jet_images", "sort_within_jets", "order_within_jets", "ElementRows",
    "DeferredElements", "DeferredRows", "standardise_padded",
]

#: registry of input kinds: ``kind`` of a ``data.inputs`` entry -> :class:`InputKind` subclass
REPRESENTATIONS = Registry("input kind")


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

    Jets whose elements are already in order (files often store constituents by pT) keep
    their order without being sorted; only the other jets go through the sort.

    Examples
    --------
    >>> sort_within_jets(np.array([3, 1]), np.array([1.0, 3.0, 2.0, 0.0])).tolist()
    [1, 2, 0, 3]
    """
    order = order_within_jets(counts, key, descending)
    return np.arange(len(key), dtype=np.int64) if order is None else order


def _ascending_key(key: np.ndarray, descending: bool) -> np.ndarray:
    """The float64 key of a stable ascending sort: negated for a descending order, NaN last."""
    key = np.asarray(key, dtype=np.float64)
    nan = np.isnan(key)
    if not nan.any():  # the usual case (the NaN policy has run): one pass fewer, no copy when ascending
        return -key if descending else key
    k = -key if descending else key.copy()
    k[nan] = np.inf
    return k


def order_within_jets(counts: np.ndarray, key: np.ndarray, descending: bool = True) -> np.ndarray | None:
    """Like :func:`sort_within_jets`, but ``None`` when every jet is already in order (no sort needed).

    A stable sort leaves a jet unchanged exactly when no element's key is below the one
    before it (after negation for a descending order, NaN last), so one comparison per
    element finds the jets in order; the others are sorted on their own.

    Examples
    --------
    >>> order_within_jets(np.array([2, 2]), np.array([3.0, 1.0, 5.0, 4.0])) is None
    True
    >>> order_within_jets(np.array([2, 2]), np.array([3.0, 1.0, 4.0, 5.0])).tolist()
    [0, 1, 3, 2]
    """
    counts = np.asarray(counts, dtype=np.int64)
    k = _ascending_key(key, descending)
    n = len(k)
    if n < 2:
        return None
    decrease = k[1:] < k[:-1]  # -0.0 and 0.0 compare equal, as in the sort
    starts = np.cumsum(counts)[:-1]
    decrease[starts[(starts > 0) & (starts < n)] - 1] = False  # pairs across a jet boundary
    if not decrease.any():
        return None
    jet = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    unsorted = np.zeros(len(counts), dtype=bool)
    unsorted[jet[:-1][decrease]] = True
    if unsorted.mean() > 0.5:
        return _sort_all(counts, k, jet)
    chosen = np.repeat(unsorted, counts)
    index = np.flatnonzero(chosen)
    sub_counts = counts[unsorted]
    order = np.arange(n, dtype=np.int64)
    # the chosen jets keep their relative positions, so their sorted order maps back one to one
    order[index] = index[_sort_all(sub_counts, k[index], np.repeat(np.arange(len(sub_counts), dtype=np.int64), sub_counts))]
    return order


def _sort_all(counts: np.ndarray, k: np.ndarray, jet: np.ndarray) -> np.ndarray:
    """Stable ascending sort of the float64 keys ``k`` (no NaN) inside each jet."""
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


#: jets per block of a jet-image input (a few MB of float64 pixels per block)
_JETS_PER_IMAGE_BLOCK = 1024

#: in-order elements: the features of all of them are computed (and the padding drops the ones past
#: ``max_length``) when at least this fraction is kept; below it only the kept ones are gathered first
_KEEP_ALL_ABOVE = 0.9

#: padded arrays of at least this many values are filled by a compiled loop (smaller ones by numpy:
#: they do not import numba)
_COMPILED_PAD_VALUES = 65_536
#: bytes a chunk holds per element while its images wait for :func:`hepnn.io.load` to build them
_DEFERRED_BYTES_PER_ELEMENT = 32


def _element_kernels():
    """The compiled padding loop (:mod:`hepnn.io._element_kernels`), imported on first use."""
    # lazy: numba's import costs half a second, which only large sequence inputs need
    from . import _element_kernels

    return _element_kernels


#: elements per thread below which the features of a sequence input are computed in one thread
_MIN_ELEMENTS_PER_THREAD = 250_000

#: elements whose features are computed at once: 65536 float64 values (512 kB) per temporary
_FEATURE_BLOCK = 65_536


def _threads(n_elements: int) -> int:
    """Threads for computing the features of ``n_elements`` (see :mod:`hepnn.io.threads`)."""
    return reader_threads(n_elements, _MIN_ELEMENTS_PER_THREAD)


def _features(n: int, n_features: int, compute: Callable, blocked: bool, values_of: Callable, group: Any,
              chunk: Any, where: str) -> np.ndarray:
    """The ``(n, n_features)`` float32 features of a chunk's elements in their order.

    ``blocked`` (every variable element by element): ``compute(lo, hi, out)`` on blocks of
    ``_FEATURE_BLOCK`` elements in threads (numpy releases the GIL), so every float64
    temporary is small (reused memory, in cache, not a fresh array per variable); else, and
    when a block finds a bad value, variable by variable over all elements
    (``values_of(var, is_branch)``), the pass whose error counts them all.
    """
    features = np.empty((n, n_features), dtype=np.float32)
    if blocked:
        starts = list(range(0, n, _FEATURE_BLOCK))
        try:
            in_threads(lambda lo, hi: compute(lo, hi, features[lo:hi]), starts,
                       [min(lo + _FEATURE_BLOCK, n) for lo in starts], threads=_threads(n))
            return features
        except InputDataError:
            pass
    for j, (var, is_branch) in enumerate(group.variables):
        features[:, j] = chunk.finite(values_of(var, is_branch), var, where, keep_float32=True)
    return features


#: below this many elements the sort key is computed at once (one array, no threads)
_KEY_BLOCKS_FROM = 4 * _FEATURE_BLOCK
#: sort keys of at most this magnitude pass the NaN policy unchanged (float32's largest value
#: is 3.4e38): a block with larger ones, NaN or infinities leaves the check to the whole key
_PLAIN_KEY = 3.0e38


def _in_order_by_blocks(elements: Any, m: Any, sort: tuple, where: str) -> bool:
    """Whether every jet's elements are already in the order of the sort key (True: no sort), from
    the key computed block by block in threads: files often store constituents in that order,
    and a derived key (``log_pt``) for all elements at once is several arrays as long as the
    chunk's elements (fresh memory, which costs more than the arithmetic).

    The same comparisons as :func:`order_within_jets` on the same values (built-in derived
    variables are element by element): True exactly when it would return None. False (the
    caller computes the whole key and sorts) where any block has a disorder, a key that the NaN
    policy would change (NaN, infinite, beyond float32's range), a branch or a non-element-wise
    key, or too few elements to be worth it.
    """
    var, is_branch, descending, absolute = sort
    n = int(elements.counts.sum())
    if is_branch or m is None or var not in ELEMENTWISE or n < _KEY_BLOCKS_FROM:
        return False
    # element i starts a jet: no comparison with the element before it
    starts = np.zeros(n + 1, dtype=bool)
    starts[np.asarray(elements.offsets[:-1], dtype=np.int64)] = True
    found = []  # a block with a disorder or an unusual key

    def check(lo: int, hi: int) -> None:
        if found:
            return
        stop = min(hi + 1, n)  # one element more: the pair across the block boundary
        key = np.asarray(compute_derived(var, m.take(slice(lo, stop)), stop - lo, f"{where}.sort_by"), dtype=np.float64)
        if absolute:
            key = np.abs(key)
        if not bool((np.abs(key) < _PLAIN_KEY).all()):
            found.append(lo)
            return
        # a stable ascending sort of the key (negated for a descending order) moves nothing exactly
        # when no element's key is below the one before it in its jet (-0.0 == 0.0, as the sort has them)
        later_first = key[1:] > key[:-1] if descending else key[1:] < key[:-1]
        if bool((later_first & ~starts[lo + 1:stop]).any()):
            found.append(lo)

    starts_of_blocks = list(range(0, n, _FEATURE_BLOCK))
    in_threads(check, starts_of_blocks, [min(lo + _FEATURE_BLOCK, n) for lo in starts_of_blocks], threads=_threads(n))
    return not found


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



class ElementRows:
    """The real elements of a sequence input before padding: what :func:`hepnn.io.load` asks the
    reader for (``pad=False``), so the standardisation passes over the elements only.

    ``features`` holds the elements jet by jet in their final order, ``counts`` how many each jet
    has; a jet may hold more than ``max_length``: the rows past its first ``max_length``
    (:meth:`dropped`) are left out by :meth:`jet_rows` and :meth:`pad`, so dropping them costs no
    separate gather. :meth:`pad` gives the reader's padded arrays.

    Examples
    --------
    >>> rows = ElementRows(np.array([[1.0], [2.0], [3.0], [4.0]], np.float32), np.array([3, 0, 1]), 2, -1.0)
    >>> x, mask = rows.pad()
    >>> x[..., 0].tolist(), mask.tolist()
    ([[1.0, 2.0], [-1.0, -1.0], [4.0, -1.0]], [[True, True], [False, False], [True, False]])
    >>> rows.dropped().tolist(), rows.jet_rows(np.array([True, False, False]))[:, 0].tolist()
    ([2], [1.0, 2.0])
    """

    def __init__(self, features: np.ndarray, counts: np.ndarray, max_length: int, pad_value: float):
        self.features, self.counts = features, np.asarray(counts, dtype=np.int64)
        self.max_length, self.pad_value = int(max_length), float(pad_value)
        self._dropped: np.ndarray | None = None

    def __len__(self) -> int:  # jets, as the padded array
        return len(self.counts)

    @property
    def n_features(self) -> int:
        """Values per element (the last axis of the padded array)."""
        return self.features.shape[-1] if self.features.ndim == 2 else 1

    def dropped(self) -> np.ndarray:
        """The rows past the first ``max_length`` of their jet (int64, ascending; few: only long
        jets have them), computed once."""
        if self._dropped is None:
            long = np.flatnonzero(self.counts > self.max_length)
            n_dropped = self.counts[long] - self.max_length
            first = (np.cumsum(self.counts) - self.counts)[long] + self.max_length
            # row first[i] + k for k < n_dropped[i]: one arange shifted jet by jet
            shift = first - (np.cumsum(n_dropped) - n_dropped)
            self._dropped = np.arange(int(n_dropped.sum()), dtype=np.int64) + np.repeat(shift, n_dropped)
        return self._dropped

    def kept(self) -> np.ndarray | None:
        """Boolean per row, False for :meth:`dropped` rows; ``None`` when every row is kept."""
        dropped = self.dropped()
        if not len(dropped):
            return None
        kept = np.ones(len(self.features), dtype=bool)
        kept[dropped] = False
        return kept

    def jet_rows(self, jets: np.ndarray) -> np.ndarray:
        """The kept rows of the elements of the jets where the boolean ``jets`` is True, in order."""
        return self.features[self.row_selection(jets)]

    def row_selection(self, jets: np.ndarray) -> np.ndarray:
        """Boolean per row: True for the kept rows of the jets where the boolean ``jets`` is True."""
        rows = np.repeat(jets, self.counts)
        rows[self.dropped()] = False
        return rows

    def with_features(self, features: np.ndarray) -> "ElementRows":
        """The same jets and counts with new (transformed) ``features``."""
        out = ElementRows(features, self.counts, self.max_length, self.pad_value)
        out._dropped = self._dropped
        return out

    def pad(self, mean: np.ndarray | None = None, scale: np.ndarray | None = None,
            out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(x, mask)`` as :func:`pad_sequences` gives them for these elements (kept rows only).

        With ``mean`` and ``scale`` (float64, one per feature) the kept rows are standardised on
        the way, ``(x - mean) / scale`` in float64 (the values
        :meth:`hepnn.preprocessing.Preprocessor.transform_elements` gives). ``out``: C-contiguous
        ``(x, mask)`` arrays of the right shapes to write into (rows of larger arrays, as
        :func:`hepnn.io.load` writes every chunk into one array); they are returned.
        """
        features = self.features if self.features.ndim == 2 else self.features[:, None]
        n_jets, max_length = len(self.counts), self.max_length
        if mean is not None or n_jets * max_length * features.shape[1] >= _COMPILED_PAD_VALUES:
            return self._pad_compiled(features, mean, scale, out)
        if out is not None:
            x, mask = self.pad()
            out[0][...], out[1][...] = x, mask
            return out
        dropped = self.dropped()
        if not len(dropped):
            return pad_sequences(self.counts, self.features, self.max_length, None, True, self.pad_value)
        # one scatter of every row: a dropped row goes to one spare slot after the last jet, cut off
        # (no gather of the kept rows first)
        counts, n_jets, max_length = self.counts, len(self.counts), self.max_length
        features = self.features if self.features.ndim == 2 else self.features[:, None]
        slot = np.repeat(np.arange(n_jets, dtype=np.int64) * max_length - (np.cumsum(counts) - counts), counts)
        slot += np.arange(len(slot), dtype=np.int64)
        slot[dropped] = n_jets * max_length
        shape = (n_jets * max_length + 1, features.shape[1])
        pad_value = self.pad_value
        x = np.zeros(shape, np.float32) if pad_value == 0 and not np.signbit(pad_value) else np.full(shape, pad_value, np.float32)
        x[slot] = features
        mask = np.arange(max_length)[None, :] < np.minimum(counts, max_length)[:, None]
        return x[:-1].reshape(n_jets, max_length, features.shape[1]), mask

    def _pad_compiled(self, features: np.ndarray, mean: np.ndarray | None, scale: np.ndarray | None,
                      out: tuple[np.ndarray, np.ndarray] | None = None):
        """:meth:`pad` by a compiled loop writing every slot once (jet blocks in threads)."""
        counts, n_jets, max_length = self.counts, len(self.counts), self.max_length
        offsets = np.zeros(n_jets + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        standardise = mean is not None
        n_features = features.shape[1]
        mean = np.zeros(n_features) if mean is None else np.ascontiguousarray(mean, dtype=np.float64)
        scale = np.ones(n_features) if scale is None else np.ascontiguousarray(scale, dtype=np.float64)
        x = np.empty((n_jets, max_length, n_features), dtype=np.float32) if out is None else out[0]
        features = np.ascontiguousarray(features)
        kernel = _element_kernels().pad_rows
        threads = min(_threads(int(offsets[-1])), max(n_jets, 1))
        bounds = np.linspace(0, n_jets, threads + 1).astype(np.int64).tolist()

        def fill(first: int, last: int) -> None:
            kernel(features, offsets, max_length, self.pad_value, mean, scale, standardise, x, first, last)

        in_threads(fill, bounds[:-1], bounds[1:], threads=threads)
        mask = np.less(np.arange(max_length)[None, :], np.minimum(counts, max_length)[:, None],
                       out=None if out is None else out[1])
        return x, mask

    @staticmethod
    def concatenate(parts: Sequence["ElementRows"]) -> "ElementRows":
        """The jets of ``parts`` one after the other."""
        first = parts[0]
        return ElementRows(np.concatenate([p.features for p in parts]), np.concatenate([p.counts for p in parts]),
                           first.max_length, first.pad_value)


def standardise_padded(x: np.ndarray, mask: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> None:
    """Standardise the real slots (``mask``) of the padded float32 ``x`` in place: ``(x - mean) /
    scale`` in float64, rounded to float32 (the values :meth:`ElementRows.pad` gives with ``mean``
    and ``scale``); padded slots keep their value. Large arrays by a compiled loop, jet blocks in
    threads.

    Examples
    --------
    >>> x = np.array([[[1.0], [3.0], [-1.0]]], np.float32)
    >>> standardise_padded(x, np.array([[True, True, False]]), np.array([2.0]), np.array([0.5]))
    >>> x[..., 0].tolist()
    [[-2.0, 2.0, -1.0]]
    """
    mean = np.ascontiguousarray(mean, dtype=np.float64)
    scale = np.ascontiguousarray(scale, dtype=np.float64)
    if x.size < _COMPILED_PAD_VALUES:
        with np.errstate(over="ignore", invalid="ignore"):
            x[mask] = (x[mask].astype(np.float64) - mean) / scale
        return
    kernel = _element_kernels().standardise_slots
    threads = min(_threads(x.shape[0] * x.shape[1]), max(len(x), 1))
    bounds = np.linspace(0, len(x), threads + 1).astype(np.int64).tolist()
    rows = x.reshape(len(x), -1)  # a view: every slot's features one after the other
    mean, scale = np.tile(mean, x.shape[1]), np.tile(scale, x.shape[1])
    in_threads(lambda first, last: kernel(rows, mask, mean, scale, first, last), bounds[:-1], bounds[1:], threads=threads)


class DeferredElements:
    """The elements of a sequence input whose features are not computed yet: what a sequence
    kind gives :func:`hepnn.io.load` (``chunk.pad`` False) when its features are element by
    element and already in order, so that :meth:`fill` writes them block by block straight into
    their padded rows of load's one array (no array of every element's features).

    ``compute(lo, hi, out)`` writes the float32 features of elements ``lo:hi`` (jet by jet, in
    their final order) into ``out``; ``rows()`` gives them all as :class:`ElementRows` (the same
    values; its pass over all elements raises the error of a bad value). ``counts`` and
    ``max_length`` are as in :class:`ElementRows`; rows past ``max_length`` are dropped.

    Examples
    --------
    >>> values = np.arange(5, dtype=np.float32)[:, None]
    >>> def compute(lo, hi, out):
    ...     out[:] = values[lo:hi]
    >>> rows = DeferredElements(np.array([3, 0, 2]), 1, 2, -1.0, compute,
    ...                         lambda: ElementRows(values, np.array([3, 0, 2]), 2, -1.0))
    >>> x, mask = np.empty((3, 2, 1), np.float32), np.empty((3, 2), bool)
    >>> rows.fill((x, mask))
    >>> x[..., 0].tolist(), mask.tolist()
    ([[0.0, 1.0], [-1.0, -1.0], [3.0, 4.0]], [[True, True], [False, False], [True, True]])
    """

    def __init__(self, counts: np.ndarray, n_features: int, max_length: int, pad_value: float,
                 compute: Callable[[int, int, np.ndarray], None], rows: Callable[[], ElementRows]):
        self.counts = np.asarray(counts, dtype=np.int64)
        self.n_features, self.max_length, self.pad_value = int(n_features), int(max_length), float(pad_value)
        self._compute, self._rows = compute, rows

    def __len__(self) -> int:  # jets, as the padded array
        return len(self.counts)

    def rows(self) -> ElementRows:
        """Every element's features (one array), as the reader gives them without deferring."""
        return self._rows()

    def fill(self, out: tuple[np.ndarray, np.ndarray]) -> None:
        """Write the padded ``(x, mask)`` into ``out`` (C-contiguous, shapes ``(n_jets, max_length,
        n_features)`` and ``(n_jets, max_length)``): the same arrays as ``rows().pad()``.

        Jets in blocks of about ``_FEATURE_BLOCK`` elements, in threads: each block's features
        into a small array (reused heap memory), then padded into its jets' rows by the compiled
        loop. A bad value found by a block: ``rows()`` raises the error over all elements."""
        counts, max_length, n_jets = self.counts, self.max_length, len(self.counts)
        x, mask = out
        if n_jets * max_length * self.n_features < _COMPILED_PAD_VALUES:
            self.rows().pad(out=out)  # small: numpy, no numba import
            return
        offsets = np.zeros(n_jets + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        n = int(offsets[-1])
        # a block starts at the jet holding each _FEATURE_BLOCK-th element (whole jets per block)
        firsts = np.searchsorted(offsets, np.arange(0, n, _FEATURE_BLOCK), side="right") - 1
        bounds = np.unique(np.concatenate([[0], firsts, [n_jets]])).tolist()
        kernel, zeros, ones = _element_kernels().pad_rows, np.zeros(self.n_features), np.ones(self.n_features)

        def block(first: int, last: int) -> None:
            lo, hi = int(offsets[first]), int(offsets[last])
            features = np.empty((hi - lo, self.n_features), dtype=np.float32)
            if hi > lo:
                self._compute(lo, hi, features)
            kernel(features, offsets[first:last + 1] - lo, max_length, self.pad_value, zeros, ones, False,
                   x[first:last], 0, last - first)

        try:
            in_threads(block, bounds[:-1], bounds[1:], threads=min(_threads(n), len(bounds) - 1))
        except InputDataError:
            self.rows().pad(out=out)  # raises, counting over all elements
            return
        np.less(np.arange(max_length)[None, :], np.minimum(counts, max_length)[:, None], out=mask)


class DeferredRows:
    """The array of one input for the jets of one chunk, not yet built: what a kind may give
    :func:`hepnn.io.load` (``chunk.pad`` False) so that every chunk is written straight into one
    array of all jets, without an array per chunk and their concatenation.

    ``fill(out)`` writes the ``(n_jets, *shape)`` rows into ``out``; :meth:`build` gives them as a
    new array (what the kind gives when it builds at once).

    Examples
    --------
    >>> rows = DeferredRows(2, (3,), np.float32, lambda out: out.fill(1.5))
    >>> big = np.zeros((4, 3), np.float32)
    >>> rows.fill(big[1:3])
    >>> big[:, 0].tolist(), rows.build().shape
    ([0.0, 1.5, 1.5, 0.0], (2, 3))
    """

    def __init__(self, n_jets: int, shape: tuple[int, ...], dtype: Any, fill: Callable[[np.ndarray], None]):
        self.n_jets, self.shape, self.dtype, self._fill = int(n_jets), tuple(shape), np.dtype(dtype), fill

    def __len__(self) -> int:  # jets, as the built array
        return self.n_jets

    def fill(self, out: np.ndarray) -> None:
        """Write the rows into ``out`` (shape ``(n_jets, *shape)``, this dtype, C-contiguous)."""
        self._fill(out)

    def build(self) -> np.ndarray:
        """The rows as a new array."""
        out = np.empty((self.n_jets, *self.shape), dtype=self.dtype)
        self._fill(out)
        return out


# --- input kinds ----------------------------------------------------------------------


class InputKind:
    """One kind of model input: what the reader reads for it and the arrays it builds.

    Subclass, set :attr:`config` (a frozen config dataclass with a ``kind`` field) and
    register with :func:`register_input_kind`; nothing else in hepnn needs to change.
    An instance is stateless; :func:`input_kind` returns one for a config entry.

    A kind reads either jet-level columns (:meth:`jet_variables`, as ``flat``) or, with
    ``elements = True``, one per-element collection (constituents, tracks) whose branches
    :meth:`plan` lists on the group the reader passes it.
    """

    #: the name in ``data.inputs.<name>.kind`` (set by :func:`register_input_kind`)
    name: ClassVar[str] = ""
    #: the config dataclass of one ``data.inputs`` entry of this kind
    config: ClassVar[type] = type(None)
    #: True when the kind reads a per-element collection (constituents or tracks)
    elements: ClassVar[bool] = False
    #: True when the kind also gives ``<input>_mask`` (True for real elements)
    masked: ClassVar[bool] = False

    def jet_variables(self, inp: Any) -> Sequence[str]:
        """Jet-level branches this input reads (one value per jet)."""
        return ()

    def plan(self, group: Any, inp: Any, resolve: Callable[[str, str], bool], where: str) -> None:
        """Fill the reader's ``group`` for an element kind.

        ``group.variables`` takes ``(name, is_branch)`` pairs (``resolve(var, where)`` says
        whether ``var`` is a branch or a registered derived variable), ``group.sort``
        ``(name, is_branch, descending, absolute)``, ``group.charge`` a branch and
        ``group.needs_momentum`` whether :meth:`build` needs the element four-momenta.
        """

    def build(self, name: str, inp: Any, chunk: Any) -> dict[str, np.ndarray]:
        """The arrays of input ``name`` for the jets of one chunk: ``{name: x[, name_mask: mask]}``.

        ``chunk`` gives ``chunk.jets`` (jet-level columns), ``chunk.elements(name)``
        (:class:`~hepnn.io.layouts.Elements` of this input), ``chunk.momenta(name, elements)``
        (their four-momenta with the jet axis), ``chunk.group(name)`` (the planned group)
        and ``chunk.finite(values, var, where, keep_float32=False)`` (the NaN policy). Where
        ``chunk.pad`` is False (:func:`hepnn.io.load`), ``x`` may be an :class:`ElementRows` (no
        mask) or a :class:`DeferredRows`, which load writes into its one array of all jets.
        """
        raise NotImplementedError(f"input kind {self.name!r} does not define build()")

    def shape(self, inp: Any) -> tuple[int, ...]:
        """Shape of one jet's array (without the jet axis)."""
        return (len(self.feature_names(inp)),)

    def tensors(self, name: str, inp: Any) -> dict[str, tuple[tuple[int, ...], str]]:
        """Every array the input gives: key -> (shape of one jet, dtype name)."""
        out = {name: (tuple(self.shape(inp)), "float32")}
        if self.masked:
            out[f"{name}_mask"] = (tuple(self.shape(inp))[:1], "bool")
        return out

    def feature_names(self, inp: Any) -> list[str]:
        """Names along the last axis (variables, or image channels)."""
        return list(getattr(inp, "variables", ()))

    def pad_value(self, inp: Any) -> float | None:
        """Value of padded slots (masked kinds), else ``None``."""
        return None

    def fit_rows(self, name: str, inp: Any, chunk: Mapping[str, np.ndarray], train: np.ndarray) -> dict:
        """The values of the training jets the standardisation is fitted on (empty: not standardised)."""
        return {}


def register_input_kind(name: str) -> Callable[[type], type]:
    """Class decorator: register an :class:`InputKind` subclass as input kind ``name``.

    Its ``config`` dataclass is registered with the config loader at the same time, so
    ``data.inputs.<x>: {kind: <name>, ...}`` is accepted and read through the class.

    Examples
    --------
    >>> from hepnn.io.representations import REPRESENTATIONS, input_kind
    >>> sorted(REPRESENTATIONS)
    ['flat', 'image', 'sequence']
    >>> input_kind({"kind": "sequence"}).masked
    True
    """

    def add(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, InputKind)):
            msg = f"register_input_kind({name!r}): expected a subclass of InputKind, received {cls!r}"
            raise TypeError(msg)
        if name in REPRESENTATIONS and REPRESENTATIONS.get(name) is not cls:
            msg = f"an input kind named {name!r} is already registered ({REPRESENTATIONS.get(name)!r}); choose another name"
            raise ValueError(msg)
        cls.name = name
        if name not in INPUT_CONFIGS or INPUT_CONFIGS.get(name) is not cls.config:
            INPUT_CONFIGS.register(name, cls.config)
        REPRESENTATIONS.register(name, cls)
        return cls

    return add


def mask_value(inputs: Mapping[str, Any], names: Sequence[str] | None = None) -> float:
    """The pad value shared by the masked inputs among ``names`` (default: all) of ``data.inputs``.

    Raises
    ------
    ConfigError
        When two masked inputs of one model have different pad values.

    Examples
    --------
    >>> mask_value({"t": {"kind": "sequence", "pad_value": -1.0}, "j": {"kind": "flat"}})
    -1.0
    """
    values = set()
    for n in inputs if names is None else names:
        inp = inputs[n]
        kind = input_kind(inp)
        if kind.masked:
            values.add(float(inp.get("pad_value", 0.0)) if isinstance(inp, Mapping) else kind.pad_value(inp))
    if len(values) > 1:
        msg = f"data.inputs: sequence inputs of one model must share pad_value, received {sorted(values)}"
        raise ConfigError(msg)
    return values.pop() if values else 0.0


def input_kind(inp: Any) -> InputKind:
    """The :class:`InputKind` of a ``data.inputs`` entry (config object, mapping or kind name)."""
    kind = inp if isinstance(inp, str) else (inp.get("kind", "flat") if isinstance(inp, Mapping) else inp.kind)
    return REPRESENTATIONS.get(kind)()


@register_input_kind("flat")
class FlatKind(InputKind):
    """Jet-level variables -> ``(n_jets, n_features)`` float32 (:func:`flat_features`)."""

    config = FlatInput

    def jet_variables(self, inp: Any) -> Sequence[str]:
        return tuple(inp.variables)

    def build(self, name: str, inp: Any, chunk: Any) -> dict[str, np.ndarray]:
        where = f"data.inputs.{name}"
        cols = {v: chunk.finite(chunk.jets[v], v, where) for v in inp.variables}
        return {name: flat_features(cols, list(inp.variables))}

    def fit_rows(self, name: str, inp: Any, chunk: Mapping[str, np.ndarray], train: np.ndarray) -> dict:
        return {name: chunk[name][train]} if name in chunk else {}


@register_input_kind("sequence")
class SequenceKind(InputKind):
    """Elements -> ``(n_jets, max_length, n_features)`` float32 plus a mask (:func:`pad_sequences`)."""

    config = SequenceInput

    elements = True
    masked = True

    def plan(self, group: Any, inp: Any, resolve: Callable[[str, str], bool], where: str) -> None:
        for j, var in enumerate(inp.variables):
            group.variables.append((var, resolve(var, f"{where}.variables[{j}]")))
        if inp.sort_by is not None:
            s = inp.sort_by
            group.sort = (s.variable, resolve(s.variable, f"{where}.sort_by"), s.descending, s.absolute)
        derived = any(not b for _, b in group.variables) or (group.sort is not None and not group.sort[1])
        group.needs_momentum = derived or bool(group.radius)

    def shape(self, inp: Any) -> tuple[int, ...]:
        return (inp.max_length, len(inp.variables))

    def pad_value(self, inp: Any) -> float | None:
        return float(inp.pad_value)

    def build(self, name: str, inp: Any, chunk: Any) -> dict[str, np.ndarray]:
        where = f"data.inputs.{name}"
        group, elements = chunk.group(name), chunk.elements(name)
        m = chunk.momenta(name, elements) if group.needs_momentum else None
        derived: dict[str, np.ndarray] = {}  # derived values computed once (the sort key is often a feature too)

        def values_of(var: str, is_branch: bool) -> np.ndarray:
            if is_branch:
                return elements.arrays[var]
            if var not in derived:
                derived[var] = compute_derived(var, m, int(elements.counts.sum()), where)
            return derived[var]

        order, truncate = None, False
        if group.sort is not None:
            var, is_branch, descending, absolute = group.sort
        if group.sort is not None and not _in_order_by_blocks(elements, m, group.sort, where):
            key = chunk.finite(values_of(var, is_branch), var, f"{where}.sort_by")
            if absolute:
                key = np.abs(key)
            order = order_within_jets(elements.counts, key, descending)  # None: every jet already in order
        if group.sort is not None:
            counts = elements.counts
            truncate = bool(len(counts)) and int(counts.max()) > inp.max_length
        elementwise = all(is_branch or var in ELEMENTWISE for var, is_branch in group.variables)
        if truncate and order is None and elementwise:
            # already in order: when few elements lie past max_length, computing their features
            # costs less than gathering every array of the rest, and the padding drops them (the
            # same values: every feature is element by element); when many do (30 of ~60
            # constituents), the features of the kept ones alone are cheaper
            n_all = int(counts.sum())
            truncate = int(np.minimum(counts, inp.max_length).sum()) < _KEEP_ALL_ABOVE * n_all
        if truncate:
            # keep only the elements that survive truncation, in their sorted order, before
            # computing the features (same values and order as sorting and truncating afterwards)
            n_kept = np.minimum(counts, inp.max_length)
            if order is None:  # the first n_kept of each jet: built over the kept elements only
                kept_starts = np.cumsum(n_kept) - n_kept
                kept = np.arange(int(n_kept.sum()), dtype=np.int64) + np.repeat(elements.offsets[:-1] - kept_starts, n_kept)
            else:
                rank = np.arange(len(key), dtype=np.int64) - np.repeat(elements.offsets[:-1], counts)
                kept = order[rank < inp.max_length]
            elements = elements.take(kept, n_kept)
            m = m.take(kept) if m is not None else None
            # built-in derived variables are element by element: their values carry over
            derived = {k: v[kept] for k, v in derived.items() if k in ELEMENTWISE}
            order = None
        # float32 from the start: the padded tensor is float32 and every value is rounded once either way
        n, n_features = int(elements.counts.sum()), len(group.variables)

        def compute(lo: int, hi: int, out: np.ndarray) -> None:  # elements lo:hi into out, on their own momenta
            part = m.take(slice(lo, hi)) if m is not None else None
            for j, (var, is_branch) in enumerate(group.variables):
                values = (elements.arrays[var] if is_branch else derived[var] if var in derived else None)
                values = compute_derived(var, part, hi - lo, where) if values is None else values[lo:hi]
                out[:, j] = chunk.finite(values, var, where, keep_float32=True)

        blocked = elementwise and m is not None
        if (blocked and order is None and not getattr(chunk, "pad", True)
                and not getattr(chunk.config, "skip_bad_files", False)):
            # load pads every chunk into one array: the features go block by block straight into
            # their padded rows (no array of every element's features: fresh memory, which costs
            # more than the arithmetic); an error is raised when load fills them (a file that
            # skip_bad_files may skip is built here, so that its error comes while it is read)
            return {name: DeferredElements(elements.counts, n_features, inp.max_length, inp.pad_value, compute,
                                           lambda: ElementRows(_features(n, n_features, compute, blocked, values_of, group,
                                                                         chunk, where),
                                                               elements.counts, inp.max_length, inp.pad_value))}
        features = _features(n, n_features, compute, blocked, values_of, group, chunk, where)
        if order is not None:  # jets out of order, none truncated: one gather puts every jet in order
            features = features[order]
        if not getattr(chunk, "pad", True):  # the elements themselves (load pads after standardising)
            # every row: the ones past max_length are left out by the fit's gather and the padding
            return {name: ElementRows(features, elements.counts, inp.max_length, inp.pad_value)}
        counts = elements.counts
        if len(counts) and int(counts.min()) == inp.max_length and int(counts.max()) == inp.max_length:
            # every jet fills every slot (constituents truncated to max_length): the rows are the
            # padded array already, no scatter (``features`` is this call's own array)
            x = features.reshape(len(counts), inp.max_length, features.shape[1])
            return {name: x, f"{name}_mask": np.ones(x.shape[:2], dtype=bool)}
        # one scatter of every row (rows past max_length to a spare slot): no gather of the kept rows
        x, x_mask = ElementRows(features, counts, inp.max_length, inp.pad_value).pad()
        return {name: x, f"{name}_mask": x_mask}

    def fit_rows(self, name: str, inp: Any, chunk: Mapping[str, np.ndarray], train: np.ndarray) -> dict:
        if name not in chunk:
            return {}
        if isinstance(chunk[name], ElementRows):  # the same rows in the same order as from the padded array
            # every row as a sequence of one, masked: the fit selects (or gathers) the rows it needs
            value = chunk[name]
            return {name: value.features[:, None, :], f"{name}_mask": value.row_selection(train)[:, None]}
        x, mask = chunk[name], chunk.get(f"{name}_mask")
        mask = np.ones(x.shape[:2], dtype=bool) if mask is None else mask
        # the padded array with the real slots of training jets as its mask: the fit selects the
        # same rows in the same order as from the elements (no gathered copy)
        return {name: x, f"{name}_mask": mask & train[:, None]}


@register_input_kind("image")
class ImageKind(InputKind):
    """Elements -> jet images ``(n_jets, pixels, pixels, n_channels)`` float32 (:func:`jet_images`)."""

    config = ImageInput

    elements = True

    def plan(self, group: Any, inp: Any, resolve: Callable[[str, str], bool], where: str) -> None:
        charged = [c for c in inp.channels if "charged" in c or "neutral" in c]
        if charged and not inp.charge:
            msg = (f"{where}.channels: channel {charged[0]!r} needs the constituent charge; set {where}.charge "
                   "to the charge branch of the constituents (e.g. part_charge), or use the channels pt and multiplicity")
            raise ConfigError(msg)
        group.charge = inp.charge
        group.needs_momentum = True

    def shape(self, inp: Any) -> tuple[int, ...]:
        return (inp.pixels, inp.pixels, len(inp.channels))

    def feature_names(self, inp: Any) -> list[str]:
        return list(inp.channels)

    def build(self, name: str, inp: Any, chunk: Any) -> dict[str, np.ndarray]:
        where = f"data.inputs.{name}"
        group, elements = chunk.group(name), chunk.elements(name)
        m = chunk.momenta(name, elements)
        charge = elements.arrays[group.charge] if group.charge else None
        counts, offsets = elements.counts, elements.offsets

        def images(first: int, last: int, out: np.ndarray | None = None) -> np.ndarray:  # jets first:last
            lo, hi = int(offsets[first]), int(offsets[last])
            part = m if (lo, hi) == (0, int(offsets[-1])) else m.take(slice(lo, hi))
            rel_eta = chunk.finite(part.eta - part.jet("eta"), "rel_eta", where)
            rel_phi = chunk.finite(wrap_phi(part.phi - part.jet("phi")), "rel_phi", where)
            pt = chunk.finite(part.pt, "pt", where)
            return jet_images(
                counts[first:last], rel_eta, rel_phi, pt, None if charge is None else charge[lo:hi], pixels=inp.pixels,
                extent=inp.extent, channels=inp.channels, preprocess=inp.preprocess, center=inp.center, out=out,
            )

        threads = min(_threads(int(offsets[-1])), len(counts) // 2)
        power = getattr(inp, "intensity_power", 1.0)

        def fill(out: np.ndarray) -> None:  # the images of every jet of the chunk, into out
            if threads > 1 or len(counts) >= 2 * _JETS_PER_IMAGE_BLOCK:
                # every step of an image is jet by jet (sums over a jet's own elements, in order), so
                # blocks of jets (small enough for the CPU caches, in threads) give the same images;
                # an error is raised again by the serial pass
                n_blocks = max(threads, -(-len(counts) // _JETS_PER_IMAGE_BLOCK))
                bounds = np.linspace(0, len(counts), n_blocks + 1).astype(np.int64).tolist()
                try:
                    in_threads(lambda first, last: images(first, last, out=out[first:last]), bounds[:-1],
                               bounds[1:], threads=threads)
                except InputDataError:
                    images(0, len(counts), out=out)
            else:
                images(0, len(counts), out=out)
            if power != 1.0:
                np.maximum(out, 0.0, out=out)
                np.power(out, power, out=out, dtype=out.dtype)

        rows = DeferredRows(len(counts), self.shape(inp), np.float32, fill)
        # load writes the images of every chunk straight into one array (unless they are fitted), where
        # that holds less memory: until then the chunk's elements stay (about 32 bytes each)
        defer = not chunk.pad and not getattr(inp, "standardize", False)
        image_bytes = rows.dtype.itemsize * rows.n_jets * int(np.prod(rows.shape))
        defer = defer and image_bytes >= _DEFERRED_BYTES_PER_ELEMENT * int(offsets[-1])
        return {name: rows if defer else rows.build()}

    def fit_rows(self, name: str, inp: Any, chunk: Mapping[str, np.ndarray], train: np.ndarray) -> dict:
        return {name: chunk[name][train]} if getattr(inp, "standardize", False) and name in chunk else {}
