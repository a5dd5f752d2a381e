"""ROC curves: background rejection against signal efficiency, and the plain ROC with AUC."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..exceptions import UnknownNameError
from ..metrics import effective_count, efficiency_auc, efficiency_curve, rejection_at, rejection_uncertainty
from .common import PLOTS, curve_styles, new_axes, pyplot, taggers_from

__all__ = ["RocResult", "plot_rejection", "plot_roc"]


@dataclass
class RocResult:
    """What a ROC plot drew and computed.

    Attributes
    ----------
    ax : Axes
        The main panel.
    lines : dict of str to Line2D
        One curve per tagger.
    rejections : dict of str to dict of float to float
        ``{tagger: {working_point: 1/eff_b}}``.
    auc : dict of str to float
        Area under each ROC curve.
    ax_ratio : Axes or None
        The ratio panel, when drawn.
    ratio_lines : dict of str to Line2D
        One ratio curve per tagger (the reference is the flat line at 1).
    bands : dict of str to PolyCollection
        Statistical uncertainty bands.
    curves : dict of str to tuple
        ``(eff_s, eff_b, thresholds)`` per tagger.
    """

    ax: Any
    lines: dict[str, Any]
    rejections: dict[str, dict[float, float]]
    auc: dict[str, float]
    ax_ratio: Any = None
    ratio_lines: dict[str, Any] = field(default_factory=dict)
    bands: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def figure(self) -> Any:
        return self.ax.figure


def _curves(taggers: Any, labels: Any, weights: Any, signal: int) -> dict[str, tuple]:
    out = {}
    for name, (s, y, w) in taggers_from(taggers, labels, weights).items():
        try:
            eff_s, eff_b, thr = efficiency_curve(y, s, w, signal=signal)
        except ValueError as err:  # which of several taggers (a class's signed weights summing to <= 0, NaN)
            raise ValueError(f"taggers[{name!r}]: {err}") from err
        wb = np.ones(np.count_nonzero(y != signal)) if w is None else w[y != signal]
        out[name] = (eff_s, eff_b, thr, effective_count(wb))
    return out


#: more curves than this: the legend goes beside the axes and the bands are lighter
MANY_CURVES = 6


def _legend_options(n_curves: int) -> dict:
    """For many curves the legend sits right of the axes (in a smaller font), where it hides none of them."""
    if n_curves > MANY_CURVES:
        return {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0, "fontsize": "small"}
    return {}


@PLOTS.register("rejection")
def plot_rejection(
    taggers: Any,
    labels: Any = None,
    *,
    weights: Any = None,
    signal: int = 1,
    working_points: Sequence[float] = (0.3, 0.5, 0.7),
    reference: str | None = None,
    ratio: bool = True,
    uncertainty: bool = True,
    eff_min: float = 0.1,
    ax: Any = None,
) -> RocResult:
    """Background rejection (log scale) against signal efficiency for several taggers.

    Parameters
    ----------
    taggers : array or dict
        Scores of one tagger, ``{name: scores}`` sharing ``labels``, or
        ``{name: (scores, labels[, weights])}``.
    labels, weights : arrays, optional
        Shared by the taggers given as plain scores.
    signal : int
        Label of the signal class; all other labels are background.
    working_points : sequence of float
        Signal efficiencies at which rejections are computed (``RocResult.rejections``).
    reference : str, optional
        Tagger the ratio panel divides by; the first tagger by default.
    ratio : bool
        Draw the ratio panel (needs ``ax=None`` or ``ax=(main, ratio)``).
    uncertainty : bool
        Shade the binomial standard error of the rejection.
    eff_min : float
        Lowest signal efficiency drawn.
    ax : Axes or (Axes, Axes), optional
        Where to draw; a single Axes draws no ratio panel.

    Returns
    -------
    RocResult

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> y = rng.integers(0, 2, 1000)
    >>> res = plot_rejection({"a": rng.normal(y), "b": rng.normal(2 * y)}, y)
    >>> sorted(res.lines), res.ax.get_yscale()
    (['a', 'b'], 'log')
    """
    curves = _curves(taggers, labels, weights, signal)
    if reference is None:
        reference = next(iter(curves))
    if reference not in curves:
        raise UnknownNameError(reference, "reference tagger", curves)
    ax_ratio = None
    if ax is None:
        if ratio:
            _, (ax, ax_ratio) = pyplot().subplots(
                2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1), "hspace": 0.05}
            )
        else:
            ax = new_axes()
    elif isinstance(ax, (tuple, list, np.ndarray)):
        ax, ax_ratio = ax[0], (ax[1] if ratio and len(ax) > 1 else None)

    grid = np.linspace(eff_min, 1.0, 200)
    lines, bands, rejections, aucs, on_grid = {}, {}, {}, {}, {}
    styles = dict(zip(curves, curve_styles(len(curves))))
    for name, (eff_s, eff_b, thr, n_b) in curves.items():
        keep = (eff_s >= eff_min) & (eff_b > 0)
        (line,) = ax.plot(eff_s[keep], 1.0 / eff_b[keep], label=name, **styles[name])
        lines[name] = line
        rej = rejection_at(eff_s, eff_b, grid)
        on_grid[name] = rej
        if uncertainty:
            sigma = rejection_uncertainty(rej, n_b)
            ok = np.isfinite(rej) & np.isfinite(sigma)
            bands[name] = ax.fill_between(
                grid[ok], np.clip(rej[ok] - sigma[ok], 1.0, None), rej[ok] + sigma[ok],
                color=line.get_color(), alpha=0.25 if len(curves) <= MANY_CURVES else 0.1, linewidth=0,
            )
        wps = [float(wp) for wp in working_points]
        rejections[name] = dict(zip(wps, np.atleast_1d(rejection_at(eff_s, eff_b, wps)).tolist())) if wps else {}
        aucs[name] = efficiency_auc(eff_s, eff_b)
    ax.set_yscale("log")
    ax.set_xlim(eff_min, 1.0)
    ax.set_ylabel("Background rejection $1/\\varepsilon_B$")
    ax.legend(**_legend_options(len(lines)))
    ratio_lines = {}
    if ax_ratio is not None:
        ref = on_grid[reference]
        for name, line in lines.items():
            # no ratio where either rejection is infinite (no background passes): finite / inf is not a 0
            defined = np.isfinite(on_grid[name]) & np.isfinite(ref) & (ref > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(defined, on_grid[name] / np.where(defined, ref, 1.0), np.nan)
            (ratio_lines[name],) = ax_ratio.plot(grid, r, **styles[name])
        ax_ratio.set_xlabel("Signal efficiency $\\varepsilon_S$")
        ax_ratio.set_ylabel(f"Ratio to {reference}")
        ax_ratio.set_xlim(eff_min, 1.0)
    else:
        ax.set_xlabel("Signal efficiency $\\varepsilon_S$")
    return RocResult(
        ax=ax, lines=lines, rejections=rejections, auc=aucs, ax_ratio=ax_ratio,
        ratio_lines=ratio_lines, bands=bands, curves={k: v[:3] for k, v in curves.items()},
    )


@PLOTS.register("roc")
def plot_roc(
    taggers: Any,
    labels: Any = None,
    *,
    weights: Any = None,
    signal: int = 1,
    diagonal: bool = True,
    ax: Any = None,
) -> RocResult:
    """Plain ROC curve (signal against background efficiency), AUC in the legend.

    Parameters
    ----------
    taggers, labels, weights, signal
        As in :func:`plot_rejection`.
    diagonal : bool
        Draw the random-guess diagonal (not counted in ``RocResult.lines``).
    ax : Axes, optional

    Returns
    -------
    RocResult
        ``rejections`` holds the rejection at 50 % signal efficiency.

    Examples
    --------
    >>> res = plot_roc({"perfect": [0.9, 0.8, 0.2, 0.1]}, [1, 1, 0, 0])
    >>> res.auc["perfect"], res.ax.get_legend().get_texts()[0].get_text()
    (1.0, 'perfect (AUC = 1.000)')
    """
    curves = _curves(taggers, labels, weights, signal)
    ax = new_axes(ax)
    lines, aucs, rejections = {}, {}, {}
    styles = dict(zip(curves, curve_styles(len(curves))))
    for name, (eff_s, eff_b, _thr, _n) in curves.items():
        aucs[name] = efficiency_auc(eff_s, eff_b)
        (lines[name],) = ax.plot(eff_b, eff_s, label=f"{name} (AUC = {aucs[name]:.3f})", **styles[name])
        rejections[name] = {0.5: rejection_at(eff_s, eff_b, 0.5)}
    if diagonal:
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("Background efficiency $\\varepsilon_B$")
    ax.set_ylabel("Signal efficiency $\\varepsilon_S$")
    ax.legend(**{"loc": "lower right", **_legend_options(len(lines))})
    return RocResult(ax=ax, lines=lines, rejections=rejections, auc=aucs, curves={k: v[:3] for k, v in curves.items()})
