"""hepnn: neural-network jet tagging for high-energy physics.

``import hepnn`` is light: TensorFlow, shap and matplotlib are imported only by
the functions that need them.
"""

from __future__ import annotations

from typing import Any

from . import config, exceptions, registry
from ._version import __version__
from .analysis import Analysis
from .config import Config, load_config
from .exceptions import ConfigError, HepnnError, InputDataError, UnknownNameError

__all__ = [
    "__version__",
    "Analysis",
    "Config",
    "ConfigError",
    "HepnnError",
    "InputDataError",
    "UnknownNameError",
    "Tagger",
    "config",
    "exceptions",
    "load_config",
    "registry",
]

# public names that live in modules with heavier imports, loaded on first use
_LAZY = {
    "Tagger": ("hepnn.training.tagger", "Tagger"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    msg = f"module 'hepnn' has no attribute {name!r}"
    raise AttributeError(msg)
