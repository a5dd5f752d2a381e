"""Mass sculpting numbers: background rejection against 1/JSD at a signal efficiency.

A cut on the tagger score at signal efficiency ``working_point`` splits the
background jets into those passing and those failing it. A tagger that does not
sculpt leaves both with the same mass shape; the Jensen-Shannon divergence (base 2,
between 0 for equal shapes and 1 for disjoint ones) of the two normalised mass
histograms measures the difference, and ``1/JSD`` (larger = less sculpting) is
reported against the background rejection ``1/eps_B`` at the same cut, as in the
DisCo paper (arXiv:2001.05310) and the ATLAS/CMS decorrelation studies.

``metrics.json`` of a binary run whose data carry the variable gets::

    "sculpting": {"variable": "jet_mass", "working_point": 0.5, "rejection_50": 12.3,
                  "jsd_50": 0.021, "inv_jsd_50": 47.6, "bins": 20}
"""

from __future__ import annotations

import fnmatch
import math
from typing import Any, Mapping

import numpy as np
from scipy.spatial import distance

from ..metrics import WEIGHTS_HINT, check_finite, cut_for_efficiency
from ..runs.spec import class_index

__all__ = ["jensen_shannon", "sculpting_metrics", "sculpting_variable", "MASS_PATTERNS"]

#: spectator keys taken as the jet mass when no decorrelation variable is configured (groomed first)
MASS_PATTERNS = ("spec_*msoftdrop*", "spec_*sdmass*", "spec_*mass*")


def jensen_shannon(p: Any, q: Any) -> float:
    """Jensen-Shannon divergence (base 2) of two histograms, each normalised to unit sum.

    ``JSD = (KL(p || m) + KL(q || m)) / 2`` with ``m = (p + q) / 2``; 0 for equal shapes, 1
    for disjoint ones.

    Examples
    --------
    >>> jensen_shannon([1, 1, 0, 0], [0, 0, 2, 2])
    1.0
    >>> jensen_shannon([1, 2, 3], [2, 4, 6])
    0.0
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        msg = f"jensen_shannon: histograms of different shapes {p.shape} and {q.shape}"
        raise ValueError(msg)
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))) or np.any(p < 0) or np.any(q < 0):
        msg = "jensen_shannon: histogram contents must be finite and non-negative (clip negative bins at zero first)"
        raise ValueError(msg)
    if p.sum() <= 0 or q.sum() <= 0:
        msg = "jensen_shannon: a histogram is empty (no entries to normalise)"
        raise ValueError(msg)
    # scipy gives the Jensen-Shannon distance, the square root of the divergence
    return max(0.0, float(distance.jensenshannon(p, q, base=2)) ** 2)


def sculpting_variable(config: Any, data: Mapping[str, Any]) -> str | None:
    """Data key of the variable to check: ``training.decorrelate.variable``, else a mass spectator."""
    decor = getattr(config.training, "decorrelate", None)
    if decor is not None and f"spec_{decor.variable}" in data:
        return f"spec_{decor.variable}"
    for pattern in MASS_PATTERNS:
        found = sorted((k for k in data if fnmatch.fnmatchcase(str(k).lower(), pattern)), key=lambda k: (len(k), k))
        if found:
            return found[0]
    return None


def sculpting_metrics(
    variable: Any, scores: Any, is_signal: Any, weights: Any = None, working_point: float = 0.5, bins: int = 20,
    name: str = "mass",
) -> dict:
    """Background rejection and 1/JSD of passing vs failing background at one signal efficiency.

    Parameters
    ----------
    variable, scores, is_signal : arrays of shape (n_jets,)
        The variable (e.g. jet mass), the discriminant (higher = more signal-like) and
        the signal flag of each jet.
    weights : array, optional
        Per-jet weights. Negative ones (NLO) are allowed; a mass bin whose summed weight
        is negative is counted as empty in the JSD (a shape cannot be negative).
    working_point : float
        Signal efficiency of the cut.
    bins : int
        Equal-width bins spanning the background values of the variable.
    name : str
        Name written under ``"variable"``.

    Returns
    -------
    dict
        ``variable, working_point, bins, rejection_<wp%>, jsd_<wp%>, inv_jsd_<wp%>`` (None
        where infinite: no background passes, or both shapes are equal).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> m = rng.uniform(0, 1, 4000); y = rng.integers(0, 2, 4000)
    >>> out = sculpting_metrics(m, 3 * m + y, y == 1)  # the score grows with the mass: strong sculpting
    >>> out["jsd_50"] > 0.5
    True
    """

    v = np.asarray(variable, dtype=np.float64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    sig = np.asarray(is_signal, dtype=bool).reshape(-1)
    w = np.ones(len(v)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if not len(v) == len(s) == len(sig) == len(w):
        msg = f"sculpting_metrics: one value per jet expected; received {len(v)}, {len(s)}, {len(sig)}, {len(w)}"
        raise ValueError(msg)
    check_finite(w, "sculpting_metrics: weights", WEIGHTS_HINT)
    check_finite(s, "sculpting_metrics: scores", "; remove or clip them first")
    bkg = ~sig
    if not sig.any() or not bkg.any():
        msg = "sculpting_metrics: needs signal jets (to set the cut) and background jets (to compare)"
        raise ValueError(msg)
    tag = f"{round(100 * working_point):d}"
    cut = cut_for_efficiency(s[sig], working_point, w[sig])
    passing = s >= cut
    eff_b = w[bkg & passing].sum() / w[bkg].sum()
    # jets without a value of the variable (NaN) cannot be binned: the shapes are those of the others
    binned = bkg & np.isfinite(v)
    if not binned.any():
        msg = f"sculpting_metrics: {name} is not finite for any background jet; check the spectator"
        raise ValueError(msg)
    lo, hi = float(np.min(v[binned])), float(np.max(v[binned]))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    h_pass = np.histogram(v[binned & passing], edges, weights=w[binned & passing])[0]
    h_fail = np.histogram(v[binned & ~passing], edges, weights=w[binned & ~passing])[0]
    h_pass, h_fail = np.maximum(h_pass, 0.0), np.maximum(h_fail, 0.0)  # negative weights: an empty bin
    jsd = jensen_shannon(h_pass, h_fail) if h_pass.sum() > 0 and h_fail.sum() > 0 else math.nan
    return {
        "variable": name,
        "working_point": float(working_point),
        "bins": int(bins),
        f"rejection_{tag}": _finite(1.0 / eff_b) if eff_b > 0 else None,
        f"jsd_{tag}": _finite(jsd, significant=True),  # well-decorrelated taggers: JSD ~ 1e-4 and below
        f"inv_jsd_{tag}": _finite(1.0 / jsd) if jsd > 0 else None,
    }


def _finite(value: float, significant: bool = False) -> float | None:
    """``value`` to 6 decimals (or 6 significant digits), None when not finite."""
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.6g}") if significant else round(value, 6)


def run_sculpting(config: Any, pred: Mapping[str, Any], working_point: float = 0.5) -> dict:
    """``{"sculpting": {...}}`` for a binary run's test predictions (:func:`predict_split`), or ``{}``.

    Empty when the task is not binary or the data carry no mass-like spectator (nor the
    ``training.decorrelate`` variable).
    """
    if pred.get("task") != "binary":
        return {}
    data = pred.get("data") or {}
    key = sculpting_variable(config, data)
    if key is None:
        return {}
    classes = list(pred["classes"])
    signal = class_index(classes, config.evaluation.signal, "evaluation.signal", 1)
    out = np.asarray(pred["outputs"])
    scores = out.reshape(len(out), -1)[:, 0].astype(np.float64)
    if signal == 0:
        scores = 1.0 - scores
    is_signal = np.asarray(pred["label"]) == signal
    if not is_signal.any() or is_signal.all():
        return {}
    weights = pred.get("weight") if config.evaluation.weighted else None
    return {"sculpting": sculpting_metrics(data[key], scores, is_signal, weights, working_point=working_point,
                                           name=key.removeprefix("spec_"))}
