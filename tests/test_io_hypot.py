"""hepnn.io.hypot: the compiled loop and the numpy formulation give the same bits, within 1 ulp of
the exact value, and equal to the C library's hypot on glibc >= 2.35 (the same algorithm)."""

import platform
from decimal import Decimal, getcontext

import numpy as np
import pytest

from hepnn.io import hypot as H

SPECIAL = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, 2.0 ** -459, 2.0 ** -460, 1.0, -1.0, 3.0,
           4.0, 1e-10, 1e10, 2.0 ** 511, 2.0 ** 512, 1e300, 1.7976931348623157e308, -1.7976931348623157e308,
           np.inf, -np.inf, np.nan]


def _values(kind: str, n: int, seed: int):
    rng = np.random.default_rng(seed)
    if kind == "float32":  # constituent momenta as read
        return [rng.normal(0, 5, n).astype(np.float32) for _ in range(2)]
    if kind == "comparable":  # rel_eta, rel_phi
        return rng.normal(0, 0.3, n), rng.normal(0, 0.3, n)
    if kind == "ratio":  # one much smaller than the other, up to past 2^-54
        return rng.normal(0, 1, n), rng.normal(0, 1, n) * 2.0 ** rng.integers(-60, 1, n)
    if kind == "wide":  # every binade, subnormals, overflow to inf
        with np.errstate(over="ignore"):
            return [rng.normal(0, 1, n) * 2.0 ** rng.integers(-1074, 1024, n).astype(np.float64) for _ in range(2)]
    x, y = np.meshgrid(np.array(SPECIAL), np.array(SPECIAL))  # every pair of special values
    return x.ravel(), y.ravel()


def _bits(a: np.ndarray) -> bytes:
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isnan(a), np.nan, a).tobytes()  # any NaN is NaN (payloads are not promised)


KINDS = ["float32", "comparable", "ratio", "wide", "special"]


@pytest.mark.parametrize("kind", KINDS)
def test_compiled_loop_equals_numpy_formulation(monkeypatch, kind):
    x, y = _values(kind, 300_000, 1)
    monkeypatch.setattr(H, "_COMPILED_VALUES", 0)
    compiled = H.hypot(x, y)
    numpy = H._hypot_numpy(np.asarray(x, np.float64), np.asarray(y, np.float64))
    assert compiled.dtype == numpy.dtype == np.float64
    assert _bits(compiled) == _bits(numpy)


def test_value_does_not_depend_on_the_array_it_came_in():
    x, y = _values("comparable", 3 * H._COMPILED_VALUES, 2)
    whole = H.hypot(x, y)  # compiled
    for lo, hi in [(0, 10), (5, H._COMPILED_VALUES - 1), (17, 2 * H._COMPILED_VALUES + 3)]:
        assert _bits(H.hypot(x[lo:hi], y[lo:hi])) == _bits(whole[lo:hi])


def test_special_values():
    got = H.hypot(np.array([3.0, -3.0, 0.0, -0.0, np.inf, np.nan, np.nan, -np.inf, 1e308, 5e-324]),
                  np.array([-4.0, 4.0, 0.0, 0.0, np.nan, np.inf, 1.0, 2.0, 1e308, 5e-324]))
    assert got[:5].tolist() == [5.0, 5.0, 0.0, 0.0, np.inf]
    assert not np.signbit(got[3])
    assert got[5] == np.inf and np.isnan(got[6]) and got[7] == np.inf
    assert got[8] == 1.4142135623730951e308  # no overflow on the way
    assert got[9] == 5e-324  # sqrt(2) times the smallest subnormal rounds to it


@pytest.mark.parametrize("kind", ["float32", "comparable", "ratio", "wide"])
def test_within_one_ulp_of_the_exact_value(kind):
    x, y = _values(kind, 3000, 3)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    got = H.hypot(x, y)
    getcontext().prec = 80
    for a, b, g in zip(x, y, got):
        exact = (Decimal(float(a)) ** 2 + Decimal(float(b)) ** 2).sqrt()
        if exact > Decimal(1.7976931348623157e308):
            assert g == np.inf
            continue
        nearest = float(exact)
        assert abs(g - nearest) <= np.spacing(nearest), (a, b, g, nearest)


def _glibc_at_least(major: int, minor: int) -> bool:
    name, version = platform.libc_ver()
    if name != "glibc" or not version:
        return False
    return tuple(int(p) for p in version.split(".")[:2]) >= (major, minor)


@pytest.mark.skipif(not _glibc_at_least(2, 35), reason="np.hypot is the C library's: the same algorithm from glibc 2.35")
@pytest.mark.parametrize("kind", KINDS)
def test_equals_the_c_library_hypot(kind):
    x, y = _values(kind, 1_000_000, 4)
    with np.errstate(all="ignore"):
        assert _bits(H.hypot(x, y)) == _bits(np.hypot(x, y, dtype=np.float64))
