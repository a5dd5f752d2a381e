"""Keep streaming memory bounded: stop glibc from holding on to freed chunk-sized arrays.

glibc's ``malloc`` raises its mmap threshold each time a large mmapped block is freed;
after the first chunk, chunk-sized arrays then come from the heap and their memory is
not returned to the system, so the resident size of a long streaming pass creeps up
although the reader holds one or two chunks at a time. Fixing the threshold
(``mallopt(M_MMAP_THRESHOLD)``) at 4 MiB keeps chunk-sized arrays mmapped and returned
on ``free``, while the many smaller temporaries (a block of a derived variable, a
basket) come from the heap and reuse its memory; a trim threshold of 32 MiB keeps that
much freed heap instead of handing it back and faulting it in again at the next block.
(A threshold of 128 KiB, as before, made every array a fresh mapping whose pages the
kernel zeroes on first touch: up to 0.9 s of system time per ``load`` of 75k jets with
100 constituents, and a third more time for plain uproot in the same process.)
Done once per process when ``load`` or streaming starts, only on glibc;
``HEPNN_KEEP_MALLOC=1`` (or a user-set ``MALLOC_MMAP_THRESHOLD_``) leaves malloc alone.
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["bound_allocator"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 4 << 20
_TRIM = 32 << 20
_done = False


def bound_allocator() -> bool:
    """Fix glibc's mmap threshold (once); return True if it was set by this call or before."""
    global _done
    if _done:
        return True
    if os.environ.get("HEPNN_KEEP_MALLOC") or os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        _done = bool(libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _TRIM))
    except (OSError, AttributeError):
        return False
    return _done
