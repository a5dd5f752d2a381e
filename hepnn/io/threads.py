"""How many threads the reader uses for work that releases the GIL.

uproot's decompression (zlib, lz4, zstd) and element-wise numpy functions release the GIL,
so threads run them in parallel. ``HEPNN_READER_THREADS`` sets the number (``1``: no
threads); by default the reader uses ``OMP_NUM_THREADS`` when it is set (Dask's worker
processes set it to 1, batch jobs often to their CPUs), one thread inside a Dask worker's
task, else the CPU cores it may run on, at most 8.

Examples
--------
>>> from hepnn.io.threads import reader_threads
>>> reader_threads(10, per_thread=100)   # too little work for a second thread
1
"""

from __future__ import annotations

from .._threads import default_threads, in_threads, reader_threads

__all__ = ["reader_threads", "default_threads", "in_threads"]
