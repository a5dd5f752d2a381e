"""Tagging metrics in plain numpy: ROC, AUC, rejection, Clopper–Pearson, KS test.

These are the numbers behind the plots and are also used by evaluation code, so
they are exact (no binning) and accept per-jet weights where that makes sense.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._optional import require
from ._common import as_1d

__all__ = [
    "KSResult",
    "auc",
    "clopper_pearson",
    "effective_count",
    "ks_test",
    "rejection_at",
    "rejection_uncertainty",
    "roc_curve",
]

#: Central 1-sigma probability, the default confidence level of intervals.
ONE_SIGMA = 0.6826894921370859


def _weights(weights: Any, n: int, name: str = "weights") -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = as_1d(weights, name)
    if len(w) != n:
        msg = f"{name} has {len(w)} entries but there are {n} scores; pass one weight per jet"
        raise ValueError(msg)
    return w


def roc_curve(
    scores: Any, labels: Any, weights: Any = None, *, signal: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signal and background efficiency for every distinct threshold.

    A jet passes the threshold ``t`` when ``score >= t``. Jets with
    ``labels == signal`` are signal, all others background (one-vs-rest).
    The first point is ``(0, 0)`` at ``t = inf``; the last is ``(1, 1)``.

    Parameters
    ----------
    scores : array of shape (n_jets,)
        Discriminant, larger is more signal-like.
    labels : array of shape (n_jets,)
        True class of every jet.
    weights : array of shape (n_jets,), optional
        Per-jet weights (negative weights are allowed but then the curve need
        not be monotonic).
    signal : int
        The label of the signal class.

    Returns
    -------
    eff_s, eff_b, thresholds : arrays of shape (n_thresholds + 1,)
        The same as ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``
        returns as ``tpr, fpr, thresholds``.

    Examples
    --------
    >>> eff_s, eff_b, thr = roc_curve([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0])
    >>> eff_s.tolist(), eff_b.tolist()
    ([0.0, 0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5, 1.0])
    """
    s = as_1d(scores, "scores")
    y = as_1d(labels, "labels") == signal
    if len(y) != len(s):
        msg = f"labels has {len(y)} entries but scores has {len(s)}; pass one label per jet"
        raise ValueError(msg)
    w = _weights(weights, len(s))
    if not np.all(np.isfinite(s)):
        msg = f"scores: received {np.count_nonzero(~np.isfinite(s))} non-finite values; remove or clip them first"
        raise ValueError(msg)
    order = np.argsort(-s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    tps = np.cumsum(np.where(y, w, 0.0))
    fps = np.cumsum(np.where(y, 0.0, w))
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps, fps, thr = tps[last], fps[last], s[last]
    if len(s) == 0 or tps[-1] <= 0 or fps[-1] <= 0:
        msg = (
            f"roc_curve needs signal (label {signal}) and background jets with positive total weight; "
            f"received signal weight {tps[-1] if len(s) else 0.0}, background weight {fps[-1] if len(s) else 0.0}"
        )
        raise ValueError(msg)
    eff_s = np.r_[0.0, tps / tps[-1]]
    eff_b = np.r_[0.0, fps / fps[-1]]
    return eff_s, eff_b, np.r_[np.inf, thr]


def auc(eff_s: Any, eff_b: Any) -> float:
    """Area under the ROC curve (signal efficiency against background efficiency).

    Trapezoidal rule, the same as ``sklearn.metrics.auc(eff_b, eff_s)``.

    Examples
    --------
    >>> auc([0.0, 1.0, 1.0], [0.0, 0.0, 1.0])
    1.0
    """
    y = as_1d(eff_s, "eff_s")
    x = as_1d(eff_b, "eff_b")
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def _background_eff_at(eff_s: np.ndarray, eff_b: np.ndarray, wp: np.ndarray) -> np.ndarray:
    es = np.maximum.accumulate(eff_s)
    k = np.clip(np.searchsorted(es, wp, side="left"), 1, len(es) - 1)
    exact = es[k] == wp
    lo_s, hi_s = es[k - 1], es[k]
    lo_b, hi_b = eff_b[k - 1], eff_b[k]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(hi_s > lo_s, (wp - lo_s) / (hi_s - lo_s), 1.0)
    return np.where(exact, hi_b, lo_b + frac * (hi_b - lo_b))


def rejection_at(eff_s: Any, eff_b: Any, working_points: Any) -> Any:
    """Background rejection ``1 / eff_b`` at given signal efficiencies.

    The background efficiency is interpolated linearly along the ROC curve; at
    a signal efficiency reached exactly, the lowest background efficiency with
    that signal efficiency is used. The rejection is ``inf`` where
    ``eff_b == 0``.

    Parameters
    ----------
    eff_s, eff_b : arrays
        A ROC curve as returned by :func:`roc_curve`.
    working_points : float or array of float in (0, 1]
        Signal efficiencies.

    Returns
    -------
    float or array
        Same shape as ``working_points``.

    Examples
    --------
    >>> eff_s, eff_b, _ = roc_curve([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0])
    >>> float(rejection_at(eff_s, eff_b, 1.0))
    2.0
    """
    es = as_1d(eff_s, "eff_s")
    eb = as_1d(eff_b, "eff_b")
    wp = np.asarray(working_points, dtype=float)
    if np.any((wp <= 0) | (wp > 1)) or not np.all(np.isfinite(wp)):
        msg = f"working_points: expected signal efficiencies in (0, 1], received {wp.tolist()}"
        raise ValueError(msg)
    b = _background_eff_at(es, eb, wp.ravel())
    with np.errstate(divide="ignore"):
        rej = np.where(b > 0, 1.0 / np.where(b > 0, b, 1.0), np.inf)
    return float(rej[0]) if wp.ndim == 0 else rej.reshape(wp.shape)


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

    ``lower = Beta.ppf(a/2, k, n - k + 1)``, ``upper = Beta.ppf(1 - a/2, k + 1, n - k)``
    with ``a = 1 - cl``; ``lower = 0`` at ``k = 0`` and ``upper = 1`` at ``k = n``.
    Non-integer (effective) counts are accepted. Where ``n == 0`` both ends are nan.

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
    beta = require("scipy.stats").beta
    k, n = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(n, dtype=float))
    if not 0 < cl < 1:
        msg = f"cl: expected a confidence level in (0, 1), received {cl}"
        raise ValueError(msg)
    filled = n > 0
    if np.any(k[filled] < 0) or np.any(k[filled] > n[filled] * (1 + 1e-9)):
        msg = "clopper_pearson: expected 0 <= k <= n for every entry; check that passing jets are counted in n"
        raise ValueError(msg)
    k = np.clip(k, 0.0, np.maximum(n, 0.0))
    alpha = 1.0 - cl
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = np.where(k > 0, beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        upper = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    empty = n <= 0
    lower = np.where(empty, np.nan, lower)
    upper = np.where(empty, np.nan, upper)
    return lower, upper


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
    the p-value is the asymptotic two-sided one of ``ks_2samp(method="asymp")``
    evaluated at the Kish effective sample sizes.

    Examples
    --------
    >>> res = ks_test([0.1, 0.2, 0.3], [0.1, 0.2, 0.3])
    >>> res.statistic, res.pvalue
    (0.0, 1.0)
    """
    stats = require("scipy.stats")
    a = as_1d(a, "a")
    b = as_1d(b, "b")
    if len(a) == 0 or len(b) == 0:
        msg = f"ks_test needs two non-empty samples; received {len(a)} and {len(b)} entries"
        raise ValueError(msg)
    if weights_a is None and weights_b is None:
        res = stats.ks_2samp(a, b)
        return KSResult(float(res.statistic), float(res.pvalue))
    wa = _weights(weights_a, len(a), "weights_a")
    wb = _weights(weights_b, len(b), "weights_b")
    d = _weighted_ks_statistic(a, wa, b, wb)
    na, nb = effective_count(wa), effective_count(wb)
    en = max(1, int(np.round(na * nb / (na + nb))))
    return KSResult(d, float(np.clip(stats.kstwo.sf(d, en), 0.0, 1.0)))
