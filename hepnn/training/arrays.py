"""The arrays a run trains on, checked before training: one row per jet, labels, splits, values.

:func:`hepnn.io.load` returns arrays that keep this contract; data built by hand
(``Trainer.fit(out, data={...})``) may not, and a wrong label or a shorter array would
otherwise train into wrong numbers or fail deep inside TensorFlow.

Examples
--------
>>> import numpy as np
>>> data = {"x": np.zeros((3, 2), np.float32), "label": np.array([0, 1, 2]), "split": np.zeros(3, np.int8)}
>>> check_training_arrays(data, ["x"], ["qcd", "top"])
Traceback (most recent call last):
...
hepnn.exceptions.InputDataError: the data's 'label' array: 1 of 3 jets have label 2, not a class index 0-1 of qcd, top; ...
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..exceptions import InputDataError
from .splits import SPLITS

__all__ = ["check_training_arrays"]

#: array elements checked for NaN at a time (bounds the temporary boolean array)
_BLOCK_ELEMENTS = 1 << 22


def check_training_arrays(data: Mapping[str, np.ndarray], inputs: Sequence[str], classes: Sequence[str] | None,
                          *, on_nan: str = "error") -> None:
    """Raise :class:`~hepnn.exceptions.InputDataError` where ``data`` cannot be trained on as it is.

    Parameters
    ----------
    data : mapping of arrays
        The model inputs, their ``<input>_mask`` arrays, ``label``, ``split`` and optional
        ``weight`` and ``spec_<variable>`` arrays.
    inputs : list of str
        The model's input names.
    classes : list of str or None
        Class names in label order (``None``: labels are not class indices, as for an
        autoencoder).
    on_nan : str
        The run's ``data.on_nan``, named in the message about NaN values.
    """
    per_jet = [*inputs, *(f"{n}_mask" for n in inputs if f"{n}_mask" in data), "label", "split", "weight",
               *(k for k in data if k.startswith("spec_"))]
    lengths = {k: len(data[k]) if np.ndim(data[k]) else 0 for k in per_jet if k in data}
    if len(set(lengths.values())) > 1:
        msg = (f"the data's arrays hold different numbers of jets: {lengths}; every array needs one row per jet "
               "(hepnn.io.load(config) builds them so)")
        raise InputDataError(msg)
    for name in inputs:
        x = np.asarray(data[name])
        mask = data.get(f"{name}_mask")
        if mask is not None and np.shape(mask) != x.shape[:-1]:
            msg = (f"the data's {name + '_mask'!r} array has shape {np.shape(mask)}, but {name!r} has {x.shape}: "
                   f"the mask needs one entry per slot, shape {x.shape[:-1]}")
            raise InputDataError(msg)
        _check_finite(name, x, on_nan)
    if "split" in data:
        split = np.asarray(data["split"])
        bad = ~np.isin(split, list(SPLITS.values()))
        if bad.any():
            codes = ", ".join(f"{v} ({k})" for k, v in SPLITS.items())
            msg = (f"the data's 'split' array: {int(bad.sum())} jets have split code(s) "
                   f"{_listed(np.unique(split[bad]))}, expected {codes}")
            raise InputDataError(msg)
    if classes is not None and "label" in data:
        _check_labels(np.asarray(data["label"]), list(classes))


def _check_labels(labels: np.ndarray, classes: list[str]) -> None:
    if labels.dtype.kind not in "iub" and not (labels.dtype.kind == "f" and np.all(labels == np.round(labels))):
        msg = (f"the data's 'label' array holds non-integer values ({labels.dtype}, e.g. "
               f"{_listed(labels[labels != np.round(labels)][:3]) if labels.dtype.kind == 'f' else labels[:3]}); "
               f"labels are class indices 0-{len(classes) - 1} of {', '.join(classes)}")
        raise InputDataError(msg)
    bad = (labels < 0) | (labels >= len(classes))
    if bad.any():
        values = np.unique(labels[bad])
        msg = (f"the data's 'label' array: {int(bad.sum())} of {len(labels)} jets have label {_listed(values)}, "
               f"not a class index 0-{len(classes) - 1} of {', '.join(classes)}; relabel them or "
               "list every class (data.label.classes, or one label per data.files entry)")
        raise InputDataError(msg)


def _check_finite(name: str, x: np.ndarray, on_nan: str) -> None:
    if x.dtype.kind != "f" or x.size == 0:
        return
    rows = max(1, _BLOCK_ELEMENTS // max(1, x.size // max(1, len(x))))
    for first in range(0, len(x), rows):
        block = x[first:first + rows]
        finite = np.isfinite(block)
        if not finite.all():
            bad = int((~finite).sum()) + sum(int((~np.isfinite(x[f:f + rows])).sum())
                                             for f in range(first + rows, len(x), rows))
            jet = first + int(np.flatnonzero((~finite).reshape(len(block), -1).any(axis=1))[0])
            msg = (f"the data's {name!r} array has {bad} NaN or infinite values (the first in jet {jet}); "
                   f"fix or drop them before training (hepnn.io.load applies data.on_nan, now {on_nan!r})")
            raise InputDataError(msg)


def _listed(values: np.ndarray, most: int = 5) -> str:
    shown = ", ".join(f"{v:g}" if isinstance(v, (float, np.floating)) else str(v) for v in values[:most].tolist())
    return shown + (", ..." if len(values) > most else "")
