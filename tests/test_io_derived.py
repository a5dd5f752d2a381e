"""Derived variables and the split hash."""

from __future__ import annotations

import numpy as np
import pytest

from hepnn.exceptions import ConfigError
from hepnn.io.derived import DERIVED, Momenta, wrap_phi
from hepnn.io.split import assign_split


def test_registry_has_issue_names():
    for name in ["rel_eta", "rel_phi", "delta_r", "log_pt", "log_pt_frac", "log_e", "log_e_frac", "track_eta", "track_pt"]:
        assert name in DERIVED


def test_cartesian_and_polar_agree():
    rng = np.random.default_rng(0)
    pt, eta, phi = rng.uniform(1, 50, 20), rng.uniform(-2, 2, 20), rng.uniform(-3, 3, 20)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + 0.3**2)
    jet = {"pt": np.full(20, 100.0), "eta": np.full(20, 0.5), "phi": np.full(20, 3.0), "energy": np.full(20, 300.0)}
    a = Momenta({"px": px, "py": py, "pz": pz, "energy": e}, jet)
    b = Momenta({"pt": pt, "eta": eta, "phi": phi, "mass": np.full(20, 0.3)}, jet)
    for name in ["rel_eta", "rel_phi", "delta_r", "log_pt", "log_pt_frac", "log_e", "log_e_frac"]:
        np.testing.assert_allclose(DERIVED.get(name)(a), DERIVED.get(name)(b), rtol=1e-9, atol=1e-12)
    assert (np.abs(DERIVED.get("rel_phi")(a)) <= np.pi).all()


def test_track_kinematics_from_theta_qoverp():
    theta, qoverp = np.array([np.pi / 2, 0.5]), np.array([1e-3, -2e-4])
    m = Momenta({"theta": theta, "qoverp": qoverp, "phi": np.zeros(2)})
    np.testing.assert_allclose(DERIVED.get("track_pt")(m), np.sin(theta) / np.abs(qoverp))
    np.testing.assert_allclose(DERIVED.get("track_eta")(m), -np.log(np.tan(theta / 2)))
    np.testing.assert_allclose(m.eta, DERIVED.get("track_eta")(m))
    # the whole range, forward tracks included: within a few ulps of numpy's, +inf along the beam
    theta = np.concatenate([np.linspace(1e-6, np.pi - 1e-6, 10_001), [0.0]])
    m = Momenta({"theta": theta, "qoverp": np.full(len(theta), 1e-3), "phi": np.zeros(len(theta))})
    eta = DERIVED.get("track_eta")(m)
    np.testing.assert_allclose(eta[:-1], -np.log(np.tan(theta[:-1] / 2)), rtol=1e-13, atol=1e-15)
    assert eta[-1] == np.inf and np.all(np.diff(eta[:-1]) < 0)


def test_missing_component_is_config_error():
    with pytest.raises(ConfigError, match="energy"):
        DERIVED.get("log_e")(Momenta({"pt": np.ones(1), "eta": np.ones(1), "phi": np.ones(1)}))


def test_wrap_phi():
    np.testing.assert_allclose(wrap_phi(np.array([np.pi + 0.1, -np.pi - 0.1, 0.2])), [-np.pi + 0.1, np.pi - 0.1, 0.2])


def test_split_fractions_and_determinism():
    entry = np.arange(20000)
    s = assign_split("/a/b/f.root", entry, np.zeros_like(entry), (0.7, 0.1, 0.2), 42)
    np.testing.assert_allclose(np.bincount(s) / len(s), [0.7, 0.1, 0.2], atol=0.015)
    np.testing.assert_array_equal(s, assign_split("f.root", entry, np.zeros_like(entry), (0.7, 0.1, 0.2), 42))
    assert (s != assign_split("f.root", entry, np.zeros_like(entry), (0.7, 0.1, 0.2), 43)).any()
    assert (s != assign_split("g.root", entry, np.zeros_like(entry), (0.7, 0.1, 0.2), 42)).any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_wrap_phi_equals_the_plain_remainder_to_the_bit(dtype):
    # the remainder is skipped where dphi + pi is already inside (0, 2 pi): same bits as computing it everywhere
    rng = np.random.default_rng(3)
    edges = [0.0, -0.0, np.pi, -np.pi, 2 * np.pi, -2 * np.pi, np.nextafter(np.pi, 0), np.nextafter(-np.pi, 0),
             np.nextafter(-np.pi, -4), 3 * np.pi, 1e9, -1e9, np.inf, -np.inf, np.nan]
    dphi = np.concatenate([rng.uniform(-10, 10, 5000), rng.uniform(-0.5, 0.5, 5000), edges]).astype(dtype)
    with np.errstate(invalid="ignore"):
        expected = (dphi + np.pi) % (2 * np.pi) - np.pi
        got = wrap_phi(dphi)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))
    assert wrap_phi(np.float64(2 * np.pi - 0.1)) == (2 * np.pi - 0.1 + np.pi) % (2 * np.pi) - np.pi


def test_float32_components_give_the_float64_values_before_and_after_take():
    """Components stay as read until used (a take gathers float32), then every value is the one of
    float64 components: the cast is exact, and pt from float32 px, py is hypot in float64."""
    rng = np.random.default_rng(7)
    p = (rng.normal(size=(3, 2000)) * 40).astype(np.float32)
    energy = (np.sqrt((p.astype(np.float64) ** 2).sum(axis=0)) + rng.uniform(0, 2, 2000)).astype(np.float32)
    comps = {"px": p[0], "py": p[1], "pz": p[2], "energy": energy}
    wide = Momenta({k: v.astype(np.float64) for k, v in comps.items()})
    narrow = Momenta(comps)
    names = ("pt", "eta", "phi", "energy", "px", "py", "pz")
    for name in names:
        got = getattr(narrow, name)
        assert got.dtype == np.float64, name
        np.testing.assert_array_equal(got, getattr(wide, name), err_msg=name)
    index = rng.permutation(2000)[:700]
    taken = Momenta(comps).take(index)
    assert taken._raw["px"].dtype == np.float32  # gathered as read
    for name in names:
        np.testing.assert_array_equal(getattr(taken, name), getattr(wide, name)[index], err_msg=name)
    np.testing.assert_array_equal(DERIVED.get("log_pt")(taken), DERIVED.get("log_pt")(wide)[index])
