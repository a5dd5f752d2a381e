"""Start spawned worker processes without running the user's script again in each of them.

A process started with multiprocessing's ``spawn`` imports the parent's main module (as
``__mp_main__``) before it runs anything: a script that calls ``make_report`` or
``run_analysis(jobs=2)`` at its top level, without ``if __name__ == "__main__":``, would be run
again by every worker (training its model again) and then fail. hepnn's workers only run
hepnn's functions, so while they are started the parent's ``__main__`` is hidden behind an
empty module: a child imports nothing for it.

Examples
--------
>>> import sys
>>> main = sys.modules["__main__"]
>>> with main_module_hidden():
...     sys.modules["__main__"] is main
False
>>> sys.modules["__main__"] is main
True
"""

from __future__ import annotations

import contextlib
import sys
import types
from typing import Iterator

__all__ = ["main_module_hidden"]


@contextlib.contextmanager
def main_module_hidden() -> Iterator[None]:
    """Within the block, processes spawned here do not import the parent's ``__main__``."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")  # no __file__, no __spec__
    try:
        yield
    finally:
        if main is None:
            sys.modules.pop("__main__", None)
        else:
            sys.modules["__main__"] = main
