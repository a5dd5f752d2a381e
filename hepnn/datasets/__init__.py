"""Generate ROOT ntuples of jets with Pythia 8 and FastJet.

Samples (see :data:`SAMPLES`): ``top`` and ``qcd`` boosted large-R jets as in the
top-tagging landscape benchmark, ``w`` boosted W jets, and ``ttbar`` small-R jets
with hadron-flavour labels and tracks. Importing this package is light: Pythia,
FastJet and uproot are imported only when generating.

Examples
--------
>>> import hepnn.datasets as ds
>>> "top" in ds.SAMPLES
True
>>> ds.generate("top", n_jets=10, seed=1, out="top.root")  # doctest: +SKIP
PosixPath('top.root')
"""

from __future__ import annotations

from .generator import LAYOUTS, generate
from .samples import OPTIONS, SAMPLES, SampleDefinition, resolve_options

__all__ = ["generate", "SAMPLES", "OPTIONS", "SampleDefinition", "resolve_options", "LAYOUTS"]
