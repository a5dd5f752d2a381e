"""Cluster the final-state particles of each event into jets with FastJet (awkward interface).

Examples
--------
>>> jets = cluster_jets(batch, r=0.8, pt_min=550, pt_max=650, eta_max=2.0, n_leading=2)  # doctest: +SKIP
>>> jets.n_jets, jets.constituents[:5]                                                   # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .._optional import require
from .pythia import EventBatch

__all__ = ["JetBatch", "cluster_jets", "kinematics", "quiet_fastjet_banner"]


def quiet_fastjet_banner(fastjet=None) -> bool:
    """Keep FastJet's banner off standard output; return True when it is off.

    FastJet prints a 12-line banner (release, authors, citation request) to stdout at the
    first clustering of every process, so ``hepnn run`` showed it once per generator
    worker even with ``--quiet``. The banner is sent nowhere (FastJet's own
    ``ClusterSequence.set_fastjet_banner_stream``) unless ``HEPNN_DEBUG`` is set
    (``hepnn --debug`` sets it, also for the generator's worker processes). FastJet's
    version is recorded in every generated file; please cite FastJet (arXiv:1111.6097)
    and Pythia 8 (arXiv:2203.11601) when you publish with generated samples.
    """
    if os.environ.get("HEPNN_DEBUG"):
        return False
    fastjet = require("fastjet") if fastjet is None else fastjet
    swig = getattr(fastjet, "_swig", None)
    cluster_sequence = getattr(swig, "ClusterSequence", None)
    set_stream = getattr(cluster_sequence, "set_fastjet_banner_stream", None)
    if set_stream is None:  # a fastjet without the SWIG bindings: the banner shows
        return False
    set_stream(None)
    return True


@dataclass
class JetBatch:
    """Selected jets of a batch, pT-ordered within each event.

    ``constituents`` holds global particle indices into the :class:`EventBatch`,
    jet ``j`` owning ``constituents[cons_offsets[j]:cons_offsets[j+1]]``, pT-ordered.
    """

    event: np.ndarray  # event index within the batch
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    constituents: np.ndarray
    cons_offsets: np.ndarray

    @property
    def n_jets(self) -> int:
        return len(self.event)

    def take(self, keep: np.ndarray) -> "JetBatch":
        """The jets where ``keep`` (bool mask) is true."""
        counts = np.diff(self.cons_offsets)[keep]
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        cons_mask = np.repeat(keep, np.diff(self.cons_offsets))
        return JetBatch(self.event[keep], self.px[keep], self.py[keep], self.pz[keep], self.e[keep],
                        self.constituents[cons_mask], offsets)


def kinematics(px, py, pz, e):
    """Return ``pt, eta, phi, mass`` from four-momentum components (numpy arrays)."""
    pt = np.hypot(px, py)
    p = np.sqrt(pt * pt + pz * pz)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.where(pt > 0, pz / pt, np.sign(pz) * 1e10))
    phi = np.arctan2(py, px)
    mass = np.sqrt(np.maximum(e * e - p * p, 0.0))
    return pt, eta, phi, mass


def cluster_jets(batch: EventBatch, r: float, pt_min: float, pt_max: float | None, eta_max: float,
                 n_leading: int | None) -> JetBatch:
    """Cluster final-state particles (neutrinos excluded) with anti-kT and select jets.

    Parameters
    ----------
    batch : EventBatch
        Events from :func:`hepnn.datasets.pythia.next_batch`.
    r : float
        Jet radius.
    pt_min, pt_max : float
        Jet pT window [GeV] (``pt_max=None``: no upper cut).
    eta_max : float
        Jets need ``|eta| < eta_max``.
    n_leading : int or None
        Only the ``n_leading`` highest-pT jets of each event are considered (before the pT window).
    """
    ak = require("awkward")
    fastjet = require("fastjet")
    abs_id = np.abs(batch.id)
    final = (batch.status > 0) & (abs_id != 12) & (abs_id != 14) & (abs_id != 16)
    fs_index = np.flatnonzero(final)
    event = batch.event_of()[fs_index]
    counts = np.bincount(event, minlength=batch.n_events)
    fs_offsets = np.zeros(batch.n_events + 1, dtype=np.int64)
    np.cumsum(counts, out=fs_offsets[1:])
    parts = ak.zip({
        "px": ak.unflatten(batch.px[fs_index], counts),
        "py": ak.unflatten(batch.py[fs_index], counts),
        "pz": ak.unflatten(batch.pz[fs_index], counts),
        "E": ak.unflatten(batch.e[fs_index], counts),
    }, with_name="Momentum4D")
    quiet_fastjet_banner(fastjet)
    sequence = fastjet.ClusterSequence(parts, fastjet.JetDefinition(fastjet.antikt_algorithm, r))
    # a looser threshold for clustering output: selection is applied below
    min_pt = 0.5 * pt_min
    jets = sequence.inclusive_jets(min_pt=min_pt)
    index = sequence.constituent_index(min_pt=min_pt)
    n_per_event = np.asarray(ak.num(jets, axis=1), dtype=np.int64)
    jet_event = np.repeat(np.arange(batch.n_events), n_per_event)
    jpx = np.asarray(ak.flatten(jets.px), dtype=np.float64)
    jpy = np.asarray(ak.flatten(jets.py), dtype=np.float64)
    jpz = np.asarray(ak.flatten(jets.pz), dtype=np.float64)
    je = np.asarray(ak.flatten(jets.E), dtype=np.float64)
    flat_index = ak.flatten(index, axis=1)
    n_cons = np.asarray(ak.num(flat_index, axis=1), dtype=np.int64)
    local = np.asarray(ak.flatten(flat_index), dtype=np.int64)
    cons_event = np.repeat(jet_event, n_cons)
    global_index = fs_index[fs_offsets[cons_event] + local]

    pt, eta, _, _ = kinematics(jpx, jpy, jpz, je)
    order = np.lexsort((-pt, jet_event))  # by event, then decreasing pT
    rank = np.empty(len(order), dtype=np.int64)
    if len(order):
        starts = np.zeros(batch.n_events + 1, dtype=np.int64)
        np.cumsum(n_per_event, out=starts[1:])
        rank[order] = np.arange(len(order)) - starts[jet_event[order]]
    keep = (pt > pt_min) & (np.abs(eta) < eta_max)
    if pt_max is not None:
        keep &= pt < pt_max
    if n_leading is not None:
        keep &= rank < n_leading

    cons_offsets = np.zeros(len(n_cons) + 1, dtype=np.int64)
    np.cumsum(n_cons, out=cons_offsets[1:])
    jb = JetBatch(jet_event, jpx, jpy, jpz, je, global_index, cons_offsets)
    # reorder jets by (event, pT), then keep the selected ones
    jb = _reorder(jb, order)
    jb = jb.take(keep[order])
    return _sort_constituents(jb, batch)


def _reorder(jb: JetBatch, order: np.ndarray) -> JetBatch:
    counts = np.diff(jb.cons_offsets)[order]
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    starts = jb.cons_offsets[:-1][order]
    idx = np.repeat(starts - offsets[:-1], counts) + np.arange(offsets[-1])
    return JetBatch(jb.event[order], jb.px[order], jb.py[order], jb.pz[order], jb.e[order],
                    jb.constituents[idx], offsets)


def _sort_constituents(jb: JetBatch, batch: EventBatch) -> JetBatch:
    counts = np.diff(jb.cons_offsets)
    owner = np.repeat(np.arange(jb.n_jets), counts)
    pt = np.hypot(batch.px[jb.constituents], batch.py[jb.constituents])
    order = np.lexsort((-pt, owner))
    jb.constituents = jb.constituents[order]
    return jb
