"""The reader's allocator settings: :func:`hepnn._memory.bound_allocator`, kept importable here."""

from __future__ import annotations

from .._memory import bound_allocator

__all__ = ["bound_allocator"]
