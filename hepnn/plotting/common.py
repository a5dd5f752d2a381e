"""Helpers shared by the plot modules: lazy pyplot, axes creation, input checks."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .._optional import require
from ..registry import Registry

__all__ = [
    "PLOTS", "pyplot", "new_axes", "as_1d", "taggers_from", "class_names_for", "upper_edge_inclusive", "curve_styles",
]

#: The plot functions by name, e.g. ``PLOTS.get("roc")``.
PLOTS = Registry("plot")


def pyplot() -> Any:
    """Import and return ``matplotlib.pyplot`` (never at import time of hepnn)."""
    require("matplotlib")
    return require("matplotlib.pyplot")


#: Line styles combined with the colours when a plot has more curves than the colour cycle has colours.
LINESTYLES = ("-", "--", ":", "-.")
#: Markers combined with the colours for point plots (and for lines beyond colours x line styles).
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# matplotlib's default ("tab10") colours, used when the current style's cycle has no colours
_TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def curve_styles(n: int, *, markers: bool = False) -> list[dict[str, Any]]:
    """``n`` distinct styles for ``n`` curves: each colour of the current cycle, then each again dashed, ...

    The colours come from ``rcParams["axes.prop_cycle"]`` (so an experiment style set with
    :func:`hepnn.plotting.use_style` keeps its palette); a plot with more curves than colours
    combines them with :data:`LINESTYLES` (solid, dashed, dotted, dash-dotted) so that no two
    curves look alike (colour x line style; beyond that, markers are added as well).

    Parameters
    ----------
    n : int
        Number of curves.
    markers : bool
        Styles for points (``scatter``/``errorbar``): colour x marker instead of colour x line style.

    Returns
    -------
    list of dict
        Keyword arguments for ``ax.plot`` (``color``, ``linestyle``, and ``marker`` where needed),
        or for points ``color`` and ``marker``.

    Examples
    --------
    >>> styles = curve_styles(12)
    >>> len({(s["color"], s["linestyle"]) for s in styles})
    12
    >>> styles[0]["linestyle"], styles[10]["linestyle"]
    ('-', '--')
    """
    mpl = require("matplotlib")
    colors = tuple(mpl.rcParams["axes.prop_cycle"].by_key().get("color", ())) or _TAB10
    # a style may repeat a colour in its cycle: distinct colours only, in order
    colors = tuple(dict.fromkeys(colors))
    n_c = len(colors)
    out = []
    for i in range(int(n)):
        color, block = colors[i % n_c], i // n_c
        if markers:
            out.append({"color": color, "marker": MARKERS[block % len(MARKERS)]})
            continue
        style = {"color": color, "linestyle": LINESTYLES[block % len(LINESTYLES)]}
        extra = block // len(LINESTYLES)
        if extra:
            style.update(marker=MARKERS[(extra - 1) % len(MARKERS)], markevery=0.1)
        out.append(style)
    return out


def new_axes(ax: Any = None, **subplots_kw: Any) -> Any:
    """Return ``ax`` or a fresh axes on a new figure."""
    if ax is not None:
        return ax
    _, ax = pyplot().subplots(**subplots_kw)
    return ax


def as_1d(values: Any, name: str, dtype: Any = float) -> np.ndarray:
    """``values`` as a 1-D array, or ``ValueError`` saying what was received."""
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 1:
        msg = f"{name}: expected a 1-D array, received shape {arr.shape}; flatten or select one column"
        raise ValueError(msg)
    return arr


def _same_length(name: str, a: np.ndarray, b: np.ndarray, b_name: str) -> None:
    if len(a) != len(b):
        msg = f"{name} has {len(a)} entries but {b_name} has {len(b)}; they must describe the same jets"
        raise ValueError(msg)


def taggers_from(
    taggers: Any, labels: Any = None, weights: Any = None
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Normalise tagger input to ``{name: (scores, labels, weights)}``.

    ``taggers`` is an array of scores (one tagger called ``"tagger"``), a dict
    ``{name: scores}`` sharing ``labels`` (and ``weights``), or a dict
    ``{name: (scores, labels)}`` / ``{name: (scores, labels, weights)}``.
    """
    if not isinstance(taggers, Mapping):
        taggers = {"tagger": taggers}
    if not taggers:
        msg = "taggers: received an empty mapping; pass {name: scores} with at least one tagger"
        raise ValueError(msg)
    out = {}
    for name, item in taggers.items():
        if isinstance(item, tuple):
            if len(item) not in (2, 3):
                msg = (
                    f"taggers[{name!r}]: expected scores, (scores, labels) or (scores, labels, weights); "
                    f"received a tuple of {len(item)}"
                )
                raise ValueError(msg)
            s, y = item[0], item[1]
            w = item[2] if len(item) == 3 else None
        else:
            if labels is None:
                msg = f"taggers[{name!r}]: received scores without labels; pass labels= or (scores, labels)"
                raise ValueError(msg)
            s, y, w = item, labels, weights
        s = as_1d(s, f"taggers[{name!r}] scores")
        y = as_1d(y, f"taggers[{name!r}] labels")
        _same_length(f"taggers[{name!r}] scores", s, y, "labels")
        if w is not None:
            w = as_1d(w, f"taggers[{name!r}] weights")
            _same_length(f"taggers[{name!r}] scores", s, w, "weights")
        out[str(name)] = (s, y, w)
    return out


def upper_edge_inclusive(values: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """Move values equal to the upper edge just inside it, so a score of 1.0 lands in the last bin."""
    return np.where(values == upper, np.nextafter(upper, lower), values)


def class_names_for(labels: np.ndarray, class_names: Sequence[str] | Mapping[int, str] | None) -> dict[int, str]:
    """Map each integer class present in ``labels`` to a display name."""
    classes = [int(c) for c in np.unique(labels)]
    if class_names is None:
        if classes == [0, 1]:
            return {0: "background", 1: "signal"}
        return {c: f"class {c}" for c in classes}
    if isinstance(class_names, Mapping):
        names = {int(k): str(v) for k, v in class_names.items()}
    else:
        names = dict(enumerate(str(n) for n in class_names))
    missing = [c for c in classes if c not in names]
    if missing:
        msg = f"class_names: no name for label(s) {missing}; received names for {sorted(names)}"
        raise ValueError(msg)
    return {c: names[c] for c in classes}
