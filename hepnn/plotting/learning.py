"""Learning curves: loss and metrics against epoch, training and validation."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..exceptions import InputDataError, UnknownNameError
from .common import PLOTS, pyplot

__all__ = ["LearningResult", "plot_learning_curves", "read_history"]


@dataclass
class LearningResult:
    """What :func:`plot_learning_curves` drew.

    Attributes
    ----------
    axes : list of Axes
        One panel per metric, in the order of ``metrics``.
    lines : dict of str to dict of str to Line2D
        ``{metric: {"train": line, "validation": line}}`` (validation only when present).
    history : dict of str to ndarray
        The history that was plotted, including ``"epoch"``.
    """

    axes: list[Any]
    lines: dict[str, dict[str, Any]]
    history: dict[str, np.ndarray]

    @property
    def figure(self) -> Any:
        return self.axes[0].figure


def read_history(source: Mapping[str, Sequence[float]] | str | os.PathLike) -> dict[str, np.ndarray]:
    """A training history as ``{column: array}``, from a dict or a ``history.csv``.

    The CSV has a header row (``epoch,loss,val_loss,auc,val_auc``, as written by
    ``keras.callbacks.CSVLogger``). Epochs count from 1, as in hepnn's own ``history.csv``:
    without an ``epoch`` column the rows are epochs 1, 2, ...; an ``epoch`` column that starts
    at 0 (Keras' ``CSVLogger`` counts from 0) is shifted by one, so a Keras log and a hepnn
    history of the same training read the same (a ``CSVLogger`` log of a resumed Keras training,
    starting at its ``initial_epoch``, cannot be told apart and is read as written). An empty
    cell (a column some epochs lack) is read as NaN.

    Examples
    --------
    >>> read_history({"loss": [0.7, 0.5]})["epoch"].tolist()
    [1, 2]
    >>> read_history({"epoch": [0, 1], "loss": [0.7, 0.5]})["epoch"].tolist()  # a Keras CSVLogger log
    [1, 2]
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError as err:
            msg = f"cannot read the training history {str(path)!r}: {err.strerror}"
            raise InputDataError(msg) from err
        if not rows:
            msg = f"{str(path)!r}: expected a header and one row per epoch, found no rows"
            raise InputDataError(msg)
        try:
            # an empty cell (a column some epochs lack: a run resumed on a machine with a GPU, which adds
            # gpu_peak_memory_mb) is a missing value, drawn as a gap; it does not make the whole file unreadable
            history = {k: np.array([np.nan if r[k] in (None, "") else float(r[k]) for r in rows])
                       for k in rows[0] if k}
        except (TypeError, ValueError) as err:
            msg = f"{str(path)!r}: every column of a history must be numeric ({err})"
            raise InputDataError(msg) from err
    else:
        history = {str(k): np.asarray(v, dtype=float).ravel() for k, v in dict(source).items()}
    lengths = {len(v) for v in history.values()}
    if len(lengths) > 1:
        msg = f"history columns differ in length: { {k: len(v) for k, v in history.items()} }"
        raise ValueError(msg)
    n = lengths.pop() if lengths else 0
    if "epoch" not in history:
        history["epoch"] = np.arange(1, n + 1)
    else:
        history["epoch"] = history["epoch"].astype(int)
        if n and history["epoch"][0] == 0:  # Keras' CSVLogger counts epochs from 0, hepnn from 1
            history["epoch"] = history["epoch"] + 1
    return history


@PLOTS.register("learning_curves")
def plot_learning_curves(
    history: Mapping[str, Sequence[float]] | str | os.PathLike,
    metrics: Sequence[str] | None = None,
    *,
    logy: bool | Sequence[str] = False,
    axes: Any = None,
) -> LearningResult:
    """Training and validation curves, one panel per metric.

    Parameters
    ----------
    history : dict or path
        ``{"loss": [...], "val_loss": [...], "auc": [...], ...}`` (Keras
        ``History.history``) or a ``history.csv`` path; see :func:`read_history`.
    metrics : sequence of str, optional
        Names without the ``val_`` prefix; by default every training column.
    logy : bool or sequence of str
        Log y scale for all panels, or for the named metrics.
    axes : Axes or sequence of Axes, optional
        One per metric; by default a new figure with one row of panels.

    Returns
    -------
    LearningResult

    Examples
    --------
    >>> res = plot_learning_curves({"loss": [0.7, 0.5], "val_loss": [0.72, 0.6]})
    >>> len(res.axes[0].get_lines())
    2
    """
    hist = read_history(history)
    available = [k for k in hist if k != "epoch" and not k.startswith("val_")]
    if metrics is None:
        metrics = available
    for m in metrics:
        if m not in hist:
            raise UnknownNameError(m, "metric in the training history", available)
    if not metrics:
        msg = f"history: no metric columns to plot; received columns {sorted(hist)}"
        raise ValueError(msg)
    if axes is None:
        _, axes = pyplot().subplots(1, len(metrics), figsize=(4.5 * len(metrics), 4), squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(np.atleast_1d(axes).ravel())
    if len(axes) < len(metrics):
        msg = f"axes: received {len(axes)} axes for {len(metrics)} metrics {list(metrics)}; pass one per metric"
        raise ValueError(msg)
    epoch = hist["epoch"]
    lines: dict[str, dict[str, Any]] = {}
    for ax, m in zip(axes, metrics):
        lines[m] = {}
        (lines[m]["train"],) = ax.plot(epoch, hist[m], marker="o", markersize=3, label="training")
        if f"val_{m}" in hist:
            (lines[m]["validation"],) = ax.plot(
                epoch, hist[f"val_{m}"], marker="o", markersize=3, linestyle="--", label="validation"
            )
        ax.set_xlabel("Epoch")
        ax.set_ylabel(m.replace("_", " "))
        if logy is True or (not isinstance(logy, bool) and m in logy):
            ax.set_yscale("log")
        ax.legend()
    return LearningResult(axes=axes[: len(metrics)], lines=lines, history=hist)
