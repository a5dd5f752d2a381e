"""Jet selection: structured cuts from the config and the analysis' ``select`` hook.

Examples
--------
>>> import numpy as np
>>> from hepnn.config import Cut
>>> from hepnn.io.selection import apply_cuts
>>> jets = {"Jet_pt": np.array([10.0, 30.0, 50.0]), "Jet_eta": np.array([0.0, 3.0, -1.0])}
>>> apply_cuts(jets, [Cut("Jet_pt", min=20), Cut("Jet_eta", abs_max=2.5)]).tolist()
[False, False, True]
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..exceptions import HepnnError, PluginError, PluginOutputError

__all__ = ["apply_cuts", "analysis_mask", "call_hook", "plugin_name"]


def apply_cuts(jets: Mapping[str, np.ndarray], cuts: Sequence[Any], n_jets: int | None = None) -> np.ndarray:
    """Boolean mask of jets passing every cut (min and abs_min inclusive, max and abs_max exclusive).

    ``n_jets``: the number of jets, needed when ``jets`` holds no column (an input of elements only).
    """
    n = n_jets if n_jets is not None else len(next(iter(jets.values()))) if jets else 0
    keep = np.ones(n, dtype=bool)
    for cut in cuts:
        x = np.asarray(jets[cut.variable], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            if cut.min is not None:
                keep &= x >= cut.min
            if cut.max is not None:
                keep &= x < cut.max
            if cut.abs_min is not None:
                keep &= np.abs(x) >= cut.abs_min
            if cut.abs_max is not None:
                keep &= np.abs(x) < cut.abs_max
            if cut.equals is not None:
                keep &= x == cut.equals
    return keep


def analysis_mask(analysis: Any, jets: Mapping[str, np.ndarray], n_jets: int, where: str) -> np.ndarray | None:
    """Call ``analysis.select(jets)`` and check that it returned a mask of the right length."""
    if analysis is None or not hasattr(analysis, "select"):
        return None
    mask = call_hook(analysis, "select", jets, where)
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != (n_jets,) or mask.dtype != bool:
        msg = (
            f"{where}: analysis plugin {plugin_name(analysis)}: its select(jets) hook must return a boolean mask "
            f"of shape ({n_jets},) or None, received dtype {mask.dtype} and shape {mask.shape}"
        )
        raise PluginOutputError(msg)
    return mask


def call_hook(analysis: Any, hook: str, jets: Mapping[str, np.ndarray], where: str) -> Any:
    """``analysis.<hook>(dict(jets))``; an exception it raises becomes a :class:`PluginError` naming plugin and hook."""
    try:
        return getattr(analysis, hook)(dict(jets))
    except HepnnError:
        raise
    except Exception as err:
        hint = ("; jets holds the jet-level branches the config reads only: list a branch the hook needs in "
                "data.spectators") if isinstance(err, KeyError) else ""
        msg = (f"{where}: analysis plugin {plugin_name(analysis)}: its {hook}(jets) hook raised "
               f"{type(err).__name__}: {err}{hint}")
        raise PluginError(msg) from err


def plugin_name(analysis: Any) -> str:
    """How errors name an analysis plugin: its ``name`` and class, or the class alone."""
    name = getattr(analysis, "name", None)
    cls = type(analysis).__name__
    return f"{name!r} ({cls})" if name and name != cls else cls
