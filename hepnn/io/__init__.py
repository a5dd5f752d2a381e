"""hepnn.io: ROOT TTrees and RNTuples into flat features, padded sequences and jet images.

``import hepnn.io`` does not import TensorFlow; :func:`make_dataset` does.

Examples
--------
>>> import hepnn.io
>>> sorted(hepnn.io.REPRESENTATIONS)
['flat', 'image', 'sequence']
>>> "rel_eta" in hepnn.io.DERIVED
True
"""

from __future__ import annotations

from .convert import convert, read_npz
from .derived import DERIVED, register_derived
from .jetdata import JetData
from .load import fit_preprocessing, iterate, load
from .representations import REPRESENTATIONS, InputKind, register_input_kind
from .represent import represent
from .stream import make_dataset

__all__ = [
    "DERIVED",
    "REPRESENTATIONS",
    "InputKind",
    "JetData",
    "convert",
    "fit_preprocessing",
    "iterate",
    "load",
    "make_dataset",
    "read_npz",
    "register_derived",
    "register_input_kind",
    "represent",
]
