"""Jet substructure with fastjet-contrib: N-subjettiness and the soft-drop mass.

Each jet's constituents are reclustered with Cambridge/Aachen (an anti-kT history
gives meaningless subjets) before N-subjettiness (beta = 1, one-pass kT axes,
normalised measure, R0 = jet radius) and soft drop (beta = 0, z_cut = 0.1, R0 = jet radius).

Examples
--------
>>> taus, sd_mass = substructure(px, py, pz, e, counts, r=0.8)  # doctest: +SKIP
>>> taus.shape                                                  # doctest: +SKIP
(n_jets, 3)
"""

from __future__ import annotations

import numpy as np

from .._optional import require
from .clustering import quiet_fastjet_banner

__all__ = ["substructure"]


def substructure(px, py, pz, e, counts, r: float):
    """Return ``taus`` (n_jets, 3) = tau1, tau2, tau3 and the soft-drop mass (n_jets,) [GeV].

    Parameters
    ----------
    px, py, pz, e : numpy arrays
        Constituent four-momenta, flat over jets.
    counts : numpy array
        Number of constituents of each jet.
    r : float
        Jet radius (R0 of N-subjettiness and soft drop).
    """
    n_jets = len(counts)
    taus = np.zeros((n_jets, 3), dtype=np.float64)
    sd_mass = np.zeros(n_jets, dtype=np.float64)
    if n_jets == 0:
        return taus, sd_mass
    ak = require("awkward")
    fastjet = require("fastjet")
    counts = np.asarray(counts, dtype=np.int64)
    jets = ak.zip({
        "px": ak.unflatten(px, counts), "py": ak.unflatten(py, counts),
        "pz": ak.unflatten(pz, counts), "E": ak.unflatten(e, counts),
    }, with_name="Momentum4D")
    quiet_fastjet_banner(fastjet)
    sequence = fastjet.ClusterSequence(jets, fastjet.JetDefinition(fastjet.cambridge_algorithm, 10.0))
    taus[:] = np.asarray(ak.to_numpy(sequence.njettiness(njets=[1, 2, 3], beta=1.0, R0=r)), dtype=np.float64)
    groomed = sequence.exclusive_jets_softdrop_grooming(njets=1, beta=0.0, symmetry_cut=0.1, R0=r)
    sd_mass[:] = np.asarray(ak.to_numpy(groomed.msoftdrop), dtype=np.float64)
    return np.nan_to_num(taus), np.nan_to_num(sd_mass)
