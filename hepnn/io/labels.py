"""Class labels: a constant per file group, or a branch mapped to classes.

Class indices follow the order of ``data.label.classes``; jets whose branch value is
not in the mapping are dropped, so ``{light: 0, b: 5}`` is b versus light.

Examples
--------
>>> import numpy as np
>>> from hepnn.io.labels import map_labels
>>> label, keep = map_labels(np.array([0, 4, 5, 5]), {"light": 0, "b": 5})
>>> label[keep].tolist(), keep.tolist()
([0, 1, 1], [True, False, True, True])
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

__all__ = ["map_labels", "class_names"]


def map_labels(values: np.ndarray, classes: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Class index per jet (int32) and the mask of jets whose value is in ``classes``."""
    values = np.asarray(values)
    label = np.full(values.shape, -1, dtype=np.int32)
    for index, value in enumerate(classes.values()):
        label[values == value] = index
    return label, label >= 0


def class_names(config: Any) -> list[str]:
    """Class names: the keys of ``data.label.classes``, or file-group names by label.

    With constant labels, class ``k`` is named by the ``name`` of the groups labelled
    ``k``, or else after their file names (without extension and wildcards).
    """
    if config.label is not None:
        return list(config.label.classes)
    labels = [g.label for g in config.files if g.label is not None]
    if not labels:
        return []
    names = []
    for k in range(max(labels) + 1):
        stems = []
        for g in config.files:
            if g.label == k:
                stem = getattr(g, "name", None) or (
                    os.path.basename(g.path).split(".")[0].replace("*", "").strip("_-") or f"class{k}"
                )
                if stem not in stems:
                    stems.append(stem)
        names.append("+".join(stems) if stems else f"class{k}")
    return names
