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
from typing import Any, Mapping

import numpy as np

from .._fileio import atomic_write_text
from ..exceptions import InputDataError

__all__ = ["Preprocessor"]

_FORMAT = "hepnn.preprocessing.Preprocessor/1"


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
        Per input, one value per variable (after abs/log/clip); only the variables with
        standardisation switched on are shifted and scaled. Images: one value per pixel
        and channel, in ``reshape(n_jets, -1)`` order.
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

    @staticmethod
    def _columns(spec: Mapping, values: np.ndarray) -> np.ndarray:
        """Images: one column per pixel and channel; other inputs unchanged."""
        return values.reshape(len(values), -1) if spec.get("kind") == "image" else values

    def _stateless(self, name: str, spec: Mapping, x: np.ndarray, real: np.ndarray | None) -> np.ndarray:
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
                    msg = (
                        f"input {name!r}, variable {var!r}: {'log' if t.get('log') else 'log1p'} of "
                        f"{int(bad.sum())} non-positive values; add abs or clip, or use log1p"
                    )
                    raise InputDataError(msg)
                with np.errstate(divide="ignore", invalid="ignore"):
                    col = np.log(arg)
            if t.get("clip") is not None:
                col = np.clip(col, *t["clip"])
            x[..., j] = col
        return x

    def _standardised(self, spec: Mapping) -> np.ndarray:
        out = []
        for var in spec.get("variables", []):
            t = spec.get("transforms", {}).get(var) or {}
            out.append(bool(spec.get("standardize")) or bool(t.get("standardize")))
        return np.array(out, dtype=bool)

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
        if not hasattr(self, "mean_"):
            self.mean_, self.scale_, self.n_samples_, self._m2_ = {}, {}, {}, {}
        for name, spec in self._active():
            if name not in data:
                continue
            x = np.asarray(data[name])
            real = self._real(data, name, x, spec)
            values = self._columns(spec, self._stateless(name, spec, x, real))
            rows = values[real] if real is not None else values.reshape(-1, values.shape[-1])
            n_b = len(rows)
            n_a = self.n_samples_.get(name, 0)
            mean_a = np.array(self.mean_.get(name, np.zeros(rows.shape[-1])), dtype=np.float64)
            m2_a = self._m2_.get(name, np.zeros(rows.shape[-1]))
            if n_b == 0:
                self.n_samples_[name], self.mean_[name], self._m2_[name] = n_a, list(mean_a), m2_a
                self._finish(name, spec)
                continue
            mean_b = rows.mean(axis=0)
            m2_b = ((rows - mean_b) ** 2).sum(axis=0)
            n = n_a + n_b
            delta = mean_b - mean_a
            mean = mean_a + delta * n_b / n
            m2 = m2_a + m2_b + delta**2 * n_a * n_b / n
            self.n_samples_[name], self._m2_[name] = int(n), m2
            self.mean_[name] = [float(v) for v in mean]
            self._finish(name, spec)
        return self

    def _finish(self, name: str, spec: Mapping) -> None:
        n = max(self.n_samples_.get(name, 0), 1)
        std = np.sqrt(np.asarray(self._m2_[name]) / n)
        std = np.where(std > 0, std, 1.0)
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

    def transform(self, data: Mapping[str, np.ndarray]) -> dict:
        """Return a copy of ``data`` with every flat and sequence input transformed (float32)."""
        out = dict(data)
        for name, spec in self._active():
            if name not in data:
                continue
            x = np.asarray(data[name])
            real = self._real(data, name, x, spec)
            values = self._columns(spec, self._stateless(name, spec, x, real))
            mean, scale = self.standardisation(name, spec, values.shape[-1], x.shape)
            values = ((values - mean) / scale).reshape(x.shape)
            if real is not None:
                values[~real] = spec.get("pad_value", 0.0)
            out[name] = values.astype(np.float32)
        like = getattr(data, "_like", None)  # keep JetData's class and feature names
        if like is not None:
            result = like(out)
            result.preprocessing = self
            return result
        return out

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
        return obj

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON to ``path`` atomically."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Preprocessor":
        """Read a file written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def __repr__(self) -> str:
        fitted = "fitted" if hasattr(self, "mean_") else "not fitted"
        return f"Preprocessor(inputs={list(self.inputs)}, {fitted})"
