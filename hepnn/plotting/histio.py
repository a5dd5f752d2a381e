"""Save, load, merge and replot ``hist.Hist`` results, so batch jobs can be combined.

Files are JSON in the UHI serialisation format (``uhi.io.json``, readable by
any UHI-aware library) inside a small envelope::

    {"format": "hepnn-hists", "version": 1, "hists": {"test/signal": {...}, ...}}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from .._fileio import atomic_write_text
from .._optional import require
from ..exceptions import InputDataError
from .common import PLOTS, new_axes

__all__ = ["load_hists", "merge_hists", "plot_hist", "save_hists"]

_FORMAT = "hepnn-hists"
_VERSION = 1


def _uhi_json() -> Any:
    hist = require("hist")
    if not hasattr(hist.Hist, "_to_uhi_"):
        msg = f"saving histograms needs hist >= 2.9 (UHI serialisation); found hist {hist.__version__}: run `pip install -U hist`"
        raise ModuleNotFoundError(msg, name="hist")
    return require("uhi.io.json")


def save_hists(hists: Mapping[str, Any] | Any, path: str | os.PathLike) -> Path:
    """Write histograms (``{name: hist.Hist}`` or one ``Hist``, saved as ``"hist"``) to JSON, atomically.

    Examples
    --------
    >>> import hist, tempfile
    >>> h = hist.Hist.new.Reg(4, 0, 1, name="score").Weight()
    >>> _ = h.fill([0.1, 0.6])
    >>> p = save_hists({"score": h}, tempfile.mkdtemp() + "/h.json")
    >>> load_hists(p)["score"].sum().value
    2.0
    """
    uhi_json = _uhi_json()
    hist = require("hist")
    if isinstance(hists, hist.Hist) or not isinstance(hists, Mapping):
        hists = {"hist": hists}
    for name, h in hists.items():
        if not hasattr(h, "_to_uhi_"):
            msg = f"hists[{name!r}]: expected a hist.Hist, received {type(h).__name__}"
            raise TypeError(msg)
    payload = {"format": _FORMAT, "version": _VERSION, "hists": {str(k): v for k, v in hists.items()}}
    return atomic_write_text(path, json.dumps(payload, default=uhi_json.default))


def load_hists(path: str | os.PathLike) -> dict[str, Any]:
    """Read histograms written by :func:`save_hists` as ``{name: hist.Hist}``."""
    uhi_json = _uhi_json()
    hist = require("hist")
    path = Path(path)
    try:
        payload = json.loads(path.read_text(), object_hook=uhi_json.object_hook)
    except OSError as err:
        msg = f"cannot read histograms from {str(path)!r}: {err.strerror}"
        raise InputDataError(msg) from err
    except json.JSONDecodeError as err:
        msg = f"{str(path)!r} is not a hepnn histogram file (invalid JSON: {err})"
        raise InputDataError(msg) from err
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        msg = f"{str(path)!r} is not a hepnn histogram file (expected format {_FORMAT!r}); write it with save_hists"
        raise InputDataError(msg)
    if payload.get("version", 0) > _VERSION:
        msg = f"{str(path)!r} has version {payload['version']}, newer than this hepnn reads ({_VERSION}); upgrade hepnn"
        raise InputDataError(msg)
    return {name: hist.Hist(ir) for name, ir in payload["hists"].items()}


def merge_hists(paths: Iterable[str | os.PathLike], output: str | os.PathLike | None = None) -> dict[str, Any]:
    """Sum the histograms of several files by name (e.g. one file per batch job).

    Every file must hold the same names with the same binning. The merged
    histograms are returned and, with ``output``, saved.

    Examples
    --------
    >>> import hist, tempfile
    >>> d = tempfile.mkdtemp()
    >>> h = hist.Hist.new.Reg(2, 0, 1, name="x").Double()
    >>> _ = h.fill([0.2, 0.7])
    >>> files = [save_hists({"x": h}, f"{d}/job{i}.json") for i in range(3)]
    >>> merge_hists(files)["x"].values().tolist()
    [3.0, 3.0]
    """
    paths = [Path(p) for p in paths]
    if not paths:
        msg = "merge_hists: received no files; pass the outputs of save_hists"
        raise ValueError(msg)
    merged = load_hists(paths[0])
    for path in paths[1:]:
        part = load_hists(path)
        if set(part) != set(merged):
            msg = (
                f"{str(path)!r} holds histograms {sorted(part)} but {str(paths[0])!r} holds {sorted(merged)}; "
                "merge only outputs of the same job configuration"
            )
            raise InputDataError(msg)
        for name, h in part.items():
            try:
                merged[name] = merged[name] + h
            except ValueError as err:
                msg = f"{str(path)!r}: histogram {name!r} has a different binning from {str(paths[0])!r} ({err})"
                raise InputDataError(msg) from err
    if output is not None:
        save_hists(merged, output)
    return merged


@PLOTS.register("hist")
def plot_hist(
    hists: Mapping[str, Any] | Any,
    *,
    density: bool = False,
    histtype: str = "step",
    logy: bool = False,
    ax: Any = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Replot saved (or merged) 1-D histograms with mplhep, one artist per histogram.

    Parameters
    ----------
    hists : dict of str to hist.Hist, or one Hist
    density, histtype : passed to ``mplhep.histplot``
    logy : bool
    ax : Axes, optional
    **kwargs : passed to ``mplhep.histplot``

    Returns
    -------
    dict
        ``{"ax": Axes, "artists": {name: artist}}``.

    Examples
    --------
    >>> import hist
    >>> h = hist.Hist.new.Reg(2, 0, 1, name="x", label="score").Double()
    >>> plot_hist({"a": h})["ax"].get_xlabel()
    'score'
    """
    mplhep = require("mplhep")
    hist = require("hist")
    if isinstance(hists, hist.Hist) or not isinstance(hists, Mapping):
        hists = {"": hists}
    ax = new_axes(ax)
    kwargs.setdefault("flow", "none")
    artists = {}
    for name, h in hists.items():
        if h.ndim != 1:
            msg = f"plot_hist draws 1-D histograms; {name!r} has {h.ndim} axes: project it first, e.g. h.project(0)"
            raise ValueError(msg)
        (artists[name],) = mplhep.histplot(h, ax=ax, density=density, histtype=histtype, label=name or None, **kwargs)
    first = next(iter(hists.values()))
    ax.set_xlabel(first.axes[0].label or first.axes[0].name)
    ax.set_ylabel("Normalised entries" if density else "Entries")
    if logy:
        ax.set_yscale("log")
    if any(hists):
        ax.legend()
    return {"ax": ax, "artists": artists}
