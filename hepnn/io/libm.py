"""``log``, ``asinh``, ``atan2``, ``exp``, ``cosh``, ``sinh``, ``sin`` and ``cos`` in float64 with the same bits on every machine
(within 1 ulp; asinh 2; cosh and sinh 1.6, 2.03 in the last 0.7 before their overflow).

numpy's ``np.log``, ``np.arcsinh``, ``np.arctan2``, ``np.exp``, ``np.cosh`` and ``np.sinh`` are
the C library's functions on most CPUs and Intel's SVML on CPUs with AVX-512 (numpy 2.4 dispatches
them to its ``X86_V4`` loops there), so their last bit depends on the machine; where the
C library's are used they cost 4-8, 22-30 and 29 ns per value (glibc 2.36 on an AVX2-only AMD EPYC):
with a constituent's eta (``asinh(pz / pt)``), phi (``atan2(py, px)``) and four logarithms,
three quarters of the time of the top-tagging inputs' seven derived variables.

The algorithms are the classic ones of Sun's fdlibm (also behind glibc's ``log1p`` and
``asinh``), written for arrays:

* **log**: x = 2^k (1 + f) with sqrt(1/2) <= 1 + f < sqrt(2), taken from the bits of x; then
  log(1 + f) = f - (f^2/2 - s (f^2/2 + R(s^2))) with s = f / (2 + f) and Remez's degree-14 even
  polynomial R, and k ln 2 added as a sum of two parts (the high part times k exact). A
  correction ``c`` of the argument enters with the low part, which is how ``log1p`` is exact for
  1 + a not representable.
* **asinh**: ``x`` below 2^-28 in magnitude; ``log1p(|x| + x^2 / (1 + sqrt(1 + x^2)))`` up to 2;
  ``log(2|x| + 1 / (sqrt(x^2 + 1) + |x|))`` up to 2^28; ``log(2|x|)`` beyond (2 enters the
  exponent, so nothing overflows); the sign of x.
* **exp**: x = k ln 2 + r with k the integer nearest x / ln 2 and r = hi - lo (k ln 2 in two
  parts, the high part exact), then exp(r) = 1 - ((lo - r c / (2 - c)) - hi) with c = r - r^2
  P(r^2), fdlibm's degree-5 polynomial P, scaled by 2^k as fdlibm does (k added to the exponent;
  below 2^-1021 in two steps, one rounding).
* **cosh**, **sinh**: for small |x| (cosh below ln(2) / 2, sinh below 1) their Taylor series
  (to x^12 and x^17, the next term below 1/30 ulp); up to 22 (exp(a) + -exp(-a)) / 2 with
  a = |x|; up to exp's overflow exp(a) / 2 (exp(-a) is below half an ulp); then exp(a / 2)^2 / 2
  up to their own overflow, so nothing overflows early.
* **sin**, **cos**: x - n pi/2 by fdlibm's medium reduction (pi/2 in three parts of 33 bits, a
  second and third round where the first cancelled bits), then fdlibm's kernel polynomials on
  (y0, y1) by the quadrant n (below 0.83 ulp measured); beyond 2^19 pi / 2 numpy's.
* **atan2**: t = |y / x| reduced to one of five intervals around 0, 1/2, 1, 3/2 and infinity
  (fdlibm's ``atan``), the odd polynomial of degree 23, and the constant of the interval added as
  two parts. Two refinements make it more accurate than fdlibm's: the rounding error of y / x is
  recovered exactly (Dekker's product without fused multiply-add) and added as a first-order
  correction, and for x < 0 the constants are those of pi - atan(c), so the result is not
  rounded twice. Zeros, infinities and NaNs are the C library's (exact constants: +-0, +-pi,
  +-pi/2, +-pi/4, +-3pi/4).

Each is written twice with the same IEEE operations in the same order: a compiled loop for large
arrays (:mod:`hepnn.io._libm_kernel`, no ``fastmath``, so no fused multiply-add and no
reassociation) and numpy expressions for small ones, so a value does not depend on the size of the
array it came in. Additions, multiplications, divisions and square roots are correctly rounded by
IEEE arithmetic on any CPU, so the results are the same everywhere. ``log`` and ``atan2`` are
within 1 ulp of the exact value (at most 0.85 ulp measured; ``atan2`` of inputs beyond 2^+-250,
where the rounding error of y / x is not recovered, 1.42), ``asinh`` within 2 like glibc's
(``tests/test_io_libm.py``). They differ from glibc's (nearly correctly rounded) results in the
last bit for 1.5 % (``log``, ``asinh``) and 4 % (``atan2``) of the values (``bench/libm.py``); in
the float32 inputs hepnn writes, that last float64 bit almost never shows.

Examples
--------
>>> import numpy as np
>>> log(np.array([1.0, np.e, 0.0, -1.0])).tolist()
[0.0, 1.0, -inf, nan]
>>> asinh(np.array([0.0, 1.0, -1e300])).round(12).tolist()
[0.0, 0.88137358702, -691.468675078774]
>>> (atan2(np.array([1.0, 1.0, -1.0]), np.array([1.0, -1.0, 0.0])) / np.pi).tolist()
[0.25, 0.75, -0.5]
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["asinh", "atan2", "cos", "cosh", "exp", "log", "sin", "sinh"]

#: log(2) in two parts: the high part has 32 bits, so k * LN2_HI is exact for |k| < 2^20
LN2_HI = 6.93147180369123816490e-01  # 0x3FE62E42FEE00000
LN2_LO = 1.90821492927058770002e-10  # 0x3DEA39EF35793C76
#: Remez coefficients of R(z) = (log(1 + s) - log(1 - s) - 2s) / s, z = s^2, |error| < 2^-58.45
LG1 = 6.666666666666735130e-01
LG2 = 3.999999999940941908e-01
LG3 = 2.857142874366239149e-01
LG4 = 2.222219843214978396e-01
LG5 = 1.818357216161805012e-01
LG6 = 1.531383769920937332e-01
LG7 = 1.479819860511658591e-01
#: bits of the double nearest sqrt(1/2): x's mantissa is reduced into [sqrt(1/2), sqrt(2))
SQRT_HALF_BITS = 0x3FE6A09E667F3BCD
#: below this, 1 + a lies in [1, sqrt(2)): log1p takes f = a itself (exact)
SQRT2_MINUS_1 = 0.41421356237309503
MIN_NORMAL = 2.0 ** -1022
TWO54 = 2.0 ** 54
ASINH_TINY = 2.0 ** -28
ASINH_HUGE = 2.0 ** 28

#: atan's polynomial: atan(u) = u - u (z (AT0 + w (AT2 + ...)) + w (AT1 + w (AT3 + ...))), z = u^2, w = z^2
AT0 = 3.33333333333329318027e-01
AT1 = -1.99999999998764832476e-01
AT2 = 1.42857142725034663711e-01
AT3 = -1.11111104054623557880e-01
AT4 = 9.09088713343650656196e-02
AT5 = -7.69187620504482999495e-02
AT6 = 6.66107313738753120669e-02
AT7 = -5.83357013379057348645e-02
AT8 = 4.97687799461593236017e-02
AT9 = -3.65315727442169155270e-02
AT10 = 1.62858201153657823623e-02
#: interval bounds of t = |y / x|: 7/16, 11/16, 19/16, 39/16
T1, T2, T3, T4 = 0.4375, 0.6875, 1.1875, 2.4375
#: atan(c) for c = 0 (interval 0), 1/2, 1, 3/2, infinity, as high and low parts (x >= 0) ...
ATAN_HI = np.array([0.0, 4.636476090008061e-01, 7.853981633974483e-01, 9.82793723247329e-01, 1.5707963267948966])
ATAN_LO = np.array([0.0, 2.2698777452961687e-17, 3.061616997868383e-17, 1.3903311031230998e-17, 6.123233995736766e-17])
#: ... and pi - atan(c) (x < 0)
PI_MINUS_HI = np.array([3.141592653589793, 2.677945044588987, 2.356194490192345, 2.158798930342464, 1.5707963267948966])
PI_MINUS_LO = np.array(
    [1.2246467991473532e-16, 1.5527705369303147e-16, 9.184850993605148e-17, 2.1958367134601997e-16, 6.123233995736766e-17]
)
#: Dekker's split: 2^27 + 1
SPLIT = 134217729.0
#: the rounding error of y / x is recovered where |x| and |y| lie in [2^-250, 2^250] (no overflow
#: or underflow in the exact product); outside, atan2 is fdlibm's (below 1.5 ulp)
EXACT_LO = 2.0 ** -250
EXACT_HI = 2.0 ** 250

#: exp: fdlibm's polynomial, 1 / ln 2, the overflow (above: inf) and underflow (below: 0) thresholds
P1 = 1.66666666666666019037e-01
P2 = -2.77777777770155933842e-03
P3 = 6.61375632143793436117e-05
P4 = -1.65339022054652515390e-06
P5 = 4.13813679705723846039e-08
INV_LN2 = 1.44269504088896338700e00
EXP_OVERFLOW = 7.09782712893383973096e02
EXP_UNDERFLOW = -7.45133219101941108420e02
#: |x| beyond which exp's argument reduction is skipped (the result is inf or 0 anyway)
EXP_REDUCED = 800.0
#: t + 1.5 * 2^52 - 1.5 * 2^52 rounds t to the nearest integer (|t| < 2^51), whose int64 is the
#: sum's bits minus these (no float -> int conversion, which AVX2 has not)
ROUND_MAGIC = 6755399441055744.0
ROUND_MAGIC_BITS = 0x4338000000000000
#: 2^k below 2^-1021 is applied as 2^(k + 1000) (exact) times this (one rounding, as ``ldexp``)
TWO_M1000 = 2.0 ** -1000
#: cosh and sinh: Taylor series below these, exp(a) / 2 from HYP_LARGE, inf beyond HYP_OVERFLOW
COSH_SMALL = 0.34657359027997264  # ln(2) / 2
SINH_SMALL = 1.0
HYP_LARGE = 22.0
HYP_OVERFLOW = 710.4758600739439
C2, C4, C6, C8, C10, C12 = 1 / 2, 1 / 24, 1 / 720, 1 / 40320, 1 / 3628800, 1 / 479001600
S3, S5, S7, S9 = 1 / 6, 1 / 120, 1 / 5040, 1 / 362880
S11, S13, S15, S17 = 1 / 39916800, 1 / 6227020800, 1 / 1307674368000, 1 / 355687428096000

#: sin, cos: pi/2 in three 33-bit parts and their tails (fdlibm's medium reduction, up to three
#: rounds), 2/pi, fdlibm's kernel polynomials; beyond TRIG_REDUCED numpy's (the reduction holds below)
PIO2_1 = 1.57079632673412561417e00
PIO2_1T = 6.07710050650619224932e-11
PIO2_2 = 6.07710050630396597660e-11
PIO2_2T = 2.02226624879595063154e-21
PIO2_3 = 2.02226624871116645580e-21
PIO2_3T = 8.47842766036889956997e-32
INV_PIO2 = 6.36619772367581382433e-01
TRIG_REDUCED = 823549.6653753  # 2^19 pi / 2
KS1, KS2, KS3 = -1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04
KS4, KS5, KS6 = 2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10
KC1, KC2, KC3 = 4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05
KC4, KC5, KC6 = -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11
#: k_cos: |x| / 4 with the low 32 bits of its mantissa cleared (fdlibm's qx), 0.28125 above 0.78125
QX_SHIFT = 0x0020000000000000
HIGH_WORD = -0x100000000  # ~0xFFFFFFFF as int64

#: from this many values on, the compiled loop (numba's import costs half a second once)
_COMPILED_VALUES = 65_536
_KERNEL = f"{__package__}._libm_kernel"


def _kernel():
    """The compiled loops (:mod:`hepnn.io._libm_kernel`), imported on first use."""
    # lazy: numba's import costs half a second, which only large inputs need
    from . import _libm_kernel

    return _libm_kernel


def _log_parts(k: np.ndarray, f: np.ndarray, c) -> np.ndarray:
    """k ln 2 + log(1 + f) + c (``_libm_kernel._log_parts``)."""
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7))) + w * (LG2 + w * (LG4 + w * LG6))
    h = 0.5 * f * f
    return k * LN2_HI - ((h - (s * (h + r) + (k * LN2_LO + c))) - f)


def _reduce(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """k (float64) and f with u = 2^k (1 + f), sqrt(1/2) <= 1 + f < sqrt(2); u positive and normal."""
    bits = u.view(np.int64)
    k = (bits - SQRT_HALF_BITS) >> 52
    mantissa = (bits - (k << 52)).view(np.float64)
    return k.astype(np.float64), mantissa - 1.0


def _log_numpy(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        sub = x < MIN_NORMAL
        k, f = _reduce(np.where(sub, x * TWO54, x))
        out = _log_parts(k - np.where(sub, 54.0, 0.0), f, 0.0)
        bad = ~(x > 0.0) | (x == np.inf)
        if bad.any():
            out[bad] = np.where(x == 0.0, -np.inf, np.where(x == np.inf, np.inf, np.nan))[bad]
    return out


def _asinh_numpy(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        a = np.abs(x)
        t = a * a
        q = np.sqrt(1.0 + t)
        # |x| <= 2: log1p(b), b = |x| + x^2 / (1 + sqrt(1 + x^2)); 1 + b = u + c exactly
        b = a + t / (1.0 + q)
        u = 1.0 + b
        c = (b - (u - 1.0)) / u
        k_near, f_near = _reduce(u)
        small = b < SQRT2_MINUS_1  # then f = b itself, exact
        k_near, f_near, c = np.where(small, 0.0, k_near), np.where(small, b, f_near), np.where(small, 0.0, c)
        # |x| > 2: log(2|x| + 1 / (sqrt(x^2 + 1) + |x|)), or log(|x|) + ln 2 beyond 2^28
        huge = a > ASINH_HUGE
        k_far, f_far = _reduce(np.where(huge, a, 2.0 * a + 1.0 / (q + a)))
        k_far = np.where(huge, k_far + 1.0, k_far)
        far = a > 2.0
        w = _log_parts(np.where(far, k_far, k_near), np.where(far, f_far, f_near), np.where(far, 0.0, c))
        out = np.copysign(w, x)
        return np.where((a < ASINH_TINY) | ~np.isfinite(x), x, out)  # x itself: tiny, +-0, +-inf, NaN


def _atan2_numpy(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        ay, ax = np.abs(y), np.abs(x)
        t = ay / ax
        # the rounding error of t: ay - t * ax exactly (Dekker), times d atan / dt / ax
        c = SPLIT * t
        th = c - (c - t)
        tl = t - th
        c = SPLIT * ax
        xh = c - (c - ax)
        xl = ax - xh
        r = (((ay - th * xh) - th * xl) - tl * xh) - tl * xl
        exact = (ax >= EXACT_LO) & (ax <= EXACT_HI) & (ay >= EXACT_LO) & (ay <= EXACT_HI)
        corr = np.where(exact, r / (ax * (1.0 + t * t)), 0.0)
        # the interval of t and its reduced argument u = num / den
        i = (t >= T1).astype(np.intp) + (t >= T2) + (t >= T3) + (t >= T4)
        num = np.choose(i, [t, 2.0 * t - 1.0, t - 1.0, t - 1.5, np.full_like(t, -1.0)])
        den = np.choose(i, [np.ones_like(t), 2.0 + t, t + 1.0, 1.0 + 1.5 * t, t])
        u = num / den
        z = u * u
        w = z * z
        s1 = z * (AT0 + w * (AT2 + w * (AT4 + w * (AT6 + w * (AT8 + w * AT10)))))
        s2 = w * (AT1 + w * (AT3 + w * (AT5 + w * (AT7 + w * AT9))))
        negative = x < 0.0
        sign = np.where(negative, -1.0, 1.0)
        hi = np.where(negative, PI_MINUS_HI[i], ATAN_HI[i])
        lo = np.where(negative, PI_MINUS_LO[i], ATAN_LO[i])
        mag = hi - ((sign * (u * (s1 + s2) - corr) - lo) - sign * u)
        # zeros and infinities: exact constants (those of the C library)
        left = np.signbit(x)  # x < 0 or x = -0
        pi_or_0 = np.where(left, PI_MINUS_HI[0], 0.0)
        y_inf, x_inf = np.abs(y) == np.inf, np.abs(x) == np.inf
        mag = np.where(y_inf, PI_MINUS_HI[4], mag)
        mag = np.where(x_inf, np.where(y_inf, np.where(left, PI_MINUS_HI[2], ATAN_HI[2]), pi_or_0), mag)
        mag = np.where(x == 0.0, PI_MINUS_HI[4], mag)
        mag = np.where(y == 0.0, pi_or_0, mag)
        return np.where(np.isnan(x) | np.isnan(y), np.nan, np.copysign(mag, y))


def _exp_numpy(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        v = np.where(np.abs(x) < EXP_REDUCED, x, 0.0)  # NaN too: replaced below
        rounded = v * INV_LN2 + ROUND_MAGIC
        kf = rounded - ROUND_MAGIC  # the integer nearest x / ln 2
        k = rounded.view(np.int64) - ROUND_MAGIC_BITS
        hi = v - kf * LN2_HI  # exact: LN2_HI has 32 bits
        lo = kf * LN2_LO
        r = hi - lo
        t = r * r
        c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))))
        y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
        # times 2^k: k added to y's exponent (exact), below 2^-1021 in two steps (one rounding)
        low = k < -1021
        out = (y.view(np.int64) + (np.where(low, k + 1000, k) << 52)).view(np.float64) * np.where(low, TWO_M1000, 1.0)
        out = np.where(x > EXP_OVERFLOW, np.inf, np.where(x < EXP_UNDERFLOW, 0.0, out))
        return np.where(np.isnan(x), x, out)


def _hyperbolic_numpy(x: np.ndarray, odd: bool) -> np.ndarray:
    """cosh (``odd`` False) or sinh of ``x``."""
    with np.errstate(all="ignore"):
        a = np.abs(x)
        z = a * a
        if odd:
            small = a + a * (z * (S3 + z * (S5 + z * (S7 + z * (S9 + z * (S11 + z * (S13 + z * (S15 + z * S17))))))))
        else:
            small = 1.0 + z * (C2 + z * (C4 + z * (C6 + z * (C8 + z * (C10 + z * C12)))))
        # exp(a), or exp(a / 2) beyond exp's overflow: exp(a / 2)^2 / 2
        e = _exp_numpy(np.where(a <= EXP_OVERFLOW, a, 0.5 * a))
        out = np.where(a <= EXP_OVERFLOW, 0.5 * e, np.where(a <= HYP_OVERFLOW, (0.5 * e) * e, np.inf))
        out = np.where(a < HYP_LARGE, 0.5 * e - 0.5 / e if odd else 0.5 * e + 0.5 / e, out)
        out = np.where(a < (SINH_SMALL if odd else COSH_SMALL), small, out)
        if odd:
            out = np.copysign(out, x)
        return np.where(np.isnan(x), x, out)


def _cosh_numpy(x: np.ndarray) -> np.ndarray:
    return _hyperbolic_numpy(x, False)


def _sinh_numpy(x: np.ndarray) -> np.ndarray:
    return _hyperbolic_numpy(x, True)


def _exponent(v: np.ndarray) -> np.ndarray:
    """The biased exponent field of float64 ``v``."""
    return (v.view(np.int64) >> 52) & 0x7FF


def _trig_numpy(x: np.ndarray, cosine: bool) -> np.ndarray:
    """sin (``cosine`` False) or cos of ``x``: fdlibm's kernels on x - n pi/2, by the quadrant n."""
    with np.errstate(all="ignore"):
        a = np.abs(x)
        reduced = a < TRIG_REDUCED
        v = np.where(reduced, x, 0.0)
        rounded = v * INV_PIO2 + ROUND_MAGIC
        n = rounded - ROUND_MAGIC
        quadrant = (rounded.view(np.int64) - ROUND_MAGIC_BITS) & 3
        # x - n pi/2 as fdlibm's medium reduction: a second and a third round of pi/2's bits where
        # the first (then the second) cancelled more than 16 (49) bits of x
        exponent = _exponent(v)
        r1 = v - n * PIO2_1  # exact
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
        third = second & (exponent - _exponent(y02) > 49)
        r = np.where(third, r3, np.where(second, r2, r1))
        w = np.where(third, w3, np.where(second, w2, w1))
        y0 = np.where(third, y03, np.where(second, y02, y01))
        y1 = (r - y0) - w
        z = y0 * y0
        # k_sin(y0, y1)
        vs = z * y0
        rs = KS2 + z * (KS3 + z * (KS4 + z * (KS5 + z * KS6)))
        sin_r = y0 - ((z * (0.5 * y1 - vs * rs) - y1) - vs * KS1)
        # k_cos(y0, y1)
        rc = z * (KC1 + z * (KC2 + z * (KC3 + z * (KC4 + z * (KC5 + z * KC6)))))
        ay = np.abs(y0)
        qx = np.where(ay > 0.78125, 0.28125,
                      ((ay.view(np.int64) - QX_SHIFT) & HIGH_WORD).view(np.float64))
        qx = np.where(ay < 0.3, 0.0, qx)
        cos_r = (1.0 - qx) - ((0.5 * z - qx) - (z * rc - y0 * y1))
        q = (quadrant + 1) & 3 if cosine else quadrant
        out = np.where(q == 0, sin_r, np.where(q == 1, cos_r, np.where(q == 2, -sin_r, -cos_r)))
        far = ~reduced & np.isfinite(x)
        if far.any():  # beyond 2^19 pi / 2: numpy's (not an angle hepnn computes)
            out[far] = (np.cos if cosine else np.sin)(x[far])
        return np.where(np.isfinite(x), out, np.nan)


def _sin_numpy(x: np.ndarray) -> np.ndarray:
    return _trig_numpy(x, False)


def _cos_numpy(x: np.ndarray) -> np.ndarray:
    return _trig_numpy(x, True)


def _as_float64(x) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def _use_kernel(n: int) -> bool:
    # once imported, the compiled loop for any size: a value never depends on the array's size
    return n >= _COMPILED_VALUES or _KERNEL in sys.modules


def _unary(x, out, numpy_form, kernel_name) -> np.ndarray:
    x = np.asarray(x)
    flat = _as_float64(x).reshape(-1)
    if not _use_kernel(flat.size):
        result = numpy_form(flat).reshape(x.shape)
    elif out is not None and out.flags.c_contiguous and out.dtype == np.float64 and np.shares_memory(out, flat):
        if out.shape != x.shape or out.__array_interface__["data"][0] != flat.__array_interface__["data"][0]:
            raise ValueError("out must be x itself or not overlap it")
        getattr(_kernel(), f"{kernel_name}_inplace")(out.reshape(-1))  # one array: vectorised
        return out
    else:
        writable = out is not None and out.flags.c_contiguous and out.dtype == np.float64 and out.shape == x.shape
        result = out if writable else np.empty(x.shape, np.float64)
        getattr(_kernel(), f"{kernel_name}_into")(flat, result.reshape(-1))
    if out is None or result is out:
        return result
    out[...] = result
    return out


def log(x, out: np.ndarray | None = None) -> np.ndarray:
    """Natural logarithm in float64 (``-inf`` at 0, NaN below); ``out`` may be ``x`` itself."""
    return _unary(x, out, _log_numpy, "log")


def asinh(x, out: np.ndarray | None = None) -> np.ndarray:
    """Inverse hyperbolic sine in float64 (the pseudorapidity of pz / pt); ``out`` may be ``x``."""
    return _unary(x, out, _asinh_numpy, "asinh")


def atan2(y, x) -> np.ndarray:
    """Angle of (x, y) in (-pi, pi], float64 (the azimuth of (px, py)); numpy broadcasting."""
    y, x = np.broadcast_arrays(np.asarray(y), np.asarray(x))
    shape = y.shape
    if _use_kernel(y.size):
        # float32 or float64 as they are (the loop converts float32 exactly); anything else to float64
        y, x = (np.ascontiguousarray(a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)).reshape(-1) for a in (y, x))
        out = np.empty(y.size, np.float64)
        _kernel().atan2_into(y, x, out)
        return out.reshape(shape)
    return _atan2_numpy(_as_float64(y).reshape(-1), _as_float64(x).reshape(-1)).reshape(shape)


def exp(x, out: np.ndarray | None = None) -> np.ndarray:
    """Exponential in float64 (inf beyond 709.78, 0 below -745.13); ``out`` may be ``x`` itself."""
    return _unary(x, out, _exp_numpy, "exp")


def cosh(x, out: np.ndarray | None = None) -> np.ndarray:
    """Hyperbolic cosine in float64 (a momentum from pT and eta: pT cosh(eta)); ``out`` may be ``x``."""
    return _unary(x, out, _cosh_numpy, "cosh")


def sinh(x, out: np.ndarray | None = None) -> np.ndarray:
    """Hyperbolic sine in float64 (pz from pT and eta: pT sinh(eta)); ``out`` may be ``x``."""
    return _unary(x, out, _sinh_numpy, "sinh")


def _trig(x, out, cosine: bool) -> np.ndarray:
    x = np.asarray(x)
    with np.errstate(invalid="ignore"):
        far = np.isfinite(x) & (np.abs(x) >= TRIG_REDUCED)
    far_values = (np.cos if cosine else np.sin)(x[far].astype(np.float64)) if far.any() else None
    result = _unary(x, out, _cos_numpy if cosine else _sin_numpy, "cos" if cosine else "sin")
    if far_values is not None:  # beyond 2^19 pi / 2 (never an angle): numpy's
        result[far] = far_values
    return result


def sin(x, out: np.ndarray | None = None) -> np.ndarray:
    """Sine in float64 (py from pT and phi: pT sin(phi)); ``out`` may be ``x`` itself.
    Beyond 2^19 pi / 2 in magnitude numpy's (not the same bits everywhere)."""
    return _trig(x, out, False)


def cos(x, out: np.ndarray | None = None) -> np.ndarray:
    """Cosine in float64 (px from pT and phi: pT cos(phi)); ``out`` may be ``x`` itself.
    Beyond 2^19 pi / 2 in magnitude numpy's (not the same bits everywhere)."""
    return _trig(x, out, True)
