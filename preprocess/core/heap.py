"""Give freed heap memory back to the operating system (glibc ``malloc_trim``).

glibc keeps memory freed by large numpy/torch temporaries in its heaps for reuse; a process that
has just dropped the quality gate's or the model's temporaries still holds 100-150 MB of them
(``bench/memory_night.py``), and the next stage's own allocations (a whole-night array is one
``mmap``) come on top. :func:`trim` at the boundaries of the staging pipeline returns that memory.
Elsewhere (musl, macOS, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_libc = None


def trim() -> bool:
    """``malloc_trim(0)`` where glibc provides it (True when it returned memory)."""
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    if _libc is None:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc = lib if hasattr(lib, "malloc_trim") else False
        except OSError:
            _libc = False
    if not _libc:
        return False
    return bool(_libc.malloc_trim(0))


__all__ = ["trim"]
