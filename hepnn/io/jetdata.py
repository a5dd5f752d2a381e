"""``JetData``: the reader's result, a dict of numpy arrays with metadata.

Examples
--------
>>> import numpy as np
>>> from hepnn.io.jetdata import JetData
>>> d = JetData({"label": np.array([0, 1, 1], np.int32), "split": np.array([0, 2, 0], np.int8)})
>>> d.split("train")["label"].tolist(), d.n_jets
([0, 1], 3)
"""

from __future__ import annotations

from typing import Any

from .split import split_code

__all__ = ["JetData"]


class JetData(dict):
    """Arrays of all selected jets in file order, keyed as in the reader contract.

    Keys: ``<input>`` (float32), ``<input>_mask`` (bool, sequences), ``label`` (int32),
    ``weight`` (float32), ``split`` (int8: 0 train, 1 val, 2 test), ``spec_<var>`` (float32).

    Attributes
    ----------
    preprocessing : hepnn.preprocessing.Preprocessor or None
        Fitted on the training split; already applied to the arrays of :func:`hepnn.io.load`.
    feature_names : dict
        Input name -> variable names (image inputs: channel names).
    class_names : list of str
    summary : dict
        Files read and skipped, jets selected.
    """

    def __init__(self, *args: Any, preprocessing: Any = None, feature_names: dict | None = None,
                 class_names: list | None = None, summary: dict | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.preprocessing = preprocessing
        self.feature_names = dict(feature_names or {})
        self.class_names = list(class_names or [])
        self.summary = dict(summary or {})

    @property
    def n_jets(self) -> int:
        """Number of jets."""
        return len(self["label"]) if "label" in self else 0

    def _like(self, arrays: dict) -> "JetData":
        return JetData(arrays, preprocessing=self.preprocessing, feature_names=self.feature_names,
                       class_names=self.class_names, summary=self.summary)

    def split(self, name: str | int) -> "JetData":
        """The jets of one split (``"train"``, ``"val"`` or ``"test"``), in file order."""
        keep = self["split"] == split_code(name)
        return self._like({k: v[keep] for k, v in self.items()})

    def inputs(self) -> dict:
        """Only the model inputs (no masks, labels, weights, splits or spectators)."""
        return {k: self[k] for k in self.feature_names if k in self}

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {tuple(v.shape)}" for k, v in self.items())
        return f"JetData(n_jets={self.n_jets}, {shapes})"
