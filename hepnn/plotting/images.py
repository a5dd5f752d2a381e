"""Jet images: average image per class and their difference; heat maps of explanation maps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .._optional import require
from .common import PLOTS, as_1d, class_names_for, new_axes, pyplot

__all__ = ["HeatmapResult", "ImagesResult", "plot_average_images", "plot_heatmap"]


@dataclass
class HeatmapResult:
    """``image`` is the AxesImage, ``colorbar`` the Colorbar (or None), ``values`` the array drawn."""

    ax: Any
    image: Any
    colorbar: Any
    values: np.ndarray

    @property
    def figure(self) -> Any:
        return self.ax.figure


def _image_array(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        msg = f"{name}: expected a 2-D map (n_eta, n_phi), received shape {arr.shape}"
        raise ValueError(msg)
    return arr


@PLOTS.register("heatmap")
def plot_heatmap(
    values: Any,
    *,
    extent: Sequence[float] = (-0.8, 0.8, -0.8, 0.8),
    symmetric: bool = True,
    log: bool = False,
    cmap: str | None = None,
    xlabel: str = "$\\Delta\\eta$",
    ylabel: str = "$\\Delta\\phi$",
    colorbar_label: str = "",
    colorbar: bool = True,
    ax: Any = None,
) -> HeatmapResult:
    """A map over (eta, phi) pixels: an occlusion or Grad-CAM map, or an average image.

    Parameters
    ----------
    values : array of shape (n_eta, n_phi) (or with a trailing channel of 1)
        ``values[i, j]`` is pixel ``i`` in eta (x axis) and ``j`` in phi (y axis).
    extent : (eta_min, eta_max, phi_min, phi_max)
    symmetric : bool
        Diverging colour map centred on zero (signed relevance, differences).
    log : bool
        Logarithmic colour scale (positive maps such as pT images).
    cmap : str, optional
    xlabel, ylabel, colorbar_label : str
    colorbar : bool
    ax : Axes, optional

    Returns
    -------
    HeatmapResult

    Examples
    --------
    >>> res = plot_heatmap(np.eye(3) - 0.5)
    >>> res.image.get_clim()
    (-0.5, 0.5)
    """
    colors = require("matplotlib.colors")
    arr = _image_array(values, "values")
    ax = new_axes(ax)
    if log:
        positive = arr[arr > 0]
        vmin = float(positive.min()) if positive.size else 1e-6
        norm = colors.LogNorm(vmin=vmin, vmax=max(float(arr.max()), vmin * 10))
        cmap = cmap or "viridis"
    elif symmetric:
        lim = float(np.max(np.abs(arr))) or 1.0
        norm = colors.Normalize(vmin=-lim, vmax=lim)
        cmap = cmap or "RdBu_r"
    else:
        norm = None
        cmap = cmap or "viridis"
    image = ax.imshow(
        np.where(arr > 0, arr, np.nan).T if log else arr.T,
        origin="lower", extent=tuple(extent), norm=norm, cmap=cmap, aspect="auto", interpolation="nearest",
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    cbar = ax.figure.colorbar(image, ax=ax, label=colorbar_label) if colorbar else None
    return HeatmapResult(ax=ax, image=image, colorbar=cbar, values=arr)


@dataclass
class ImagesResult:
    """``means`` by class name, ``difference`` (first class minus second, or None), panels drawn."""

    axes: list[Any]
    panels: dict[str, HeatmapResult]
    means: dict[str, np.ndarray]
    difference: np.ndarray | None

    @property
    def figure(self) -> Any:
        return self.axes[0].figure


@PLOTS.register("average_images")
def plot_average_images(
    images: Any,
    labels: Any,
    *,
    class_names: Sequence[str] | Mapping[int, str] | None = None,
    difference: tuple[int, int] | None = (1, 0),
    extent: Sequence[float] = (-0.8, 0.8, -0.8, 0.8),
    log: bool = True,
    axes: Any = None,
) -> ImagesResult:
    """Average jet image of every class, and the difference of two classes.

    Parameters
    ----------
    images : array of shape (n_jets, n_eta, n_phi) (or with a trailing channel of 1)
    labels : array of shape (n_jets,)
    class_names : sequence or mapping, optional
    difference : (int, int) or None
        Labels ``(a, b)``: draw ``mean[a] - mean[b]`` (default signal minus background).
    extent : (eta_min, eta_max, phi_min, phi_max)
    log : bool
        Log colour scale for the averages.
    axes : sequence of Axes, optional
        One per panel; by default a new figure with one row.

    Returns
    -------
    ImagesResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> res = plot_average_images(rng.random((10, 4, 4)), np.arange(10) % 2)
    >>> sorted(res.panels)
    ['background', 'difference', 'signal']
    """
    arr = np.asarray(images, dtype=float)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        msg = f"images: expected shape (n_jets, n_eta, n_phi), received {arr.shape}"
        raise ValueError(msg)
    y = as_1d(labels, "labels", dtype=int)
    if len(y) != len(arr):
        msg = f"images has {len(arr)} jets but labels has {len(y)}"
        raise ValueError(msg)
    names = class_names_for(y, class_names)
    means = {names[c]: arr[y == c].mean(axis=0) for c in names}
    diff = None
    if difference is not None:
        a, b = difference
        if a not in names or b not in names:
            msg = f"difference: labels {difference} are not both present; labels present are {sorted(names)}"
            raise ValueError(msg)
        diff = means[names[a]] - means[names[b]]
    n_panels = len(means) + (diff is not None)
    if axes is None:
        _, axes = pyplot().subplots(1, n_panels, figsize=(4.5 * n_panels, 4), squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(np.atleast_1d(axes).ravel())
    if len(axes) < n_panels:
        msg = f"axes: received {len(axes)} axes for {n_panels} panels; pass one per class plus one for the difference"
        raise ValueError(msg)
    panels = {}
    for ax, (name, mean) in zip(axes, means.items()):
        panels[name] = plot_heatmap(mean, extent=extent, log=log, symmetric=False, ax=ax, colorbar_label="mean pixel")
        ax.set_title(name)
    if diff is not None:
        ax = axes[len(means)]
        panels["difference"] = plot_heatmap(diff, extent=extent, symmetric=True, ax=ax, colorbar_label="difference")
        ax.set_title(f"{names[difference[0]]} $-$ {names[difference[1]]}")
    return ImagesResult(axes=axes[:n_panels], panels=panels, means=means, difference=diff)
