"""Jet images from the compiled loops are the numpy formulation's, bit for bit.

``_numpy_images`` is the vectorised numpy implementation the library used before its loops
were compiled (``np.bincount`` sums, ``ndarray.sum`` for the normalisation): the
reference every image ever written by hepnn was made with.
"""

import numpy as np
import pytest

from hepnn.io import _image_kernels, libm
from hepnn.io.images import CHANNELS, image_coordinates, jet_images


def _sum(jet, values, n):
    return np.bincount(jet, weights=values, minlength=n)


def _centroid(jet, x, y, w, n):
    total = _sum(jet, w, n)
    safe = np.where(total > 0, total, 1.0)
    return _sum(jet, w * x, n) / safe, _sum(jet, w * y, n) / safe


def _numpy_coordinates(counts, rel_eta, rel_phi, pt, preprocess, center):
    counts = np.asarray(counts, dtype=np.int64)
    n = len(counts)
    jet = np.repeat(np.arange(n, dtype=np.int64), counts)
    x = np.asarray(rel_eta, dtype=np.float64).copy()
    y = np.asarray(rel_phi, dtype=np.float64).copy()
    w = np.asarray(pt, dtype=np.float64)
    for step in preprocess:
        if step == "center" and center != "axis":
            if center == "leading_subjet" and len(w):
                starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
                order = np.lexsort((-w, jet))
                lead = np.zeros(n, dtype=np.int64)
                has = counts > 0
                lead[has] = order[starts[has]]
                near = np.hypot(x - x[lead][jet], y - y[lead][jet]) < 0.3
                cx, cy = _centroid(jet, x, y, w * near, n)
            else:
                cx, cy = _centroid(jet, x, y, w, n)
            x -= cx[jet]
            y -= cy[jet]
        elif step == "rotate":
            mx, my = _centroid(jet, x, y, w, n)
            dx, dy = x - mx[jet], y - my[jet]
            sxx, syy, sxy = _sum(jet, w * dx * dx, n), _sum(jet, w * dy * dy, n), _sum(jet, w * dx * dy, n)
            # hepnn's atan2, cos and sin (the same bits on every CPU, unlike numpy's)
            turn = np.pi / 2 - 0.5 * libm.atan2(2 * sxy, sxx - syy)
            c, s = libm.cos(turn)[jet], libm.sin(turn)[jet]
            x, y = c * x - s * y, s * x + c * y
        elif step == "flip":
            for coord in (x, y):
                coord *= np.where(_sum(jet, w * np.sign(coord), n) < 0, -1.0, 1.0)[jet]
    return x, y


def _numpy_images(counts, rel_eta, rel_phi, pt, charge, pixels, extent, channels, preprocess, center):
    counts = np.asarray(counts, dtype=np.int64)
    n = len(counts)
    pt = np.asarray(pt, dtype=np.float64)
    x, y = _numpy_coordinates(counts, rel_eta, rel_phi, pt, [s for s in preprocess if s != "normalize"], center)
    jet = np.repeat(np.arange(n, dtype=np.int64), counts)
    width = 2.0 * extent / pixels
    ix = np.floor((x + extent) / width).astype(np.int64)
    iy = np.floor((y + extent) / width).astype(np.int64)
    inside = (ix >= 0) & (ix < pixels) & (iy >= 0) & (iy < pixels)
    base = ((jet * pixels + ix) * pixels + iy)[inside]
    n_ch = len(channels)
    images = np.zeros(n * pixels * pixels * n_ch)
    for c, name in enumerate(channels):
        charged = None if charge is None else np.asarray(charge)[inside] != 0
        weight = {"pt": lambda: pt[inside], "charged_pt": lambda: pt[inside] * charged,
                  "neutral_pt": lambda: pt[inside] * ~charged, "multiplicity": lambda: np.ones(int(inside.sum())),
                  "charged_multiplicity": lambda: charged.astype(np.float64)}[name]()
        images += np.bincount(base * n_ch + c, weights=weight, minlength=n * pixels * pixels * n_ch)
    images = images.reshape(n, pixels, pixels, n_ch)
    if "normalize" in preprocess:
        total = images.sum(axis=(1, 2), keepdims=True)
        positive = total > 0
        np.divide(images, total, out=images, where=positive)
        np.copyto(images, 0.0, where=~positive)
    return images.astype(np.float32)


def _case(rng, trial):
    n = int(rng.integers(0, 200)) if trial else 0
    counts = rng.poisson(rng.uniform(0, 80), n)
    if trial % 4 == 1 and n:
        counts[rng.random(n) < 0.3] = 0  # empty jets
    total = int(counts.sum())
    spread = rng.uniform(0.05, 1.5)
    eta, phi = rng.normal(0, spread, total), rng.normal(0, spread, total)
    pt = rng.exponential(10, total) * 10.0 ** rng.integers(-6, 7, total)  # sums whose order matters
    if trial % 5 == 2:
        pt[rng.random(total) < 0.2] *= -1  # negative weights: sums <= 0, -0.0
    if trial % 5 == 3:
        pt = pt.astype(np.float32)
    pixels = int(rng.choice([1, 2, 7, 25, 37, 100]))
    extent = float(rng.uniform(0.2, 2.0))
    if trial % 6 == 4 and total:  # points exactly on pixel edges
        width = 2 * extent / pixels
        eta[: total // 2] = (rng.integers(-pixels, pixels, total // 2) * width / 2)
    steps = [s for s in ("center", "rotate", "flip", "normalize") if rng.random() < 0.75]
    rng.shuffle(steps)
    if trial % 7 == 5:
        steps += ["rotate", "center", "flip"]  # repeated steps
    charge = rng.integers(-1, 2, total).astype([np.int32, np.float32, np.int64][trial % 3])
    channels = list(rng.choice(CHANNELS, size=int(rng.integers(1, 4)), replace=False))
    center = str(rng.choice(["centroid", "leading_subjet", "axis"]))
    return (counts, eta, phi, pt, charge), dict(pixels=pixels, extent=extent, channels=channels,
                                                preprocess=steps, center=center)


@pytest.mark.parametrize("seed", range(4))
def test_compiled_images_equal_numpy_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    for trial in range(12):
        (counts, eta, phi, pt, charge), options = _case(rng, trial)
        expected = _numpy_images(counts, eta, phi, pt, charge, **options)
        got = jet_images(counts, eta, phi, pt, charge, **options)
        assert got.dtype == np.float32 and got.shape == expected.shape
        assert got.tobytes() == expected.tobytes(), (trial, options)
        geometric = [s for s in options["preprocess"] if s != "normalize"]
        x, y = image_coordinates(counts, eta, phi, pt, geometric, options["center"])
        rx, ry = _numpy_coordinates(counts, eta, phi, pt, geometric, options["center"])
        assert x.tobytes() == rx.tobytes() and y.tobytes() == ry.tobytes(), (trial, options)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 127, 128, 129, 136, 625, 1369, 10_000, 100_003])
def test_pairwise_sum_is_numpys(n):
    rng = np.random.default_rng(n)
    a = rng.exponential(1, n) * 10.0 ** rng.integers(-8, 9, n)
    stack, values = np.zeros((64, 3), dtype=np.int64), np.zeros(64)
    assert _image_kernels._pairwise_sum(a, 0, n, stack, values) == a.sum()


def test_images_into_out_and_its_checks():
    counts, eta, phi, pt = np.array([2, 1]), np.array([0.0, 0.1, 0.2]), np.zeros(3), np.array([3.0, 1.0, 2.0])
    out = np.full((2, 4, 4, 1), np.nan, dtype=np.float32)
    got = jet_images(counts, eta, phi, pt, pixels=4, extent=0.5, out=out)
    assert got is out and np.isclose(out[0].sum(), 1) and np.isclose(out[1].sum(), 1) and not np.isnan(out).any()
    with pytest.raises(ValueError, match="C-contiguous float32 array of shape"):
        jet_images(counts, eta, phi, pt, pixels=4, extent=0.5, out=np.zeros((2, 4, 4, 1)))
    with pytest.raises(ValueError, match="needs the constituent charge"):
        jet_images(counts, eta, phi, pt, pixels=4, extent=0.5, channels=["charged_pt"])
    with pytest.raises(ValueError, match="unknown image channel 'energy'"):
        jet_images(counts, eta, phi, pt, pixels=4, extent=0.5, channels=["energy"])
