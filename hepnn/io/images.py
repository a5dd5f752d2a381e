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

__all__ = ["jet_images", "CHANNELS", "image_coordinates"]

#: image channels and what each element contributes
CHANNELS = ("pt", "charged_pt", "neutral_pt", "multiplicity", "charged_multiplicity")


def _per_jet_sum(jet: np.ndarray, values: np.ndarray, n_jets: int) -> np.ndarray:
    return np.bincount(jet, weights=values, minlength=n_jets)


def _centroid(jet, x, y, w, n_jets):
    total = _per_jet_sum(jet, w, n_jets)
    safe = np.where(total > 0, total, 1.0)
    return _per_jet_sum(jet, w * x, n_jets) / safe, _per_jet_sum(jet, w * y, n_jets) / safe


def image_coordinates(
    counts: np.ndarray, rel_eta: np.ndarray, rel_phi: np.ndarray, pt: np.ndarray,
    preprocess: Sequence[str] = ("center", "rotate", "flip"), center: str = "centroid",
) -> tuple[np.ndarray, np.ndarray]:
    """Element coordinates after the geometric steps (center, rotate, flip)."""
    counts = np.asarray(counts, dtype=np.int64)
    n_jets = len(counts)
    jet = np.repeat(np.arange(n_jets, dtype=np.int64), counts)
    x = np.asarray(rel_eta, dtype=np.float64).copy()
    y = np.asarray(rel_phi, dtype=np.float64).copy()
    w = np.asarray(pt, dtype=np.float64)
    for step in preprocess:
        if step == "center" and center != "axis":
            if center == "leading_subjet" and len(w):
                starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
                order = np.lexsort((-w, jet))
                lead = np.zeros(n_jets, dtype=np.int64)
                has = counts > 0
                lead[has] = order[starts[has]]
                near = np.hypot(x - x[lead][jet], y - y[lead][jet]) < 0.3
                cx, cy = _centroid(jet, x, y, w * near, n_jets)
            else:
                cx, cy = _centroid(jet, x, y, w, n_jets)
            x -= cx[jet]
            y -= cy[jet]
        elif step == "rotate":
            mx, my = _centroid(jet, x, y, w, n_jets)
            dx, dy = x - mx[jet], y - my[jet]
            sxx = _per_jet_sum(jet, w * dx * dx, n_jets)
            syy = _per_jet_sum(jet, w * dy * dy, n_jets)
            sxy = _per_jet_sum(jet, w * dx * dy, n_jets)
            axis = 0.5 * np.arctan2(2 * sxy, sxx - syy)  # principal axis angle from +eta
            turn = np.pi / 2 - axis
            c, s = np.cos(turn)[jet], np.sin(turn)[jet]  # once per jet, then broadcast: the same values
            x, y = c * x - s * y, s * x + c * y
        elif step == "flip":
            for coord in (x, y):
                side = _per_jet_sum(jet, w * np.sign(coord), n_jets)
                coord *= np.where(side < 0, -1.0, 1.0)[jet]
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
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_jets = len(counts)
    pt = np.asarray(pt, dtype=np.float64)
    geometric = [s for s in preprocess if s != "normalize"]
    x, y = image_coordinates(counts, rel_eta, rel_phi, pt, geometric, center)
    jet = np.repeat(np.arange(n_jets, dtype=np.int64), counts)
    width = 2.0 * extent / pixels
    ix = np.floor((x + extent) / width).astype(np.int64)
    iy = np.floor((y + extent) / width).astype(np.int64)
    inside = (ix >= 0) & (ix < pixels) & (iy >= 0) & (iy < pixels)
    base = ((jet * pixels + ix) * pixels + iy)[inside]
    n_ch = len(channels)
    images = None
    for c, name in enumerate(channels):
        if name not in CHANNELS:
            msg = f"unknown image channel {name!r}; valid channels: {', '.join(CHANNELS)}"
            raise ValueError(msg)
        if "charged" in name or "neutral" in name:
            if charge is None:
                msg = f"image channel {name!r} needs the constituent charge: set data.inputs.<image>.charge"
                raise ValueError(msg)
            charged = np.asarray(charge)[inside] != 0
        if name == "pt":
            weight = pt[inside]
        elif name == "charged_pt":
            weight = pt[inside] * charged
        elif name == "neutral_pt":
            weight = pt[inside] * ~charged
        elif name == "multiplicity":
            weight = np.ones(int(inside.sum()))
        else:
            weight = charged.astype(np.float64)
        counts_c = np.bincount(base * n_ch + c, weights=weight, minlength=n_jets * pixels * pixels * n_ch)
        counts_c = counts_c.astype(np.float64, copy=False)  # no element inside: numpy gives int zeros
        if images is None:
            images = counts_c  # the sums themselves (adding them to zeros changes no bit)
        else:
            images += counts_c
    if images is None:
        images = np.zeros(n_jets * pixels * pixels * n_ch, dtype=np.float64)
    images = images.reshape(n_jets, pixels, pixels, n_ch)
    if "normalize" in preprocess:
        total = images.sum(axis=(1, 2), keepdims=True)
        positive = total > 0
        np.divide(images, total, out=images, where=positive)  # in place; empty images (sum <= 0) become 0
        np.copyto(images, 0.0, where=~positive)
    return images.astype(np.float32)
