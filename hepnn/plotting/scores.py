"""Score distributions per class, train against test: the overtraining check."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .._optional import require
from ..metrics import KSResult, ks_test
from .common import PLOTS, as_1d, class_names_for, new_axes, upper_edge_inclusive

__all__ = ["ScoreResult", "plot_scores", "score_range"]

UNIT_AREA_FIX = "check this class's weights, or pass density=False to draw the weighted entries"
KS_FIX = "check this class's weights (or leave the training scores out)"


@dataclass
class ScoreResult:
    """What :func:`plot_scores` drew and computed.

    Attributes
    ----------
    ax : Axes
    artists : dict of (sample, class name) to mplhep artist
        ``sample`` is ``"test"`` or ``"train"``.
    hists : dict of str to hist.Hist
        ``"test/<class>"`` and ``"train/<class>"`` histograms (weighted storage),
        ready for :func:`hepnn.plotting.save_hists`.
    ks : dict of class name to KSResult
        Train against test, per class (empty without training scores).
    """

    ax: Any
    artists: dict[tuple[str, str], Any]
    hists: dict[str, Any]
    ks: dict[str, KSResult] = field(default_factory=dict)

    @property
    def figure(self) -> Any:
        return self.ax.figure


def score_range(*arrays: np.ndarray) -> tuple[float, float]:
    """(0, 1) for probabilities, else the min and max over ``arrays``."""
    lo = min(float(np.min(a)) for a in arrays if len(a))
    hi = max(float(np.max(a)) for a in arrays if len(a))
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def _check_total(weights: np.ndarray | None, sample: str, cname: str, what: str, fix: str) -> None:
    """A unit-area histogram and the weighted KS test divide by the class's total weight."""
    if weights is None:
        return
    total = float(np.sum(weights))
    if not total > 0:
        msg = (f"{sample}_weights: the {len(weights)} {cname!r} jets' weights sum to {total:g} (negative weights "
               f"outweigh the positive ones), so {what} is undefined; {fix}")
        raise ValueError(msg)


def _hist(values: np.ndarray, weights: np.ndarray | None, bins: int, range: tuple[float, float], label: str) -> Any:
    hist = require("hist")
    h = hist.Hist.new.Reg(bins, *range, name="score", label=label).Weight()
    h.fill(upper_edge_inclusive(values, *range), weight=1.0 if weights is None else weights)
    return h


@PLOTS.register("scores")
def plot_scores(
    test_scores: Any,
    test_labels: Any,
    train_scores: Any = None,
    train_labels: Any = None,
    *,
    test_weights: Any = None,
    train_weights: Any = None,
    bins: int = 40,
    range: tuple[float, float] | None = None,  # noqa: A002 - numpy's name
    class_names: Sequence[str] | Mapping[int, str] | None = None,
    xlabel: str = "Tagger score",
    density: bool = True,
    logy: bool = False,
    ax: Any = None,
) -> ScoreResult:
    """Score distribution of every class; with training scores, the overtraining check.

    Test scores are drawn as filled steps, training scores as points with error
    bars, and the legend gives the Kolmogorov–Smirnov p-value of train against
    test for each class (:func:`hepnn.metrics.ks_test`, unbinned: exact without weights, asymptotic
    at the effective (Kish) sample sizes with weights).

    Parameters
    ----------
    test_scores, test_labels : arrays of shape (n_jets,)
    train_scores, train_labels : arrays, optional
    test_weights, train_weights : arrays, optional
        Signed (NLO) weights are drawn as they are; a class whose weights sum to <= 0 has no
        unit-area histogram (``density``) and no KS test: ValueError naming it.
    bins : int
    range : (float, float), optional
        Histogram range; (0, 1) for probabilities, else the data range.
    class_names : sequence or mapping, optional
        Names of the integer labels; ``background``/``signal`` for 0/1.
    xlabel : str
    density : bool
        Normalise every histogram to unit area.
    logy : bool
    ax : Axes, optional

    Returns
    -------
    ScoreResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 500)
    >>> res = plot_scores(rng.random(500), y, rng.random(500), y)
    >>> sorted(res.ks)
    ['background', 'signal']
    """
    s_te = as_1d(test_scores, "test_scores")
    y_te = as_1d(test_labels, "test_labels", dtype=int)
    w_te = None if test_weights is None else as_1d(test_weights, "test_weights")
    with_train = train_scores is not None
    if with_train:
        if train_labels is None:
            msg = "train_labels: required when train_scores is given"
            raise ValueError(msg)
        s_tr = as_1d(train_scores, "train_scores")
        y_tr = as_1d(train_labels, "train_labels", dtype=int)
        w_tr = None if train_weights is None else as_1d(train_weights, "train_weights")
    for name, a, b, w in [("test", s_te, y_te, w_te)] + ([("train", s_tr, y_tr, w_tr)] if with_train else []):
        if len(a) != len(b):
            msg = f"{name}_scores has {len(a)} entries but {name}_labels has {len(b)}"
            raise ValueError(msg)
        if w is not None and len(w) != len(a):
            msg = f"{name}_weights has {len(w)} entries but {name}_scores has {len(a)}; pass one weight per jet"
            raise ValueError(msg)
        if not np.all(np.isfinite(a)):
            msg = f"{name}_scores: received {np.count_nonzero(~np.isfinite(a))} non-finite values; remove or clip them first"
            raise ValueError(msg)
    names = class_names_for(np.concatenate([y_te, y_tr]) if with_train else y_te, class_names)
    range = range or score_range(s_te, *( [s_tr] if with_train else []))
    mplhep = require("mplhep")
    ax = new_axes(ax)
    artists, hists, ks = {}, {}, {}
    colors = [f"C{i}" for i in builtins.range(len(names))]
    for color, (cls, cname) in zip(colors, names.items()):
        sel = y_te == cls
        wsel = None if w_te is None else w_te[sel]
        h = hists[f"test/{cname}"] = _hist(s_te[sel], wsel, bins, range, xlabel)
        test_label = f"{cname} (test)"
        if density and np.any(sel):
            _check_total(wsel, "test", cname, "its unit-area histogram", UNIT_AREA_FIX)
        if with_train:
            sel_tr = y_tr == cls
            wsel_tr = None if w_tr is None else w_tr[sel_tr]
            if density and np.any(sel_tr):
                _check_total(wsel_tr, "train", cname, "its unit-area histogram", UNIT_AREA_FIX)
            if np.any(sel_tr) and np.any(sel):
                _check_total(wsel, "test", cname, "the train/test KS test", KS_FIX)
                _check_total(wsel_tr, "train", cname, "the train/test KS test", KS_FIX)
                ks[cname] = ks_test(s_te[sel], s_tr[sel_tr], wsel, wsel_tr)
        # a class without jets in a sample (a rare class in a small test split) is not drawn: an empty
        # histogram normalised to unit area is 0/0
        if np.any(sel):
            (artists[("test", cname)],) = mplhep.histplot(
                h, ax=ax, density=density, histtype="fill", alpha=0.35, color=color, label=test_label, flow="none"
            )
        if with_train:
            h_tr = hists[f"train/{cname}"] = _hist(s_tr[sel_tr], wsel_tr, bins, range, xlabel)
            p = f", KS p = {ks[cname].pvalue:.3f}" if cname in ks else ""
            if np.any(sel_tr):
                (artists[("train", cname)],) = mplhep.histplot(
                    h_tr, ax=ax, density=density, histtype="errorbar", color=color,
                    label=f"{cname} (train){p}", flow="none", markersize=4,
                )
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Normalised entries" if density else "Entries")
    ax.set_xlim(*range)
    ax.legend()
    return ScoreResult(ax=ax, artists=artists, hists=hists, ks=ks)
