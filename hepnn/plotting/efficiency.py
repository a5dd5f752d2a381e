"""Efficiency and background rejection against a jet variable at a working point; mass sculpting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .._optional import require
from ..metrics import (LABELS_HINT, ONE_SIGMA, WEIGHTS_HINT, check_finite, cut_for_efficiency, efficiency_from_hist,
                       efficiency_hist)
from .common import PLOTS, as_1d, new_axes, upper_edge_inclusive

__all__ = [
    "EfficiencyResult",
    "EfficiencyTable",
    "MassSculptingResult",
    "binned_efficiency",
    "cut_for_efficiency",
    "plot_efficiency",
    "plot_mass_sculpting",
]


@dataclass
class EfficiencyTable:
    """Per-bin efficiencies at a working point, with Clopper–Pearson intervals.

    ``eff_*_lo``/``eff_*_hi`` are interval ends (not distances); counts are
    Kish effective counts for weighted jets. ``cuts`` holds one threshold per bin
    (the same value everywhere for a fixed cut).
    """

    edges: np.ndarray
    cuts: np.ndarray
    eff_s: np.ndarray
    eff_s_lo: np.ndarray
    eff_s_hi: np.ndarray
    eff_b: np.ndarray
    eff_b_lo: np.ndarray
    eff_b_hi: np.ndarray
    n_s: np.ndarray
    n_b: np.ndarray

    @property
    def centers(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @property
    def rejection(self) -> np.ndarray:
        """``1/eff_b``: inf where no background jet passes, nan in a bin without background jets."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(np.isnan(self.eff_b), np.nan, np.where(self.eff_b > 0, 1.0 / self.eff_b, np.inf))

    @property
    def rejection_lo(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return 1.0 / self.eff_b_hi

    @property
    def rejection_hi(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(np.isnan(self.eff_b_lo), np.nan, np.where(self.eff_b_lo > 0, 1.0 / self.eff_b_lo, np.inf))


def binned_efficiency(
    variable: Any,
    scores: Any,
    labels: Any,
    bins: Sequence[float],
    *,
    working_point: float = 0.5,
    flat: bool = False,
    weights: Any = None,
    signal: int = 1,
    cl: float = ONE_SIGMA,
) -> EfficiencyTable:
    """Signal and background efficiency in bins of ``variable`` at a working point.

    Parameters
    ----------
    variable, scores, labels : arrays of shape (n_jets,)
        Binning variable (pT, eta, ...), discriminant and true class.
    bins : sequence of float
        Bin edges; jets outside are ignored.
    working_point : float
        Signal efficiency defining the cut.
    flat : bool
        False: one cut giving ``working_point`` over all jets (fixed cut).
        True: a cut per bin giving ``working_point`` in every bin (flat efficiency).
    weights : array, optional
    signal : int
    cl : float
        Confidence level of the Clopper–Pearson intervals.

    Returns
    -------
    EfficiencyTable

    Examples
    --------
    >>> t = binned_efficiency([10, 20, 30, 40], [0.9, 0.1, 0.8, 0.2], [1, 1, 0, 0], [0, 25, 50])
    >>> t.eff_s.tolist(), t.eff_b.tolist()
    ([0.5, nan], [nan, 0.0])
    """
    x = as_1d(variable, "variable")
    s = as_1d(scores, "scores")
    is_sig = check_finite(as_1d(labels, "labels"), "labels", LABELS_HINT) == signal
    if not (len(x) == len(s) == len(is_sig)):
        msg = f"variable, scores and labels must have one entry per jet; received {len(x)}, {len(s)}, {len(is_sig)}"
        raise ValueError(msg)
    w = None if weights is None else as_1d(weights, "weights")
    if w is not None and len(w) != len(x):
        msg = f"weights has {len(w)} entries but there are {len(x)} jets; pass one weight per jet"
        raise ValueError(msg)
    if w is not None:
        check_finite(w, "weights", WEIGHTS_HINT)
    if not np.all(np.isfinite(s)):
        msg = f"scores: received {np.count_nonzero(~np.isfinite(s))} non-finite values; remove or clip them first"
        raise ValueError(msg)
    edges = np.asarray(bins, dtype=float)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        msg = f"bins: expected increasing bin edges, received {edges.tolist()}"
        raise ValueError(msg)
    if not np.any(is_sig):  # the cut is set on signal jets: without any, every bin would be silently empty
        msg = (f"binned_efficiency: received no signal jets (label {signal}) among the {len(is_sig)} jets, so the "
               f"working point's cut cannot be set; pass labels that include signal jets, or the right signal=")
        raise ValueError(msg)
    idx = np.searchsorted(edges, x, side="right") - 1
    idx[x == edges[-1]] = len(edges) - 2
    n_bins = len(edges) - 1
    if flat:
        cuts = np.full(n_bins, np.nan)
        for b in range(n_bins):
            sig = (idx == b) & is_sig
            if np.any(sig) and (w is None or np.sum(w[sig]) > 0):  # no cut (nan) without signal weight
                cuts[b] = cut_for_efficiency(s[sig], working_point, None if w is None else w[sig])
    else:
        cuts = np.full(n_bins, cut_for_efficiency(s[is_sig], working_point, None if w is None else w[is_sig]))
    inside = (idx >= 0) & (idx < n_bins)
    cut_of_jet = np.full(len(x), np.nan)
    cut_of_jet[inside] = cuts[idx[inside]]
    keep = inside & ~np.isnan(cut_of_jet)
    passed = s >= np.where(keep, cut_of_jet, np.inf)
    counts = {}
    for key, sel in (("s", keep & is_sig), ("b", keep & ~is_sig)):
        h = efficiency_hist(x[sel], passed[sel], edges, None if w is None else w[sel])
        counts[key] = efficiency_from_hist(h, cl)
    cols = {"cuts": cuts}
    for key in ("s", "b"):
        e = counts[key]
        cols[f"eff_{key}"], cols[f"eff_{key}_lo"], cols[f"eff_{key}_hi"] = e.eff, e.lo, e.hi
    return EfficiencyTable(edges=edges, n_s=counts["s"].n, n_b=counts["b"].n, **cols)


@dataclass
class EfficiencyResult:
    """What :func:`plot_efficiency` drew: ``artists`` by series name, and the ``table``."""

    ax: Any
    artists: dict[str, Any]
    table: EfficiencyTable

    @property
    def figure(self) -> Any:
        return self.ax.figure


@PLOTS.register("efficiency")
def plot_efficiency(
    variable: Any,
    scores: Any,
    labels: Any,
    bins: Sequence[float],
    *,
    quantity: str = "efficiency",
    working_point: float = 0.5,
    flat: bool = False,
    weights: Any = None,
    signal: int = 1,
    xlabel: str = "Jet $p_T$ [GeV]",
    ax: Any = None,
) -> EfficiencyResult:
    """Efficiency or background rejection against a variable, Clopper–Pearson error bars.

    Parameters
    ----------
    variable, scores, labels, bins, working_point, flat, weights, signal
        See :func:`binned_efficiency`.
    quantity : {"efficiency", "rejection"}
        ``"efficiency"``: signal and background efficiency (two series);
        ``"rejection"``: background rejection ``1/eff_b`` on a log scale.
    xlabel : str
        E.g. ``"Jet $\\eta$"`` for eta.
    ax : Axes, optional

    Returns
    -------
    EfficiencyResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 2000)
    >>> res = plot_efficiency(rng.uniform(200, 800, 2000), rng.normal(y), y, [200, 400, 600, 800])
    >>> sorted(res.artists)
    ['background', 'signal']
    """
    if quantity not in ("efficiency", "rejection"):
        msg = f"quantity: expected 'efficiency' or 'rejection', received {quantity!r}"
        raise ValueError(msg)
    table = binned_efficiency(
        variable, scores, labels, bins, working_point=working_point, flat=flat, weights=weights, signal=signal
    )
    ax = new_axes(ax)
    x, xerr = table.centers, 0.5 * np.diff(table.edges)
    mode = "flat" if flat else "fixed cut"
    artists = {}
    if quantity == "efficiency":
        low, top = 0.0, 1.0
        for name, eff, lo, hi in [
            ("signal", table.eff_s, table.eff_s_lo, table.eff_s_hi),
            ("background", table.eff_b, table.eff_b_lo, table.eff_b_hi),
        ]:
            # with negative (NLO) weights a bin's efficiency may leave [0, 1] and its interval (that of the
            # clipped efficiency): the bar then reaches from the interval to the point, never a negative length
            with np.errstate(invalid="ignore"):
                yerr = np.maximum(np.vstack([eff - lo, hi - eff]), 0.0)
            artists[name] = ax.errorbar(x, eff, xerr=xerr, yerr=yerr, fmt="o", label=f"{name} efficiency")
            if np.any(np.isfinite(eff)):
                low, top = min(low, float(np.nanmin(eff))), max(top, float(np.nanmax(eff)))
        ax.set_ylabel("Efficiency")
        ax.set_ylim(low - 0.05 * (top - low) if low < 0 else 0.0, 1.05 * top)
    else:
        if not np.any(np.isfinite(table.eff_b)):
            msg = ("plot_efficiency(quantity='rejection'): no background jets in any bin, so there is no rejection "
                   "to draw; pass labels that include background jets, or quantity='efficiency'")
            raise ValueError(msg)
        rej = table.rejection
        finite = np.isfinite(rej)
        with np.errstate(invalid="ignore"):
            yerr = np.vstack([rej - table.rejection_lo, table.rejection_hi - rej])
        yerr[~np.isfinite(yerr)] = 0.0
        yerr = np.maximum(yerr, 0.0)
        artists["rejection"] = ax.errorbar(
            x[finite], rej[finite], xerr=xerr[finite], yerr=yerr[:, finite], fmt="o", label="background rejection"
        )
        # no background jet passes: the rejection is infinite and only its lower limit (1 / upper end of the
        # background efficiency's interval) can be drawn on the log scale, as an arrow up
        limit = np.isposinf(rej) & np.isfinite(table.rejection_lo)
        if np.any(limit):
            low = table.rejection_lo[limit]
            artists["rejection_limit"] = ax.errorbar(
                x[limit], low, xerr=xerr[limit], yerr=low, lolims=True, fmt="none",
                color=artists["rejection"][0].get_color(), label="lower limit (no background jet passes)",
            )
        ax.set_yscale("log")
        ax.set_ylabel("Background rejection $1/\\varepsilon_B$")
    ax.set_xlabel(xlabel)
    ax.legend(title=f"$\\varepsilon_S$ = {working_point:g} ({mode})")
    return EfficiencyResult(ax=ax, artists=artists, table=table)


@dataclass
class MassSculptingResult:
    """What :func:`plot_mass_sculpting` drew.

    ``hists``: ``"before"`` and ``"eff_s=<wp>"`` background mass histograms;
    ``cuts``: score threshold per working point; ``jsd``: Jensen–Shannon
    divergence (base 2, 0 = same shape) of each cut distribution to the one before;
    ``empty``: the working points at which no background jet passes the cut (nothing drawn
    for them, JSD NaN).
    """

    ax: Any
    artists: dict[str, Any]
    hists: dict[str, Any]
    cuts: dict[float, float] = field(default_factory=dict)
    jsd: dict[float, float] = field(default_factory=dict)
    empty: list[float] = field(default_factory=list)

    @property
    def figure(self) -> Any:
        return self.ax.figure


@PLOTS.register("mass_sculpting")
def plot_mass_sculpting(
    mass: Any,
    scores: Any,
    labels: Any,
    *,
    working_points: Sequence[float] = (0.5,),
    bins: int = 40,
    range: tuple[float, float] | None = None,  # noqa: A002 - numpy's name
    weights: Any = None,
    signal: int = 1,
    density: bool = True,
    xlabel: str = "Jet mass [GeV]",
    ax: Any = None,
) -> MassSculptingResult:
    """Background mass before and after cuts at signal efficiencies: does the tagger sculpt the mass?

    Parameters
    ----------
    mass, scores, labels : arrays of shape (n_jets,)
    working_points : sequence of float
        Signal efficiencies of the cuts (the cut is set on signal jets).
    bins, range : histogram binning of the mass
    weights : array, optional
    signal : int
    density : bool
        Compare shapes (unit area) rather than counts.
    xlabel : str
    ax : Axes, optional

    Returns
    -------
    MassSculptingResult
        A working point at which no background jet (with a mass in the range) passes the cut
        has an empty histogram in ``hists``, is listed in ``empty``, is not drawn and is named in
        the legend as "no background jet passes".

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 1000)
    >>> res = plot_mass_sculpting(rng.uniform(0, 300, 1000), rng.normal(y), y, working_points=(0.5, 0.3))
    >>> sorted(res.hists)
    ['before', 'eff_s=0.3', 'eff_s=0.5']
    """
    m = as_1d(mass, "mass")
    s = as_1d(scores, "scores")
    is_sig = check_finite(as_1d(labels, "labels"), "labels", LABELS_HINT) == signal
    if not (len(m) == len(s) == len(is_sig)):
        msg = f"mass, scores and labels must have one entry per jet; received {len(m)}, {len(s)}, {len(is_sig)}"
        raise ValueError(msg)
    w = np.ones(len(m)) if weights is None else check_finite(as_1d(weights, "weights"), "weights", WEIGHTS_HINT)
    if len(w) != len(m):
        msg = f"weights has {len(w)} entries but there are {len(m)} jets; pass one weight per jet"
        raise ValueError(msg)
    if not np.all(np.isfinite(s)):
        msg = f"scores: received {np.count_nonzero(~np.isfinite(s))} non-finite values; remove or clip them first"
        raise ValueError(msg)
    bkg = ~is_sig
    if not np.any(bkg) or not np.any(is_sig):
        msg = "plot_mass_sculpting needs signal jets (to set the cut) and background jets (to show)"
        raise ValueError(msg)
    hist = require("hist")
    mplhep = require("mplhep")
    distance = require("scipy.spatial.distance")
    if range is None:  # jets without a mass (NaN) land in no bin
        finite = m[bkg][np.isfinite(m[bkg])]
        if len(finite) == 0:
            msg = "mass: not finite for any background jet; pass the jet mass of the background jets"
            raise ValueError(msg)
        lo, hi = float(np.min(finite)), float(np.max(finite))
        range = (lo, hi if hi > lo else lo + 1)

    def make(sel: np.ndarray) -> Any:
        h = hist.Hist.new.Reg(bins, *range, name="mass", label=xlabel).Weight()
        h.fill(upper_edge_inclusive(m[sel], *range), weight=w[sel])
        return h

    ax = new_axes(ax)
    hists = {"before": make(bkg)}
    artists = {}
    (artists["before"],) = mplhep.histplot(
        hists["before"], ax=ax, density=density, histtype="fill", alpha=0.3, color="grey", label="background, no cut",
        flow="none",
    )
    cuts, jsd, empty = {}, {}, []
    before = np.maximum(hists["before"].values(), 0.0)  # negative weights (NLO): a bin below zero is empty
    for wp in working_points:
        wp = float(wp)
        cut = cuts[wp] = cut_for_efficiency(s[is_sig], wp, w[is_sig])
        key = f"eff_s={wp:g}"
        h = hists[key] = make(bkg & (s >= cut))
        after = np.maximum(h.values(), 0.0)
        if after.sum() <= 0:  # no background jet passes: an empty (unit-area: NaN) histogram says nothing
            empty.append(wp)
            jsd[wp] = np.nan
            ax.plot([], [], linestyle="none", label=f"$\\varepsilon_S$ = {wp:g}: no background jet passes")
            continue
        jsd[wp] = float(distance.jensenshannon(before, after, base=2) ** 2) if before.sum() > 0 else np.nan
        (artists[key],) = mplhep.histplot(
            h, ax=ax, density=density, histtype="step", label=f"background, $\\varepsilon_S$ = {wp:g}", flow="none"
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Normalised entries" if density else "Entries")
    ax.legend()
    return MassSculptingResult(ax=ax, artists=artists, hists=hists, cuts=cuts, jsd=jsd, empty=empty)
