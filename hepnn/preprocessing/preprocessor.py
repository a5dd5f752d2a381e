"""Per-variable transforms and standardisation of reader inputs, as an estimator.

Transforms are applied in the order abs, log (or log1p), clip, standardise. The
standardisation ``(x - mean_) / scale_`` is fitted on the rows given to :meth:`fit`
(the training split) with padded sequence slots excluded; after transforming, padded
slots hold the input's ``pad_value`` in every feature again, so models can mask on it.
Images are passed through unchanged.

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
        constant variable (or image pixel) gets scale 1: it is only shifted, to 0. Images:
        one value per pixel and channel, in ``reshape(n_jets, -1)`` order.
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
                    msg = (
                        f"data.inputs.{name}.transforms.{var}: {what} of {int(bad.sum())} "
                        f"{'non-positive values' if what == 'log' else 'values at or below -1'} (e.g. "
                        f"{float(col[bad].flat[0]):g}) of input {name!r}, variable {var!r}; add abs or clip, "
                        f"{'or use log1p' if what == 'log' else 'or drop log1p'}, or cut those jets (data.cuts)"
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

    def _rows(self, spec: Mapping, x: np.ndarray, real: np.ndarray | None) -> np.ndarray:
        """The values of the real elements as ``(n_values, n_columns)`` rows, in order (no copy
        where nothing is left out)."""
        if spec.get("kind") == "image":
            return x.reshape(len(x), -1)
        if real is not None and not real.all():
            return x[real]
        return x.reshape(-1, x.shape[-1])

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
        """
        spec = self.inputs.get(name)
        if spec is None or spec.get("kind", "flat") not in ("flat", "sequence", "image"):
            return False
        if spec.get("kind") == "image":
            return bool(spec.get("standardize"))
        return bool(self._standardised(spec).any()) or any(spec.get("transforms", {}).values())

    @staticmethod
    def _real(data: Mapping, name: str, x: np.ndarray, spec: Mapping) -> np.ndarray | None:
        if spec.get("kind") != "sequence":
            return None
        mask = data.get(f"{name}_mask")
        return np.asarray(mask, dtype=bool) if mask is not None else np.ones(x.shape[:2], dtype=bool)

    # --- estimator API ------------------------------------------------------------

    def fit(self, data: Mapping[str, np.ndarray]) -> "Preprocessor":
        """Fit the standardisation on ``data`` (the training split). Returns ``self``."""
        self.reset()
        return self.partial_fit(data)

    def reset(self) -> "Preprocessor":
        """Forget the fitted state (``mean_``, ``scale_``...) before a new streaming fit; returns ``self``."""
        for attr in ("mean_", "scale_", "n_samples_", "_m2_"):
            if hasattr(self, attr):
                delattr(self, attr)
        return self

    def partial_fit(self, data: Mapping[str, np.ndarray]) -> "Preprocessor":
        """Update the fit with another chunk (streaming); returns ``self``."""
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
        for name, spec in self._active():
            if not parts or name not in parts[0] or not self.fits(name):
                continue
            n_b, mean_b, m2_b = self._moments(name, spec, parts)
            self._check_finite(name, spec, mean_b, m2_b)
            n_a = self.n_samples_.get(name, 0)
            mean_a = np.array(self.mean_.get(name, np.zeros(len(mean_b))), dtype=np.float64)
            m2_a = self._m2_.get(name, np.zeros(len(mean_b)))
            if n_b == 0:
                self.n_samples_[name], self.mean_[name], self._m2_[name] = n_a, list(mean_a), m2_a
                self._finish(name, spec)
                continue
            n = n_a + n_b
            delta = mean_b - mean_a
            mean = mean_a + delta * n_b / n
            m2 = m2_a + m2_b + delta**2 * n_a * n_b / n
            self.n_samples_[name], self._m2_[name] = int(n), m2
            self.mean_[name] = [float(v) for v in mean]
            self._finish(name, spec)
        return self

    def _moments(self, name: str, spec: Mapping, parts: list) -> tuple[int, np.ndarray, np.ndarray]:
        """``(n, mean, m2)`` of input ``name`` over the real rows of ``parts`` taken together
        (``mean``, ``m2``: float64 per column, ``m2`` the sum of squared deviations)."""
        xs, reals, flats = [], [], []
        for data in parts:
            x = np.asarray(data[name])
            xs.append(x)
            reals.append(self._real(data, name, x, spec))
            flats.append(x.reshape(len(x), -1) if spec.get("kind") == "image" else x.reshape(-1, x.shape[-1]))
        n_columns = flats[0].shape[-1]
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
                return 0, np.zeros(n_columns), np.zeros(n_columns)
            mean, m2 = sums / n, np.zeros(n_columns)
            for rows, select, selected in selects:
                kernels.column_m2(rows, select, selected, mean, m2)
            return n, mean, m2
        # only the real elements, gathered before the float64 copy (the same rows in the same
        # order as transforming everything and then dropping the padding)
        gathered = [self._rows(spec, x, real) for x, real in zip(xs, reals)]
        rows = self._stateless(name, spec, gathered[0] if len(gathered) == 1 else np.concatenate(gathered), None)
        if len(rows) == 0:
            return 0, np.zeros(n_columns), np.zeros(n_columns)
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite values: reported by _check_finite
            mean = rows.mean(axis=0)
            rows -= mean  # in place: rows is this call's own float64 copy
            np.square(rows, out=rows)
            return len(rows), mean, rows.sum(axis=0)

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
        # a constant column: its std is only the rounding of its mean (at most ~ n * eps * |mean|), not 0;
        # dividing by it would blow the column (and any later variation of it) up to ~1e15
        tiny = n * np.finfo(np.float64).eps * np.abs(np.asarray(self.mean_[name], dtype=np.float64))
        std = np.where(std > tiny, std, 1.0)
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
        x = np.asarray(data[name])
        real = self._real(data, name, x, spec)
        n_columns = int(np.prod(x.shape[1:])) if spec.get("kind") == "image" else x.shape[-1]
        if not self._has_transforms(spec):
            mean, scale = self.standardisation(name, spec, n_columns, x.shape)
            if not mean.any() and (scale == 1).all():
                return self._identity(spec, x, real)
        if spec.get("kind") == "sequence" and x.ndim == 3 and len(x) >= 2 * _JETS_PER_BLOCK:
            try:
                return self._transform_blocks(name, spec, x, real)
            except InputDataError:
                pass  # the pass below raises it again, counting over all elements
        # float64 arithmetic on the real elements only, element by element as before: the same
        # values to the last bit; padded slots are set to pad_value afterwards
        rows = self._stateless(name, spec, self._rows(spec, x, real), None)
        mean, scale = self.standardisation(name, spec, rows.shape[-1], x.shape)
        rows -= mean
        rows /= scale
        if real is None or spec.get("kind") == "image" or real.all():
            return rows.astype(np.float32).reshape(x.shape)
        result = np.full(x.shape, spec.get("pad_value", 0.0), dtype=np.float32)
        result[real] = rows
        return result

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
            values -= mean
            values /= scale
            values[~real[start:stop]] = pad
            result[start:stop] = values

        in_threads(block, range(0, len(x), _JETS_PER_BLOCK), threads=_threads(x.size))
        return result

    def affine(self, name: str, n_features: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(mean, scale)`` when input ``name``'s transform is only ``(x - mean) / scale`` (in
        float64, then float32), ``None`` when it has abs/log/clip transforms too.

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
        mean, scale = self.standardisation(name, spec, rows.shape[-1], rows.shape)
        if not self._has_transforms(spec) and not mean.any() and (scale == 1).all():
            return rows if rows.dtype == np.float32 else rows.astype(np.float64).astype(np.float32)
        result = np.empty(rows.shape, dtype=np.float32)

        def block(start: int) -> None:
            part = None if real is None else real[start:start + _ROWS_PER_BLOCK]
            values = self._stateless(name, spec, rows[start:start + _ROWS_PER_BLOCK], part)
            values -= mean
            values /= scale
            result[start:start + _ROWS_PER_BLOCK] = values

        try:
            in_threads(block, range(0, len(rows), _ROWS_PER_BLOCK), threads=_threads(rows.size))
        except InputDataError:
            self._stateless(name, spec, rows, real)  # raises again, counting over all elements
            raise
        return result

    @staticmethod
    def _identity(spec: Mapping, x: np.ndarray, real: np.ndarray | None) -> np.ndarray:
        """``x`` as float32 with padded slots at ``pad_value``: ``x`` itself when it already is."""
        values = x if x.dtype == np.float32 else x.astype(np.float64).astype(np.float32)
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
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> "Preprocessor":
        """Rebuild from :meth:`to_dict` output."""
        if data.get("format") != _FORMAT:
            msg = f"not a hepnn preprocessing file: expected format {_FORMAT!r}, received {data.get('format')!r}"
            raise ValueError(msg)
        obj = cls(data["inputs"])
        if "mean_" in data:
            obj.mean_ = {k: list(v) for k, v in data["mean_"].items()}
            obj.scale_ = {k: list(v) for k, v in data["scale_"].items()}
            obj.n_samples_ = dict(data.get("n_samples_", {}))
            obj._m2_ = {k: np.square(obj.scale_[k]) * obj.n_samples_.get(k, 0) for k in obj.scale_}
            # saved sums of squares (files before them: from the scale, wrong for constant columns, scale 1)
            obj._m2_.update({k: np.asarray(v, dtype=np.float64) for k, v in data.get("m2_", {}).items()})
        return obj

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON to ``path`` atomically."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Preprocessor":
        """Read a file written by :meth:`save` (a damaged one raises ``InputDataError`` naming it)."""
        try:
            data = json.loads(Path(path).read_text())
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, received {type(data).__name__}")  # noqa: TRY301, EM102
            return cls.from_dict(data)
        except (ValueError, KeyError, TypeError) as err:
            msg = f"{path}: damaged or not a hepnn preprocessing file ({err}); train the run again, or restore the file"
            raise InputDataError(msg) from None

    def __repr__(self) -> str:
        fitted = "fitted" if hasattr(self, "mean_") else "not fitted"
        return f"Preprocessor(inputs={list(self.inputs)}, {fitted})"
