"""Looks inside networks: EFN filters in the (Δη, Δφ) plane, CNN filters and feature maps.

Arrays in, figures out: the numbers come from :func:`hepnn.models.efn.efn_filters` and
the ``feature_maps`` explainer (:mod:`hepnn.explain.feature_maps`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .common import PLOTS, pyplot

__all__ = ["FiltersResult", "plot_efn_filters", "plot_conv_filters", "plot_feature_maps"]


@dataclass
class FiltersResult:
    """``axes`` (flat list), ``images`` (the AxesImage per panel), ``values`` (the arrays drawn) and
    ``indices`` (which filter / channel each panel shows)."""

    axes: list[Any]
    images: list[Any]
    values: list[np.ndarray]
    indices: list[int]

    @property
    def figure(self) -> Any:
        return self.axes[0].figure


def _grid(n_panels: int, n_cols: int | None, axes: Any, size: float = 2.2):
    if axes is not None:
        flat = list(np.ravel(axes))
        if len(flat) < n_panels:
            msg = f"axes: {n_panels} panels to draw but {len(flat)} axes given"
            raise ValueError(msg)
        return flat[:n_panels], flat[n_panels:]
    n_cols = n_cols or min(n_panels, 4)
    n_rows = int(np.ceil(n_panels / n_cols))
    fig, grid = pyplot().subplots(n_rows, n_cols, figsize=(size * n_cols + 0.6, size * n_rows + 0.3), squeeze=False)
    flat = list(grid.ravel())
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    fig.subplots_adjust(wspace=0.35, hspace=0.45)
    return flat[:n_panels], flat[n_panels:]


@PLOTS.register("efn_filters")
def plot_efn_filters(
    filters: Any,
    eta: Any,
    phi: Any,
    *,
    n_filters: int = 8,
    order: str = "spread",
    n_cols: int | None = None,
    axes: Any = None,
) -> FiltersResult:
    """Draw an EFN's learned filters Phi_l(Δη, Δφ) in the plane (arXiv:1810.05165, Fig. 6).

    Parameters
    ----------
    filters : array ``(n_filters, n_phi, n_eta)``
        Filter values on the grid (``efn_filters(model)["filters"]``).
    eta, phi : 1-D arrays
        The grid axes.
    n_filters : int
        Panels drawn.
    order : {"spread", "index"}
        Which filters: the ``n_filters`` with the largest spread (max - min) over the
        plane, the most structured ones; or the first ones.
    n_cols : int, optional
        Panels per row.
    axes : array of Axes, optional

    Returns
    -------
    FiltersResult

    Examples
    --------
    >>> from hepnn.models.efn import efn_filters  # doctest: +SKIP
    >>> grid = efn_filters(model)  # doctest: +SKIP
    >>> res = plot_efn_filters(grid["filters"], grid["eta"], grid["phi"], n_filters=4)  # doctest: +SKIP
    """
    values = np.asarray(filters, dtype=float)
    eta, phi = np.asarray(eta, dtype=float), np.asarray(phi, dtype=float)
    if values.ndim != 3 or values.shape[1:] != (len(phi), len(eta)):
        msg = (f"filters: expected shape (n_filters, len(phi), len(eta)) = (n, {len(phi)}, {len(eta)}), "
               f"received {values.shape}")
        raise ValueError(msg)
    if order not in ("spread", "index"):
        msg = f"order: expected 'spread' or 'index', received {order!r}"
        raise ValueError(msg)
    n = max(1, min(int(n_filters), len(values)))
    if order == "spread":
        spread = np.ptp(values.reshape(len(values), -1), axis=1)
        indices = [int(i) for i in np.argsort(-spread, kind="stable")[:n]]
    else:
        indices = list(range(n))
    panels, _ = _grid(n, n_cols, axes)
    extent = (eta[0], eta[-1], phi[0], phi[-1])
    images, drawn = [], []
    for ax, i in zip(panels, indices):
        v = values[i]
        im = ax.imshow(v, origin="lower", extent=extent, cmap="viridis", aspect="equal")
        ax.set_title(f"filter {i}", fontsize=9)
        ax.set_xlabel(r"$\Delta\eta$")
        ax.set_ylabel(r"$\Delta\phi$")
        images.append(im)
        drawn.append(v)
    return FiltersResult(axes=panels, images=images, values=drawn, indices=indices)


@PLOTS.register("conv_filters")
def plot_conv_filters(kernels: Any, *, n_filters: int = 16, n_cols: int | None = None, axes: Any = None) -> FiltersResult:
    """Draw the learned kernels of a convolution layer, one panel per output filter.

    Parameters
    ----------
    kernels : array ``(kernel_h, kernel_w, in_channels, out_channels)``
        The layer's kernel (input channels are summed for the picture); ``kernel_h`` runs along
        η and ``kernel_w`` along φ, as the jet images, and each kernel is drawn like a jet image:
        Δη on the x axis, Δφ on the y axis (labelled on the first panel).
    n_filters : int
        Panels drawn (the first filters).
    n_cols : int, optional
    axes : array of Axes, optional

    Returns
    -------
    FiltersResult
        ``values[i]`` is the ``(kernel_h, kernel_w)`` array of filter ``indices[i]`` (drawn transposed).

    Examples
    --------
    >>> import numpy as np
    >>> res = plot_conv_filters(np.random.default_rng(0).normal(size=(3, 3, 1, 4)))
    >>> len(res.images)
    4
    """
    k = np.asarray(kernels, dtype=float)
    if k.ndim != 4:
        msg = f"kernels: expected shape (kernel_h, kernel_w, in_channels, out_channels), received {k.shape}"
        raise ValueError(msg)
    n = max(1, min(int(n_filters), k.shape[-1]))
    panels, _ = _grid(n, n_cols, axes, size=1.6)
    images, drawn = [], []
    for i, ax in enumerate(panels):
        v = k[..., i].sum(axis=-1)
        bound = float(np.max(np.abs(v))) or 1.0
        im = ax.imshow(v.T, origin="lower", cmap="RdBu_r", vmin=-bound, vmax=bound)  # eta along x
        ax.set_title(f"filter {i}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        if i == 0:
            ax.set_xlabel("$\\Delta\\eta$", fontsize=8)
            ax.set_ylabel("$\\Delta\\phi$", fontsize=8)
        images.append(im)
        drawn.append(v)
    return FiltersResult(axes=panels, images=images, values=drawn, indices=list(range(n)))


@PLOTS.register("feature_maps")
def plot_feature_maps(
    maps: Mapping[str, Any],
    *,
    n_maps: int = 6,
    channels: Sequence[int] | None = None,
    axes: Any = None,
) -> FiltersResult:
    """Draw feature maps of one layer: one row per entry (a class average or a jet), one column per channel.

    The maps keep the layout of the jet images they come from (``[i, j]``: pixel ``i`` in η,
    ``j`` in φ) and are drawn like :func:`~hepnn.plotting.plot_heatmap` and
    :func:`~hepnn.plotting.plot_average_images` draw images: Δη on the x axis, Δφ on the y axis.

    Parameters
    ----------
    maps : dict of str to array ``(h, w, n_channels)``
        Row label -> feature maps, e.g. ``{"qcd": mean over QCD jets, "top": mean over top jets}``;
        ``h`` along η, ``w`` along φ (as the image input).
    n_maps : int
        Channels drawn (the first ones unless ``channels`` is given).
    channels : list of int, optional
        The channels to draw.
    axes : 2-D array of Axes ``(n_rows, n_channels)``, optional

    Returns
    -------
    FiltersResult
        ``values`` row by row (each ``(h, w)``, as given; drawn transposed, η along x);
        ``indices`` the channel of each panel. The first panel of a row has the row label and
        Δφ as y label, the panels of the last row Δη as x label.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> res = plot_feature_maps({"qcd": rng.random((5, 5, 3)), "top": rng.random((5, 5, 3))}, n_maps=2)
    >>> len(res.images)
    4
    """
    if not maps:
        msg = "maps: received an empty mapping; pass {row label: (h, w, n_channels) array}"
        raise ValueError(msg)
    arrays = {str(k): np.asarray(v, dtype=float) for k, v in maps.items()}
    for key, v in arrays.items():
        if v.ndim != 3:
            msg = f"maps[{key!r}]: expected shape (h, w, n_channels), received {v.shape}"
            raise ValueError(msg)
    n_channels = min(v.shape[-1] for v in arrays.values())
    chosen = list(channels) if channels is not None else list(range(min(int(n_maps), n_channels)))
    bad = [c for c in chosen if not 0 <= c < n_channels]
    if bad:
        msg = f"channels: {bad} out of range for maps with {n_channels} channels"
        raise ValueError(msg)
    n_rows, n_cols = len(arrays), len(chosen)
    if axes is None:
        fig, grid = pyplot().subplots(n_rows, n_cols, figsize=(1.8 * n_cols + 0.8, 1.8 * n_rows + 0.3), squeeze=False)
        fig.subplots_adjust(wspace=0.1, hspace=0.3)
    else:
        grid = np.asarray(axes, dtype=object).reshape(n_rows, n_cols)
    images, drawn, indices, flat = [], [], [], []
    for r, (key, v) in enumerate(arrays.items()):
        for c, channel in enumerate(chosen):
            ax = grid[r, c]
            m = v[..., channel]
            # rows of the array are eta: transposed so that eta runs along x, as every jet image is drawn
            im = ax.imshow(m.T, origin="lower", cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"channel {channel}", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{key}\n$\\Delta\\phi$", fontsize=9)
            if r == n_rows - 1:
                ax.set_xlabel("$\\Delta\\eta$", fontsize=9)
            images.append(im)
            drawn.append(m)
            indices.append(channel)
            flat.append(ax)
    return FiltersResult(axes=flat, images=images, values=drawn, indices=indices)
