"""Sample definitions: which process Pythia generates and how jets are selected and labelled.

A :class:`SampleDefinition` is pure data (no Pythia import), registered in
:data:`hepnn.datasets.SAMPLES` so ``hepnn list`` shows it.

Examples
--------
>>> from hepnn.datasets import SAMPLES
>>> SAMPLES.names()
['qcd', 'top', 'ttbar', 'w']
>>> SAMPLES.get("top").jet_r
0.8
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..config.loader import short_repr
from ..exceptions import ConfigError, suggest
from ..registry import Registry

__all__ = ["SampleDefinition", "SAMPLES", "OPTIONS", "E_CM", "resolve_options"]

SAMPLES = Registry("sample")

#: proton-proton centre-of-mass energy of every sample [GeV]
E_CM = 14000.0
#: no jet (and no 2 -> 2 scattering) has a pT above half the centre-of-mass energy [GeV]
_PT_REACH = E_CM / 2

_QUIET = (
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0",
    "Init:showChangedSettings = off",
    "Init:showChangedParticleData = off",
    "Init:showProcesses = off",
    "Print:quiet = on",
)
# hadronic W decays only (W -> ud, us, ub, cd, cs, cb)
_HADRONIC_W = ("24:onMode = off", "24:onIfAny = 1 2 3 4 5")

#: generator options a sample accepts, with their meaning
OPTIONS: dict[str, str] = {
    "pt_min": "lower jet pT cut [GeV] (below 7000: half the collision energy)",
    "pt_max": "upper jet pT cut [GeV] (None: no upper cut)",
    "eta_max": "|eta| cut on jets",
    "jet_r": "anti-kT radius",
    "n_leading": "keep at most this many leading jets per event (None: all)",
    "mpi": "multi-parton interactions on/off",
    "pthat_min": "PhaseSpace:pTHatMin [GeV] (below 7000; None: 0)",
    "pthat_max": "PhaseSpace:pTHatMax [GeV] (None: no limit)",
    "track_pt_min": "track pT threshold [GeV] (ttbar track_* branches, and part_istrack/part_d0/... of every sample)",
    "events_per_batch": "events per Pythia.nextBatch call (speed only: the jets written do not depend on it)",
    "chunk_jets": "jets per written chunk (memory bound only: the jets written do not depend on it)",
}


@dataclass(frozen=True)
class SampleDefinition:
    """How one sample is generated, selected and labelled.

    Parameters
    ----------
    name : str
        Registry name (``top``, ``qcd``, ``w``, ``ttbar``).
    description : str
        One line for ``hepnn list`` and the provenance record.
    processes : tuple of str
        Pythia ``readString`` settings selecting the hard process and decays.
    kind : {"boosted", "flavour"}
        ``boosted``: large-R jets, label 1 for matched signal (``signal_id``), 0 for background.
        ``flavour``: small-R jets labelled by hadron flavour (0, 4, 5) with tracks.
    signal_id : int or None
        PDG id of the resonance a signal jet must contain (6: top, 24: W), with its decay quarks.
    pt_min, pt_max, eta_max, jet_r, n_leading, mpi, pthat_min, pthat_max, track_pt_min
        Defaults of the generator options (see :data:`OPTIONS`).
    extra : mapping
        Notes of a plugin's sample that the generator does not use (a cross-section, a
        reference, a tune's name): written into the file's provenance under ``extra``, so they
        travel with the sample. JSON values only (str, number, bool, null, lists and mappings
        with string keys).
    """

    name: str
    description: str
    processes: tuple[str, ...]
    kind: str = "boosted"
    signal_id: int | None = None
    pt_min: float = 550.0
    pt_max: float | None = 650.0
    eta_max: float = 2.0
    jet_r: float = 0.8
    n_leading: int | None = 2
    mpi: bool = False
    pthat_min: float | None = 500.0
    pthat_max: float | None = 700.0
    track_pt_min: float = 1.0
    events_per_batch: int = 200
    chunk_jets: int = 2000
    extra: Mapping[str, Any] = field(default_factory=dict)

    def pythia_settings(self, seed: int) -> list[str]:
        """The full list of Pythia settings for this sample and ``seed``.

        Examples
        --------
        >>> s = SAMPLES.get("qcd").pythia_settings(seed=7)
        >>> "HardQCD:all = on" in s and "Random:seed = 7" in s
        True
        """
        out = [f"Beams:eCM = {E_CM:g}", *self.processes, *_QUIET]
        if self.pthat_min is not None:
            out.append(f"PhaseSpace:pTHatMin = {self.pthat_min:g}")
        if self.pthat_max is not None:
            out.append(f"PhaseSpace:pTHatMax = {self.pthat_max:g}")
        out += [
            f"PartonLevel:MPI = {'on' if self.mpi else 'off'}",
            # particles with c*tau > 10 mm are stable (as in LHC detector simulations)
            "ParticleDecays:limitTau0 = on",
            "ParticleDecays:tau0Max = 10",
            "Random:setSeed = on",
            f"Random:seed = {int(seed)}",
        ]
        return out


def resolve_options(sample: str | SampleDefinition, options: Mapping[str, Any] | None = None,
                    where: str = "options") -> SampleDefinition:
    """Return the sample definition with ``options`` applied, checking their names and values.

    Parameters
    ----------
    sample : str or SampleDefinition
        A registered sample name or a definition.
    options : mapping, optional
        Generator options (see :data:`OPTIONS`).
    where : str
        Prefix of the key path in error messages.

    Raises
    ------
    ConfigError
        For an unknown sample or option, ``options`` that is not a mapping, or a bad value, also
        in the fields of a custom ``SampleDefinition`` (named ``SampleDefinition '<name>'.<field>``).
        Every number must be finite (``null``, not ``.inf``, means "no limit" for ``pt_max``,
        ``pthat_min`` and ``pthat_max``), and ``pt_min`` and ``pthat_min`` must lie below half the
        collision energy (7000 GeV), above which no jet can pass. numpy scalars are accepted like
        Python numbers.

    Examples
    --------
    >>> resolve_options("top", {"mpi": True, "pt_min": 500}).pt_min
    500.0
    """
    if isinstance(sample, str):
        if sample not in SAMPLES:
            msg = (f"sample: unknown sample {sample!r}{suggest(sample, SAMPLES.names())}; "
                   f"valid samples: {', '.join(SAMPLES.names())}")
            raise ConfigError(msg)
        sample = SAMPLES.get(sample)
    if not isinstance(sample, SampleDefinition):
        msg = (f"sample: expected a sample name ({', '.join(SAMPLES.names())}) or a SampleDefinition, "
               f"received {type(sample).__name__} {short_repr(sample)}")
        raise ConfigError(msg)
    if options is not None and not isinstance(options, Mapping):
        msg = (f"{where}: expected a mapping of option name to value, e.g. {{'pt_min': 500}}, "
               f"received {type(options).__name__} {short_repr(options)}")
        raise ConfigError(msg)
    _check_definition(sample)
    changes: dict[str, Any] = {}
    for key, value in dict(options or {}).items():
        if key not in OPTIONS:
            msg = (f"{where}.{key}: unknown generator option{suggest(key, list(OPTIONS))}; "
                   f"valid options: {', '.join(OPTIONS)}")
            raise ConfigError(msg)
        changes[key] = _check_value(key, value, where)
    out = dataclasses.replace(sample, **changes)
    if out.pt_max is not None and out.pt_max <= out.pt_min:
        msg = f"{where}.pt_max: must be above pt_min={out.pt_min:g}, received {out.pt_max:g}"
        raise ConfigError(msg)
    pthat_min = 0.0 if out.pthat_min is None else out.pthat_min  # Pythia's default pTHatMin is 0
    if out.pthat_max is not None and out.pthat_max <= pthat_min:
        # Pythia would silently drop the upper limit (generate pTHat from pthat_min upwards)
        msg = (f"{where}.pthat_max: must be above pthat_min={pthat_min:g}, received {out.pthat_max:g}; "
               "set pthat_max=null for no upper limit")
        raise ConfigError(msg)
    return out


def _check_definition(defn: SampleDefinition) -> None:
    """Check the fields of a (custom) definition as its options are checked: a bad ``kind`` would
    otherwise label every jet 0, and ``events_per_batch=0`` fail deep inside awkward in the workers."""
    where = f"SampleDefinition {defn.name!r}"
    if defn.kind not in ("boosted", "flavour"):
        msg = f"{where}.kind: expected 'boosted' or 'flavour', received {short_repr(defn.kind)}"
        raise ConfigError(msg)
    if not all(isinstance(line, str) for line in defn.processes):
        msg = f"{where}.processes: expected Pythia setting strings, received {short_repr(defn.processes)}"
        raise ConfigError(msg)
    for key in OPTIONS:
        _check_value(key, getattr(defn, key), where)
    if not isinstance(defn.extra, Mapping):
        msg = f"{where}.extra: expected a mapping of notes, received {short_repr(defn.extra)}"
        raise ConfigError(msg)
    try:  # the provenance is JSON: refused now, not after the generation
        json.dumps(dict(defn.extra), allow_nan=False)
    except (TypeError, ValueError) as err:
        msg = (f"{where}.extra: the notes must be JSON values (str, number, bool, null, lists, mappings "
               f"with string keys): {err}")
        raise ConfigError(msg) from None


def _check_value(key: str, value: Any, where: str) -> Any:
    if key == "mpi":
        if not isinstance(value, (bool, np.bool_)):
            msg = f"{where}.mpi: expected true or false, received {value!r}"
            raise ConfigError(msg)
        return bool(value)
    if value is None and key in ("pt_max", "n_leading", "pthat_min", "pthat_max"):
        return None
    if key in ("n_leading", "events_per_batch", "chunk_jets"):
        if not _is_int(value) or value < 1:
            msg = f"{where}.{key}: expected a positive int, received {value!r}"
            raise ConfigError(msg)
        return int(value)
    return _check_number(key, value, where)


def _is_int(value: Any) -> bool:
    """An int (Python or numpy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _check_number(key: str, value: Any, where: str) -> float:
    """A finite, non-negative float option (cuts, radii, pT-hat limits), checked against the physics reach."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)) or value < 0:
        msg = f"{where}.{key}: expected a non-negative number, received {value!r}"
        raise ConfigError(msg)
    if not math.isfinite(value):
        hint = "; use null for no limit" if key in ("pt_max", "pthat_min", "pthat_max") else ""
        msg = f"{where}.{key}: expected a finite number, received {value!r}{hint}"
        raise ConfigError(msg)
    if key == "eta_max" and value == 0:
        msg = f"{where}.eta_max: expected a positive number (jets need |eta| < eta_max), received {value!r}"
        raise ConfigError(msg)
    if key == "jet_r" and not 0 < value <= 2.0:
        msg = f"{where}.jet_r: expected 0 < jet_r <= 2, received {value!r}"
        raise ConfigError(msg)
    if key in ("pt_min", "pthat_min") and value >= _PT_REACH:
        msg = (f"{where}.{key}: expected a value below {_PT_REACH:g} GeV (half the {E_CM:g} GeV collision energy: "
               f"no jet or scattering has more pT), received {value!r}")
        raise ConfigError(msg)
    return float(value)


SAMPLES.register("top", SampleDefinition(
    name="top",
    description="boosted hadronic top jets from ttbar (14 TeV, anti-kT 0.8, 550-650 GeV, matched to t->bqq)",
    processes=("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", *_HADRONIC_W),
    signal_id=6,
))
SAMPLES.register("qcd", SampleDefinition(
    name="qcd",
    description="QCD dijets (14 TeV, anti-kT 0.8, 550-650 GeV), background for top and w",
    processes=("HardQCD:all = on",),
))
SAMPLES.register("w", SampleDefinition(
    name="w",
    description="boosted hadronic W jets from WW production (14 TeV, anti-kT 0.8, 550-650 GeV, matched to W->qq)",
    processes=("WeakDoubleBoson:ffbar2WW = on", *_HADRONIC_W),
    signal_id=24,
))
SAMPLES.register("ttbar", SampleDefinition(
    name="ttbar",
    description="anti-kT 0.4 jets (pT > 20 GeV, |eta| < 2.5) in ttbar events, hadron-flavour labels and tracks",
    processes=("Top:gg2ttbar = on", "Top:qqbar2ttbar = on"),
    kind="flavour",
    pt_min=20.0, pt_max=None, eta_max=2.5, jet_r=0.4, n_leading=None,
    pthat_min=None, pthat_max=None, events_per_batch=100,
))
