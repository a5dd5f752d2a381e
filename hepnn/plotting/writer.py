"""Save many figures in background processes while the next ones are drawn.

Turning a figure into a PNG (tick and text layout, Agg rasterisation, compression) is most of
a report's time (0.25-0.35 s a figure against 0.04 s to build it) and runs in one thread:
matplotlib holds the GIL. :class:`FigureWriter` pickles each figure (~0.02 s) and has worker
processes save it, so a report with many runs uses the machine's other cores. The workers
apply the ``rcParams`` the figure was drawn under, know the same fonts and use the Agg canvas of
:func:`hepnn.plotting.save_figure`: the files are byte for byte those of an in-process save.

The first ``start_after`` figures are saved in this process (a small report never pays for
starting workers); a figure that does not pickle is saved here too. ``HEPNN_PLOT_PROCESSES``
sets the number of workers (``0``: none); by default one per CPU core, at most 4 (on 2 cores
the demo's report took 53 s with none, 54 s with one and 41 s with two).

Examples
--------
>>> import tempfile, matplotlib.pyplot as plt
>>> out = tempfile.mkdtemp()
>>> with FigureWriter(processes=0) as writer:
...     fig, ax = plt.subplots()
...     paths = writer.save(fig, out + "/roc", formats=("png",))
>>> [p.name for p in paths]
['roc.png']
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import warnings
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, Sequence

from .._spawn import main_module_hidden
from .._threads import cpu_cores
from .save import figure_paths, save_figure

__all__ = ["FigureWriter", "default_plot_processes"]

MAX_DEFAULT_PROCESSES = 4
# rcParams a worker does not take over from the parent: the backend is Agg in a worker
_NOT_COPIED = ("backend", "backend_fallback", "interactive", "webagg.port", "webagg.address")


def default_plot_processes() -> int:
    """Worker processes of a :class:`FigureWriter` (see the module docstring)."""
    setting = os.environ.get("HEPNN_PLOT_PROCESSES", "").strip()
    if setting.isdigit():
        return int(setting)
    return max(1, min(MAX_DEFAULT_PROCESSES, cpu_cores()))


class FigureWriter:
    """Save figures like :func:`~hepnn.plotting.save_figure`, in ``processes`` worker processes.

    :meth:`save` returns the paths the files will have; :meth:`close` (or leaving the
    ``with`` block) waits until they are written and raises the first error, naming the file.
    """

    def __init__(self, processes: int | None = None, start_after: int = 16):
        self.processes = default_plot_processes() if processes is None else int(processes)
        self.start_after = start_after
        self._saved_here = 0
        self._pool: ProcessPoolExecutor | None = None
        self._pending: list[tuple[Path, tuple, Future]] = []

    def save(self, fig: Any, path: str | os.PathLike, formats: Sequence[str] = ("png", "pdf"), *,
             dpi: float = 150, **kwargs: Any) -> list[Path]:
        """Save (or queue) ``fig`` as ``path.<fmt>`` for every format; returns the paths."""
        fig = getattr(fig, "figure", fig)
        formats = (formats,) if isinstance(formats, str) else tuple(formats)
        if self.processes < 1 or self._saved_here < self.start_after:
            self._saved_here += 1
            return save_figure(fig, path, formats, dpi=dpi, **kwargs)
        try:
            blob = pickle.dumps(fig, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - an artist that does not pickle (a lambda formatter): save it here
            return save_figure(fig, path, formats, dpi=dpi, **kwargs)
        paths = figure_paths(path, formats)
        rc = _rc_params()
        with main_module_hidden():  # a worker started here does not run the user's script again
            future = self._workers().submit(_save_pickled, blob, rc, str(path), formats, dpi, kwargs)
        self._pending.append((Path(path), (blob, rc, str(path), formats, dpi, kwargs), future))
        return paths

    def _workers(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawned, not forked: a report runs in processes that hold TensorFlow's threads
            self._pool = ProcessPoolExecutor(max_workers=self.processes,
                                             mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(_font_files(),))
        return self._pool

    def close(self) -> None:
        """Wait for every queued figure; raise the first error with its file name.

        A figure a worker could not save (a class of the user's script it cannot import, a
        worker that died) is saved again here; only if that fails too is the error raised.
        """
        pending, self._pending = self._pending, []
        try:
            for path, task, future in pending:
                try:
                    future.result()
                except Exception:  # noqa: BLE001 - try again in this process, which drew the figure
                    try:
                        _save_here(*task)
                    except Exception as err:
                        msg = f"{path}: saving the figure failed: {type(err).__name__}: {err}"
                        raise OSError(msg) from err
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def __enter__(self) -> FigureWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is not None:  # an error while drawing: stop quietly, the first error is the one to show
            for *_, future in self._pending:
                future.cancel()
            try:
                self.close()
            except OSError:
                pass
            return
        self.close()


def _rc_params() -> dict:
    import matplotlib

    return {k: v for k, v in matplotlib.rcParams.items() if k not in _NOT_COPIED}


_APPLIED: list = []  # the rcParams a worker applied last


def _font_files() -> tuple[str, ...]:
    """The font files matplotlib knows here, those added at run time included (mplhep's fonts)."""
    from matplotlib import font_manager

    return tuple(sorted({f.fname for f in font_manager.fontManager.ttflist + font_manager.fontManager.afmlist}))


def _init_worker(fonts: tuple[str, ...]) -> None:
    os.environ["MPLBACKEND"] = "Agg"
    import matplotlib
    from matplotlib import font_manager

    matplotlib.use("Agg")
    known = {f.fname for f in font_manager.fontManager.ttflist + font_manager.fontManager.afmlist}
    for path in fonts:
        if path not in known and os.path.isfile(path):
            font_manager.fontManager.addfont(path)


def _save_here(blob: bytes, rc: dict, path: str, formats: tuple, dpi: float, kwargs: dict) -> None:
    import matplotlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        context = matplotlib.rc_context(rc)
    with context:
        save_figure(pickle.loads(blob), path, formats, dpi=dpi, **kwargs)


def _save_pickled(blob: bytes, rc: dict, path: str, formats: tuple, dpi: float, kwargs: dict) -> None:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not _APPLIED or _APPLIED[0] != rc:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            matplotlib.rcParams.update(rc)
        _APPLIED[:] = [rc]
    fig = pickle.loads(blob)
    FigureCanvasAgg(fig)  # what save_figure shares its math-text parser on
    save_figure(fig, path, formats, dpi=dpi, **kwargs)
