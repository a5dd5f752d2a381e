"""The :class:`Explanation`: attributions shaped like the model inputs, plus context.

Saved as ``values.npz`` with plain arrays only (``np.load(..., allow_pickle=False)``
works): ``values_<input>``, ``inputs_<input>``, ``feature_names_<input>`` and, when
known, ``base_values``, ``outputs``, ``labels``; numeric extras as ``extra_<key>``.
A model with one input also gets a plain ``values`` array.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._fileio import atomic_path

__all__ = ["Explanation"]


@dataclass
class Explanation:
    """Attributions of one explainer on a set of jets.

    Parameters
    ----------
    method : str
        The explainer's registry name.
    values : dict of str to array
        Input name -> attributions, shaped like that input ``(n_jets, ...)``.
    inputs : dict of str to array
        The explained inputs (same shapes as ``values``).
    feature_names : dict of str to list of str
        Input name -> names of its features (last axis).
    base_values : array, optional
        Per-jet reference output (SHAP expected value, integrated-gradients baseline
        output); ``values`` sum to ``outputs - base_values`` where the method promises it.
    outputs : array, optional
        The explained model output per jet (score, class probability or anomaly score).
    labels : array, optional
        Class labels of the jets, when known.
    extra : dict
        Method-specific results (permutation spread, surrogate fidelity and rules, ...).

    Examples
    --------
    >>> e = Explanation("demo", {"jet": np.ones((4, 2))}, {"jet": np.zeros((4, 2))}, {"jet": ["a", "b"]},
    ...                 labels=np.array([0, 1, 1, 0]))
    >>> e.mean_abs()["jet"].tolist()
    [1.0, 1.0]
    >>> sorted(e.by_class())
    [0, 1]
    """

    method: str
    values: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]
    feature_names: dict[str, list[str]]
    base_values: np.ndarray | None = None
    outputs: np.ndarray | None = None
    labels: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_jets(self) -> int:
        first = next(iter(self.values.values()), None)
        return 0 if first is None else int(len(first))

    def mean_abs(self) -> dict[str, np.ndarray]:
        """Input name -> mean ``|attribution|`` over jets (shape of one jet's input)."""
        return {k: np.mean(np.abs(v), axis=0) for k, v in self.values.items()}

    def select(self, mask: Any) -> Explanation:
        """The sub-explanation of the jets where ``mask`` is true (or of the given indices)."""
        index = np.asarray(mask)
        if index.dtype == bool and len(index) != self.n_jets:
            msg = f"mask: expected {self.n_jets} entries (one per jet), received {len(index)}"
            raise ValueError(msg)

        def take(a):
            return None if a is None or np.ndim(a) == 0 else np.asarray(a)[index]

        return Explanation(
            self.method, {k: v[index] for k, v in self.values.items()}, {k: v[index] for k, v in self.inputs.items()},
            dict(self.feature_names), take(self.base_values), take(self.outputs), take(self.labels), dict(self.extra),
        )

    def by_class(self, labels: Any = None) -> dict[int, Explanation]:
        """Class label -> sub-explanation of the jets of that class."""
        labels = self.labels if labels is None else np.asarray(labels)
        if labels is None:
            msg = "by_class: this explanation has no labels; pass labels=array of class indices"
            raise ValueError(msg)
        labels = np.asarray(labels)
        return {int(c): self.select(labels == c) for c in np.unique(labels)}

    def by_bin(self, variable_values: Any, bins: Sequence[float]) -> dict[tuple[float, float], Explanation]:
        """``(low, high)`` -> sub-explanation of the jets with ``low <= variable < high`` (e.g. pT bins)."""
        v = np.asarray(variable_values)
        if len(v) != self.n_jets:
            msg = f"variable_values: expected {self.n_jets} entries (one per jet), received {len(v)}"
            raise ValueError(msg)
        edges = np.asarray(bins, dtype=float)
        if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
            msg = f"bins: expected at least two increasing edges, received {list(np.atleast_1d(edges))}"
            raise ValueError(msg)
        return {(float(lo), float(hi)): self.select((v >= lo) & (v < hi)) for lo, hi in zip(edges[:-1], edges[1:])}

    # --- files ----------------------------------------------------------------------

    def arrays(self) -> dict[str, np.ndarray]:
        """The plain arrays written to ``values.npz``."""
        out: dict[str, np.ndarray] = {}
        for name, v in self.values.items():
            out[f"values_{name}"] = np.asarray(v)
            out[f"inputs_{name}"] = np.asarray(self.inputs[name])
            out[f"feature_names_{name}"] = np.asarray([str(s) for s in self.feature_names.get(name, [])], dtype=str)
        if len(self.values) == 1:
            out["values"] = np.asarray(next(iter(self.values.values())))
        out["input_names"] = np.asarray(list(self.values), dtype=str)
        out["method"] = np.asarray(self.method)
        for key in ("base_values", "outputs", "labels"):
            value = getattr(self, key)
            if value is not None:
                out[key] = np.asarray(value)
        for key, value in self.extra.items():
            arr = _plain_array(value)
            if arr is not None:
                out[f"extra_{key}"] = arr
        return out

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``directory/values.npz`` atomically and return its path."""
        path = Path(directory) / "values.npz"
        with atomic_path(path, suffix=".part.npz") as tmp:
            np.savez_compressed(tmp, **self.arrays())
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Explanation:
        """Read an explanation written by :meth:`save` (a folder or the ``values.npz`` path)."""
        path = Path(directory)
        if path.is_dir():
            path = path / "values.npz"
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        names = [str(n) for n in data["input_names"]]
        extra = {k[len("extra_"):]: v for k, v in data.items() if k.startswith("extra_")}
        summary = path.parent / "summary.json"
        if summary.is_file():
            meta = json.loads(summary.read_text()).get("extra", {})
            for key, value in meta.items():
                extra.setdefault(key, value)
        return cls(
            method=str(data["method"]),
            values={n: data[f"values_{n}"] for n in names},
            inputs={n: data[f"inputs_{n}"] for n in names},
            feature_names={n: [str(s) for s in data[f"feature_names_{n}"]] for n in names},
            base_values=data.get("base_values"), outputs=data.get("outputs"), labels=data.get("labels"), extra=extra,
        )


def _plain_array(value: Any) -> np.ndarray | None:
    """A numeric or string array for ``value``, or None when it is not array-like (dicts, text)."""
    if isinstance(value, (Mapping, str)) or value is None:
        return None
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        return None
    return arr if arr.dtype.kind in "biufU" else None


def jsonable(value: Any) -> Any:
    """A JSON-friendly copy of ``value`` (arrays become lists, small ones only)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 10_000 else f"array{value.shape}"
    if isinstance(value, np.generic):
        return value.item()
    return value
