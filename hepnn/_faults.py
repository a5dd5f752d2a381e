"""Fault injection for the reliability tests (no effect unless a test asks for it).

Code that must survive a kill calls :func:`fault` at its dangerous points, e.g.
``"step"``, ``"checkpoint"`` and ``"epoch"`` in training, ``"convert-staged"`` and
``"convert-swap"`` in ``hepnn convert``, ``"explain-write"`` (after ``values.npz``) and
``"explain-swap"`` (between the renames) in ``hepnn explain``, ``"run-jobs"`` in the parent of
``hepnn run --jobs`` while its workers run, ``"run-step"`` before each one-process step of
``hepnn run``. A test either sets :data:`HOOK` (called as
``HOOK(point, info)``; it may raise to simulate a crash) or, in a subprocess, sets the
environment variable ``HEPNN_FAULT_AT=POINT:N``, which ends the process with
``os._exit(137)`` (like SIGKILL: no cleanup, no ``finally``) the N-th time POINT is reached.
``HEPNN_FAULT_SLEEP=POINT:SECONDS`` pauses there every time instead (a test that must act on
a batch job between two epochs, before tiny training finishes).
"""

from __future__ import annotations

import os
import time
from typing import Callable

__all__ = ["fault", "HOOK"]

HOOK: Callable[[str, dict], None] | None = None
_COUNTS: dict[str, int] = {}


def fault(point: str, info: dict | None = None) -> None:
    """A point where a test may crash or kill the process."""
    if HOOK is not None:
        HOOK(point, dict(info or {}))
    pause = os.environ.get("HEPNN_FAULT_SLEEP")
    if pause and pause.rsplit(":", 1)[0] == point:
        time.sleep(float(pause.rsplit(":", 1)[1]))
    spec = os.environ.get("HEPNN_FAULT_AT")
    if spec and spec.rsplit(":", 1)[0] == point:
        _COUNTS[point] = _COUNTS.get(point, 0) + 1
        if _COUNTS[point] == int(spec.rsplit(":", 1)[1]):
            os._exit(137)
