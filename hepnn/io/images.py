"""Jet images in (eta, phi) relative to the jet axis, vectorised over all jets.

The preprocessing steps (de Oliveira et al. arXiv:1511.05190; Macaluso & Shih
arXiv:1803.00107) are individually selectable and applied in the order given:

``center``
    move the pT-weighted centroid (``center="centroid"``), the leading subjet
    (``"leading_subjet"``: pT centroid of the elements within dR < 0.3 of the hardest
    element, an approximation without re-clustering) or nothing (``"axis"``) to the origin;
``rotate``
    rotate about the origin so that the pT-weighted principal axis points along +phi;
``flip``
    mirror eta and phi so that the half with the larger pT sum is at positive values;
``normalize``
    divide every channel of every image by its sum (empty images stay zero).

Pixel ``[i, j]`` covers eta in ``[-extent + i*w, -extent + (i+1)*w)`` and phi likewise
with ``w = 2*extent/pixels``; elements outside the window are dropped.

Examples
--------
>>> import numpy as np
>>> from hepnn.io.images import jet_images
>>> img = jet_images(np.array([2]), np.array([0.0, 0.05]), np.array([0.0, 0.0]),
...                  np.array([3.0, 1.0]), pixels=4, extent=0.2, preprocess=())
>>> img.shape, float(img.sum())
((1, 4, 4, 1), 4.0)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import libm

__all__ = ["jet_images", "CHANNELS", "image_coordinates"]

#: image channels and what each element contributes
CHANNELS = ("pt", "charged_pt", "neutral_pt", "multiplicity", "charged_multiplicity")


def _kernels():
    """The compiled loops (:mod:`hepnn.io._image_kernels`), imported on first use."""
    # lazy: numba's import costs half a second, which only jet images need
    from . import _image_kernels

    return _image_kernels


def _per_jet_sum(jet: np.ndarray, values: np.ndarray, n_jets: int) -> np.ndarray:
    return np.bincount(jet, weights=values, minlength=n_jets)


def _leading_subjet(counts: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pT centroid of the elements within dR < 0.3 of each jet's hardest element."""
    n_jets = len(counts)
    jet = np.repeat(np.arange(n_jets, dtype=np.int64), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    order = np.lexsort((-w, jet))
    lead = np.zeros(n_jets, dtype=np.int64)
    has = counts > 0
    lead[has] = order[starts[has]]
    near = np.hypot(x - x[lead][jet], y - y[lead][jet]) < 0.3
    wn = w * near
    total = _per_jet_sum(jet, wn, n_jets)
    safe = np.where(total > 0, total, 1.0)
    return _per_jet_sum(jet, wn * x, n_jets) / safe, _per_jet_sum(jet, wn * y, n_jets) / safe


def _offsets(counts: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def image_coordinates(
    counts: np.ndarray, rel_eta: np.ndarray, rel_phi: np.ndarray, pt: np.ndarray,
    preprocess: Sequence[str] = ("center", "rotate", "flip"), center: str = "centroid",
) -> tuple[np.ndarray, np.ndarray]:
    """Element coordinates after the geometric steps (center, rotate, flip), float64 copies."""
    counts = np.asarray(counts, dtype=np.int64)
    x = np.array(rel_eta, dtype=np.float64)
    y = np.array(rel_phi, dtype=np.float64)
    w = np.ascontiguousarray(pt, dtype=np.float64)
    if not any(step in ("center", "rotate", "flip") for step in preprocess):
        return x, y
    k = _kernels()
    offsets = _offsets(counts)
    for step in preprocess:
        if step == "center" and center != "axis":
            if center == "leading_subjet" and len(w):
                cx, cy = _leading_subjet(counts, x, y, w)
            else:
                cx, cy = k.centroids(offsets, x, y, w)
            k.shift(offsets, x, y, cx, cy)
        elif step == "rotate":
            mx, my = k.centroids(offsets, x, y, w)
            sxx, syy, sxy = k.second_moments(offsets, x, y, w, mx, my)
            # principal axis angle from +eta (hepnn's atan2, cos, sin: the same bits on every CPU)
            axis = 0.5 * libm.atan2(2 * sxy, sxx - syy)
            turn = np.pi / 2 - axis
            k.rotate(offsets, x, y, libm.cos(turn), libm.sin(turn))
        elif step == "flip":
            k.flip(offsets, x, w)
            k.flip(offsets, y, w)
    return x, y


def jet_images(
    counts: np.ndarray,
    rel_eta: np.ndarray,
    rel_phi: np.ndarray,
    pt: np.ndarray,
    charge: np.ndarray | None = None,
    *,
    pixels: int = 37,
    extent: float = 1.6,
    channels: Sequence[str] = ("pt",),
    preprocess: Sequence[str] = ("center", "rotate", "flip", "normalize"),
    center: str = "centroid",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Pixelise elements into ``(n_jets, pixels, pixels, n_channels)`` float32 images.

    Parameters
    ----------
    counts : int array (n_jets,)
        Elements per jet; the element arrays are grouped jet by jet.
    rel_eta, rel_phi, pt : arrays (n_elements,)
        Coordinates relative to the jet axis (phi wrapped) and transverse momenta.
    charge : array (n_elements,), optional
        Needed by the charged/neutral channels.
    pixels, extent : int, float
        Pixels per side and half-width of the window.
    channels : sequence of str
        Any of :data:`CHANNELS`.
    preprocess : sequence of str
        Steps among ``center, rotate, flip, normalize`` (see module docs).
    center : str
        ``centroid``, ``leading_subjet`` or ``axis``.
    out : float32 array, optional
        Where to write the images (C-contiguous, of the output's shape).

    Every pixel is the float64 sum of its elements' contributions in element order,
    divided (``normalize``) by the image's float64 sum, then rounded to float32.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_jets = len(counts)
    for name in channels:
        if name not in CHANNELS:
            msg = f"unknown image channel {name!r}; valid channels: {', '.join(CHANNELS)}"
            raise ValueError(msg)
        if ("charged" in name or "neutral" in name) and charge is None:
            msg = f"image channel {name!r} needs the constituent charge: set data.inputs.<image>.charge"
            raise ValueError(msg)
    pt = np.ascontiguousarray(pt, dtype=np.float64)
    geometric = [s for s in preprocess if s != "normalize"]
    x, y = image_coordinates(counts, rel_eta, rel_phi, pt, geometric, center)
    charged = np.zeros(len(pt), dtype=np.bool_) if charge is None else np.asarray(charge) != 0
    shape = (n_jets, pixels, pixels, len(channels))
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        msg = f"out must be a C-contiguous float32 array of shape {shape}, got {out.dtype} {out.shape}"
        raise ValueError(msg)
    codes = np.array([CHANNELS.index(name) for name in channels], dtype=np.int64)
    width = 2.0 * extent / pixels
    _kernels().pixelise(_offsets(counts), x, y, pt, charged, float(extent), width, int(pixels), codes,
                        "normalize" in preprocess, out)
    return out
