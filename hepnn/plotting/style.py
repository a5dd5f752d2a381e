"""Experiment plot styles and labels (mplhep), applied only when asked.

Importing :mod:`hepnn.plotting` never touches ``matplotlib.rcParams``;
:func:`use_style` changes them, for good or inside a ``with`` block.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from .._optional import require
from ..exceptions import UnknownNameError
from .common import new_axes

__all__ = ["STYLES", "use_style", "label"]

#: Names accepted by :func:`use_style` and :func:`label`.
STYLES = ("plain", "CMS", "ATLAS", "LHCb", "ALICE")

_LABEL_MODULE = {"CMS": "cms", "ATLAS": "atlas", "LHCb": "lhcb", "ALICE": "alice"}


def _check(name: str) -> str:
    for style in STYLES:
        if str(name).lower() == style.lower():
            return style
    raise UnknownNameError(name, "plot style", STYLES)


class use_style:  # noqa: N801 - used like a function
    """Apply an experiment style; as a context manager, restore the previous one on exit.

    Parameters
    ----------
    name : str
        One of ``"plain"`` (matplotlib defaults), ``"CMS"``, ``"ATLAS"``,
        ``"LHCb"``, ``"ALICE"`` (case-insensitive).

    Examples
    --------
    >>> import matplotlib
    >>> before = matplotlib.rcParams["font.size"]
    >>> with use_style("CMS"):
    ...     matplotlib.rcParams["font.size"] != before
    True
    >>> matplotlib.rcParams["font.size"] == before
    True
    """

    def __init__(self, name: str = "plain"):
        self.name = _check(name)
        mpl = require("matplotlib")
        self._saved = mpl.rcParams.copy()
        if self.name == "plain":
            # lazy (matplotlib is an optional extra); `import matplotlib` alone does not load `matplotlib.style`
            import matplotlib.style

            matplotlib.style.use("default")
        else:
            mplhep = require("mplhep")
            mplhep.style.use(self.name)

    def __enter__(self) -> use_style:
        return self

    def __exit__(self, *exc: Any) -> None:
        mpl = require("matplotlib")
        mpl.rcParams.update(self._saved)

    def __repr__(self) -> str:
        return f"use_style({self.name!r})"


def _energy_text(energy: float | str | None) -> str | None:
    if energy is None or isinstance(energy, str):
        return energy
    return f"{float(energy):g}"


def label(
    ax: Any = None,
    experiment: str = "plain",
    text: str = "Simulation",
    energy: float | str | None = 14.0,
    *,
    loc: int | None = None,
    **kwargs: Any,
) -> list[Any]:
    """Draw the experiment label (``CMS Simulation``, ``14 TeV``) on ``ax``.

    Parameters
    ----------
    ax : matplotlib Axes, optional
        Defaults to a new figure's axes.
    experiment : str
        One of :data:`STYLES`; ``"plain"`` draws no experiment name, only ``text``.
    text : str
        Text beside the experiment name ("Simulation", "Work in progress", "").
    energy : float or str or None
        Centre-of-mass energy in TeV (a string is shown as given); None omits it.
    loc : int, optional
        mplhep label layout (0: above the axes, 1-4: inside).
    **kwargs
        Passed to ``mplhep.label.exp_label``.

    Returns
    -------
    list of matplotlib Text
        The texts drawn.

    Examples
    --------
    >>> texts = label(experiment="CMS", text="Work in progress", energy=13.6)
    >>> [t.get_text() for t in texts][:2]
    ['CMS', 'Work in progress']
    """
    experiment = _check(experiment)
    ax = new_axes(ax)
    com = _energy_text(energy)
    if experiment == "plain" and loc in (None, 0) and not kwargs:
        return _plain_label(ax, text, com)
    mplhep = require("mplhep")
    kwargs = {"scilocator_adjust": _offset_text_shown(ax), **kwargs} if loc in (None, 0, 3) else kwargs
    with _no_layout_draws(ax.figure):
        if experiment == "plain":
            texts = mplhep.label.exp_label(exp="", llabel=text, com=com, loc=loc, ax=ax, **kwargs)
        else:
            module = getattr(mplhep, _LABEL_MODULE[experiment])
            texts = module.label(text=text, data=True, com=com, loc=loc, ax=ax, **kwargs)
    return [t for t in texts if t is not None and t.get_text()]


def _offset_text_shown(ax: Any) -> bool:
    """Whether the y axis shows an offset or a power of ten above its ticks (``1e6``), found as
    matplotlib's draw finds it: the formatter given the tick locations.

    mplhep moves a label at the top left out of that text's way (``scilocator_adjust``), and draws
    the whole figure to measure it even when there is none; with none it moves nothing, so telling
    it so gives the same figure.
    """
    formatter = ax.yaxis.get_major_formatter()
    if not (hasattr(formatter, "get_useOffset") and formatter.get_useOffset()):
        return False  # mplhep does not look either
    try:
        formatter.set_locs(ax.yaxis.get_majorticklocs())
        return bool(formatter.get_offset())
    except Exception:  # noqa: BLE001 - an unusual formatter: let mplhep measure it
        return True


@contextmanager
def _no_layout_draws(fig: Any) -> Iterator[None]:
    """Skip the full drawings of ``fig`` that mplhep makes to place one text after another.

    mplhep draws the figure before it measures a text so that a layout engine (constrained or
    tight layout) has placed the axes; a text's size does not depend on the drawing, and without a
    layout engine the axes stay where they are (their aspect is applied when their position is
    read). So, for figures without one, the drawing (a quarter of a report's time with an
    experiment style) is left out and the texts land where they did
    (``tests/test_plotting_style.py`` compares the pixels).
    """
    canvas = getattr(fig, "canvas", None)
    if canvas is None or fig.get_layout_engine() is not None or "draw" in vars(canvas):
        yield
        return
    canvas.draw = _no_draw
    try:
        yield
    finally:
        del canvas.draw


def _no_draw(*args: Any, **kwargs: Any) -> None:
    return None


def _plain_label(ax: Any, text: str, com: str | None) -> list[Any]:
    """The plain label above the axes as ``mplhep.label.exp_label(exp="", loc=0)`` lays it out.

    ``text`` in italics at the left, ``(com TeV)`` a size smaller at the right, at mplhep's
    offsets; placed directly instead of through mplhep, which draws the whole figure twice
    to measure its texts (half the drawing time of a report).
    """
    texts = []
    if text:
        texts.append(ax.annotate(text, xy=(0.0, 1.0), xycoords="axes fraction", xytext=(2.4, 3.1),
                                 textcoords="offset points", ha="left", va="baseline", fontstyle="italic",
                                 annotation_clip=False))
    if com is not None:
        energy = com if not _is_number(com) else f"{com} TeV"
        texts.append(ax.text(1.0, 1.0, f"({energy})", transform=ax.transAxes, ha="right", va="bottom",
                             fontsize=_font_size() / 1.1))
    return texts


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _font_size() -> float:
    mpl = require("matplotlib")
    from matplotlib.font_manager import FontProperties

    return float(FontProperties(size=mpl.rcParams["font.size"]).get_size_in_points())
