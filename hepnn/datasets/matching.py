"""Truth labels: resonance matching for boosted jets, hadron flavour for small-R jets.

* Boosted signal (top, W): the jet is signal when the resonance (its last copy before
  decay) and all its decay quarks (b, q, q' for a top; q, q' for a W) are within
  ``dR < r`` of the jet axis.
* Hadron flavour: 5 if a weakly decaying B hadron with pT > 5 GeV is within
  ``dR < 0.3``, else 4 for a C hadron likewise, else 0.
"""

from __future__ import annotations

import numpy as np

from .clustering import JetBatch, kinematics
from .pythia import EventBatch

__all__ = ["match_resonance", "hadron_flavour", "heavy_flavour_of"]


def _delta_r(eta1, phi1, eta2, phi2):
    dphi = np.mod(phi1 - phi2 + np.pi, 2 * np.pi) - np.pi
    return np.hypot(eta1 - eta2, dphi)


def _last_copy(batch: EventBatch, index: np.ndarray, offsets_of: np.ndarray) -> np.ndarray:
    index = index.copy()
    for _ in range(200):
        d1 = batch.daughter1[index]
        target = offsets_of + d1
        same = (d1 > 0) & (batch.id[np.minimum(target, len(batch.id) - 1)] == batch.id[index])
        if not same.any():
            break
        index = np.where(same, target, index)
    return index


def _eta_phi(batch: EventBatch, index: np.ndarray):
    _, eta, phi, _ = kinematics(batch.px[index], batch.py[index], batch.pz[index], batch.e[index])
    return eta, phi


def match_resonance(batch: EventBatch, jets: JetBatch, signal_id: int, r: float) -> np.ndarray:
    """Return a bool per jet: the jet contains a ``signal_id`` resonance and all its decay quarks.

    Parameters
    ----------
    batch : EventBatch
        The events.
    jets : JetBatch
        The jets to label.
    signal_id : int
        6 (top: b and the W's two quarks) or 24 (W: its two quarks).
    r : float
        Matching radius (the jet radius).
    """
    event_of = batch.event_of()
    res = np.flatnonzero((np.abs(batch.id) == signal_id) & (batch.status == -22))
    ev = event_of[res]
    off = batch.offsets[ev]
    res = _last_copy(batch, res, off)
    d_a = off + batch.daughter1[res]
    d_b = off + batch.daughter2[res]
    if signal_id == 6:
        a_is_w = np.abs(batch.id[d_a]) == 24
        w = np.where(a_is_w, d_a, d_b)
        quarks = [np.where(a_is_w, d_b, d_a)]
        w = _last_copy(batch, w, off)
        quarks += [off + batch.daughter1[w], off + batch.daughter2[w]]
    else:
        quarks = [d_a, d_b]
    if jets.n_jets == 0 or len(res) == 0:
        return np.zeros(jets.n_jets, dtype=bool)
    _, jeta, jphi, _ = kinematics(jets.px, jets.py, jets.pz, jets.e)
    same_event = jets.event[:, None] == ev[None, :]
    matched = same_event
    for index in (res, *quarks):
        eta, phi = _eta_phi(batch, index)
        matched = matched & (_delta_r(jeta[:, None], jphi[:, None], eta[None, :], phi[None, :]) < r)
    return matched.any(axis=1)


def heavy_flavour_of(pid: np.ndarray) -> np.ndarray:
    """The heaviest quark flavour (5, 4 or 0) in hadrons of PDG id ``pid``.

    Examples
    --------
    >>> heavy_flavour_of(np.array([511, -421, 211, 5122, 4122, 22, 5])).tolist()
    [5, 4, 0, 5, 4, 0, 0]
    """
    a = np.abs(pid)
    q1, q2, q3 = (a // 1000) % 10, (a // 100) % 10, (a // 10) % 10
    hadron = (a > 100) & (q3 > 0) & (a < 1_000_000)
    out = np.zeros(len(a), dtype=np.int32)
    has_c = (q1 == 4) | (q2 == 4)
    has_b = (q1 == 5) | (q2 == 5)
    out[hadron & has_c] = 4
    out[hadron & has_b] = 5
    return out


def hadron_flavour(batch: EventBatch, jets: JetBatch, dr: float = 0.3, pt_min: float = 5.0) -> np.ndarray:
    """Hadron-flavour label per jet: 5 (B hadron), 4 (C hadron) or 0 (light), int32."""
    flavour = heavy_flavour_of(batch.id)
    event_of = batch.event_of()
    label = np.zeros(jets.n_jets, dtype=np.int32)
    if jets.n_jets == 0:
        return label
    _, jeta, jphi, _ = kinematics(jets.px, jets.py, jets.pz, jets.e)
    for flav in (4, 5):  # 5 last: it wins
        hadrons = np.flatnonzero(flavour == flav)
        mothers = batch.offsets[event_of[hadrons]] + batch.mother1[hadrons]
        weak = hadrons[~np.isin(hadrons, mothers[flavour[mothers] == flav])]
        pt, eta, phi, _ = kinematics(batch.px[weak], batch.py[weak], batch.pz[weak], batch.e[weak])
        keep = pt > pt_min
        weak, eta, phi = weak[keep], eta[keep], phi[keep]
        if len(weak) == 0:
            continue
        near = (jets.event[:, None] == event_of[weak][None, :]) & (
            _delta_r(jeta[:, None], jphi[:, None], eta[None, :], phi[None, :]) < dr)
        label[near.any(axis=1)] = flav
    return label
