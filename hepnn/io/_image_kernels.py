"""Compiled loops of :mod:`hepnn.io.images` (numba, jet by jet, releasing the GIL).

Every loop does, for each jet, the same IEEE operations in the same order as the
vectorised numpy formulation it replaces (sums over a jet's elements in element
order, as ``np.bincount`` adds them; the image sums as ``ndarray.sum`` adds them), so
the images are the same to the last bit. No ``fastmath``: no reassociation, no fused
multiply-add. Trigonometric functions are left to numpy (called once per jet by the
caller), whose implementation may differ from the C library's.

``tests/test_io_images.py`` compares every kernel with the numpy formulation bit for bit.
"""

from __future__ import annotations

import numpy as np

from .._numba import jit as _jit

__all__ = ["centroids", "shift", "second_moments", "rotate", "flip", "pixelise"]


#: channel codes of :func:`pixelise` (index in :data:`hepnn.io.images.CHANNELS`)
PT, CHARGED_PT, NEUTRAL_PT, MULTIPLICITY, CHARGED_MULTIPLICITY = range(5)

#: numpy's pairwise summation: blocks of at most this many values are summed with 8 accumulators
_PAIRWISE_BLOCK = 128


@_jit
def centroids(offsets, x, y, w):  # pragma: no cover - compiled
    """Per jet: ``(sum w x, sum w y) / sum w`` (a sum <= 0 divides by 1)."""
    n = len(offsets) - 1
    cx = np.empty(n)
    cy = np.empty(n)
    for j in range(n):
        total = 0.0
        sx = 0.0
        sy = 0.0
        for i in range(offsets[j], offsets[j + 1]):
            total += w[i]
            sx += w[i] * x[i]
            sy += w[i] * y[i]
        safe = total if total > 0 else 1.0
        cx[j] = sx / safe
        cy[j] = sy / safe
    return cx, cy


@_jit
def shift(offsets, x, y, cx, cy):  # pragma: no cover - compiled
    """``x -= cx``, ``y -= cy`` jet by jet, in place."""
    for j in range(len(offsets) - 1):
        for i in range(offsets[j], offsets[j + 1]):
            x[i] -= cx[j]
            y[i] -= cy[j]


@_jit
def second_moments(offsets, x, y, w, mx, my):  # pragma: no cover - compiled
    """Per jet: ``sum w dx dx``, ``sum w dy dy``, ``sum w dx dy`` about ``(mx, my)``."""
    n = len(offsets) - 1
    sxx = np.empty(n)
    syy = np.empty(n)
    sxy = np.empty(n)
    for j in range(n):
        a = 0.0
        b = 0.0
        c = 0.0
        for i in range(offsets[j], offsets[j + 1]):
            dx = x[i] - mx[j]
            dy = y[i] - my[j]
            a += w[i] * dx * dx
            b += w[i] * dy * dy
            c += w[i] * dx * dy
        sxx[j] = a
        syy[j] = b
        sxy[j] = c
    return sxx, syy, sxy


@_jit
def rotate(offsets, x, y, c, s):  # pragma: no cover - compiled
    """``x, y = c x - s y, s x + c y`` jet by jet, in place."""
    for j in range(len(offsets) - 1):
        for i in range(offsets[j], offsets[j + 1]):
            xi = x[i]
            yi = y[i]
            x[i] = c[j] * xi - s[j] * yi
            y[i] = s[j] * xi + c[j] * yi


@_jit
def flip(offsets, coord, w):  # pragma: no cover - compiled
    """Negate ``coord`` of the jets whose ``sum w sign(coord)`` is negative, in place."""
    for j in range(len(offsets) - 1):
        side = 0.0
        for i in range(offsets[j], offsets[j + 1]):
            side += w[i] * np.sign(coord[i])
        if side < 0:
            for i in range(offsets[j], offsets[j + 1]):
                coord[i] = -coord[i]


@_jit
def _block_sum(a, start, n):  # pragma: no cover - compiled
    """numpy's sum of at most ``_PAIRWISE_BLOCK`` contiguous values: 8 accumulators."""
    if n < 8:
        res = 0.0
        for i in range(start, start + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    i = 8
    while i < n - (n % 8):
        k = start + i
        r0 += a[k]
        r1 += a[k + 1]
        r2 += a[k + 2]
        r3 += a[k + 3]
        r4 += a[k + 4]
        r5 += a[k + 5]
        r6 += a[k + 6]
        r7 += a[k + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[start + i]
        i += 1
    return res


@_jit
def _pairwise_sum(a, start, n, stack, values):  # pragma: no cover - compiled
    """numpy's pairwise sum of the contiguous ``a[start:start + n]`` (``ndarray.sum`` of float64):
    halves (cut at a multiple of 8) summed separately down to blocks of ``_PAIRWISE_BLOCK``.

    numpy recurses; this walks the same tree with ``stack`` (int64 ``(depth, 3)``, depth
    at least log2(n / 128) + 2) and ``values`` (float64, as long), because numba cannot
    cache a recursive function.
    """
    if n <= _PAIRWISE_BLOCK:
        return _block_sum(a, start, n)
    top = 0
    stack[0, 0], stack[0, 1], stack[0, 2] = start, n, 0
    nv = 0
    while top >= 0:
        s, m, stage = stack[top, 0], stack[top, 1], stack[top, 2]
        if m <= _PAIRWISE_BLOCK:
            values[nv] = _block_sum(a, s, m)
            nv += 1
            top -= 1
            continue
        n2 = m // 2
        n2 -= n2 % 8
        if stage == 0:  # the first half
            stack[top, 2] = 1
            top += 1
            stack[top, 0], stack[top, 1], stack[top, 2] = s, n2, 0
        elif stage == 1:  # the second half
            stack[top, 2] = 2
            top += 1
            stack[top, 0], stack[top, 1], stack[top, 2] = s + n2, m - n2, 0
        else:  # both halves done
            nv -= 1
            values[nv - 1] = values[nv - 1] + values[nv]
            top -= 1
    return values[0]


@_jit
def pixelise(offsets, x, y, w, charged, extent, width, pixels, codes, normalize, out):  # pragma: no cover
    """Fill the float32 images ``out`` ``(n_jets, pixels, pixels, len(codes))``.

    Pixel sums in float64 in element order, then (``normalize``) divided by the
    image's sum per channel (sums <= 0 give an empty image), then rounded to float32.
    The sum of a one-channel image is numpy's pairwise sum of its pixels in
    row-major order, that of a channel of several a plain sum in that order (what
    ``images.sum(axis=(1, 2))`` does in each case).
    """
    n_ch = len(codes)
    size = pixels * pixels * n_ch
    out = out.reshape((len(offsets) - 1, size))
    pixel = np.zeros(size)
    stack = np.zeros((64, 3), dtype=np.int64)
    values = np.zeros(64)
    for j in range(len(offsets) - 1):
        pixel[:] = 0.0
        for i in range(offsets[j], offsets[j + 1]):
            fx = np.floor((x[i] + extent) / width)
            fy = np.floor((y[i] + extent) / width)
            if not (fx >= 0 and fx < pixels and fy >= 0 and fy < pixels):
                continue  # outside the window (NaN too)
            base = (int(fx) * pixels + int(fy)) * n_ch
            for c in range(n_ch):
                code = codes[c]
                if code == PT:
                    v = w[i]
                elif code == CHARGED_PT:
                    v = w[i] * (1.0 if charged[i] else 0.0)
                elif code == NEUTRAL_PT:
                    v = w[i] * (0.0 if charged[i] else 1.0)
                elif code == MULTIPLICITY:
                    v = 1.0
                else:
                    v = 1.0 if charged[i] else 0.0
                pixel[base + c] += v
        for c in range(n_ch):
            scale = 1.0
            if normalize:
                if n_ch == 1:
                    total = _pairwise_sum(pixel, 0, size, stack, values)
                else:
                    total = 0.0
                    for p in range(c, size, n_ch):
                        total += pixel[p]
                scale = total if total > 0 else 0.0
            row = out[j]
            if not normalize:
                for p in range(c, size, n_ch):
                    row[p] = np.float32(pixel[p])
            elif scale > 0 and n_ch == 1:
                for p in range(size):  # unit stride: vectorised
                    row[p] = np.float32(pixel[p] / scale)
            elif scale > 0:
                for p in range(c, size, n_ch):
                    row[p] = np.float32(pixel[p] / scale)
            else:
                for p in range(c, size, n_ch):
                    row[p] = 0.0
