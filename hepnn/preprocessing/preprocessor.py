"""Per-variable transforms and standardisation of reader inputs, as an estimator.

Transforms are applied in the order abs, log (or log1p), clip, standardise. The
standardisation ``(x - mean_) / scale_`` is fitted on the rows given to :meth:`fit`
(the training split) with padded sequence slots excluded; after transforming, padded
slots hold the input's ``pad_value`` in every feature again, so models can mask on it.
Images are passed through unchanged, or standardised per pixel (``standardize: true``).

Bad values are errors naming the input and variable (:class:`hepnn.exceptions.InputDataError`),
never NaN outputs: a log of a non-positive value, NaN or infinite values in a standardised
variable (fit) or in any standardised or transformed value of a real element (transform),
a finite value of a real element beyond float32's range after ``(x - mean) / scale`` or the
cast to float32, a mask or array of the wrong shape, and a standardised input whose fit saw
no values (every slot padded, or the input missing) when there are values to standardise.
NaN or infinite values in padded slots or in variables the preprocessing leaves alone pass
through.

Examples
--------
>>> import numpy as np
>>> from hepnn.preprocessing import Preprocessor
>>> p = Preprocessor({"jet": {"kind": "flat", "variables": ["pt"], "standardize": True,
...                          "transforms": {"pt": {"log": True}}}})
>>> out = p.fit({"jet": np.array([[1.0], [np.e**2]])}).transform({"jet": np.array([[np.e]])})
>>> out["jet"].round(3).tolist()
[[0.0]]
>>> Preprocessor.from_dict(p.to_dict()).mean_["jet"]
[1.0]
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._fileio import atomic_write_text
from .._threads import in_threads, reader_threads
from ..exceptions import InputDataError

__all__ = ["Preprocessor"]

_FORMAT = "hepnn.preprocessing.Preprocessor/1"
_JETS_PER_BLOCK = 2048  # jets per block of a large sequence input in transform
_MIN_VALUES_PER_THREAD = 2_000_000
_ROWS_PER_BLOCK = 131_072  # elements per block of transform_elements (a few MB of float64)


#: fits on at least this many values use the compiled loops (smaller ones do not import numba)
_COMPILED_FIT_VALUES = 65_536


def _kernels():
    """The compiled loops (:mod:`hepnn.preprocessing._kernels`), imported on first use."""
    # lazy: numba's import costs half a second, which only fits on many values need
    from . import _kernels

    return _kernels


def _threads(n_values: int) -> int:
    """Threads for the element-wise work on ``n_values``: ``HEPNN_READER_THREADS`` (default: see
    :mod:`hepnn.io.threads`), fewer for small inputs (as the reader's features)."""
    return reader_threads(n_values, _MIN_VALUES_PER_THREAD)


def _spec_from_input(config: Any) -> dict:
    spec = {
        "kind": config.kind,
        "variables": list(getattr(config, "variables", ())),
        "standardize": bool(getattr(config, "standardize", False)),
        "pad_value": float(getattr(config, "pad_value", 0.0)),
        "transforms": {},
    }
    for var, t in getattr(config, "transforms", {}).items():
        spec["transforms"][var] = {
            "abs": t.abs, "log": t.log, "log1p": t.log1p,
            "clip": list(t.clip) if t.clip is not None else None, "standardize": t.standardize,
        }
    return spec


def _check_transforms(name: str, spec: Mapping) -> None:
    """``ValueError`` naming the key where input ``name``'s saved transforms cannot be applied."""
    transforms = spec.get("transforms", {})
    if not isinstance(transforms, Mapping) or not isinstance(spec.get("variables", []), (list, tuple)):
        msg = f"key inputs.{name}: expected 'variables' a list and 'transforms' a mapping of variable -> settings"
        raise ValueError(msg)
    for var, t in transforms.items():
        if t is None:
            continue
        if not isinstance(t, Mapping):
            msg = f"key inputs.{name}.transforms.{var}: expected a mapping, received {t!r:.80}"
            raise ValueError(msg)
        clip = t.get("clip")
        if clip is not None and not (isinstance(clip, (list, tuple)) and len(clip) == 2 and all(
                isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in clip) and clip[0] < clip[1]):
            msg = f"key inputs.{name}.transforms.{var}.clip: expected [low, high] with low < high, received {clip!r:.80}"
            raise ValueError(msg)
        if t.get("log") and t.get("log1p"):
            msg = f"key inputs.{name}.transforms.{var}: log and log1p both set; keep one"
            raise ValueError(msg)


def _column_range(rows: np.ndarray, select: np.ndarray | None, columns: np.ndarray) -> tuple:
    """``(lo, hi)``: the smallest and largest value (float64; NaN if any is) of each of ``columns`` of
    the 2-d ``rows`` over the rows where ``select`` is True (``None``: all), without copying ``rows``
    (a few columns: one by one; many: one pass over every column)."""
    if len(columns) > 8:
        where = True if select is None else select[:, None]
        lo = np.min(rows, axis=0, where=where, initial=np.inf)[columns]
        hi = np.max(rows, axis=0, where=where, initial=-np.inf)[columns]
    else:
        values = [rows[:, c] if select is None else rows[:, c][select] for c in columns]
        lo = np.array([np.min(v, initial=np.inf) for v in values])
        hi = np.array([np.max(v, initial=-np.inf) for v in values])
    return lo.astype(np.float64), hi.astype(np.float64)


#: the fitted state's keys in a saved file, each a mapping input name -> values
_STATE_KEYS = ("mean_", "scale_", "n_samples_", "m2_", "constant_")


def _numbers(data: Mapping, key: str, name: str, length: int | None) -> np.ndarray:
    """``data[key][name]`` as float64 numbers (``length`` of them, when given), or ``ValueError``."""
    values = data[key][name]
    try:
        if not isinstance(values, list):
            raise TypeError  # noqa: TRY301
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        msg = f"key {key}.{name}: expected a list of numbers, received {values!r:.80}"
        raise ValueError(msg) from None
    if length is not None and len(array) != length:
        msg = f"key {key}.{name}: {len(array)} values, but mean_.{name} has {length}"
        raise ValueError(msg)
    return array


def _read_state(data: Mapping, inputs: Mapping[str, np.ndarray]) -> dict:
    """The fitted state of a :meth:`Preprocessor.to_dict` record, checked (``ValueError`` naming the key);
    ``inputs``: per input, which columns are standardised (``None``: all)."""
    for key in _STATE_KEYS:
        if not isinstance(data.get(key, {}), Mapping):
            msg = f"key {key}: expected a mapping of input name -> values, received {type(data[key]).__name__}"
            raise ValueError(msg)
    state = {key: dict(data.get(key, {})) for key in _STATE_KEYS}
    for name in state["mean_"]:
        # an input fitted but not in ``inputs`` (or the reverse) is left to whoever compares the file with
        # the run's config (hepnn.Tagger names it); its numbers are checked all the same
        mean = _numbers(state, "mean_", name, None)
        if name not in state["scale_"]:
            msg = f"key scale_.{name}: missing (mean_.{name} is there)"
            raise ValueError(msg)
        scale = _numbers(state, "scale_", name, len(mean))
        standardised = inputs.get(name)
        used = np.ones(len(mean), bool) if standardised is None or len(standardised) != len(mean) else standardised
        if not (np.isfinite(mean[used]).all() and np.isfinite(scale).all() and (scale > 0).all()):
            msg = (f"key mean_.{name} / scale_.{name}: expected finite means (of the standardised variables) and "
                   "finite scales > 0, received "
                   f"mean {mean.tolist()!r:.80}, scale {scale.tolist()!r:.80}")
            raise ValueError(msg)
        if name in state["m2_"]:
            _numbers(state, "m2_", name, len(mean))
        if name in state["constant_"]:  # null: the variable varies
            constant = state["constant_"][name]
            state["constant_"][name] = [float("nan") if v is None else v for v in constant] if isinstance(
                constant, list) else constant
            _numbers(state, "constant_", name, len(mean))
        n = state["n_samples_"].get(name, 0)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            msg = f"key n_samples_.{name}: expected a whole number >= 0, received {n!r}"
            raise ValueError(msg)
    return state


class Preprocessor:
    """Transforms and standardisation of every flat and sequence input, and per-pixel
    standardisation of image inputs that ask for it (``standardize: true``).

    Parameters
    ----------
    inputs : mapping
        Input name -> ``{"kind", "variables", "transforms", "standardize", "pad_value"}``;
        ``transforms`` maps a variable to ``{"abs", "log", "log1p", "clip", "standardize"}``.

    Attributes
    ----------
    mean_, scale_ : dict of lists
        Per input, one value per variable (after abs/log/clip): the unweighted mean and
        standard deviation (``ddof=0``) over the jets, or the real elements of a sequence;
        only the variables with standardisation switched on are shifted and scaled. A
        constant variable (or image pixel; its smallest and largest fitted values are equal)
        gets scale 1: it is only shifted, to 0. A tiny spread on a large mean (1e6 +- 1e-6)
        keeps its standard deviation as scale. Images: one value per pixel and channel, in
        ``reshape(n_jets, -1)`` order. Weights are not used.
    n_samples_ : dict of int
        Values (jets or real sequence elements) seen by the fit, per input.
    """

    def __init__(self, inputs: Mapping[str, Mapping[str, Any]]):
        self.inputs = {k: dict(v) for k, v in inputs.items()}

    @classmethod
    def from_config(cls, data_config: Any) -> "Preprocessor":
        """Build (unfitted) from a :class:`hepnn.config.DataConfig`."""
        return cls({name: _spec_from_input(inp) for name, inp in data_config.inputs.items()})

    # --- helpers ----------------------------------------------------------------

    def _active(self):
        for name, spec in self.inputs.items():
            kind = spec.get("kind", "flat")
            if kind in ("flat", "sequence") or (kind == "image" and spec.get("standardize")):
                yield name, spec

    def _stateless(self, name: str, spec: Mapping, x: np.ndarray, real: np.ndarray | None) -> np.ndarray:
        """``x`` as a new float64 array with the abs/log/clip transforms applied (``real``: the
        elements checked for logs of non-positive values; ``None``: all)."""
        x = np.array(x, dtype=np.float64, copy=True)
        for j, var in enumerate(spec.get("variables", [])):
            t = spec.get("transforms", {}).get(var)
            if not t:
                continue
            col = x[..., j]
            if t.get("abs"):
                col = np.abs(col)
            if t.get("log") or t.get("log1p"):
                arg = col if t.get("log") else 1.0 + col
                bad = ~(arg > 0)
                if real is not None:
                    bad &= real
                if bad.any():
                    what = "log" if t.get("log") else "log1p"
                    nan = " or NaN" if np.isnan(col[bad]).any() else ""
                    msg = (
                        f"data.inputs.{name}.transforms.{var}: {what} of {int(bad.sum())} "
                        f"{f'non-positive{nan} values' if what == 'log' else f'values at or below -1{nan}'} (e.g. "
                        f"{float(col[bad].flat[0]):g}) of input {name!r}, variable {var!r}; add abs or clip, "
                        f"{'or use log1p' if what == 'log' else 'or drop log1p'}, or cut those jets "
                        f"(data.cuts{', data.on_nan' if nan else ''})"
                    )
                    raise InputDataError(msg)
                with np.errstate(divide="ignore", invalid="ignore"):
                    col = np.log(arg)
            if t.get("clip") is not None:
                col = np.clip(col, *t["clip"])
            x[..., j] = col
        return x

    @staticmethod
    def _has_transforms(spec: Mapping) -> bool:
        transforms = spec.get("transforms", {})
        return any(
            (t := transforms.get(var)) and (t.get("abs") or t.get("log") or t.get("log1p") or t.get("clip") is not None)
            for var in spec.get("variables", [])
        )

    def has_transforms(self, name: str) -> bool:
        """True when input ``name`` has abs, log, log1p or clip transforms (more than ``(x - mean) / scale``).

        Examples
        --------
        >>> p = Preprocessor({"c": {"kind": "sequence", "variables": ["pt", "eta"], "transforms": {"pt": {"log": True}}}})
        >>> p.has_transforms("c")
        True
        """
        return self._has_transforms(self.inputs[name])

    def _rows(self, spec: Mapping, x: np.ndarray, real: np.ndarray | None) -> np.ndarray:
        """The values of the real elements as ``(n_values, n_columns)`` rows, in order (no copy
        where nothing is left out)."""
        if spec.get("kind") != "image" and real is not None and not real.all():
            return x[real]
        return self._columns(spec, x)

    def _standardised(self, spec: Mapping) -> np.ndarray:
        out = []
        for var in spec.get("variables", []):
            t = spec.get("transforms", {}).get(var) or {}
            out.append(bool(spec.get("standardize")) or bool(t.get("standardize")))
        return np.array(out, dtype=bool)

    def fits(self, name: str) -> bool:
        """True when the fit needs the values of input ``name``: something to standardise, or a
        transform (a log of a non-positive value is reported by the fit, before any training).

        An input with neither is skipped by :meth:`partial_fit` (no copy, no statistics):
        :meth:`standardisation` gives it mean 0 and scale 1 anyway.

        Examples
        --------
        >>> p = Preprocessor({"j": {"kind": "flat", "variables": ["pt", "eta"], "standardize": False,
        ...                         "transforms": {"pt": {"standardize": True}}},
        ...                   "t": {"kind": "sequence", "variables": ["d0"], "standardize": False}})
        >>> p.fits("j"), p.fits("t")
        (True, False)

        A transforms entry whose settings are all off (as the config writes every key) asks for nothing:

        >>> off = {"abs": False, "log": False, "log1p": False, "clip": None, "standardize": False}
        >>> Preprocessor({"t": {"kind": "sequence", "variables": ["d0"], "transforms": {"d0": off}}}).fits("t")
        False
        """
        spec = self.inputs.get(name)
        if spec is None or spec.get("kind", "flat") not in ("flat", "sequence", "image"):
            return False
        if spec.get("kind") == "image":
            return bool(spec.get("standardize"))
        return bool(self._standardised(spec).any()) or self._has_transforms(spec)

    @staticmethod
    def _array(data: Mapping, name: str, spec: Mapping) -> np.ndarray:
        """``data[name]`` as an array, checked to have the axes of its kind."""
        x = np.asarray(data[name])
        kind = spec.get("kind", "flat")
        expected = {"flat": 2, "sequence": 3}.get(kind)
        if (expected is not None and x.ndim != expected) or (kind == "image" and x.ndim < 2):
            axes = {"flat": "(n_jets, n_variables)", "sequence": "(n_jets, max_length, n_variables)"}
            msg = (f"input {name!r} ({kind}): expected an array of shape {axes.get(kind, '(n_jets, ...)')}, "
                   f"received shape {x.shape}; pass the reader's array for this input (reshape a single "
                   "variable to (n, 1))")
            raise InputDataError(msg)
        return x

    @staticmethod
    def _real(data: Mapping, name: str, x: np.ndarray, spec: Mapping) -> np.ndarray | None:
        if spec.get("kind") != "sequence":
            return None
        mask = data.get(f"{name}_mask")
        if mask is None:
            return np.ones(x.shape[:2], dtype=bool)
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != x.shape[:2]:
            msg = (f"input {name!r}: its mask {name + '_mask'!r} has shape {mask.shape}, the input {x.shape}; "
                   f"expected one flag per slot, shape {x.shape[:2]}: pass the mask read with the input")
            raise InputDataError(msg)
        return mask

    # --- estimator API ------------------------------------------------------------

    def fit(self, data: Mapping[str, np.ndarray]) -> "Preprocessor":
        """Fit the standardisation on ``data`` (the training split). Returns ``self``."""
        self.reset()
        return self.partial_fit(data)

    def reset(self) -> "Preprocessor":
        """Forget the fitted state (``mean_``, ``scale_``...) before a new streaming fit; returns ``self``."""
        for attr in ("mean_", "scale_", "n_samples_", "_m2_", "_constant_"):
            if hasattr(self, attr):
                delattr(self, attr)
        return self

    def partial_fit(self, data: Mapping[str, np.ndarray]) -> "Preprocessor":
        """Update the fit with another chunk (streaming); returns ``self``.

        Chunks may be empty or of one jet. The result equals :meth:`fit` on the concatenation up to
        rounding (the chunks' moments are merged), not to the last bit: :meth:`fit_parts` is."""
        return self._update([data])

    def fit_parts(self, parts: Sequence[Mapping[str, np.ndarray]]) -> "Preprocessor":
        """Fit as :meth:`fit` on the concatenation of ``parts`` (mappings with the same keys, their
        arrays one after the other), to the last bit, without concatenating them where the
        compiled loops apply (:func:`hepnn.io.load` fits on its chunks). Returns ``self``."""
        return self.reset()._update(list(parts))

    def _update(self, parts: list) -> "Preprocessor":
        """Update the fit with the concatenation of ``parts`` as one more chunk."""
        if not hasattr(self, "mean_"):
            self.mean_, self.scale_, self.n_samples_, self._m2_ = {}, {}, {}, {}
        if not hasattr(self, "_constant_"):
            self._constant_ = {}
        # every input's chunk checked before any is merged: a bad chunk leaves the fit as it was
        chunk = []
        for name, spec in self._active():
            if not parts or name not in parts[0] or not self.fits(name):
                continue
            n_b, mean_b, m2_b, constant_b = self._moments(name, spec, parts)
            self._check_finite(name, spec, mean_b, m2_b)
            n_fitted = len(self.mean_.get(name, mean_b))
            if n_fitted != len(mean_b):
                msg = (f"input {name!r}: this chunk has {len(mean_b)} values per jet, the fit so far "
                       f"{n_fitted}; the input's definition changed between chunks (call reset() to start over)")
                raise InputDataError(msg)
            chunk.append((name, spec, n_b, mean_b, m2_b, constant_b))
        for name, spec, n_b, mean_b, m2_b, constant_b in chunk:
            n_a = self.n_samples_.get(name, 0)
            mean_a = np.array(self.mean_.get(name, np.zeros(len(mean_b))), dtype=np.float64)
            m2_a = self._m2_.get(name, np.zeros(len(mean_b)))
            if n_b == 0:
                self.n_samples_[name], self.mean_[name], self._m2_[name] = n_a, list(mean_a), m2_a
                self._constant_.setdefault(name, constant_b)
                self._finish(name, spec)
                continue
            if n_a == 0:
                self._constant_[name] = constant_b
            elif name in self._constant_:  # the same value in both, else NaN (varies)
                self._constant_[name] = np.where(self._constant_[name] == constant_b, constant_b, np.nan)
            n = n_a + n_b
            delta = mean_b - mean_a
            mean = mean_a + delta * n_b / n
            m2 = m2_a + m2_b + delta**2 * n_a * n_b / n
            self.n_samples_[name], self._m2_[name] = int(n), m2
            self.mean_[name] = [float(v) for v in mean]
            self._finish(name, spec)
        return self

    @staticmethod
    def _columns(spec: Mapping, x: np.ndarray) -> np.ndarray:
        """``x`` as ``(n, n_columns)`` rows: one row per jet of an image (an empty chunk too), else
        one per element."""
        if spec.get("kind") == "image":
            return x.reshape(len(x), int(np.prod(x.shape[1:])))
        return x.reshape(-1, x.shape[-1])

    def _moments(self, name: str, spec: Mapping, parts: list) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """``(n, mean, m2, constant)`` of input ``name`` over the real rows of ``parts`` taken together
        (float64 per column: ``m2`` the sum of squared deviations, ``constant`` the value of a column
        whose values are all equal, else NaN)."""
        xs, reals, flats = [], [], []
        for i, data in enumerate(parts):
            if name not in data:
                msg = (f"fit_parts: part {i} has no input {name!r} (part 0 has it); every part needs the same "
                       f"inputs, received {sorted(data)}")
                raise InputDataError(msg)
            x = self._array(data, name, spec)
            xs.append(x)
            reals.append(self._real(data, name, x, spec))
            flats.append(self._columns(spec, x))
        n_columns = flats[0].shape[-1]
        variables = spec.get("variables", [])
        if spec.get("kind") != "image" and variables and n_columns != len(variables):
            msg = (f"input {name!r}: {n_columns} values per element (array shape {xs[0].shape}), but its "
                   f"variables are {list(variables)}; pass the columns of these variables, in this order")
            raise InputDataError(msg)
        for i, (x, flat) in enumerate(zip(xs, flats)):
            if flat.shape[-1] != n_columns:
                msg = (f"input {name!r}: part {i} has {flat.shape[-1]} values per jet (array shape {x.shape}), "
                       f"part 0 {n_columns} (array shape {xs[0].shape}); fit on parts read with the same definition")
                raise InputDataError(msg)
        nothing = 0, np.zeros(n_columns), np.zeros(n_columns), np.full(n_columns, np.nan)
        if n_columns >= 2 and sum(f.size for f in flats) >= _COMPILED_FIT_VALUES and not self._has_transforms(spec):
            # the same numbers as below, without gathering or copying the rows: the rows of every
            # part in order, as numpy adds the rows of their concatenation
            kernels, sums = _kernels(), np.zeros(n_columns)
            selects = []
            for flat, real in zip(flats, reals):
                select = None if real is None or spec.get("kind") == "image" or real.all() else real.reshape(-1)
                selects.append((np.ascontiguousarray(flat), np.ones(0, dtype=bool) if select is None else select,
                                select is not None))
            n = sum(kernels.column_sums(rows, select, selected, sums) for rows, select, selected in selects)
            if n == 0:
                return nothing
            mean, m2 = sums / n, np.zeros(n_columns)
            for rows, select, selected in selects:
                kernels.column_m2(rows, select, selected, mean, m2)

            def ranges(columns: np.ndarray) -> list:
                return [_column_range(rows, select if selected else None, columns) for rows, select, selected in selects]

            return n, mean, m2, self._constant(n, mean, m2, ranges)
        # only the real elements, gathered before the float64 copy (the same rows in the same
        # order as transforming everything and then dropping the padding)
        gathered = [self._rows(spec, x, real) for x, real in zip(xs, reals)]
        rows = self._stateless(name, spec, gathered[0] if len(gathered) == 1 else np.concatenate(gathered), None)
        if len(rows) == 0:
            return nothing
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite values: reported by _check_finite
            mean = rows.mean(axis=0)
            rows -= mean  # in place: rows is this call's own float64 copy
            np.square(rows, out=rows)
            m2 = rows.sum(axis=0)

        def ranges(columns: np.ndarray) -> list:
            # the few columns' values again (rows holds squares now), transformed as in the fit
            sub = {**spec, "variables": [variables[c] for c in columns]} if variables else spec
            values = self._stateless(name, sub, np.concatenate([g[..., columns] for g in gathered]), None)
            return [_column_range(values, None, np.arange(len(columns)))]

        return len(rows), mean, m2, self._constant(len(rows), mean, m2, ranges)

    @staticmethod
    def _constant(n: int, mean: np.ndarray, m2: np.ndarray, ranges: Any) -> np.ndarray:
        """Per column, its value where all ``n`` values are equal, else NaN. A constant column's std
        is only the rounding of its mean (at most ``n * eps * |mean|``), so only the columns whose
        std is that small are looked at again (``ranges(columns)``: their ``(lo, hi)`` per part)."""
        constant = np.full(len(mean), np.nan)
        with np.errstate(invalid="ignore"):
            suspect = np.flatnonzero(~(np.sqrt(m2 / n) > 2 * n * np.finfo(np.float64).eps * np.abs(mean)))
        if len(suspect):
            parts = ranges(suspect)
            lo = np.min([p[0] for p in parts], axis=0)
            hi = np.max([p[1] for p in parts], axis=0)
            constant[suspect] = np.where(lo == hi, lo, np.nan)
        return constant

    def _check_finite(self, name: str, spec: Mapping, mean: np.ndarray, m2: np.ndarray) -> None:
        """NaN or infinite values in a standardised column would give a NaN mean: an error naming it."""
        use = np.ones(len(mean), bool) if spec.get("kind") == "image" else self._standardised(spec)
        bad = np.flatnonzero(use & ~(np.isfinite(mean) & np.isfinite(m2)))
        if len(bad):
            variables = list(spec.get("variables", []))
            names = [repr(variables[i]) if spec.get("kind") != "image" and i < len(variables) else f"value {i}"
                     for i in bad[:5]]
            msg = (f"input {name!r}: NaN or infinite values in {', '.join(names)} (standardised); the fit's "
                   "mean and scale would be NaN; fix the input or cut those jets (data.on_nan, data.cuts)")
            raise InputDataError(msg)

    def _finish(self, name: str, spec: Mapping) -> None:
        n = max(self.n_samples_.get(name, 0), 1)
        std = np.sqrt(np.asarray(self._m2_[name]) / n)
        # a constant column: its std is only the rounding of its mean, not 0; dividing by it would blow
        # the column (and any later variation of it) up to ~1e15. Constant: all its values are equal
        # (a tiny real spread on a large mean, 1e6 +- 1e-6, keeps its std); a fit resumed from a file
        # saved without constant_: std at most the mean's rounding, n * eps * |mean|
        if name in self._constant_:
            varies = np.isnan(self._constant_[name])
        else:
            varies = std > n * np.finfo(np.float64).eps * np.abs(np.asarray(self.mean_[name], dtype=np.float64))
        std = np.where(varies & (std > 0), std, 1.0)
        self.scale_[name] = [float(s) for s in std]

    def standardisation(self, name: str, spec: Mapping, n_features: int, shape: tuple = ()) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, scale)`` of input ``name`` per feature (0 and 1 where it is not standardised).

        ``spec`` is the input's entry in :attr:`inputs`; ``shape`` is only used in the error
        raised when ``n_features`` differs from the fit.
        """
        use = np.ones(n_features, bool) if spec.get("kind") == "image" else self._standardised(spec)
        if use.any() and not hasattr(self, "mean_"):
            msg = "this Preprocessor is not fitted yet: call fit(train_data) first"
            raise RuntimeError(msg)
        mean = np.asarray(getattr(self, "mean_", {}).get(name, np.zeros(n_features)), dtype=np.float64)
        scale = np.asarray(getattr(self, "scale_", {}).get(name, np.ones(n_features)), dtype=np.float64)
        if len(mean) != n_features:
            msg = (f"input {name!r}: the preprocessing was fitted on {len(mean)} values per jet, received "
                   f"{n_features} (array shape {tuple(shape)}); the input's definition changed since the fit")
            raise InputDataError(msg)
        return np.where(use, mean, 0.0), np.where(use, scale, 1.0)

    def _check_fitted_on_values(self, name: str, spec: Mapping, real: Any) -> None:
        """An error when input ``name`` is standardised but the fit saw none of its values (it was not
        in the fit's data, or every slot was padded) and there are values to standardise now
        (``real``: the number of them, or a callable giving it); nothing to standardise passes."""
        fitted = getattr(self, "mean_", None)
        if fitted is None or (name in fitted and self.n_samples_.get(name) != 0):
            return  # not fitted: standardisation() says so; or fitted on values (files without n_samples_ too)
        if spec.get("kind") != "image" and not self._standardised(spec).any():
            return
        if (real() if callable(real) else real) == 0:
            return
        seen = "was not in the data given to fit" if name not in fitted else (
            "had no values in the data given to fit (no jets, or every sequence slot padded)")
        msg = (f"input {name!r} is standardised but {seen}: its mean and scale are unknown; fit on "
               f"training data that holds input {name!r} (with real elements), or switch its standardize off")
        raise InputDataError(msg)

    def is_identity(self) -> bool:
        """True when :meth:`transform` changes nothing in the reader's output (float32, padded
        slots at ``pad_value``): no abs/log/clip and nothing standardised, so callers can skip it.

        Examples
        --------
        >>> Preprocessor({"jet": {"kind": "flat", "variables": ["pt"], "standardize": False}}).is_identity()
        True
        """
        for name, spec in self._active():
            if self._has_transforms(spec) or spec.get("kind") == "image" or self._standardised(spec).any():
                return False
        return True

    def transform(self, data: Mapping[str, np.ndarray]) -> dict:
        """Return a copy of ``data`` with every flat and sequence input transformed (float32).

        An input with nothing to do (no transform, nothing standardised, float32, padded slots
        already at ``pad_value``) is passed through as it is, without a copy.

        A sequence input is padded where ``data["{name}_mask"]`` is False; without that mask
        every slot counts as a real element (transformed, checked and standardised).

        Raises ``InputDataError`` naming the input and variable where a transformed or standardised
        value of a real element is NaN or infinite (in the input, or beyond float32's range).
        """
        out = dict(data)
        for name, spec in self._active():
            if name not in data:
                continue
            out[name] = self._transform_input(name, spec, data)
        like = getattr(data, "_like", None)  # keep JetData's class and feature names
        if like is not None:
            result = like(out)
            result.preprocessing = self
            return result
        return out

    def _transform_input(self, name: str, spec: Mapping, data: Mapping) -> np.ndarray:
        x = self._array(data, name, spec)
        real = self._real(data, name, x, spec)
        self._check_fitted_on_values(name, spec, lambda: len(x) if real is None else int(real.sum()))
        n_columns = int(np.prod(x.shape[1:])) if spec.get("kind") == "image" else x.shape[-1]
        if not self._has_transforms(spec):
            mean, scale = self.standardisation(name, spec, n_columns, x.shape)
            if not mean.any() and (scale == 1).all():
                return self._identity(name, spec, x, real)
        if spec.get("kind") == "sequence" and x.ndim == 3 and len(x) >= 2 * _JETS_PER_BLOCK:
            try:
                return self._transform_blocks(name, spec, x, real)
            except InputDataError:
                pass  # the pass below raises it again, counting over all elements
        # float64 arithmetic on the real elements only, element by element as before: the same
        # values to the last bit; padded slots are set to pad_value afterwards
        raw = self._rows(spec, x, real)
        rows = self._stateless(name, spec, raw, None)
        mean, scale = self.standardisation(name, spec, rows.shape[-1], x.shape)
        with np.errstate(over="ignore", invalid="ignore"):  # NaN, inf or overflow: reported by _check_output
            rows -= mean
            rows /= scale
            values = rows.astype(np.float32)
        self._check_output(name, spec, values, raw, None)
        if real is None or spec.get("kind") == "image" or real.all():
            return values.reshape(x.shape)
        result = np.full(x.shape, spec.get("pad_value", 0.0), dtype=np.float32)
        result[real] = values
        return result

    def _check_output(self, name: str, spec: Mapping, out: np.ndarray, raw: np.ndarray, real: np.ndarray | None) -> None:
        """An error naming the input and variable where a transformed or standardised value of a real
        element of ``out`` (float32, from ``raw``; ``real``: flags over its leading axes, ``None``:
        all) is NaN or infinite (NaN or infinite in the input, or beyond float32's range), or where
        any other finite value became infinite in float32."""
        if np.isfinite(out).all():
            return
        bad = ~np.isfinite(out)
        if real is not None:
            bad &= real.reshape(real.shape + (1,) * (bad.ndim - real.ndim))
        raw = np.asarray(raw).reshape(out.shape)
        bad &= self._touched(spec, out.shape[-1]) | np.isfinite(raw)
        if not bad.any():
            return
        where = tuple(np.argwhere(bad)[0])
        variables = list(spec.get("variables", []))
        names = [repr(variables[c]) if spec.get("kind") != "image" and c < len(variables) else f"value {c}"
                 for c in np.flatnonzero(bad.reshape(-1, bad.shape[-1]).any(axis=0))[:5]]
        example = f"e.g. {float(raw[where]):g} -> {float(out[where]):g}"
        if np.isfinite(raw[bad]).all():
            how = ("the value (after (x - mean) / scale, if standardised) is beyond float32's range "
                   f"(about 3.4e38); clip or log-transform the variable (data.inputs.{name}.transforms)")
        else:
            how = "the input holds NaN or infinite values; fix them or cut those jets (data.on_nan, data.cuts)"
        msg = (f"input {name!r}: {int(bad.sum())} NaN or infinite values after preprocessing in {', '.join(names)} "
               f"({example}): {how}")
        raise InputDataError(msg)

    def _touched(self, spec: Mapping, n_columns: int) -> np.ndarray:
        """Per column: True where the preprocessing changes its values (standardised or transformed)."""
        if spec.get("kind") == "image":
            return np.ones(n_columns, bool)
        transforms = spec.get("transforms", {})
        touched = [bool(std) or bool((t := transforms.get(var)) and (
            t.get("abs") or t.get("log") or t.get("log1p") or t.get("clip") is not None))
            for var, std in zip(spec.get("variables", []), self._standardised(spec))]
        return np.array((touched + [False] * n_columns)[:n_columns], dtype=bool)

    def _transform_blocks(self, name: str, spec: Mapping, x: np.ndarray, real: np.ndarray) -> np.ndarray:
        """A large sequence input jet block by jet block, in threads: the same float64 arithmetic
        element by element (padded slots included, then overwritten), without gathering the real
        elements out of the padded array and scattering them back."""
        mean, scale = self.standardisation(name, spec, x.shape[-1], x.shape)
        result = np.empty(x.shape, dtype=np.float32)
        pad = spec.get("pad_value", 0.0)

        def block(start: int) -> None:
            stop = min(start + _JETS_PER_BLOCK, len(x))
            values = self._stateless(name, spec, x[start:stop], real[start:stop])
            with np.errstate(over="ignore", invalid="ignore"):  # reported by _check_output
                values -= mean
                values /= scale
                values[~real[start:stop]] = pad
                result[start:stop] = values
            self._check_output(name, spec, result[start:stop], x[start:stop], real[start:stop])

        in_threads(block, range(0, len(x), _JETS_PER_BLOCK), threads=_threads(x.size))
        return result

    def affine(self, name: str, n_features: int, n_values: Any = None) -> tuple[np.ndarray, np.ndarray] | None:
        """``(mean, scale)`` when input ``name``'s transform is only ``(x - mean) / scale`` (in
        float64, then float32), ``None`` when it has abs/log/clip transforms too.

        ``n_values`` (optional): how many real values the caller will standardise with them (or a
        callable giving it, called only when the fit saw no values of the input); when more than 0
        and the fit saw none, ``InputDataError`` (as :meth:`transform`).
        The caller checks its output for NaN and overflow (:meth:`transform` does).

        Examples
        --------
        >>> p = Preprocessor({"c": {"kind": "sequence", "variables": ["pt"], "standardize": True}})
        >>> p = p.fit({"c": np.array([[[1.0], [3.0]]]), "c_mask": np.array([[True, True]])})
        >>> p.affine("c", 1)
        (array([2.]), array([1.]))
        """
        spec = self.inputs[name]
        if self._has_transforms(spec):
            return None
        if n_values is not None:
            self._check_fitted_on_values(name, spec, n_values)
        return self.standardisation(name, spec, n_features)

    def transform_elements(self, name: str, rows: np.ndarray, real: np.ndarray | None = None) -> np.ndarray:
        """The real elements ``rows`` ``(n_elements, n_features)`` of sequence input ``name`` as
        :meth:`transform` gives them in the padded array (float32, the same values to the last bit).

        ``real`` (boolean per row, optional): only these rows are checked for logs of non-positive
        values (rows the caller drops afterwards are transformed too, unchecked).

        For callers that pad afterwards (:func:`hepnn.io.load`): no pass over padded slots. Large
        inputs are done block by block in threads (``HEPNN_READER_THREADS``).

        Examples
        --------
        >>> p = Preprocessor({"c": {"kind": "sequence", "variables": ["pt"], "standardize": True}})
        >>> p = p.fit({"c": np.array([[[1.0], [3.0]]]), "c_mask": np.array([[True, True]])})
        >>> p.transform_elements("c", np.array([[3.0], [5.0]], np.float32)).tolist()
        [[1.0], [3.0]]
        """
        spec = self.inputs[name]
        rows = np.asarray(rows)
        self._check_fitted_on_values(name, spec, lambda: len(rows) if real is None else int(np.sum(real)))
        mean, scale = self.standardisation(name, spec, rows.shape[-1], rows.shape)
        if not self._has_transforms(spec) and not mean.any() and (scale == 1).all():
            if rows.dtype == np.float32:
                return rows
            with np.errstate(over="ignore"):
                values = rows.astype(np.float64).astype(np.float32)
            self._check_output(name, spec, values, rows, real)
            return values
        result = np.empty(rows.shape, dtype=np.float32)

        def block(start: int) -> None:
            part = None if real is None else real[start:start + _ROWS_PER_BLOCK]
            values = self._stateless(name, spec, rows[start:start + _ROWS_PER_BLOCK], part)
            with np.errstate(over="ignore", invalid="ignore"):  # reported by _check_output
                values -= mean
                values /= scale
                result[start:start + _ROWS_PER_BLOCK] = values
            self._check_output(name, spec, result[start:start + _ROWS_PER_BLOCK], rows[start:start + _ROWS_PER_BLOCK],
                               part)

        try:
            in_threads(block, range(0, len(rows), _ROWS_PER_BLOCK), threads=_threads(rows.size))
        except InputDataError:
            self._stateless(name, spec, rows, real)  # raises again, counting over all elements
            raise
        return result

    def _identity(self, name: str, spec: Mapping, x: np.ndarray, real: np.ndarray | None) -> np.ndarray:
        """``x`` as float32 with padded slots at ``pad_value``: ``x`` itself when it already is."""
        if x.dtype == np.float32:
            values = x
        else:
            with np.errstate(over="ignore"):
                values = x.astype(np.float64).astype(np.float32)
            self._check_output(name, spec, values, x, real)
        if real is None or real.all():
            return values
        pad = np.float32(spec.get("pad_value", 0.0))
        padded = values[~real]
        # compared bit by bit (a -0.0 slot is not the pad value 0.0; NaN padding is never "already there")
        if np.isnan(pad) or (padded.size and not (padded.view(np.uint32) == pad.view(np.uint32)).all()):
            values = values.copy() if values is x else values
            values[~real] = pad
        return values

    def fit_transform(self, data: Mapping[str, np.ndarray]) -> dict:
        """``fit(data).transform(data)``."""
        return self.fit(data).transform(data)

    # --- persistence --------------------------------------------------------------

    def to_dict(self) -> dict:
        """Plain JSON-able data (parameters and fitted state)."""
        out = {"format": _FORMAT, "inputs": self.inputs}
        if hasattr(self, "mean_"):
            out["mean_"] = self.mean_
            out["scale_"] = self.scale_
            out["n_samples_"] = self.n_samples_
            out["m2_"] = {k: [float(v) for v in m2] for k, m2 in self._m2_.items()}
            out["constant_"] = {k: [None if np.isnan(v) else float(v) for v in c]
                                for k, c in getattr(self, "_constant_", {}).items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> "Preprocessor":
        """Rebuild from :meth:`to_dict` output.

        The fitted state is checked: every input in ``mean_`` has ``scale_`` of the same length
        (finite numbers, scales > 0, means finite where standardised), a whole ``n_samples_`` >= 0,
        and ``m2_``, ``constant_`` (optional) of that length; else ``ValueError`` naming the key.
        """
        if data.get("format") != _FORMAT:
            msg = f"not a hepnn preprocessing file: expected format {_FORMAT!r}, received {data.get('format')!r}"
            raise ValueError(msg)
        if not isinstance(data.get("inputs"), Mapping) or not all(isinstance(v, Mapping) for v in data["inputs"].values()):
            msg = "key 'inputs': expected a mapping of input name -> settings"
            raise ValueError(msg)
        for name, spec in data["inputs"].items():
            _check_transforms(name, spec)
        obj = cls(data["inputs"])
        if "mean_" in data:
            state = _read_state(data, {name: None if spec.get("kind") == "image" else obj._standardised(spec)
                                        for name, spec in obj.inputs.items()})
            obj.mean_ = {k: list(v) for k, v in state["mean_"].items()}
            obj.scale_ = {k: list(v) for k, v in state["scale_"].items()}
            obj.n_samples_ = state["n_samples_"]
            obj._m2_ = {k: np.square(obj.scale_[k]) * obj.n_samples_.get(k, 0) for k in obj.scale_}
            # saved sums of squares (files before them: from the scale, wrong for constant columns, scale 1)
            obj._m2_.update({k: np.asarray(v, dtype=np.float64) for k, v in state["m2_"].items() if k in obj.scale_})
            obj._constant_ = {k: np.asarray(v, dtype=np.float64) for k, v in state["constant_"].items()
                              if k in obj.scale_}
        return obj

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON to ``path`` atomically: :meth:`load` gives back the same transforms, bit for bit.

        Keys: ``format``, ``inputs``, and once fitted ``mean_``, ``scale_``, ``n_samples_``, ``m2_``
        (sums of squared deviations) and ``constant_`` (the value of a variable whose fitted values are
        all equal, ``null`` where they vary: constant variables get scale 1), each per input."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Preprocessor":
        """Read a file written by :meth:`save` (a damaged one raises ``InputDataError`` naming it)."""
        try:
            data = json.loads(Path(path).read_text())
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, received {type(data).__name__}")  # noqa: TRY301, EM102
            return cls.from_dict(data)
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            msg = f"{path}: damaged or not a hepnn preprocessing file ({err}); train the run again, or restore the file"
            raise InputDataError(msg) from None

    def __repr__(self) -> str:
        fitted = "fitted" if hasattr(self, "mean_") else "not fitted"
        return f"Preprocessor(inputs={list(self.inputs)}, {fitted})"
