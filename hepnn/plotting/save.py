"""Write figures to disk atomically, in several formats at once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from .._fileio import atomic_path

__all__ = ["save_figure"]

_FORMATS = ("png", "pdf", "svg", "eps", "jpg")


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
    if isinstance(formats, str):
        formats = (formats,)
    bad = [f for f in formats if f.lower() not in _FORMATS]
    if bad or not formats:
        msg = f"formats: expected some of {list(_FORMATS)}, received {list(formats)}"
        raise ValueError(msg)
    kwargs.setdefault("bbox_inches", "tight")
    path = Path(path)
    written = []
    for fmt in formats:
        target = path.with_name(f"{path.name}.{fmt.lower()}")
        with atomic_path(target, suffix=f".part.{fmt.lower()}") as tmp:
            fig.savefig(tmp, format=fmt.lower(), dpi=dpi, **kwargs)
        written.append(target)
    return written
