"""Keep memory bounded and cheap: glibc ``malloc`` settings for array and tensor work.

Made once per process with ``mallopt``, only on glibc: :func:`bound_allocator` the first two
settings below, when hepnn starts reading (:func:`hepnn.io.load`, streaming), and
:func:`tensor_allocator` all three, when it starts tensor work (:class:`hepnn.training.Trainer`,
loading a model for :class:`hepnn.Tagger`, evaluation or explanations).

* **mmap threshold 4 MiB.** glibc raises its mmap threshold each time a large mmapped
  block is freed; after the first chunk, chunk-sized arrays then come from the heap and
  their memory is not returned to the system, so the resident size of a long streaming
  pass creeps up although the reader holds one or two chunks at a time. Fixed at 4 MiB,
  chunk-sized arrays stay mmapped and are returned on ``free``, while the many smaller
  temporaries (a block of a derived variable, a basket) come from the heap and reuse its
  memory. (A threshold of 128 KiB, as before, made every array a fresh mapping whose pages
  the kernel zeroes on first touch: up to 0.9 s of system time per ``load`` of 75k jets
  with 100 constituents, and a third more time for plain uproot in the same process.)
* **trim threshold 32 MiB:** that much freed main-heap memory is kept instead of being
  handed back and faulted in again at the next block.
* **top pad 64 MiB.** A training step's temporaries, together above the trim threshold,
  make glibc trim the heap when they are freed, and a trim hands back everything above the
  top pad (0 by default), which the next step faults in again: training the demo's
  ParticleNet took 7.4 million page faults, 31 s of system time and 55 s of wall time on a
  2-core VM, and 83 thousand faults, 3 s and 27-30 s with the pad, for 50 MB more peak
  memory (``bench/allocator.py``). The pad is kept at the top of each heap (the main one and
  the per-thread arenas); only pages a step touched stay resident, at most 64 MiB per heap. It also serves arrays up to its
  size from the heap rather than from their own mappings, so a reader-only process (``hepnn
  convert``, streaming into a file) goes without it and hands chunk-sized arrays back at once.

``HEPNN_KEEP_MALLOC=1``, or any of ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_TOP_PAD_`` set by the user, leaves malloc alone.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

__all__ = ["bound_allocator", "tensor_allocator"]

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_READER = ((_M_MMAP_THRESHOLD, 4 << 20), (_M_TRIM_THRESHOLD, 32 << 20))
_TENSORS = ((_M_TOP_PAD, 64 << 20),)
_USER_SETTINGS = ("HEPNN_KEEP_MALLOC", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
_done: set[str] = set()


def bound_allocator() -> bool:
    """The reader's settings (once); True if they were made by this call or before."""
    return _set("reader", _READER)


def tensor_allocator() -> bool:
    """The reader's settings and the top pad for tensor work (once); True if they were made."""
    return bound_allocator() and _set("tensors", _TENSORS)


@functools.lru_cache(maxsize=1)
def _glibc():
    """glibc, or None (another system or C library): looked up once, not at every fit or model load."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def _set(name: str, settings) -> bool:
    if name in _done:
        return True
    if any(os.environ.get(option) for option in _USER_SETTINGS):
        return False
    libc = _glibc()
    if libc is None:
        return False
    try:
        ok = all(libc.mallopt(option, value) for option, value in settings)
    except AttributeError:
        return False
    if ok:
        _done.add(name)
    return ok
