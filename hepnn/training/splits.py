"""The split of a run's jets: train, val, test (the reader's ``split`` array)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..exceptions import InputDataError

__all__ = ["SPLITS", "subset"]

SPLITS = {"train": 0, "val": 1, "test": 2}


def subset(data: Mapping[str, np.ndarray], split: str | np.ndarray) -> dict[str, np.ndarray]:
    """Rows of every array in ``data`` for a split name or a boolean mask."""
    if isinstance(split, str):
        if "split" not in data:
            msg = "the data have no 'split' array: load them with hepnn.io.load(config)"
            raise InputDataError(msg)
        mask = np.asarray(data["split"]) == SPLITS[split]
    else:
        mask = np.asarray(split, dtype=bool)
    n = len(mask)
    out = {k: (np.asarray(v)[mask] if np.ndim(v) and len(v) == n else v) for k, v in data.items()}
    like = getattr(data, "_like", None)  # JetData keeps its class and feature names
    return like(out) if like is not None else out
