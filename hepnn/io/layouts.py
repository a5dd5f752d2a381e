"""File layouts: per-jet entries and per-event jet collections, and element-to-jet linking.

Everything here turns one chunk of awkward arrays into plain numpy: jet-level arrays
with one value per jet, and :class:`Elements` (constituents or tracks) grouped by jet
as flat arrays plus per-jet counts. Elements of a per-event collection are attached to
jets by an index branch (``Track_jetIdx``; negative values mean "no jet") or, when
nothing links them, to the nearest jet within ``dR < R``.

Examples
--------
>>> import numpy as np
>>> from hepnn.io.layouts import link_to_jets
>>> jet_of = link_to_jets(np.array([0, 1, -1, 0]), np.array([0, 0, 0, 1]),
...                       np.array([2, 1]), "Track_jetIdx", "f.root", 0)
>>> jet_of.tolist()   # global jet index; -1: not attached
[0, 1, -1, 2]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Sequence

import numpy as np

from ..exceptions import InputDataError
from .derived import wrap_phi

__all__ = [
    "Elements",
    "flatten_jagged",
    "scalar_branches",
    "link_to_jets",
    "associate_by_dr",
    "group_by_jet",
]


class _Gathered(Mapping):
    """``source[k][index]`` for every key, gathered on first access (``index=None``: as is)."""

    def __init__(self, source: Mapping[str, np.ndarray], index: np.ndarray | None):
        self._source, self._index, self._done = source, index, {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._done:
            values = np.asarray(self._source[key])
            self._done[key] = values if self._index is None else values[self._index]
        return self._done[key]

    def __iter__(self):
        return iter(self._source)

    def __len__(self) -> int:
        return len(self._source)


class Elements:
    """Elements grouped by jet: ``arrays[k]`` are flat, jet by jet; ``counts[i]`` per jet.

    Grouping, jet selection and truncation compose one index into the arrays as read; an
    array is gathered once, when it is first used (arrays no input uses, such as the link
    branch, never are).

    Examples
    --------
    >>> e = Elements(np.array([2, 1]), {"pt": np.array([5.0, 3.0, 4.0])})
    >>> e.select(np.array([False, True])).arrays["pt"].tolist()
    [4.0]
    """

    def __init__(self, counts: np.ndarray, arrays: Mapping[str, np.ndarray] | None = None,
                 index: np.ndarray | None = None):
        self.counts = counts
        self._source = dict(arrays or {})
        self._index = index
        self.arrays: Mapping[str, np.ndarray] = _Gathered(self._source, index)

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)

    def jet_index(self) -> np.ndarray:
        """Index of the owning jet for every element (int32 where it fits: an array as long as the
        elements, half the fresh memory of int64)."""
        dtype = np.int32 if len(self.counts) < 2**31 else np.int64
        return np.repeat(np.arange(len(self.counts), dtype=dtype), self.counts)

    def take(self, index: np.ndarray, counts: np.ndarray) -> "Elements":
        """The elements at ``index`` (into this object's elements), grouped by ``counts``."""
        return Elements(counts, self._source, index if self._index is None else self._index[index])

    def select(self, keep: np.ndarray) -> "Elements":
        """The elements of the jets where ``keep`` is True."""
        element_keep = np.repeat(keep, self.counts)
        index = np.flatnonzero(element_keep) if self._index is None else self._index[element_keep]
        return Elements(self.counts[keep], self._source, index)


def _numpy(array: Any) -> np.ndarray:
    import awkward as ak

    return ak.to_numpy(array) if isinstance(array, ak.Array) else np.asarray(array)


def scalar_branches(arrays: Any, names: Sequence[str], where: Mapping[str, str], path: str) -> dict[str, np.ndarray]:
    """One value per entry for each branch (per-jet layout); jagged branches are an error."""
    import awkward as ak

    out = {}
    for name in names:
        column = arrays[name]
        if column.ndim != 1:
            msg = (
                f"{path}: branch {name!r} (used by {where.get(name, 'the config')}) has a list per entry, "
                "but layout per_jet needs one value per jet; use layout: per_event or a jagged input"
            )
            raise InputDataError(msg)
        out[name] = ak.to_numpy(column)
    return out


def _counts_and_flat(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """Counts per entry (int64) and flattened contents of a jagged awkward array.

    For the layout uproot reads (a list-offset array of numbers) both come straight from the
    offsets and the contents buffer, without the generic ``ak.num`` and ``ak.flatten``
    (which give the same values).
    """
    import awkward as ak

    layout = column.layout
    if (isinstance(layout, ak.contents.ListOffsetArray) and isinstance(layout.content, ak.contents.NumpyArray)
            and layout.content.data.ndim == 1 and ak.backend(column) == "cpu"):
        offsets = np.asarray(layout.offsets.data).astype(np.int64, copy=False)
        data = np.asarray(layout.content.data)
        return np.diff(offsets), data[offsets[0]:offsets[-1]]
    return ak.to_numpy(ak.num(column, axis=1)).astype(np.int64), ak.to_numpy(ak.flatten(column, axis=1))


def _holds_none(column: Any) -> bool:
    """True when a jagged awkward array has None events or None elements (an option type)."""
    import awkward as ak

    form = getattr(column, "type", None)
    if form is None or "?" not in str(form) and "option[" not in str(form):
        return False  # no option type (what uproot reads): nothing to scan
    return bool(ak.any(ak.is_none(column, axis=0))) or bool(ak.any(ak.is_none(column, axis=1)))


def flatten_jagged(arrays: Any, names: Sequence[str], path: str, what: str, entry_start: int,
                   used_by: Mapping[str, str] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Counts per entry and flattened contents of jagged branches that must have equal lengths.

    ``used_by`` (branch -> config key) names, in errors, what uses a branch.

    Raises
    ------
    InputDataError
        When a branch is not jagged or two branches differ in length for some entry.
    """

    counts = None
    first = None
    out = {}
    for name in names:
        column = arrays[name]
        if column.ndim != 2:
            used = f", used by {used_by[name]}" if used_by and name in used_by and used_by[name] not in what else ""
            msg = f"{path}: branch {name!r} ({what}{used}) should hold one list per entry, found type {column.type}"
            if column.ndim == 1:
                msg += ("; it holds a single value per entry, where a list with one value per jet or element of "
                        "the collection is needed (per-entry values are not spread over the jets)")
            raise InputDataError(msg)
        if _holds_none(column):
            msg = (f"{path}: branch {name!r} ({what}) holds None (missing) entries, type {column.type}; hepnn needs "
                   "plain lists: select events with a boolean mask instead of ak.mask, or use ak.drop_none / "
                   "ak.fill_none first")
            raise InputDataError(msg)
        n, flat = _counts_and_flat(column)
        if counts is None:
            counts, first = n, name
        elif not np.array_equal(n, counts):
            bad = np.flatnonzero(n != counts)
            msg = (
                f"{path}: jagged branches {first!r} and {name!r} ({what}) have different lengths in "
                f"{len(bad)} entries (first at entry {entry_start + int(bad[0])}: {int(counts[bad[0]])} vs "
                f"{int(n[bad[0]])}); all branches of one collection must describe the same elements"
            )
            uses = [f"{b!r} is used by {used_by[b]}" for b in (first, name)
                    if used_by and b in used_by and used_by[b] not in what]
            if uses:
                msg += f" ({'; '.join(uses)})"
            if what == "the jet collection":
                msg += ("; jet-level settings (data.cuts, data.label, data.weight, data.spectators, flat inputs) take "
                        "one value per jet of the jet collection, or one per event: values of another collection "
                        "(tracks, constituents) belong in a sequence or image input")
            raise InputDataError(msg)
        out[name] = flat
    if counts is None:
        counts = np.zeros(len(arrays), dtype=np.int64)
    return counts, out


def whole_numbers(values: np.ndarray) -> np.ndarray:
    """Per value: True where it is a whole number (integer dtypes: all; floats: finite and integral;
    anything else: none), for branches that must hold indices or event numbers."""
    if values.dtype.kind in "iub":
        return np.ones(values.shape, dtype=bool)
    if values.dtype.kind == "f":
        return np.isfinite(values) & (values == np.round(values))
    return np.zeros(values.shape, dtype=bool)


def link_to_jets(link: np.ndarray, event: np.ndarray, n_jets: np.ndarray, branch: str, path: str, entry_start: int) -> np.ndarray:
    """Global jet index of each element from a per-event index branch (-1: no jet).

    Parameters
    ----------
    link : int array, one per element
        Index of the owning jet within its event; negative means unassigned (in an
        unsigned branch, its largest value: -1 stored unsigned).
    event : int array, one per element
        Event (entry within the chunk) of each element.
    n_jets : int array, one per event
        Jets per event (before any selection).

    Raises
    ------
    InputDataError
        When an index is >= the number of jets of its event.
    """
    link = np.asarray(link)
    if link.dtype.kind not in "iub":
        whole = whole_numbers(link)
        if not whole.all():
            i = int(np.flatnonzero(~whole)[0])
            msg = (f"{path}: link branch {branch!r} must hold whole jet indices, found {float(link[i])!r} for "
                   f"{int((~whole).sum())} elements (first at entry {entry_start + int(event[i])}); check that it "
                   "is the index branch of the jet collection")
            raise InputDataError(msg)
    if link.dtype.kind == "u":  # -1 ("no jet") written into an unsigned branch reads as the largest value
        link = np.where(link == np.iinfo(link.dtype).max, -1, link.astype(np.int64))
    link = link.astype(np.int64, copy=False)
    n_of = n_jets[event]
    bad = link >= n_of
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = (
            f"{path}: link branch {branch!r} points past the jet collection for {int(bad.sum())} elements "
            f"(first at entry {entry_start + int(event[i])}: index {int(link[i])} with {int(n_of[i])} jets); "
            "check that the link belongs to this jet collection"
        )
        raise InputDataError(msg)
    offsets = np.concatenate([[0], np.cumsum(n_jets)]).astype(np.int64)
    return np.where(link >= 0, offsets[event] + link, -1)


def associate_by_dr(
    el_eta: np.ndarray, el_phi: np.ndarray, event: np.ndarray,
    jet_eta: np.ndarray, jet_phi: np.ndarray, n_jets: np.ndarray, radius: float,
) -> np.ndarray:
    """Global index of the nearest jet of the same event within ``dR < radius`` (-1: none).

    Vectorised over all (element, jet) pairs of each event; ties go to the first jet.
    """
    n_el = len(el_eta)
    if n_el == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_jets)]).astype(np.int64)
    per_el = n_jets[event].astype(np.int64)
    total = int(per_el.sum())
    out = np.full(n_el, -1, dtype=np.int64)
    if total == 0:
        return out
    pair_el = np.repeat(np.arange(n_el, dtype=np.int64), per_el)
    starts = np.repeat(np.cumsum(per_el) - per_el, per_el)
    pair_jet = np.repeat(offsets[event], per_el) + (np.arange(total, dtype=np.int64) - starts)
    deta = el_eta[pair_el] - jet_eta[pair_jet]
    dphi = wrap_phi(el_phi[pair_el] - jet_phi[pair_jet])
    dr2 = deta * deta + dphi * dphi
    inside = dr2 < radius * radius
    pair_el, pair_jet, dr2 = pair_el[inside], pair_jet[inside], dr2[inside]
    order = np.lexsort((pair_jet, dr2, pair_el))
    first = np.unique(pair_el[order], return_index=True)[1]
    chosen = order[first]
    out[pair_el[chosen]] = pair_jet[chosen]
    return out


def group_by_jet(jet_of: np.ndarray, arrays: Mapping[str, np.ndarray], n_jets: int) -> Elements:
    """Group elements by their (global) jet index, keeping file order within each jet.

    Files that already store the elements jet by jet need no sort (checked in one pass).
    """
    counts = np.bincount(jet_of[jet_of >= 0], minlength=n_jets).astype(np.int64)
    grouped = len(jet_of) < 2 or bool((jet_of[1:] >= jet_of[:-1]).all())
    if grouped and (not len(jet_of) or jet_of[0] >= 0):
        return Elements(counts, arrays)  # every element attached, in jet order: nothing to move
    attached = np.flatnonzero(jet_of >= 0)
    source = attached if grouped else attached[np.argsort(jet_of[attached], kind="stable")]
    return Elements(counts, arrays, source)
