"""Class labels: a constant per file group, or a branch mapped to classes.

Class indices follow the order of ``data.label.classes``; jets whose branch value is
not in the mapping are dropped, so ``{light: 0, b: 5}`` is b versus light. Dropped jets
are counted per branch value (:class:`LabelCounts`, ``summary["dropped_labels"]`` of a
read) and logged, never silently; a class or file group left without jets is an error.

Examples
--------
>>> import numpy as np
>>> from hepnn.io.labels import map_labels
>>> label, keep = map_labels(np.array([0, 4, 5, 5]), {"light": 0, "b": 5})
>>> label[keep].tolist(), keep.tolist()
([0, 1, 1], [True, False, True, True])
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from typing import Any, Mapping, Sequence

import numpy as np

from ..exceptions import ConfigError, InputDataError
from .layouts import whole_numbers
from .sources import is_url, url_file_name

__all__ = ["map_labels", "class_names", "name_from_path", "check_class_indices", "LabelCounts"]

logger = logging.getLogger("hepnn.io")


def map_labels(values: np.ndarray, classes: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Class index per jet (int32) and the mask of jets whose value is in ``classes``."""
    values = np.asarray(values)
    label = np.full(values.shape, -1, dtype=np.int32)
    for index, value in enumerate(classes.values()):
        label[values == value] = index
    return label, label >= 0


def class_names(config: Any, labels: np.ndarray | None = None) -> list[str]:
    """Class names in index order: the one rule every stage uses (through the run spec).

    The keys of ``data.label.classes``; else, with constant labels per file group, class
    ``k`` is named by the ``name`` of the groups labelled ``k``, or after their file
    names (:func:`name_from_path`: without the ``.root`` suffix and without glob
    characters). Class indices present in ``labels`` (e.g.
    from an analysis' ``labels`` hook) beyond those are named ``class<k>``; with no
    names at all, two classes are ``background`` and ``signal``.

    Examples
    --------
    >>> from hepnn.config import load_config
    >>> class_names(load_config({}).data)
    ['background', 'signal']
    """
    if config.label is not None:
        return list(config.label.classes)
    group_labels = [g.label for g in config.files if g.label is not None]
    n = max(group_labels) + 1 if group_labels else 0
    if labels is not None and len(labels):
        n = max(n, int(np.max(labels)) + 1)
    if not group_labels:
        return ["background", "signal"] if n <= 2 else [f"class_{i}" for i in range(n)]
    names = []
    for k in range(n):
        stems = []
        for g in config.files:
            if g.label == k:
                stem = getattr(g, "name", None) or name_from_path(g.path) or f"class{k}"
                if stem not in stems:
                    stems.append(stem)
        names.append("+".join(stems) if stems else f"class{k}")
    return names


#: glob pieces left out of a class name taken from a file pattern: ``[...]`` sets, ``*`` and ``?``
_GLOB_PIECES = re.compile(r"\[[^\]]*\]|[*?]")


def name_from_path(path: str) -> str:
    """A class name from a file group's path: the file name without ``.root`` and without glob
    characters; the nearest folder's name when nothing is left (``top/*.root``); ``""`` when none.

    Only the ``.root`` suffix is removed (``ttbar_v1.2.root`` is ``ttbar_v1.2``); where glob
    pieces are removed, the separators they leave behind at the ends, or doubled, go too.

    Examples
    --------
    >>> name_from_path("ttbar_v1.2.root"), name_from_path("qcd_?.root"), name_from_path("w_[0-9]*.root")
    ('ttbar_v1.2', 'qcd', 'w')
    >>> name_from_path("samples/top/**/*.root"), name_from_path("*.root")
    ('top', '')
    >>> name_from_path("https://host/data/top.root?token=abc/def")   # a URL: its file name only
    'top'
    """
    if is_url(path):
        path = url_file_name(path)
    parts = [p for p in re.split(r"[/\\]", path) if p not in ("", ".", "..")]
    for i, part in enumerate(reversed(parts)):
        stem = part[: -len(".root")] if i == 0 and part.lower().endswith(".root") else part
        if _GLOB_PIECES.search(stem):
            stem = re.sub(r"([_\-. ])[_\-. ]+", r"\1", _GLOB_PIECES.sub("", stem)).strip("_-. ")
        if stem:
            return stem
    return ""


def check_class_indices(label: np.ndarray, where: str) -> np.ndarray:
    """``label`` as int32 after checking that no class index is negative.

    Examples
    --------
    >>> check_class_indices(np.array([0, -1]), "MyAnalysis.labels")
    Traceback (most recent call last):
    ...
    hepnn.exceptions.InputDataError: MyAnalysis.labels: class indices must be 0, 1, ...; received -1 for 1 jet(s)
    """
    label = np.asarray(label)
    if label.dtype.kind not in "iub":
        # a float score, NaN or a string would become a wrong class index in the int32 cast
        whole = whole_numbers(label)
        if not whole.all():
            examples = ", ".join(str(v) for v in np.unique(label[~whole].astype(str))[:3].tolist())
            msg = (f"{where}: class indices must be whole numbers 0, 1, ...; received {int((~whole).sum())} other "
                   f"value(s) of dtype {label.dtype}, e.g. {examples}; return integer class indices, not scores")
            raise InputDataError(msg)
    if label.size and label.max() > np.iinfo(np.int32).max:
        msg = f"{where}: class indices must be 0, 1, ...; received {label.max()}, beyond int32"
        raise InputDataError(msg)
    if label.size and label.min() < 0:
        values, counts = np.unique(label[label < 0], return_counts=True)
        got = ", ".join(f"{v} for {c} jet(s)" for v, c in zip(values.tolist(), counts.tolist()))
        msg = f"{where}: class indices must be 0, 1, ...; received {got}"
        raise InputDataError(msg)
    return label.astype(np.int32, copy=False)


#: the one NaN every NaN label value is counted under (NaN != NaN: each would be a key of its own)
_NAN = float("nan")


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and value != value:
        return _NAN
    return int(value) if isinstance(value, float) and value.is_integer() else value


class LabelCounts:
    """Jets per file group and per class over one reading pass, and the label values dropped.

    :meth:`check` turns a file group or a class without jets into a ``ConfigError``;
    :meth:`dropped` gives ``{branch value: n_jets}`` of jets dropped because their label
    value is not in ``data.label.classes``.

    Examples
    --------
    >>> counts = LabelCounts()
    >>> counts.add_dropped(np.array([4, 4, 15]))
    >>> counts.dropped()
    {4: 2, 15: 1}
    """

    def __init__(self) -> None:
        self.per_group: Counter = Counter()
        self.per_class: Counter = Counter()
        self._dropped: Counter = Counter()

    def add(self, group: int, label: np.ndarray) -> None:
        self.per_group[group] += len(label)
        values, counts = np.unique(np.asarray(label), return_counts=True)
        self.per_class.update(dict(zip(values.tolist(), counts.tolist())))

    def merge(self, other: "LabelCounts") -> None:
        """Add the counts of ``other`` (one file's, once it is read to the end)."""
        self.per_group.update(other.per_group)
        self.per_class.update(other.per_class)
        self._dropped.update(other._dropped)

    def add_dropped(self, values: np.ndarray) -> None:
        if len(values):
            found, counts = np.unique(np.asarray(values), return_counts=True)
            self._dropped.update({_plain(v): int(c) for v, c in zip(found, counts)})

    def dropped(self) -> dict:
        """``{branch value: n_jets dropped}``, by value."""
        return {k: self._dropped[k] for k in sorted(self._dropped, key=lambda v: (str(type(v)), v))}

    def log(self, config: Any, what: str = "jet(s)") -> None:
        """One warning line with the jets dropped per label value (nothing when none)."""
        if self._dropped:
            total = sum(self._dropped.values())
            per_value = ", ".join(f"{v}: {n}" for v, n in self.dropped().items())
            logger.warning(
                "data.label: dropped %d %s whose %s is not in data.label.classes (%s) -- per value: %s",
                total, what, config.label.branch, ", ".join(f"{k}: {v}" for k, v in config.label.classes.items()),
                per_value,
            )

    def check(self, config: Any, files: Sequence[Any], skipped: Sequence[str], what: str = "jets",
              classes: bool = True) -> None:
        """Raise ``ConfigError`` for a file group (or, with ``classes``, a class of ``data.label``)
        that has no jets after the selection."""
        for i, group in enumerate(config.files):
            if self.per_group[i]:
                continue
            paths = [f.path for f in files if f.group == i]
            n_skipped = sum(p in skipped for p in paths)
            shown = ", ".join(os.path.basename(p) for p in paths[:5]) + (" ..." if len(paths) > 5 else "")
            because = f"{n_skipped} of its {len(paths)} file(s) skipped as unreadable; " if n_skipped else ""
            msg = (
                f"data.files[{i}] ({group.path!r}: {shown}): no {what} left after data.cuts and the "
                f"selection ({because}a group without jets trains a model with a missing class); "
                "loosen the cuts or remove the group"
            )
            raise ConfigError(msg)
        if classes and config.label is not None:
            for index, (name, value) in enumerate(config.label.classes.items()):
                if not self.per_class[index]:
                    msg = (
                        f"data.label.classes.{name}: no {what} with {config.label.branch} == {value} after data.cuts; "
                        f"values dropped as not in classes: {self.dropped() or 'none'}; remove the class or fix "
                        "its value"
                    )
                    raise ConfigError(msg)
