"""The one way hepnn compiles a loop with numba: no GIL, cached on disk, no ``fastmath``.

Compiled loops in hepnn replace numpy formulations whose numbers are part of hepnn's
results, so they must give the same floating-point values to the last bit: the same
IEEE operations in the same order, hence no ``fastmath`` (no reassociation, no fused
multiply-add). Each module of compiled loops is tested against its numpy formulation.
Division follows IEEE, as numpy's (``error_model="numpy"``: x / 0 is inf or NaN, not
Python's ``ZeroDivisionError``), which also lets the compiler vectorise loops that divide.
"""

from __future__ import annotations

from typing import Callable

import numba

__all__ = ["jit"]


def jit(function: Callable) -> Callable:
    """``numba.njit`` without the GIL, cached on disk (next to the module, else in numba's user
    cache); where no cache location is writable, compiled in each process instead."""
    try:
        return numba.njit(nogil=True, cache=True, error_model="numpy")(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(nogil=True, error_model="numpy")(function)
