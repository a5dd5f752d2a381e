"""How many threads hepnn's reader and preprocessing use for work that releases the GIL.

``HEPNN_READER_THREADS`` sets the number (``1``: no threads). By default: ``OMP_NUM_THREADS``
when it is set (Dask's worker processes set it to 1, batch jobs often to their CPUs), 1 inside
a Dask worker's task (the worker already runs one task per thread), else the CPU cores this
process may run on, at most 8.

Examples
--------
>>> from hepnn._threads import reader_threads
>>> reader_threads(10, per_thread=100)   # too little work for a second thread
1
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

__all__ = ["reader_threads", "default_threads", "cpu_cores"]

MAX_DEFAULT_THREADS = 8


def _in_dask_task() -> bool:
    """True inside a task run by a ``dask.distributed`` worker (checked only if distributed is imported)."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except (ValueError, AttributeError):
        return False
    return True


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_threads() -> int:
    """The thread count when nothing limits it by the amount of work (see the module docstring)."""
    setting = os.environ.get("HEPNN_READER_THREADS", "").strip()
    if setting.isdigit():
        return max(1, int(setting))
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        return int(omp)
    if _in_dask_task():
        return 1
    return min(MAX_DEFAULT_THREADS, cpu_cores())


def reader_threads(n_items: int | None = None, per_thread: int = 1) -> int:
    """Threads for ``n_items`` of work, at least ``per_thread`` items each (``None``: no limit)."""
    wanted = default_threads()
    if n_items is not None:
        wanted = min(wanted, n_items // max(per_thread, 1))
    return max(1, wanted)


def in_threads(fn: Callable[..., Any], *iterables: Iterable, threads: int) -> None:
    """Call ``fn`` on the zipped ``iterables``: in this thread when ``threads`` is 1, else on a
    pool of ``threads`` (the results are dropped; the first error is raised)."""
    if threads <= 1:
        for args in zip(*iterables):
            fn(*args)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fn, *iterables))
