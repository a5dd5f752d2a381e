"""The exceptions hepnn raises, so that batch scripts can catch what they expect.

``HepnnError`` is the root; every other class also derives from the built-in
exception a Python user would reach for first (``ValueError``, ``KeyError``).
"""

from __future__ import annotations

import difflib
from typing import Iterable

__all__ = [
    "HepnnError",
    "ConfigError",
    "UnknownNameError",
    "InputDataError",
    "OutputDirError",
    "TrainingError",
    "PluginError",
    "PluginOutputError",
    "suggest",
]


class HepnnError(Exception):
    """Base class of every error hepnn raises on purpose."""


class ConfigError(HepnnError, ValueError):
    """A configuration value is missing, misspelt, of the wrong type or out of range.

    The message starts with the full path of the offending key, for example
    ``data.inputs.tracks.max_length: expected a positive int, received 'ten'``.
    """


class UnknownNameError(HepnnError, KeyError):
    """A name was looked up in a registry (model, explainer, analysis, ...) and not found.

    Parameters
    ----------
    name : str
        The name that was asked for.
    kind : str
        What was looked up ("model", "explainer", ...).
    valid : iterable of str
        The names that exist.
    """

    def __init__(self, name: str, kind: str, valid: Iterable[str]):
        self.name = name
        self.kind = kind
        self.valid = sorted(valid)
        super().__init__(name)

    def __str__(self) -> str:  # KeyError would repr() the message otherwise
        hint = suggest(self.name, self.valid)
        valid = ", ".join(self.valid) if self.valid else "(none registered)"
        return f"unknown {self.kind} {self.name!r}{hint}; valid names: {valid}"


class InputDataError(HepnnError):
    """An input file, tree or branch is missing, unreadable or holds bad values."""


class OutputDirError(HepnnError):
    """An output directory cannot be written safely: it holds the user's files, another hepnn
    command is writing into it, or it is a finished run of a different config (exit code 2)."""


class TrainingError(HepnnError):
    """Training cannot go on, e.g. the loss became NaN or infinite."""


class PluginError(HepnnError):
    """An analysis plugin could not be loaded, or one of its hooks (``select``, ``labels``, a derived
    variable, ...) failed or returned the wrong thing; the message names plugin and hook."""


class PluginOutputError(PluginError, InputDataError):
    """A plugin hook returned values of the wrong shape or type (e.g. ``select`` no boolean mask,
    ``labels`` no class indices): a :class:`PluginError` naming plugin and hook, and an
    :class:`InputDataError` as such errors were before."""


def suggest(name: str, candidates: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest candidate, or ``""``.

    Examples
    --------
    >>> suggest("epoch", ["epochs", "batch_size"])
    "; did you mean 'epochs'?"
    """
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=3, cutoff=0.6)
    if not close:
        return ""
    if len(close) == 1:
        return f"; did you mean {close[0]!r}?"
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
