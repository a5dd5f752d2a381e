"""Background rejection against mass sculpting (1/JSD), one point per tagger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .common import PLOTS, curve_styles, new_axes

__all__ = ["SculptingResult", "plot_rejection_vs_sculpting"]


@dataclass
class SculptingResult:
    """What :func:`plot_rejection_vs_sculpting` drew: ``points`` maps each tagger to (1/JSD, rejection)."""

    ax: Any
    artists: dict[str, Any]
    points: dict[str, tuple[float, float]]

    @property
    def figure(self) -> Any:
        return self.ax.figure


@PLOTS.register("rejection_vs_sculpting")
def plot_rejection_vs_sculpting(
    sculpting: Mapping[str, Mapping[str, Any]], *, working_point: float = 0.5, ax: Any = None,
) -> SculptingResult:
    """Background rejection against 1/JSD at one signal efficiency: top right is best.

    Parameters
    ----------
    sculpting : mapping
        Tagger name -> its ``metrics.json`` ``"sculpting"`` entry (from
        :func:`hepnn.training.sculpting.sculpting_metrics`). Taggers without a finite
        rejection and 1/JSD at ``working_point`` are left out.
    working_point : float
    ax : Axes, optional

    Returns
    -------
    SculptingResult

    Examples
    --------
    >>> res = plot_rejection_vs_sculpting({"a": {"rejection_50": 20.0, "inv_jsd_50": 5.0},
    ...                                    "b": {"rejection_50": 8.0, "inv_jsd_50": 60.0}})
    >>> res.points["b"]
    (60.0, 8.0)
    """
    tag = f"{round(100 * working_point):d}"
    points = {}
    for name, entry in sculpting.items():
        rej, inv = (entry or {}).get(f"rejection_{tag}"), (entry or {}).get(f"inv_jsd_{tag}")
        if rej is not None and inv is not None and np.isfinite(rej) and np.isfinite(inv):
            points[name] = (float(inv), float(rej))
    if not points:
        msg = (f"plot_rejection_vs_sculpting: no tagger has a finite rejection_{tag} and inv_jsd_{tag}; "
               "the runs need a mass spectator in data.spectators")
        raise ValueError(msg)
    ax = new_axes(ax)
    artists = {}
    styles = dict(zip(points, curve_styles(len(points), markers=True)))
    for name, (inv, rej) in points.items():
        artists[name] = ax.scatter([inv], [rej], s=50, label=name, zorder=3, color=styles[name]["color"],
                                   marker=styles[name]["marker"])
        ax.annotate(name, (inv, rej), textcoords="offset points", xytext=(5, 5), fontsize="small")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"Mass decorrelation 1/JSD at $\\varepsilon_S$ = {working_point:g}")
    ax.set_ylabel(f"Background rejection 1/$\\varepsilon_B$ at $\\varepsilon_S$ = {working_point:g}")
    ax.legend()
    return SculptingResult(ax=ax, artists=artists, points=points)
