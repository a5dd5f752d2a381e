"""Write generated jets to ROOT in chunks, in the per-jet or per-event (NanoAOD-like) layout.

The branch names are the contract of ``notes/CONTRACTS.md`` ("Generator output branches"):

* ``per_jet``: tree ``jets``, one jet per entry: ``jet_*`` scalars, ``event_number``,
  jagged ``part_*`` (counter ``npart``) and, for ttbar, ``track_*`` (counter ``ntrack``).
* ``per_event``: tree ``Events``: ``event``, ``nJet``/``Jet_*``, ``nPFCand``/``PFCand_*``
  with ``PFCand_jetIdx`` and, for ttbar, ``nTrack``/``Track_*`` with ``Track_jetIdx``.

The provenance (versions, settings, seeds) is a ``TObjString`` named ``provenance``
holding JSON; read it back with :func:`read_provenance`.

Examples
--------
>>> read_provenance("top.root")["sample"]  # doctest: +SKIP
'top'
"""

from __future__ import annotations

import json
import os

import numpy as np

from .._optional import require

__all__ = ["ChunkWriter", "read_provenance", "JET_FIELDS", "PART_FIELDS", "TRACK_FIELDS"]

# chunk key -> (per_jet name, per_event name)
JET_FIELDS = {
    "pt": ("jet_pt", "pt"), "eta": ("jet_eta", "eta"), "phi": ("jet_phi", "phi"),
    "mass": ("jet_mass", "mass"), "energy": ("jet_energy", "energy"),
    "nparticles": ("jet_nparticles", "nConstituents"),
    "tau1": ("jet_tau1", "tau1"), "tau2": ("jet_tau2", "tau2"), "tau3": ("jet_tau3", "tau3"),
    "tau21": ("jet_tau21", "tau21"), "tau32": ("jet_tau32", "tau32"),
    "sdmass": ("jet_sdmass", "msoftdrop"), "label": ("jet_label", "label"),
    "flavour": ("jet_flavour", "hadronFlavour"),
}
PART_FIELDS = {
    "px": "px", "py": "py", "pz": "pz", "energy": "energy", "pt": "pt", "eta": "eta", "phi": "phi",
    "charge": "charge", "pid": "pdgId",
    # track quantities of charged constituents that pass the track selection (0 for the others)
    "istrack": "isTrack", "d0": "d0", "z0": "z0", "d0sig": "d0sig", "z0sig": "z0sig",
}
TRACK_FIELDS = {
    "pt": "pt", "eta": "eta", "phi": "phi", "charge": "charge",
    "d0": "d0", "z0": "z0", "d0sig": "d0sig", "z0sig": "z0sig",
}


def _field_name(outer: str, inner: str) -> str:
    return inner if outer == "" else f"{outer}_{inner}"


def _counter_name(counted: str) -> str:
    return f"n{counted}"


class ChunkWriter:
    """Append chunks of jets to a ROOT file (one ``TTree``), never holding more than a chunk.

    Parameters
    ----------
    path : path
        File to write (normally a temporary name, renamed by the caller when done).
    layout : {"per_jet", "per_event"}
        Output layout.
    with_tracks : bool
        Write the ``track_*`` / ``Track_*`` collection.
    """

    def __init__(self, path: str | os.PathLike, layout: str, with_tracks: bool):
        uproot = require("uproot")
        self.layout = layout
        self.with_tracks = with_tracks
        self.tree_name = "jets" if layout == "per_jet" else "Events"
        self._file = uproot.recreate(path)
        self._tree = None
        self.n_jets = 0

    def write(self, chunk: dict) -> None:
        """Append one chunk (see :func:`hepnn.datasets.generator.process_batch`)."""
        data = self._per_jet(chunk) if self.layout == "per_jet" else self._per_event(chunk)
        if self._tree is None:
            types = {k: (v.type if hasattr(v, "layout") else v.dtype) for k, v in data.items()}
            self._tree = self._file.mktree(self.tree_name, types, field_name=_field_name,
                                           counter_name=_counter_name)
        self._tree.extend(data)
        self.n_jets += len(chunk["jet"]["pt"])

    def write_provenance(self, provenance: dict) -> None:
        """Store ``provenance`` as JSON in a ``TObjString`` named ``provenance``."""
        self._file["provenance"] = json.dumps(provenance, sort_keys=True)

    def close(self) -> None:
        self._file.close()

    def _per_jet(self, chunk: dict) -> dict:
        ak = require("awkward")
        out = {name: chunk["jet"][key] for key, (name, _) in JET_FIELDS.items()}
        out["event_number"] = chunk["event_number"]
        counts = chunk["part_counts"]
        out["part"] = ak.zip({k: ak.unflatten(chunk["part"][k], counts) for k in PART_FIELDS})
        if self.with_tracks:
            out["track"] = ak.zip({k: ak.unflatten(chunk["track"][k], chunk["track_counts"])
                                   for k in TRACK_FIELDS})
        return out

    def _per_event(self, chunk: dict) -> dict:
        ak = require("awkward")
        event_number = chunk["event_number"]
        starts = np.flatnonzero(np.r_[True, event_number[1:] != event_number[:-1]])
        n_jet = np.diff(np.r_[starts, len(event_number)])
        jet_in_event = np.arange(len(event_number)) - np.repeat(starts, n_jet)
        out = {"event": event_number[starts]}
        out["Jet"] = ak.zip({name: ak.unflatten(chunk["jet"][key], n_jet)
                             for key, (_, name) in JET_FIELDS.items()})

        def per_event(fields, values, counts, mapping):
            owner_idx = np.repeat(jet_in_event, counts).astype(np.int32)
            per_ev = np.add.reduceat(counts, starts) if len(counts) else np.zeros(0, np.int64)
            cols = {mapping[k]: ak.unflatten(values[k], per_ev) for k in fields}
            cols["jetIdx"] = ak.unflatten(owner_idx, per_ev)
            return ak.zip(cols)

        out["PFCand"] = per_event(PART_FIELDS, chunk["part"], chunk["part_counts"], PART_FIELDS)
        if self.with_tracks:
            out["Track"] = per_event(TRACK_FIELDS, chunk["track"], chunk["track_counts"], TRACK_FIELDS)
        return out


def read_provenance(path: str | os.PathLike) -> dict:
    """Return the provenance record of a generated file as a dict.

    Examples
    --------
    >>> prov = read_provenance("top.root")  # doctest: +SKIP
    >>> sorted(prov)[:3]                    # doctest: +SKIP
    ['awkward_version', 'chunk_jets', 'fastjet_version']
    """
    uproot = require("uproot")
    with uproot.open(path) as f:
        return json.loads(str(f["provenance"]))
