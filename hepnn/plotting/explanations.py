"""Feature attributions: SHAP-like beeswarm, mean-|value| bars, per-track-position importance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .common import PLOTS, new_axes

__all__ = ["ImportanceResult", "plot_beeswarm", "plot_importance", "plot_position_importance"]


@dataclass
class ImportanceResult:
    """What an attribution plot drew.

    ``order``: feature (or position) names top to bottom; ``importance``: mean
    ``|value|`` by name; ``artists``: one scatter collection per feature (beeswarm)
    or the bar container.
    """

    ax: Any
    artists: Any
    order: list[str]
    importance: dict[str, float]

    @property
    def figure(self) -> Any:
        return self.ax.figure


def _values_2d(values: Any, feature_names: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        msg = f"values: expected attributions of shape (n_jets, n_features), received {v.shape}"
        raise ValueError(msg)
    names = list(feature_names) if feature_names is not None else [f"feature {i}" for i in range(v.shape[1])]
    if len(names) != v.shape[1]:
        msg = f"feature_names: received {len(names)} names for {v.shape[1]} features"
        raise ValueError(msg)
    return v, names


def _ranked(v: np.ndarray, names: list[str], max_display: int | None) -> tuple[list[int], dict[str, float]]:
    mean_abs = np.mean(np.abs(v), axis=0)
    order = list(np.argsort(-mean_abs, kind="mergesort")[: max_display or None])
    return order, {names[i]: float(mean_abs[i]) for i in order}


@PLOTS.register("beeswarm")
def plot_beeswarm(
    values: Any,
    features: Any,
    feature_names: Sequence[str] | None = None,
    *,
    max_display: int | None = 10,
    random_state: int = 0,
    ax: Any = None,
) -> ImportanceResult:
    """SHAP-style beeswarm: one row per feature, attribution on x, colour = feature value.

    Parameters
    ----------
    values : array of shape (n_jets, n_features)
        Attributions (SHAP values or any other).
    features : array of shape (n_jets, n_features)
        The input feature values, for the colour (scaled per feature to 5-95 %).
    feature_names : sequence of str, optional
    max_display : int or None
        Most important features shown, ranked by mean ``|value|``.
    random_state : int
        Seed of the vertical jitter.
    ax : Axes, optional

    Returns
    -------
    ImportanceResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(100, 3))
    >>> res = plot_beeswarm(x * [3, 1, 2], x, ["pt", "eta", "mass"])
    >>> res.order
    ['pt', 'mass', 'eta']
    """
    v, names = _values_2d(values, feature_names)
    x = np.asarray(features, dtype=float)
    if x.shape != v.shape:
        msg = f"features: expected the shape of values {v.shape}, received {x.shape}"
        raise ValueError(msg)
    order, importance = _ranked(v, names, max_display)
    ax = new_axes(ax)
    rng = np.random.default_rng(random_state)
    artists = []
    n_rows = len(order)
    for row, i in enumerate(order):
        y_pos = n_rows - 1 - row
        col = x[:, i]
        lo, hi = np.nanpercentile(col, [5, 95]) if col.size else (0.0, 1.0)
        c = np.clip((col - lo) / (hi - lo), 0, 1) if hi > lo else np.full(col.shape, 0.5)
        # jitter grows with the local density of points, like a beeswarm
        dens, edges = np.histogram(v[:, i], bins=50)
        local = dens[np.clip(np.searchsorted(edges, v[:, i], side="right") - 1, 0, len(dens) - 1)]
        spread = 0.4 * local / max(dens.max(), 1)
        jitter = rng.uniform(-1, 1, len(col)) * spread
        artists.append(ax.scatter(v[:, i], y_pos + jitter, c=c, cmap="coolwarm", vmin=0, vmax=1, s=6, linewidths=0))
    ax.set_yticks(range(n_rows), [names[i] for i in order][::-1])
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("Attribution (impact on model output)")
    if artists:
        cbar = ax.figure.colorbar(artists[0], ax=ax, ticks=[0, 1])
        cbar.ax.set_yticklabels(["low", "high"])
        cbar.set_label("Feature value")
    return ImportanceResult(ax=ax, artists=artists, order=[names[i] for i in order], importance=importance)


@PLOTS.register("importance")
def plot_importance(
    values: Any,
    feature_names: Sequence[str] | None = None,
    *,
    max_display: int | None = 10,
    ax: Any = None,
) -> ImportanceResult:
    """Horizontal bars of mean ``|attribution|`` per feature, most important on top.

    Parameters
    ----------
    values : array of shape (n_jets, n_features)
    feature_names : sequence of str, optional
    max_display : int or None
    ax : Axes, optional

    Returns
    -------
    ImportanceResult

    Examples
    --------
    >>> res = plot_importance([[1.0, -3.0], [-1.0, 1.0]], ["pt", "eta"])
    >>> res.importance
    {'eta': 2.0, 'pt': 1.0}
    """
    v, names = _values_2d(values, feature_names)
    order, importance = _ranked(v, names, max_display)
    ax = new_axes(ax)
    shown = [names[i] for i in order][::-1]
    bars = ax.barh(shown, [importance[n] for n in shown])
    ax.set_xlabel("Mean |attribution|")
    return ImportanceResult(ax=ax, artists=bars, order=[names[i] for i in order], importance=importance)


@PLOTS.register("position_importance")
def plot_position_importance(
    values: Any,
    *,
    normalize: bool = True,
    xlabel: str = "Track position (ordered by $p_T$)",
    ax: Any = None,
) -> ImportanceResult:
    """Mean ``|attribution|`` per constituent position of a sequence model.

    Parameters
    ----------
    values : array of shape (n_jets, n_positions) or (n_jets, n_positions, n_features)
        Attributions per track; features are summed in absolute value.
    normalize : bool
        Scale the bars to sum to one.
    xlabel : str
    ax : Axes, optional

    Returns
    -------
    ImportanceResult
        ``importance`` is keyed by position index as a string.

    Examples
    --------
    >>> res = plot_position_importance(np.ones((5, 3, 2)))
    >>> [round(x, 3) for x in res.importance.values()]
    [0.333, 0.333, 0.333]
    """
    v = np.abs(np.asarray(values, dtype=float))
    if v.ndim == 3:
        v = v.sum(axis=2)
    if v.ndim != 2:
        msg = f"values: expected shape (n_jets, n_positions[, n_features]), received {np.shape(values)}"
        raise ValueError(msg)
    per_position = np.nanmean(v, axis=0)
    if normalize and per_position.sum() > 0:
        per_position = per_position / per_position.sum()
    ax = new_axes(ax)
    positions = np.arange(len(per_position))
    bars = ax.bar(positions, per_position)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Fraction of mean |attribution|" if normalize else "Mean |attribution|")
    names = [str(i) for i in positions]
    return ImportanceResult(
        ax=ax, artists=bars, order=names, importance=dict(zip(names, per_position.tolist()))
    )
