"""Run Pythia 8 in batches and turn its events into flat numpy arrays.

Uses ``Pythia.nextBatch`` (awkward output) of ``pythia8mc``; the event record is
flattened over events into numpy arrays plus ``offsets`` so that the later stages
(clustering, truth matching, tracks) work with vectorised numpy code.
Units are Pythia's: GeV and mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._optional import require
from ..exceptions import HepnnError

__all__ = ["EventBatch", "make_pythia", "next_batch", "charge_of"]


@dataclass
class EventBatch:
    """A batch of events, flattened: particle ``i`` of event ``e`` is at ``offsets[e] + i``."""

    offsets: np.ndarray  # (n_events + 1,) int64
    id: np.ndarray
    status: np.ndarray
    mother1: np.ndarray
    daughter1: np.ndarray
    daughter2: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    vx: np.ndarray  # production vertex [mm]
    vy: np.ndarray
    vz: np.ndarray

    @property
    def n_events(self) -> int:
        return len(self.offsets) - 1

    def event_of(self) -> np.ndarray:
        """Event index of every particle."""
        return np.repeat(np.arange(self.n_events), np.diff(self.offsets))


def make_pythia(settings: list[str]):
    """Create and initialise a quiet ``pythia8mc.Pythia`` with ``settings``.

    Examples
    --------
    >>> from hepnn.datasets import SAMPLES
    >>> pythia = make_pythia(SAMPLES.get("qcd").pythia_settings(seed=1))  # doctest: +SKIP
    """
    pythia8mc = require("pythia8mc")
    pythia = pythia8mc.Pythia("", False)
    for line in settings:
        if not pythia.readString(line):
            msg = f"Pythia rejected the setting {line!r}"
            raise HepnnError(msg)
    if not pythia.init():
        msg = f"Pythia failed to initialise with settings {settings}"
        raise HepnnError(msg)
    return pythia


def next_batch(pythia, n_events: int) -> EventBatch:
    """Generate ``n_events`` events and return them flattened."""
    ak = require("awkward")
    prt = pythia.nextBatch(n_events).prt
    counts = np.asarray(ak.num(prt, axis=1), dtype=np.int64)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = ak.flatten(prt, axis=1)

    def col(array, dtype):
        return np.asarray(ak.to_numpy(array), dtype=dtype)

    p = flat.p
    v = flat.vProd
    return EventBatch(
        offsets=offsets,
        id=col(flat.id, np.int32),
        status=col(flat.status, np.int32),
        mother1=col(flat.mother1, np.int64),
        daughter1=col(flat.daughter1, np.int64),
        daughter2=col(flat.daughter2, np.int64),
        px=col(p.px, np.float64), py=col(p.py, np.float64), pz=col(p.pz, np.float64), e=col(p.e, np.float64),
        vx=col(ak.fill_none(v.px, 0.0), np.float64),
        vy=col(ak.fill_none(v.py, 0.0), np.float64),
        vz=col(ak.fill_none(v.pz, 0.0), np.float64),
    )


class _ChargeTable:
    def __init__(self):
        self.cache: dict[int, float] = {}

    def __call__(self, pythia, pid: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(pid, return_inverse=True)
        values = np.empty(len(unique), dtype=np.float32)
        for i, code in enumerate(unique.tolist()):
            if code not in self.cache:
                self.cache[code] = float(pythia.particleData.charge(code))
            values[i] = self.cache[code]
        return values[inverse.reshape(-1)]


#: electric charge of PDG ids, from Pythia's particle data (cached)
charge_of = _ChargeTable()
