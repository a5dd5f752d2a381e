"""The one way hepnn compiles a loop with numba: no GIL, cached on disk, no ``fastmath``.

Compiled loops in hepnn replace numpy formulations whose numbers are part of hepnn's
results, so they must give the same floating-point values to the last bit: the same
IEEE operations in the same order, hence no ``fastmath`` (no reassociation, no fused
multiply-add). Each module of compiled loops is tested against its numpy formulation.
Division follows IEEE, as numpy's (``error_model="numpy"``: x / 0 is inf or NaN, not
Python's ``ZeroDivisionError``), which also lets the compiler vectorise loops that divide.

**Numba's extensions are left for whoever needs them.** Before its first compilation in a
process numba runs every installed package's ``numba_extensions`` entry point (awkward's
and vector's here: ~0.9 s of imports and registrations on a 2-core machine, in every
process that reads a file). hepnn's loops take numpy arrays only, so they are loaded
(or compiled) without running them; the entry points still run, as numba does it, before
the first compilation of any other function in the process (the user's ``@numba.njit``
on awkward arrays works as without hepnn).
"""

from __future__ import annotations

from typing import Any, Callable

import numba

__all__ = ["jit"]


def jit(function: Callable) -> Callable:
    """``numba.njit`` without the GIL, cached on disk (next to the module, else in numba's user
    cache); where no cache location is writable, compiled in each process instead."""
    try:
        dispatcher = numba.njit(nogil=True, cache=True, error_model="numpy")(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        dispatcher = numba.njit(nogil=True, error_model="numpy")(function)
    return _without_extensions(dispatcher)


def _without_extensions(dispatcher: Any) -> Any:
    """``dispatcher`` whose compilations (or cache loads) do not run numba's extension entry
    points when nothing has run them yet; unchanged where numba's internals differ."""
    try:
        from numba.core import entrypoints
        from numba.core.compiler_lock import global_compiler_lock

        compile_for_args = dispatcher._compile_for_args
        entrypoints._already_initialized  # noqa: B018 (numba >= 0.56's flag, else unchanged)
    except (ImportError, AttributeError):
        return dispatcher

    def _compile_for_args(*args: Any, **kwargs: Any) -> Any:
        # numba compiles under this (re-entrant) lock: no other compilation sees the flag
        # set; it is restored unless an extension ran meanwhile
        with global_compiler_lock:
            if entrypoints._already_initialized:
                return compile_for_args(*args, **kwargs)
            entrypoints._already_initialized = True
            try:
                return compile_for_args(*args, **kwargs)
            finally:
                entrypoints._already_initialized = False

    try:
        dispatcher._compile_for_args = _compile_for_args
    except AttributeError:
        return dispatcher
    return dispatcher
