"""Tracks: charged constituents with impact parameters and a simple resolution model.

Selection: charged, pT > ``pt_min`` (1 GeV), production vertex inside the pixel volume
(r_xy < 122.5 mm and |z| < 400 mm, ATLAS-like). The primary vertex is the origin.

Impact parameters of a straight line from the production vertex (the field bends a
1 GeV track by ~0.1 um over a B decay length; neglected), in mm:

* ``d0`` (transverse): distance of closest approach to the beam line in the xy plane;
* ``z0`` (longitudinal): z of that point.

Resolution (smearing, Gaussian, then the sign is taken): ``sigma(d0) = 10 um (+) 50 um GeV / pT``,
``sigma(z0) = 20 um (+) 80 um GeV / pT`` (``(+)``: sum in quadrature). The random draws go
track after track, so the smeared values do not depend on the ``events_per_batch`` option.
Lifetime sign with respect to the jet: ``d0`` is positive when the point of closest
approach lies on the jet side of the beam line (``sign(d0_geo * sin(phi_trk - phi_jet))``);
``z0`` takes ``sign((eta_jet - eta_trk) * z0)``. Significances are ``d0 / sigma(d0)``
and ``z0 / sigma(z0)``.

Examples
--------
>>> import numpy as np
>>> sigma_d0(np.array([1.0, 100.0])).round(4).tolist()   # mm
[0.051, 0.01]
"""

from __future__ import annotations

import numpy as np

__all__ = ["PIXEL_R_MAX", "PIXEL_Z_MAX", "sigma_d0", "sigma_z0", "impact_parameters", "track_selection"]

PIXEL_R_MAX = 122.5  # mm
PIXEL_Z_MAX = 400.0  # mm


def sigma_d0(pt):
    """Transverse impact-parameter resolution [mm] at ``pt`` [GeV]."""
    return np.hypot(0.010, 0.050 / np.asarray(pt))


def sigma_z0(pt):
    """Longitudinal impact-parameter resolution [mm] at ``pt`` [GeV]."""
    return np.hypot(0.020, 0.080 / np.asarray(pt))


def track_selection(charge, pt, vx, vy, vz, pt_min: float = 1.0):
    """Bool mask of particles that make tracks."""
    return (charge != 0) & (pt > pt_min) & (np.hypot(vx, vy) < PIXEL_R_MAX) & (np.abs(vz) < PIXEL_Z_MAX)


def impact_parameters(px, py, pz, vx, vy, vz, jet_phi, jet_eta, rng: np.random.Generator):
    """Smeared, lifetime-signed ``d0, z0, d0sig, z0sig`` (mm, mm, 1, 1) of tracks.

    ``jet_phi``/``jet_eta`` are those of each track's jet (same length as ``px``). ``rng`` gives
    two standard normal draws per track (d0 first, then z0), track after track, so smearing the
    tracks in one call or in consecutive calls with the same generator gives the same values.
    """
    pt = np.hypot(px, py)
    ux, uy = px / pt, py / pt
    d0_geo = vx * uy - vy * ux  # (v x u)_z
    along = vx * ux + vy * uy
    z0_geo = vz - along * pz / pt
    s_d0, s_z0 = sigma_d0(pt), sigma_z0(pt)
    # two draws per track, track after track: the values do not depend on how tracks are batched
    noise = rng.normal(size=(len(pt), 2))
    d0_meas = d0_geo + noise[:, 0] * s_d0
    z0_meas = z0_geo + noise[:, 1] * s_z0
    phi = np.arctan2(py, px)
    eta = np.arcsinh(pz / pt)
    sign_d0 = np.where(d0_meas * np.sin(phi - jet_phi) >= 0, 1.0, -1.0)
    sign_z0 = np.where((jet_eta - eta) * z0_meas >= 0, 1.0, -1.0)
    d0 = sign_d0 * np.abs(d0_meas)
    z0 = sign_z0 * np.abs(z0_meas)
    return d0, z0, d0 / s_d0, z0 / s_z0
