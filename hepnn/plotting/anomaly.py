"""Autoencoder anomaly detection: reconstruction-error distributions and the latent space."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .._optional import require
from ..metrics import WEIGHTS_HINT, check_finite, roc_auc
from .common import PLOTS, as_1d, class_names_for, new_axes, upper_edge_inclusive

__all__ = ["LatentResult", "ReconstructionResult", "plot_latent", "plot_reconstruction_error"]


@dataclass
class ReconstructionResult:
    """``artists``/``hists`` by class name; ``auc`` of the error as anomaly score (None with one class)."""

    ax: Any
    artists: dict[str, Any]
    hists: dict[str, Any]
    auc: float | None

    @property
    def figure(self) -> Any:
        return self.ax.figure


@PLOTS.register("reconstruction_error")
def plot_reconstruction_error(
    errors: Any,
    labels: Any,
    *,
    anomaly: int | Sequence[int] = 1,
    class_names: Sequence[str] | Mapping[int, str] | None = None,
    bins: int = 50,
    log_x: bool = True,
    density: bool = True,
    weights: Any = None,
    ax: Any = None,
) -> ReconstructionResult:
    """Reconstruction-error distribution of every class (log-spaced bins by default).

    For the ROC of the error as anomaly score, pass the errors to
    :func:`hepnn.plotting.plot_roc` or :func:`hepnn.plotting.plot_rejection`
    with ``signal=anomaly``; the AUC is also returned here.

    Parameters
    ----------
    errors : array of shape (n_jets,)
        Per-jet reconstruction error (e.g. mean squared error).
    labels : array of shape (n_jets,)
    anomaly : int or sequence of int
        Label(s) of the anomalous class(es), for the AUC: those jets against all others. With
        several anomalous classes (every class but the trained-on background, as in ``metrics.json``)
        pass them all; one label alone counts the other anomalous classes as background.
    class_names : sequence or mapping, optional
    bins : int
    log_x : bool
        Logarithmic error axis and bins (errors must be positive).
    density : bool
    weights : array of shape (n_jets,), optional
        Per-jet (event) weights: the histograms and the AUC are weighted, as in every score plot.
    ax : Axes, optional

    Returns
    -------
    ReconstructionResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.arange(200) % 2
    >>> res = plot_reconstruction_error(rng.exponential(1 + y), y, class_names=["QCD", "top"])
    >>> sorted(res.hists), res.ax.get_xscale()
    (['QCD', 'top'], 'log')
    """
    hist = require("hist")
    mplhep = require("mplhep")
    e = as_1d(errors, "errors")
    y = as_1d(labels, "labels", dtype=int)
    if len(e) != len(y):
        msg = f"errors has {len(e)} entries but labels has {len(y)}"
        raise ValueError(msg)
    w = np.ones(len(e)) if weights is None else check_finite(as_1d(weights, "weights"), "weights", WEIGHTS_HINT)
    if len(w) != len(e):
        msg = f"weights has {len(w)} entries but there are {len(e)} jets; pass one weight per jet"
        raise ValueError(msg)
    if not np.all(np.isfinite(e)):
        msg = f"errors: received {np.count_nonzero(~np.isfinite(e))} non-finite values (NaN or inf); remove them first"
        raise ValueError(msg)
    if log_x and np.any(e <= 0):
        msg = f"errors: log_x needs positive errors, received minimum {e.min()}; pass log_x=False"
        raise ValueError(msg)
    names = class_names_for(y, class_names)
    lo, hi = float(e.min()), float(e.max())
    if hi <= lo:
        hi = lo * 2 if lo > 0 else lo + 1
    axis = (
        hist.axis.Variable(np.geomspace(lo, hi, bins + 1), name="error", label="Reconstruction error")
        if log_x
        else hist.axis.Regular(bins, lo, hi, name="error", label="Reconstruction error")
    )
    ax = new_axes(ax)
    artists, hists = {}, {}
    for cls, name in names.items():
        h = hists[name] = hist.Hist(axis, storage=hist.storage.Weight())
        h.fill(upper_edge_inclusive(e[y == cls], lo, hi), weight=w[y == cls])
        (artists[name],) = mplhep.histplot(h, ax=ax, density=density, histtype="step", label=name, flow="none")
    value = None
    anomalous = np.isin(y, np.atleast_1d(np.asarray(anomaly, dtype=int)))
    if anomalous.any() and not anomalous.all():
        value = roc_auc(anomalous.astype(int), e, None if weights is None else w, signal=1)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("Reconstruction error")
    ax.set_ylabel("Normalised entries" if density else "Entries")
    ax.legend(title=None if value is None else f"AUC = {value:.3f}")
    return ReconstructionResult(ax=ax, artists=artists, hists=hists, auc=value)


@dataclass
class LatentResult:
    """``artists`` by class name, the 2-D ``projection`` drawn, PCA ``explained_variance`` (None for 2-D)."""

    ax: Any
    artists: dict[str, Any]
    projection: np.ndarray
    explained_variance: np.ndarray | None

    @property
    def figure(self) -> Any:
        return self.ax.figure


@PLOTS.register("latent")
def plot_latent(
    latent: Any,
    labels: Any,
    *,
    class_names: Sequence[str] | Mapping[int, str] | None = None,
    max_points: int | None = 5000,
    random_state: int = 0,
    ax: Any = None,
) -> LatentResult:
    """Scatter of the latent space per class; PCA to two dimensions when it has more.

    Parameters
    ----------
    latent : array of shape (n_jets, n_latent)
        With more than two latent dimensions, at least 2 jets (for the PCA).
    labels : array of shape (n_jets,)
    class_names : sequence or mapping, optional
    max_points : int or None
        Random subset drawn (the PCA is fitted on all jets).
    random_state : int
    ax : Axes, optional

    Returns
    -------
    LatentResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> res = plot_latent(rng.normal(size=(100, 4)), np.arange(100) % 2)
    >>> res.projection.shape, len(res.artists)
    ((100, 2), 2)
    """
    z = np.asarray(latent, dtype=float)
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2:
        msg = f"latent: expected shape (n_jets, n_latent), received {z.shape}"
        raise ValueError(msg)
    y = as_1d(labels, "labels", dtype=int)
    if len(y) != len(z):
        msg = f"latent has {len(z)} jets but labels has {len(y)}"
        raise ValueError(msg)
    explained = None
    if z.shape[1] > 2 and len(z) < 2:
        msg = (f"latent: projecting a {z.shape[1]}-dimensional latent space on its first two principal components "
               f"needs at least 2 jets, received {len(z)}; pass more jets")
        raise ValueError(msg)
    if z.shape[1] > 2:
        decomposition = require("sklearn.decomposition")
        pca = decomposition.PCA(n_components=2, random_state=random_state)
        proj = pca.fit_transform(z)
        explained = pca.explained_variance_ratio_
        xlabel, ylabel = "PC 1", "PC 2"
    elif z.shape[1] == 1:
        proj = np.column_stack([z[:, 0], np.zeros(len(z))])
        xlabel, ylabel = "$z_1$", ""
    else:
        proj = z
        xlabel, ylabel = "$z_1$", "$z_2$"
    keep = np.arange(len(z))
    if max_points is not None and len(z) > max_points:
        keep = np.sort(np.random.default_rng(random_state).choice(len(z), max_points, replace=False))
    names = class_names_for(y, class_names)
    ax = new_axes(ax)
    artists = {}
    for cls, name in names.items():
        sel = keep[y[keep] == cls]
        artists[name] = ax.scatter(proj[sel, 0], proj[sel, 1], s=4, alpha=0.5, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(markerscale=3)
    return LatentResult(ax=ax, artists=artists, projection=proj, explained_variance=explained)
