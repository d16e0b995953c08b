"""Memory freed by a step handed back to the system, so the next step's peak does not stand
on it: arrow's allocator keeps freed pages, and C's keeps them in per-thread arenas (a
million-row load in two threads leaves a few hundred MB there until told otherwise)."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

import pyarrow as pa


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, None elsewhere (musl, macOS: nothing to call)."""
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    return trim if callable(trim) else None


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Return the pages the allocators hold free (arrow's pool, then C's arenas)."""
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)
