"""zlib decompression for uproot by libdeflate: the same bytes, about 1.4x faster.

ROOT files compressed with ZLIB (ROOT's long-time default for TTrees, uproot's default when
writing; RNTuple pages too) spend most of their reading time inflating baskets or pages:
uproot uses Python's ``zlib``. `libdeflate <https://github.com/ebiggers/libdeflate>`_ (the
``deflate`` package, a dependency of hepnn) inflates the same streams faster, and releases
the GIL like ``zlib``, so uproot's decompression threads still run in parallel.

hepnn's reader installs it into uproot's ZLIB decompression (:func:`install_default`) the first
time it opens a file, for the whole process (:func:`use_libdeflate` turns it on or off): uproot reads outside hepnn are faster too, with
the same results. Decompression is lossless and libdeflate checks each stream's Adler-32
checksum, so the arrays are byte for byte those of ``zlib``; a stream libdeflate refuses (a
corrupt or truncated basket, trailing bytes, a size in the block header that does not match)
is inflated again by ``zlib``, so errors are exactly uproot's own as before. The buffers are
handed to uproot read-only, as ``zlib``'s ``bytes`` are.

``HEPNN_ZLIB=zlib`` keeps uproot's own decompression (``deflate``, the default, or unset:
libdeflate where the package is importable, else ``zlib`` silently).

Examples
--------
>>> import zlib
>>> from hepnn.io.decompression import inflate
>>> data = zlib.compress(b"jet " * 1000)
>>> bytes(inflate(data, 4000)) == b"jet " * 1000
True
"""

from __future__ import annotations

import functools
import os
import threading
import types
import zlib
from typing import Any

__all__ = ["inflate", "use_libdeflate", "libdeflate_in_use", "install_default", "ENV"]

#: environment variable: ``zlib`` keeps uproot's own decompression
ENV = "HEPNN_ZLIB"

_LOCK = threading.RLock()
_STATE = {"decided": False}  # True once installed by default or chosen by a call of use_libdeflate


@functools.lru_cache(maxsize=1)
def _libdeflate() -> Any:
    """The ``deflate`` module, or None where it cannot be imported (looked up once, not per basket)."""
    try:
        # lazy: only readers of ZLIB-compressed files need it; a missing wheel means zlib
        import deflate
    except ImportError:
        return None
    return deflate if hasattr(deflate, "zlib_decompress") else None


def inflate(data: Any, uncompressed_bytes: int) -> Any:
    """One zlib stream ``data`` inflated to ``uncompressed_bytes`` bytes (read-only buffer).

    libdeflate where available; ``zlib`` for anything libdeflate refuses, so a bad stream
    raises ``zlib.error`` as uproot's own decompression does.
    """
    lib = _libdeflate()
    if lib is not None:
        try:
            return memoryview(lib.zlib_decompress(data, uncompressed_bytes)).toreadonly()
        except Exception:  # noqa: BLE001 - zlib decides: the same result or the same error as before
            pass
    return zlib.decompress(data, bufsize=uncompressed_bytes)


def _uproot_zlib() -> Any:
    """uproot's ZLIB decompressor object (``uproot.compression._decompress_ZLIB``), or None."""
    # lazy: uproot's import is deferred until a file is read, as everywhere in hepnn.io
    import uproot.compression

    return getattr(uproot.compression, "_decompress_ZLIB", None)


def _decompress(self: Any, data: Any, uncompressed_bytes: int | None = None) -> Any:
    """uproot's ``_DecompressZLIB.decompress`` by libdeflate (its own where it would not use zlib)."""
    if uncompressed_bytes is None or getattr(self, "library", "zlib") != "zlib":
        return type(self).decompress(self, data, uncompressed_bytes)
    return inflate(data, uncompressed_bytes)


def use_libdeflate(enable: bool | None = None) -> bool:
    """Let uproot inflate ZLIB baskets and pages with libdeflate (``enable`` False: with zlib again).

    ``None``: as ``HEPNN_ZLIB`` says (libdeflate unless it is ``zlib``). Returns whether
    libdeflate is in use afterwards (False where the ``deflate`` package is missing or uproot's
    internals differ from the ones this was written for: uproot's own zlib is then used).
    Where uproot was told to use another library (``uproot.ZLIB.library``), that choice wins.
    """
    if enable is None:
        enable = os.environ.get(ENV, "deflate").strip().lower() != "zlib"
    target = _uproot_zlib()
    if target is None or not callable(getattr(type(target), "decompress", None)) or not hasattr(target, "__dict__"):
        return False
    with _LOCK:
        _STATE["decided"] = True
        installed = isinstance(target.__dict__.get("decompress"), types.MethodType)
        if enable and _libdeflate() is not None:
            if not installed:
                target.decompress = types.MethodType(_decompress, target)
            return True
        if installed:
            del target.decompress
        return False


def libdeflate_in_use() -> bool:
    """Whether uproot's ZLIB decompression goes through libdeflate now."""
    target = _uproot_zlib()
    return target is not None and isinstance(target.__dict__.get("decompress"), types.MethodType)


def install_default() -> None:
    """:func:`use_libdeflate` as ``HEPNN_ZLIB`` says, once per process (hepnn's reader calls it
    when it opens a file); a choice made by calling :func:`use_libdeflate` is kept."""
    if not _STATE["decided"]:
        with _LOCK:
            if not _STATE["decided"]:
                use_libdeflate(None)
