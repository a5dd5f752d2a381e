"""Compiled loop of :func:`hepnn.io.hypot.hypot` (numba, see :mod:`hepnn._numba`).

The same IEEE operations, in the same order, as the numpy formulation in
:mod:`hepnn.io.hypot`, one value at a time; ``tests/test_io_hypot.py`` compares the two
bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from .._numba import jit
from .hypot import EPS, LARGE, SCALE_DOWN, SCALE_UP, TINY

__all__ = ["hypot_into"]


@jit
def _corrected(ax, ay):  # pragma: no cover - compiled
    """sqrt(ax^2 + ay^2) with Borges' correction (ax >= ay >= 0, no overflow or underflow)."""
    h = math.sqrt(ax * ax + ay * ay)
    if h <= 2.0 * ay:
        delta = h - ay
        t1 = ax * (2.0 * delta - ax)
        t2 = (delta - 2.0 * (ax - ay)) * delta
    else:
        delta = h - ax
        t1 = 2.0 * delta * (ax - 2.0 * ay)
        t2 = (4.0 * delta - ay) * ay + delta * delta
    return h - (t1 + t2) / (2.0 * h)


@jit
def _one(x, y):  # pragma: no cover - compiled
    if not (math.isfinite(x) and math.isfinite(y)):
        if math.isinf(x) or math.isinf(y):
            return math.inf
        return x + y
    x, y = abs(x), abs(y)
    ax = y if x < y else x
    ay = x if x < y else y
    if ax > LARGE:
        if ay <= ax * EPS:
            return ax + ay
        return _corrected(ax * SCALE_DOWN, ay * SCALE_DOWN) * SCALE_UP
    if ay < TINY:
        if ax >= ay / EPS:
            return ax + ay
        return _corrected(ax * SCALE_UP, ay * SCALE_UP) * SCALE_DOWN
    if ay <= ax * EPS:
        return ax + ay
    return _corrected(ax, ay)


@jit
def hypot_into(x, y, out):  # pragma: no cover - compiled
    """``out[i] = hypot(x[i], y[i])`` in float64 (``x``, ``y`` float32 or float64, 1-d).

    One pass computes the common case (finite, no scaling, neither much smaller) without
    branches, which the compiler vectorises; a second pass, only where some value is not
    such, recomputes those values one by one.
    """
    n = out.shape[0]
    special = False
    for i in range(n):
        a = abs(np.float64(x[i]))
        b = abs(np.float64(y[i]))
        ax = b if a < b else a
        ay = a if a < b else b
        h = math.sqrt(ax * ax + ay * ay)
        near = h <= 2.0 * ay
        delta = h - (ay if near else ax)
        t1 = ax * (2.0 * delta - ax) if near else 2.0 * delta * (ax - 2.0 * ay)
        t2 = (delta - 2.0 * (ax - ay)) * delta if near else (4.0 * delta - ay) * ay + delta * delta
        out[i] = h - (t1 + t2) / (2.0 * h)
        special |= not (ax <= LARGE and ay >= TINY and ay > ax * EPS)
    if special:
        for i in range(n):
            a = abs(np.float64(x[i]))
            b = abs(np.float64(y[i]))
            ax = b if a < b else a
            ay = a if a < b else b
            if not (ax <= LARGE and ay >= TINY and ay > ax * EPS):
                out[i] = _one(np.float64(x[i]), np.float64(y[i]))
