"""Write figures to disk atomically, in several formats at once."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Sequence

from .._fileio import atomic_path

__all__ = ["save_figure", "figure_paths"]

_FORMATS = ("png", "pdf", "svg", "eps", "jpg")
_CANVAS: list = []  # the Agg canvas class below, made on first use (matplotlib is imported lazily)


def _shared_mathtext_canvas() -> type:
    """An Agg canvas whose renderers share one math-text parser (and so its parse cache).

    Matplotlib gives every renderer its own parser, and a saved figure gets a new renderer
    for every draw (``bbox_inches="tight"`` draws twice, at two sizes), so tick labels such
    as ``10^2`` were parsed again for every figure: ~10 % of a report's CPU time. The
    parser's output depends only on the string, dpi and font, so the pixels are the same.
    """
    if not _CANVAS:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        shared = threading.local()  # one parser per thread: a parser is not safe to share across threads

        class SharedMathtextCanvasAgg(FigureCanvasAgg):
            def get_renderer(self):
                renderer = super().get_renderer()
                parser = getattr(renderer, "mathtext_parser", None)
                if parser is None:  # another matplotlib: nothing to share, nothing changed
                    return renderer
                if not hasattr(shared, "parser"):
                    shared.parser = parser
                renderer.mathtext_parser = shared.parser
                return renderer

        _CANVAS.append(SharedMathtextCanvasAgg)
    return _CANVAS[0]


def figure_paths(path: str | os.PathLike, formats: Sequence[str]) -> list[Path]:
    """The files :func:`save_figure` writes for ``path`` and ``formats`` (``plots/roc`` -> ``plots/roc.png``, ...).

    Raises ``ValueError`` for a format matplotlib cannot write or an empty list.
    """
    if isinstance(formats, str):
        formats = (formats,)
    bad = [f for f in formats if f.lower() not in _FORMATS]
    if bad or not formats:
        msg = f"formats: expected some of {list(_FORMATS)}, received {list(formats)}"
        raise ValueError(msg)
    path = Path(path)
    return [path.with_name(f"{path.name}.{fmt.lower()}") for fmt in formats]


def save_figure(
    fig: Any, path: str | os.PathLike, formats: Sequence[str] = ("png", "pdf"), *, dpi: float = 150, **kwargs: Any
) -> list[Path]:
    """Save ``fig`` as ``path.<fmt>`` for every format, never leaving a partial file.

    Parameters
    ----------
    fig : matplotlib Figure (or an Axes, whose figure is saved)
    path : path without suffix
        ``plots/roc`` writes ``plots/roc.png`` and ``plots/roc.pdf``.
    formats : sequence of str
        File formats understood by matplotlib.
    dpi : float
        Resolution of raster formats.
    **kwargs
        Passed to ``Figure.savefig`` (``bbox_inches`` defaults to ``"tight"``).

    Returns
    -------
    list of Path
        The files written.

    Examples
    --------
    >>> import tempfile, matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> [p.suffix for p in save_figure(fig, tempfile.mkdtemp() + "/roc", formats=("png",))]
    ['.png']
    """
    fig = getattr(fig, "figure", fig)
    targets = figure_paths(path, formats)
    kwargs.setdefault("bbox_inches", "tight")
    written = []
    canvas = fig.canvas
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib is an optional extra

    if type(canvas) is FigureCanvasAgg:  # the Agg backend, not an interactive window: same pixels, less work
        _shared_mathtext_canvas()(fig)
    try:
        for target in targets:
            fmt = target.suffix[1:]
            with atomic_path(target, suffix=f".part.{fmt}") as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi, **kwargs)
            written.append(target)
    finally:
        if fig.canvas is not canvas:
            fig.set_canvas(canvas)
    return written
