"""Compiled loops of :mod:`hepnn.io.libm` (numba, see :mod:`hepnn._numba`).

The same IEEE operations, in the same order, as the numpy formulations in :mod:`hepnn.io.libm`,
one value at a time; ``tests/test_io_libm.py`` compares the two bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from .._numba import jit
from .libm import (
    C2,
    C4,
    C6,
    C8,
    C10,
    C12,
    COSH_SMALL,
    EXP_OVERFLOW,
    EXP_REDUCED,
    EXP_UNDERFLOW,
    HYP_LARGE,
    HYP_OVERFLOW,
    INV_LN2,
    INV_PIO2,
    HIGH_WORD,
    KC1,
    KC2,
    KC3,
    KC4,
    KC5,
    KC6,
    KS1,
    KS2,
    KS3,
    KS4,
    KS5,
    KS6,
    PIO2_1,
    PIO2_1T,
    PIO2_2,
    PIO2_2T,
    PIO2_3,
    PIO2_3T,
    QX_SHIFT,
    TRIG_REDUCED,
    P1,
    P2,
    P3,
    P4,
    P5,
    ROUND_MAGIC,
    ROUND_MAGIC_BITS,
    TWO_M1000,
    S3,
    S5,
    S7,
    S9,
    S11,
    S13,
    S15,
    S17,
    SINH_SMALL,
    AT0,
    AT1,
    AT2,
    AT3,
    AT4,
    AT5,
    AT6,
    AT7,
    AT8,
    AT9,
    AT10,
    ASINH_HUGE,
    ASINH_TINY,
    ATAN_HI,
    ATAN_LO,
    EXACT_HI,
    EXACT_LO,
    LG1,
    LG2,
    LG3,
    LG4,
    LG5,
    LG6,
    LG7,
    LN2_HI,
    LN2_LO,
    MIN_NORMAL,
    PI_MINUS_HI,
    PI_MINUS_LO,
    SPLIT,
    SQRT2_MINUS_1,
    SQRT_HALF_BITS,
    T1,
    T2,
    T3,
    T4,
    TWO54,
)

__all__ = [
    "asinh_inplace", "asinh_into", "atan2_into", "cosh_inplace", "cosh_into", "exp_inplace", "exp_into", "log_inplace",
    "log_into", "sinh_inplace", "sinh_into", "sin_into", "sin_inplace", "cos_into", "cos_inplace",
]


#: exponent and integer tricks without a branch or an int64 -> float64 conversion (AVX2 has none):
#: bits + OFFSET has k + 1023 in its exponent field; MAGIC + n read as a double is 1.5 * 2^52 + n
OFFSET = 0x3FF0000000000000 - SQRT_HALF_BITS
MAGIC, MAGIC_VALUE = ROUND_MAGIC_BITS, ROUND_MAGIC
#: the interval constants as plain floats (the compiler vectorises selects of constants, not of
#: elements of global arrays)
ATAN_HI0, ATAN_HI1, ATAN_HI2, ATAN_HI3, ATAN_HI4 = (float(v) for v in ATAN_HI)
ATAN_LO0, ATAN_LO1, ATAN_LO2, ATAN_LO3, ATAN_LO4 = (float(v) for v in ATAN_LO)
PI_MINUS_HI0, PI_MINUS_HI1, PI_MINUS_HI2, PI_MINUS_HI3, PI_MINUS_HI4 = (float(v) for v in PI_MINUS_HI)
PI_MINUS_LO0, PI_MINUS_LO1, PI_MINUS_LO2, PI_MINUS_LO3, PI_MINUS_LO4 = (float(v) for v in PI_MINUS_LO)
PI, PI_4, THREE_PI_4 = PI_MINUS_HI0, ATAN_HI2, PI_MINUS_HI2


@jit
def _log_parts(k, f, c):  # pragma: no cover - compiled
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7))) + w * (LG2 + w * (LG4 + w * LG6))
    h = 0.5 * f * f
    return k * LN2_HI - ((h - (s * (h + r) + (k * LN2_LO + c))) - f)


@jit
def _reduce(u):  # pragma: no cover - compiled
    """(k, f) with u = 2^k (1 + f), sqrt(1/2) <= 1 + f < sqrt(2), for positive normal u."""
    bits = np.float64(u).view(np.int64)
    biased = (bits + OFFSET) >> 52  # k + 1023 >= 0
    mantissa = np.int64(bits - ((biased - 1023) << 52)).view(np.float64)
    k = (np.int64(biased + MAGIC).view(np.float64) - MAGIC_VALUE) - 1023.0  # exact
    return k, mantissa - 1.0


# The loops below have no branch (the conditional expressions become selects), so the
# compiler runs them four values at a time with AVX2.


@jit
def _log(v):  # pragma: no cover - compiled
    sub = v < MIN_NORMAL
    k, f = _reduce(v * TWO54 if sub else v)
    w = _log_parts(k - (54.0 if sub else 0.0), f, 0.0)
    w = -math.inf if v == 0.0 else w
    w = math.inf if v == math.inf else w
    return w if v >= 0.0 else math.nan


@jit
def log_into(x, out):  # pragma: no cover - compiled
    """``out[i] = log(x[i])`` (float64, 1-d, not overlapping: see :func:`log_inplace`)."""
    for i in range(x.shape[0]):
        out[i] = _log(x[i])


@jit
def log_inplace(x):  # pragma: no cover - compiled
    """``x[i] = log(x[i])`` (one array: the compiler vectorises it, which it does not for two
    arrays that overlap)."""
    for i in range(x.shape[0]):
        x[i] = _log(x[i])


@jit
def _asinh(v):  # pragma: no cover - compiled
    a = abs(v)
    t = a * a
    q = math.sqrt(1.0 + t)
    b = a + t / (1.0 + q)
    u = 1.0 + b
    c = (b - (u - 1.0)) / u
    k_near, f_near = _reduce(u)
    small = b < SQRT2_MINUS_1
    k_near = 0.0 if small else k_near
    f_near = b if small else f_near
    c = 0.0 if small else c
    huge = a > ASINH_HUGE
    k_far, f_far = _reduce(a if huge else 2.0 * a + 1.0 / (q + a))
    k_far = k_far + 1.0 if huge else k_far
    far = a > 2.0
    w = _log_parts(k_far if far else k_near, f_far if far else f_near, 0.0 if far else c)
    w = math.copysign(w, v)
    return v if (a < ASINH_TINY or not math.isfinite(v)) else w


@jit
def asinh_into(x, out):  # pragma: no cover - compiled
    """``out[i] = asinh(x[i])`` (float64, 1-d, not overlapping: see :func:`asinh_inplace`)."""
    for i in range(x.shape[0]):
        out[i] = _asinh(x[i])


@jit
def asinh_inplace(x):  # pragma: no cover - compiled
    """``x[i] = asinh(x[i])``."""
    for i in range(x.shape[0]):
        x[i] = _asinh(x[i])


@jit
def _pick(t, c0, c1, c2, c3, c4):  # pragma: no cover - compiled
    """The constant of t's interval (bounds T1..T4)."""
    v = c1 if t >= T1 else c0
    v = c2 if t >= T2 else v
    v = c3 if t >= T3 else v
    return c4 if t >= T4 else v


@jit
def atan2_into(y, x, out):  # pragma: no cover - compiled
    """``out[i] = atan2(y[i], x[i])`` (float64, 1-d)."""
    for i in range(y.shape[0]):
        yi = np.float64(y[i])  # float32 converts exactly
        xi = np.float64(x[i])
        ay = abs(yi)
        ax = abs(xi)
        t = ay / ax
        c = SPLIT * t
        th = c - (c - t)
        tl = t - th
        c = SPLIT * ax
        xh = c - (c - ax)
        xl = ax - xh
        r = (((ay - th * xh) - th * xl) - tl * xh) - tl * xl
        exact = (ax >= EXACT_LO) & (ax <= EXACT_HI) & (ay >= EXACT_LO) & (ay <= EXACT_HI)
        corr = r / (ax * (1.0 + t * t)) if exact else 0.0
        num = _pick(t, t, 2.0 * t - 1.0, t - 1.0, t - 1.5, -1.0)
        den = _pick(t, 1.0, 2.0 + t, t + 1.0, 1.0 + 1.5 * t, t)
        u = num / den
        z = u * u
        w = z * z
        s1 = z * (AT0 + w * (AT2 + w * (AT4 + w * (AT6 + w * (AT8 + w * AT10)))))
        s2 = w * (AT1 + w * (AT3 + w * (AT5 + w * (AT7 + w * AT9))))
        negative = xi < 0.0
        sign = -1.0 if negative else 1.0
        if_pos_hi = _pick(t, ATAN_HI0, ATAN_HI1, ATAN_HI2, ATAN_HI3, ATAN_HI4)
        hi = _pick(t, PI_MINUS_HI0, PI_MINUS_HI1, PI_MINUS_HI2, PI_MINUS_HI3, PI_MINUS_HI4) if negative else if_pos_hi
        if_pos_lo = _pick(t, ATAN_LO0, ATAN_LO1, ATAN_LO2, ATAN_LO3, ATAN_LO4)
        lo = _pick(t, PI_MINUS_LO0, PI_MINUS_LO1, PI_MINUS_LO2, PI_MINUS_LO3, PI_MINUS_LO4) if negative else if_pos_lo
        mag = hi - ((sign * (u * (s1 + s2) - corr) - lo) - sign * u)
        # zeros and infinities: exact constants (those of the C library), without a call
        left = math.copysign(1.0, xi) < 0.0  # x < 0 or x = -0
        y_inf = abs(yi) == math.inf
        pi_or_0 = PI if left else 0.0
        corner = THREE_PI_4 if left else PI_4
        edge = corner if y_inf else pi_or_0
        mag = PI_MINUS_HI4 if y_inf else mag
        mag = edge if abs(xi) == math.inf else mag
        mag = PI_MINUS_HI4 if xi == 0.0 else mag
        mag = pi_or_0 if yi == 0.0 else mag
        out[i] = math.nan if (xi != xi or yi != yi) else math.copysign(mag, yi)


@jit
def _exp(x):  # pragma: no cover - compiled
    v = x if abs(x) < EXP_REDUCED else 0.0  # NaN too: replaced below
    rounded = v * INV_LN2 + ROUND_MAGIC
    kf = rounded - ROUND_MAGIC
    k = np.float64(rounded).view(np.int64) - ROUND_MAGIC_BITS
    hi = v - kf * LN2_HI
    lo = kf * LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    low = k < -1021
    shift = (k + 1000 if low else k) << 52
    out = np.int64(np.float64(y).view(np.int64) + shift).view(np.float64) * (TWO_M1000 if low else 1.0)
    out = math.inf if x > EXP_OVERFLOW else (0.0 if x < EXP_UNDERFLOW else out)
    return x if x != x else out


@jit
def _cosh(x):  # pragma: no cover - compiled
    a = abs(x)
    z = a * a
    small = 1.0 + z * (C2 + z * (C4 + z * (C6 + z * (C8 + z * (C10 + z * C12)))))
    below = a <= EXP_OVERFLOW
    e = _exp(a if below else 0.5 * a)  # beyond exp's overflow: exp(a / 2)^2 / 2
    out = 0.5 * e if below else ((0.5 * e) * e if a <= HYP_OVERFLOW else math.inf)
    out = 0.5 * e + 0.5 / e if a < HYP_LARGE else out
    out = small if a < COSH_SMALL else out
    return x if x != x else out


@jit
def _sinh(x):  # pragma: no cover - compiled
    a = abs(x)
    z = a * a
    small = a + a * (z * (S3 + z * (S5 + z * (S7 + z * (S9 + z * (S11 + z * (S13 + z * (S15 + z * S17))))))))
    below = a <= EXP_OVERFLOW
    e = _exp(a if below else 0.5 * a)
    out = 0.5 * e if below else ((0.5 * e) * e if a <= HYP_OVERFLOW else math.inf)
    out = 0.5 * e - 0.5 / e if a < HYP_LARGE else out
    out = small if a < SINH_SMALL else out
    out = math.copysign(out, x)
    return x if x != x else out


@jit
def exp_into(x, out):  # pragma: no cover - compiled
    """``out[i] = exp(x[i])`` (float64, 1-d)."""
    for i in range(x.shape[0]):
        out[i] = _exp(x[i])


@jit
def exp_inplace(x):  # pragma: no cover - compiled
    """``x[i] = exp(x[i])``."""
    for i in range(x.shape[0]):
        x[i] = _exp(x[i])


@jit
def cosh_into(x, out):  # pragma: no cover - compiled
    """``out[i] = cosh(x[i])`` (float64, 1-d)."""
    for i in range(x.shape[0]):
        out[i] = _cosh(x[i])


@jit
def cosh_inplace(x):  # pragma: no cover - compiled
    """``x[i] = cosh(x[i])``."""
    for i in range(x.shape[0]):
        x[i] = _cosh(x[i])


@jit
def sinh_into(x, out):  # pragma: no cover - compiled
    """``out[i] = sinh(x[i])`` (float64, 1-d)."""
    for i in range(x.shape[0]):
        out[i] = _sinh(x[i])


@jit
def sinh_inplace(x):  # pragma: no cover - compiled
    """``x[i] = sinh(x[i])``."""
    for i in range(x.shape[0]):
        x[i] = _sinh(x[i])


@jit
def _exponent(v):  # pragma: no cover - compiled
    return (np.float64(v).view(np.int64) >> 52) & 0x7FF


@jit
def _trig(x, shift):  # pragma: no cover - compiled
    """sin (``shift`` 0) or cos (1) of x, |x| < TRIG_REDUCED (else NaN: the caller uses numpy's)."""
    reduced = abs(x) < TRIG_REDUCED
    v = x if reduced else 0.0
    rounded = v * INV_PIO2 + ROUND_MAGIC
    n = rounded - ROUND_MAGIC
    quadrant = ((np.float64(rounded).view(np.int64) - ROUND_MAGIC_BITS) + shift) & 3
    exponent = _exponent(v)
    r1 = v - n * PIO2_1
    w1 = n * PIO2_1T
    y01 = r1 - w1
    w = n * PIO2_2
    r2 = r1 - w
    w2 = n * PIO2_2T - ((r1 - r2) - w)
    y02 = r2 - w2
    w = n * PIO2_3
    r3 = r2 - w
    w3 = n * PIO2_3T - ((r2 - r3) - w)
    y03 = r3 - w3
    second = exponent - _exponent(y01) > 16
    third = second and (exponent - _exponent(y02) > 49)
    r = r3 if third else (r2 if second else r1)
    w = w3 if third else (w2 if second else w1)
    y0 = y03 if third else (y02 if second else y01)
    y1 = (r - y0) - w
    z = y0 * y0
    vs = z * y0
    rs = KS2 + z * (KS3 + z * (KS4 + z * (KS5 + z * KS6)))
    sin_r = y0 - ((z * (0.5 * y1 - vs * rs) - y1) - vs * KS1)
    rc = z * (KC1 + z * (KC2 + z * (KC3 + z * (KC4 + z * (KC5 + z * KC6)))))
    ay = abs(y0)
    qx = 0.28125 if ay > 0.78125 else np.int64((np.float64(ay).view(np.int64) - QX_SHIFT) & HIGH_WORD).view(np.float64)
    qx = 0.0 if ay < 0.3 else qx
    cos_r = (1.0 - qx) - ((0.5 * z - qx) - (z * rc - y0 * y1))
    out = sin_r if quadrant == 0 else (cos_r if quadrant == 1 else (-sin_r if quadrant == 2 else -cos_r))
    return out if (reduced and math.isfinite(x)) else math.nan


@jit
def sin_into(x, out):  # pragma: no cover - compiled
    """``out[i] = sin(x[i])`` (float64, 1-d; NaN beyond 2^19 pi / 2, see :func:`hepnn.io.libm.sin`)."""
    for i in range(x.shape[0]):
        out[i] = _trig(x[i], 0)


@jit
def sin_inplace(x):  # pragma: no cover - compiled
    """``x[i] = sin(x[i])``."""
    for i in range(x.shape[0]):
        x[i] = _trig(x[i], 0)


@jit
def cos_into(x, out):  # pragma: no cover - compiled
    """``out[i] = cos(x[i])`` (float64, 1-d; NaN beyond 2^19 pi / 2)."""
    for i in range(x.shape[0]):
        out[i] = _trig(x[i], 1)


@jit
def cos_inplace(x):  # pragma: no cover - compiled
    """``x[i] = cos(x[i])``."""
    for i in range(x.shape[0]):
        x[i] = _trig(x[i], 1)
