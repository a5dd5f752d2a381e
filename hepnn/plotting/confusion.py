"""Confusion matrix of a multiclass tagger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..metrics import confusion_matrix
from .common import PLOTS, new_axes

__all__ = ["ConfusionResult", "confusion_matrix", "plot_confusion_matrix"]


@dataclass
class ConfusionResult:
    """``matrix`` drawn, ``image`` (AxesImage) and the cell ``texts``."""

    ax: Any
    image: Any
    texts: list[Any]
    matrix: np.ndarray

    @property
    def figure(self) -> Any:
        return self.ax.figure


@PLOTS.register("confusion_matrix")
def plot_confusion_matrix(
    y_true: Any,
    y_pred: Any,
    *,
    class_names: Sequence[str] | None = None,
    normalize: str | None = "true",
    weights: Any = None,
    fmt: str | None = None,
    ax: Any = None,
) -> ConfusionResult:
    """Confusion matrix as an annotated heat map (rows: true class, columns: predicted).

    Parameters
    ----------
    y_true, y_pred, normalize, weights
        See :func:`confusion_matrix`.
    class_names : sequence of str, optional
    fmt : str, optional
        Cell format; ``".2f"`` for normalised matrices, ``".0f"`` for counts.
    ax : Axes, optional

    Returns
    -------
    ConfusionResult

    Examples
    --------
    >>> res = plot_confusion_matrix([0, 1, 2, 2], [0, 1, 2, 1], class_names=["q", "W", "t"])
    >>> res.matrix[2].tolist()
    [0.0, 0.5, 0.5]
    """
    n_classes = len(class_names) if class_names is not None else None
    cm = confusion_matrix(y_true, y_pred, n_classes=n_classes, normalize=normalize, weights=weights)
    n = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    if len(names) != n:
        msg = f"class_names: received {len(names)} names for {n} classes"
        raise ValueError(msg)
    ax = new_axes(ax)
    image = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fmt = fmt or (".2f" if normalize else ".0f")
    vmax = cm.max() if cm.size else 1
    texts = [
        ax.text(j, i, format(cm[i, j], fmt), ha="center", va="center", color="white" if cm[i, j] > 0.5 * vmax else "black")
        for i in range(n)
        for j in range(n)
    ]
    ax.set_xticks(range(n), names)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.figure.colorbar(image, ax=ax)
    return ConfusionResult(ax=ax, image=image, texts=texts, matrix=cm)
