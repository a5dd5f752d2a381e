"""How many threads the reader uses for work that releases the GIL.

uproot's decompression (zlib, lz4, zstd) and element-wise numpy functions release the GIL,
so threads run them in parallel. ``HEPNN_READER_THREADS`` sets the number (``1``: no
threads); by default the reader uses the CPU cores it may run on, at most 8.

Examples
--------
>>> from hepnn.io.threads import reader_threads
>>> reader_threads(10, per_thread=100)   # too little work for a second thread
1
"""

from __future__ import annotations

import os

__all__ = ["reader_threads"]


def reader_threads(n_items: int | None = None, per_thread: int = 1) -> int:
    """Threads for ``n_items`` of work, at least ``per_thread`` items each (``None``: no limit)."""
    setting = os.environ.get("HEPNN_READER_THREADS", "").strip()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    wanted = int(setting) if setting.isdigit() else min(8, cores)
    if n_items is not None:
        wanted = min(wanted, n_items // max(per_thread, 1))
    return max(1, wanted)
