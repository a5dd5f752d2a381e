"""Tagging metrics: efficiency curves, AUC, rejection, efficiency intervals, binned efficiencies, KS test.

The numbers behind the plots, also used by evaluation and explanation code. Nothing
here draws; :mod:`hepnn.plotting` draws what these functions compute.

Names say what they return, so nothing here borrows a scikit-learn name with other
semantics: :func:`efficiency_curve` returns ``(signal_eff, background_eff,
thresholds)`` (scikit-learn's ``roc_curve`` returns ``fpr, tpr, thresholds``, i.e.
background first). The work is delegated to scikit-learn (``roc_curve``, ``auc``,
``roc_auc_score``), scipy (``ks_2samp``) and hist
(``hist.intervals.clopper_pearson_interval``, ``hist.Hist``).

Binned efficiencies are ``hist.Hist`` objects (a variable axis and a boolean
``passed`` axis with weight storage): histograms of several batch jobs add with
``+`` and :func:`efficiency_from_hist` turns the sum into efficiencies.

Examples
--------
>>> from hepnn.metrics import efficiency_curve, efficiency_auc, rejection_at
>>> signal_eff, background_eff, thr = efficiency_curve([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1])
>>> efficiency_auc(signal_eff, background_eff)
0.75
>>> float(rejection_at(signal_eff, background_eff, 1.0))
2.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np

from ._optional import require

__all__ = [
    "cut_for_efficiency",
    "ONE_SIGMA",
    "BinnedEfficiency",
    "KSResult",
    "clopper_pearson",
    "confusion_matrix",
    "effective_count",
    "efficiency_auc",
    "efficiency_curve",
    "efficiency_from_hist",
    "efficiency_hist",
    "ks_test",
    "rejection_at",
    "rejection_uncertainty",
    "roc_auc",
]

#: Central 1-sigma probability, the default confidence level of intervals.
ONE_SIGMA = 0.6826894921370859


def _as_1d(values: Any, name: str, dtype: Any = float) -> np.ndarray:
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 1:
        msg = f"{name}: expected a 1-D array, received shape {arr.shape}; flatten or select one column"
        raise ValueError(msg)
    return arr


def _weights(weights: Any, n: int, name: str = "weights") -> np.ndarray | None:
    if weights is None:
        return None
    w = _as_1d(weights, name)
    if len(w) != n:
        msg = f"{name} has {len(w)} entries but there are {n} scores; pass one weight per jet"
        raise ValueError(msg)
    return check_finite(w, name, WEIGHTS_HINT)


#: what :func:`check_finite` says of non-finite weights and labels
WEIGHTS_HINT = " (NaN or inf); fix the weights first"
LABELS_HINT = "; every jet needs a class"  # a NaN label would silently count as background


def check_finite(values: np.ndarray, name: str, hint: str) -> np.ndarray:
    """``values`` when all are finite, else ``ValueError`` counting the others (``hint``: how to fix)."""
    if not np.all(np.isfinite(values)):
        msg = f"{name}: received {np.count_nonzero(~np.isfinite(values))} non-finite values{hint}"
        raise ValueError(msg)
    return values


def _binary_inputs(labels: Any, scores: Any, weights: Any, signal: int, what: str):
    """Checked ``(is_signal, scores, weights)``; signal and background must both carry positive weight."""
    s = _as_1d(scores, "scores")
    y = check_finite(_as_1d(labels, "labels"), "labels", LABELS_HINT) == signal
    if len(y) != len(s):
        msg = f"labels has {len(y)} entries but scores has {len(s)}; pass one label per jet"
        raise ValueError(msg)
    w = _weights(weights, len(s))
    if not np.all(np.isfinite(s)):
        msg = f"scores: received {np.count_nonzero(~np.isfinite(s))} non-finite values; remove or clip them first"
        raise ValueError(msg)
    ww = np.ones(len(s)) if w is None else w
    w_sig, w_bkg = float(np.sum(ww[y])), float(np.sum(ww[~y]))
    if w_sig <= 0 or w_bkg <= 0:
        msg = (
            f"{what} needs signal (label {signal}) and background jets with positive total weight; "
            f"received signal weight {w_sig}, background weight {w_bkg}"
        )
        raise ValueError(msg)
    return y, s, w


def efficiency_curve(
    labels: Any, scores: Any, weights: Any = None, *, signal: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signal and background efficiency for every distinct score threshold.

    A jet passes the threshold ``t`` when ``score >= t``. Jets with
    ``labels == signal`` are signal, all others background (one-vs-rest).
    The first point is ``(0, 0)`` at ``t = inf``; the last is ``(1, 1)``.
    Computed by ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``,
    whose ``tpr, fpr, thresholds`` are returned in this order.

    Parameters
    ----------
    labels : array of shape (n_jets,)
        True class of every jet.
    scores : array of shape (n_jets,)
        Discriminant, larger is more signal-like.
    weights : array of shape (n_jets,), optional
        Per-jet weights (negative weights are allowed but then the curve need
        not be monotonic).
    signal : int
        The label of the signal class.

    Returns
    -------
    signal_eff, background_eff, thresholds : arrays of shape (n_thresholds + 1,)

    Examples
    --------
    >>> signal_eff, background_eff, thr = efficiency_curve([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1])
    >>> signal_eff.tolist(), background_eff.tolist()
    ([0.0, 0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5, 1.0])
    """
    y, s, w = _binary_inputs(labels, scores, weights, signal, "efficiency_curve")
    sk = require("sklearn.metrics")
    background_eff, signal_eff, thresholds = sk.roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    thresholds = np.asarray(thresholds, dtype=float).copy()
    thresholds[0] = np.inf  # scikit-learn < 1.3 wrote max(score) + 1 here
    return np.asarray(signal_eff, dtype=float), np.asarray(background_eff, dtype=float), thresholds


def efficiency_auc(signal_eff: Any, background_eff: Any) -> float:
    """Area under the signal efficiency as a function of the background efficiency.

    The trapezoidal rule of ``sklearn.metrics.auc(background_eff, signal_eff)``;
    arguments in the order :func:`efficiency_curve` returns them.

    Examples
    --------
    >>> efficiency_auc([0.0, 1.0, 1.0], [0.0, 0.0, 1.0])
    1.0
    """
    y = _as_1d(signal_eff, "signal_eff")
    x = _as_1d(background_eff, "background_eff")
    if len(x) != len(y) or len(x) < 2:
        msg = (f"efficiency_auc: expected two curves of the same length >= 2, received {len(y)} signal and "
               f"{len(x)} background efficiencies; pass the first two outputs of efficiency_curve")
        raise ValueError(msg)
    dx = np.diff(x)
    if np.all(dx >= 0) or np.all(dx <= 0):
        return float(require("sklearn.metrics").auc(x, y))
    # negative weights: the curve is not monotonic (scikit-learn refuses it); the trapezoidal rule in
    # threshold order still gives the weighted probability that signal outscores background
    return float(np.sum(dx * (y[1:] + y[:-1]) / 2))


def roc_auc(labels: Any, scores: Any, weights: Any = None, *, signal: int = 1) -> float:
    """Area under the ROC curve straight from labels and scores: ``sklearn.metrics.roc_auc_score``.

    The probability that a random signal jet scores higher than a random
    background jet (ties count one half), weighted by ``weights``.

    Examples
    --------
    >>> roc_auc([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1])
    0.75
    """
    y, s, w = _binary_inputs(labels, scores, weights, signal, "roc_auc")
    if w is not None and np.any(w < 0):  # roc_auc_score refuses the non-monotonic curve of negative weights
        signal_eff, background_eff, _ = efficiency_curve(y, s, w)
        return efficiency_auc(signal_eff, background_eff)
    return float(require("sklearn.metrics").roc_auc_score(y, s, sample_weight=w))


def _background_eff_at(signal_eff: np.ndarray, background_eff: np.ndarray, wp: np.ndarray) -> np.ndarray:
    es = np.maximum.accumulate(signal_eff)
    k = np.clip(np.searchsorted(es, wp, side="left"), 1, len(es) - 1)
    exact = es[k] == wp
    # the curve's own point before the crossing (below the running maximum after a dip of negative weights)
    lo_s, hi_s = signal_eff[k - 1], es[k]
    lo_b, hi_b = background_eff[k - 1], background_eff[k]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(hi_s > lo_s, (wp - lo_s) / (hi_s - lo_s), 1.0)
    return np.where(exact, hi_b, lo_b + frac * (hi_b - lo_b))


def rejection_at(signal_eff: Any, background_eff: Any, working_points: Any) -> Any:
    """Background rejection ``1 / background_eff`` at given signal efficiencies.

    The background efficiency is interpolated linearly along the efficiency
    curve; at a signal efficiency reached exactly, the lowest background
    efficiency with that signal efficiency is used. The rejection is ``inf``
    where the background efficiency is 0.

    Parameters
    ----------
    signal_eff, background_eff : arrays
        An efficiency curve as returned by :func:`efficiency_curve`.
    working_points : float or array of float in (0, 1]
        Signal efficiencies.

    Returns
    -------
    float or array
        Same shape as ``working_points``.

    Examples
    --------
    >>> signal_eff, background_eff, _ = efficiency_curve([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1])
    >>> float(rejection_at(signal_eff, background_eff, 1.0))
    2.0
    """
    es = _as_1d(signal_eff, "signal_eff")
    eb = _as_1d(background_eff, "background_eff")
    wp = np.asarray(working_points, dtype=float)
    if np.any((wp <= 0) | (wp > 1)) or not np.all(np.isfinite(wp)):
        msg = f"working_points: expected signal efficiencies in (0, 1], received {wp.tolist()}"
        raise ValueError(msg)
    b = _background_eff_at(es, eb, wp.ravel())
    with np.errstate(divide="ignore"):
        rej = np.where(b > 0, 1.0 / np.where(b > 0, b, 1.0), np.inf)
    return float(rej[0]) if wp.ndim == 0 else rej.reshape(wp.shape)


def cut_for_efficiency(scores: Any, working_point: float, weights: Any = None) -> float:
    """The score threshold ``t`` at which a fraction ``working_point`` of jets has ``score >= t``.

    The smallest fraction not below ``working_point`` is used (exact for distinct scores).

    Examples
    --------
    >>> cut_for_efficiency([0.1, 0.2, 0.3, 0.4], 0.5)
    0.3
    """
    s = _as_1d(scores, "scores")
    if not 0 < working_point <= 1:
        msg = f"working_point: expected a signal efficiency in (0, 1], received {working_point}"
        raise ValueError(msg)
    w = np.ones(len(s)) if weights is None else _weights(weights, len(s))
    if not np.all(np.isfinite(s)):
        msg = f"scores: received {np.count_nonzero(~np.isfinite(s))} non-finite values; remove or clip them first"
        raise ValueError(msg)
    if len(s) == 0:
        return np.nan
    if not np.sum(w) > 0:
        msg = f"cut_for_efficiency: the jets need a positive total weight, received {float(np.sum(w))}"
        raise ValueError(msg)
    order = np.argsort(-s, kind="mergesort")
    ss = s[order]
    # a cut keeps whole groups of tied scores: the fraction is the one at the end of each group
    group_end = np.r_[ss[1:] != ss[:-1], True]
    # the tightest cut reaching the working point (negative weights make the fraction non-monotonic)
    frac = np.maximum.accumulate(np.cumsum(w[order])[group_end] / np.sum(w))
    k = min(int(np.searchsorted(frac, working_point * (1 - 1e-12), side="left")), len(frac) - 1)
    return float(ss[group_end][k])


def effective_count(weights: Any) -> float:
    """Kish effective number of entries ``(sum w)^2 / sum w^2``.

    Examples
    --------
    >>> effective_count([1.0, 1.0, 1.0])
    3.0
    """
    w = np.asarray(weights, dtype=float)
    w2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / w2 if w2 > 0 else 0.0


def rejection_uncertainty(rejection: Any, n_background: float) -> np.ndarray:
    """Binomial standard error of a rejection ``R = 1/eff_b``.

    ``sigma_R = R^2 * sqrt(eff_b (1 - eff_b) / n_background)``; pass an
    effective count (:func:`effective_count`) for weighted jets. Infinite
    rejections get an infinite uncertainty.

    Examples
    --------
    >>> float(rejection_uncertainty(10.0, 1000))
    0.9486832980505138
    """
    r = np.asarray(rejection, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        eb = 1.0 / r
        sigma = r * r * np.sqrt(eb * (1.0 - eb) / n_background)
    return np.where(np.isfinite(r), sigma, np.inf)


def clopper_pearson(k: Any, n: Any, cl: float = ONE_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """Clopper–Pearson (exact binomial) interval of an efficiency ``k / n``.

    ``hist.intervals.clopper_pearson_interval(k, n, cl)``: ``lower = 0`` at
    ``k = 0`` and ``upper = 1`` at ``k = n``. Non-integer (effective) counts
    are accepted. Where ``n == 0`` both ends are nan.

    Parameters
    ----------
    k, n : int or array
        Passing and total counts.
    cl : float
        Central confidence level, 68.27 % by default.

    Returns
    -------
    lower, upper : arrays with the broadcast shape of ``k`` and ``n``

    Examples
    --------
    >>> lo, hi = clopper_pearson(5, 10)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.3048, 0.6952)
    """
    intervals = require("hist.intervals")
    k, n = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(n, dtype=float))
    if not 0 < cl < 1:
        msg = f"cl: expected a confidence level in (0, 1), received {cl}"
        raise ValueError(msg)
    filled = n > 0
    if np.any(k[filled] < 0) or np.any(k[filled] > n[filled] * (1 + 1e-9)):
        msg = "clopper_pearson: expected 0 <= k <= n for every entry; check that passing jets are counted in n"
        raise ValueError(msg)
    k = np.clip(k, 0.0, np.maximum(n, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        lower, upper = intervals.clopper_pearson_interval(np.atleast_1d(k), np.atleast_1d(n), coverage=cl)
    empty = np.atleast_1d(n <= 0)
    lower = np.where(empty, np.nan, lower).reshape(k.shape)
    upper = np.where(empty, np.nan, upper).reshape(k.shape)
    return lower, upper


def efficiency_hist(
    variable: Any, passed: Any, bins: Sequence[float], weights: Any = None, *, name: str = "x", label: str | None = None
) -> Any:
    """Jets counted in bins of ``variable``, split by whether they pass a cut: a ``hist.Hist``.

    Axes: ``name`` (variable bins, the upper edge of the last bin included)
    and the boolean ``passed``; storage ``Weight`` (sum of weights and of
    squared weights), so histograms filled by separate jobs add with ``+``
    and :func:`efficiency_from_hist` of the sum equals that of all jets at once.

    Parameters
    ----------
    variable : array of shape (n_jets,)
        Binning variable (pT, eta, mass, ...).
    passed : array of bool of shape (n_jets,)
        Whether each jet passes the cut.
    bins : sequence of float
        Increasing bin edges; jets outside are counted in the flow bins.
    weights : array of shape (n_jets,), optional
    name, label : str
        Name and label of the variable axis.

    Examples
    --------
    >>> h = efficiency_hist([10, 20, 30, 40], [True, False, True, True], [0, 25, 50])
    >>> h.values().tolist()
    [[1.0, 1.0], [0.0, 2.0]]
    """
    hist = require("hist")
    x = _as_1d(variable, "variable")
    ok = _as_1d(passed, "passed", dtype=bool)
    if len(ok) != len(x):
        msg = f"passed has {len(ok)} entries but variable has {len(x)}; pass one flag per jet"
        raise ValueError(msg)
    w = _weights(weights, len(x))
    edges = np.asarray(bins, dtype=float)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0) or not np.all(np.isfinite(edges)):
        msg = f"bins: expected increasing finite bin edges, received {edges.tolist()}"
        raise ValueError(msg)
    x = np.where(x == edges[-1], np.nextafter(edges[-1], edges[0]), x)
    h = hist.Hist(
        hist.axis.Variable(edges, name=name, label=label or name),
        hist.axis.Boolean(name="passed"),
        storage=hist.storage.Weight(),
    )
    h.fill(x, ok, weight=w)
    return h


@dataclass
class BinnedEfficiency:
    """Per-bin efficiency with its Clopper–Pearson interval (``lo``/``hi`` are interval ends).

    ``n`` is the Kish effective number of jets per bin (the jet count when unweighted).
    """

    edges: np.ndarray
    eff: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n: np.ndarray


def efficiency_from_hist(h: Any, cl: float = ONE_SIGMA) -> BinnedEfficiency:
    """Efficiency per bin of a histogram from :func:`efficiency_hist` (or a sum of them).

    ``eff = sum(w, passed) / sum(w)``; the interval is the Clopper–Pearson one of
    ``eff * n`` passing out of ``n = (sum w)^2 / sum w^2`` (Kish) jets. Empty bins
    are nan. With negative weights a bin's efficiency may leave [0, 1]; it is kept, and its
    interval is that of the efficiency clipped to [0, 1].

    Examples
    --------
    >>> h = efficiency_hist([10, 20, 30, 40], [True, False, True, True], [0, 25, 50])
    >>> efficiency_from_hist(h).eff.tolist()
    [0.5, 1.0]
    """
    names = [ax.name for ax in h.axes]
    if len(names) != 2 or names[1] != "passed":
        msg = (f"efficiency_from_hist: expected a histogram of efficiency_hist (axes [variable, 'passed']), "
               f"received axes {names}")
        raise ValueError(msg)
    view = h.view()
    sum_w = view["value"].sum(axis=1)
    sum_w2 = view["variance"].sum(axis=1)
    passed_w = view["value"][:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.where(sum_w > 0, passed_w / np.where(sum_w > 0, sum_w, 1.0), np.nan)
        n = np.where(sum_w2 > 0, sum_w * sum_w / np.where(sum_w2 > 0, sum_w2, 1.0), 0.0)
    # negative weights (NLO) can put a bin's efficiency outside [0, 1]: the value is kept, its
    # interval is the one of the nearest possible count (an exact binomial interval needs 0 <= k <= n)
    k = np.where(n > 0, np.clip(np.nan_to_num(eff), 0.0, 1.0) * n, 0.0)
    lo, hi = clopper_pearson(k, n, cl)
    return BinnedEfficiency(edges=np.asarray(h.axes[0].edges, dtype=float), eff=eff, lo=lo, hi=hi, n=n)


def confusion_matrix(
    y_true: Any, y_pred: Any, *, n_classes: int | None = None, normalize: str | None = None, weights: Any = None
) -> np.ndarray:
    """Counts ``C[i, j]`` of jets of true class ``i`` predicted as ``j``: ``sklearn.metrics.confusion_matrix``.

    Parameters
    ----------
    y_true : array of int, shape (n_jets,)
    y_pred : array of int (n_jets,) or probabilities (n_jets, n_classes) (argmax is taken)
    n_classes : int, optional
        Size of the matrix; default one more than the largest class seen.
    normalize : {None, "true", "pred", "all"}
        Normalise rows (efficiencies), columns (purities) or everything, as scikit-learn
        (empty rows or columns give 0).
    weights : array, optional

    Examples
    --------
    >>> confusion_matrix([0, 1, 1], [0, 1, 0]).tolist()
    [[1.0, 0.0], [1.0, 1.0]]
    """
    t = _as_1d(y_true, "y_true", dtype=int)
    p = np.asarray(y_pred)
    if p.ndim == 2:
        if not np.all(np.isfinite(p)):
            msg = f"y_pred: received {np.count_nonzero(~np.isfinite(p))} non-finite probabilities; remove or clip them first"
            raise ValueError(msg)
        n_classes = n_classes or p.shape[1]
        p = np.argmax(p, axis=1)
    p = _as_1d(p, "y_pred", dtype=int)
    if len(p) != len(t):
        msg = f"y_true has {len(t)} entries but y_pred has {len(p)}; pass one prediction per jet"
        raise ValueError(msg)
    if normalize not in (None, "true", "pred", "all"):
        msg = f"normalize: expected None, 'true', 'pred' or 'all', received {normalize!r}"
        raise ValueError(msg)
    w = _weights(weights, len(t))
    n = n_classes or int(max(t.max(initial=-1), p.max(initial=-1)) + 1)
    if n < 1:
        return np.zeros((0, 0))
    for name, values in (("y_true", t), ("y_pred", p)):
        outside = (values < 0) | (values >= n)
        if np.any(outside):
            msg = (f"{name}: {np.count_nonzero(outside)} jets have a class outside 0..{n - 1} "
                   f"(e.g. {int(values[outside][0])}); pass n_classes (or class_names) for every class")
            raise ValueError(msg)
    sk = require("sklearn.metrics")
    cm = np.asarray(sk.confusion_matrix(t, p, labels=np.arange(n), sample_weight=w), dtype=float)
    if normalize is None:
        return cm
    # as scikit-learn normalises, but a row (column) whose signed weights sum to <= 0 is named: its
    # fractions would come out sign-flipped, or as +-1.8e308 from 0/0
    gross = cm if w is None else np.asarray(sk.confusion_matrix(t, p, labels=np.arange(n), sample_weight=np.abs(w)),
                                            dtype=float)
    axis = {"true": 1, "pred": 0, "all": None}[normalize]
    total, weighted = cm.sum(axis=axis, keepdims=True), gross.sum(axis=axis, keepdims=True)
    bad = np.flatnonzero((weighted > 0) & ~(total > 0))
    if bad.size:
        what = {"true": f"true class {int(bad[0])}", "pred": f"predicted class {int(bad[0])}", "all": "all jets"}[normalize]
        msg = (f"confusion_matrix(normalize={normalize!r}): the weights of {what} sum to {float(total.flat[bad[0]]):g} "
               "(negative weights outweigh the positive ones), so its fractions are undefined; check the weights")
        raise ValueError(msg)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(cm / total)  # rows (columns) without jets: 0, as scikit-learn


class KSResult(NamedTuple):
    """Two-sample Kolmogorov–Smirnov statistic and p-value."""

    statistic: float
    pvalue: float


def _weighted_ks_statistic(a: np.ndarray, wa: np.ndarray, b: np.ndarray, wb: np.ndarray) -> float:
    grid = np.union1d(a, b)

    def cdf(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        order = np.argsort(x, kind="mergesort")
        cw = np.r_[0.0, np.cumsum(w[order])] / np.sum(w)
        return cw[np.searchsorted(x[order], grid, side="right")]

    return float(np.max(np.abs(cdf(a, wa) - cdf(b, wb))))


def ks_test(a: Any, b: Any, weights_a: Any = None, weights_b: Any = None) -> KSResult:
    """Two-sample Kolmogorov–Smirnov test, e.g. train against test scores.

    Without weights this is ``scipy.stats.ks_2samp(a, b)``. With weights the
    statistic is the largest distance between the weighted empirical CDFs and
    the p-value is the asymptotic two-sided one (``scipy.stats.kstwo``)
    evaluated at the Kish effective sample sizes. Negative weights (NLO) are
    allowed: the weighted CDFs then need not be monotonic, and the statistic may
    exceed 1 (p-value 0); each sample's weights must have a positive sum.

    Examples
    --------
    >>> res = ks_test([0.1, 0.2, 0.3], [0.1, 0.2, 0.3])
    >>> res.statistic, res.pvalue
    (0.0, 1.0)
    """
    stats = require("scipy.stats")
    a = _as_1d(a, "a")
    b = _as_1d(b, "b")
    if len(a) == 0 or len(b) == 0:
        msg = f"ks_test needs two non-empty samples; received {len(a)} and {len(b)} entries"
        raise ValueError(msg)
    for name, values in (("a", a), ("b", b)):
        if not np.all(np.isfinite(values)):
            msg = f"ks_test: {name} has {np.count_nonzero(~np.isfinite(values))} non-finite values; remove or clip them first"
            raise ValueError(msg)
    if weights_a is None and weights_b is None:
        res = stats.ks_2samp(a, b)
        return KSResult(float(res.statistic), float(res.pvalue))
    wa = np.ones(len(a)) if weights_a is None else _weights(weights_a, len(a), "weights_a")
    wb = np.ones(len(b)) if weights_b is None else _weights(weights_b, len(b), "weights_b")
    for name, w in (("weights_a", wa), ("weights_b", wb)):
        if not np.sum(w) > 0:  # the weighted CDF is undefined (a statistic above 1, p-value 0)
            msg = f"ks_test: {name} must have a positive sum, received {float(np.sum(w))}"
            raise ValueError(msg)
    d = _weighted_ks_statistic(a, wa, b, wb)
    na, nb = effective_count(wa), effective_count(wb)
    en = max(1, int(np.round(na * nb / (na + nb))))
    return KSResult(d, float(np.clip(stats.kstwo.sf(d, en), 0.0, 1.0)))
