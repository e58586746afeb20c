"""Process-level tuning of glibc's allocator for the compute thread's batch arrays.

glibc serves allocations above ``M_MMAP_THRESHOLD`` (128 KiB by default, adapted upwards
to up to 32 MiB after such a block is freed) with a fresh ``mmap`` that goes back to the
kernel at ``free``; smaller ones come from the heap, whose free memory is returned only
above ``M_TRIM_THRESHOLD`` at the heap top, or by ``malloc_trim(0)``, which also releases
free pages inside the heap.

aion sets a fixed 1 MiB mmap threshold (``memory.mmap_threshold_mb``). Blocks of megabytes
(a minute close's columns, the store's rendered text, which grows with the session's
profiles) then never sit in the heap between long-lived small blocks, where they made the
heap grow by fragmentation all session long although the bytes in use did not. The price
is a page fault per 4 KiB of each such block, so the per-chunk arrays of the tick path are
reused instead of allocated (decision and measurements:
``docs/decisions/0003-mmap-threshold.md``).

The trim threshold (``memory.trim_threshold_mb`` = 64) keeps freed heap tops for reuse.
:class:`HeapTrimmer` calls ``malloc_trim(0)`` at most once per interval from the compute
thread, between batches (about 4 ms per call).

Source: ``mallopt(3)`` (``M_MMAP_THRESHOLD`` = -3, ``M_TRIM_THRESHOLD`` = -1),
``malloc_trim(3)``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (has ``mallopt`` and ``malloc_trim``), else None."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018 - probe: musl and others lack these
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def tune_malloc(mmap_threshold: int = 1 << 20, trim_threshold: int = 64 << 20) -> bool:
    """Set glibc's mmap and trim thresholds (bytes); False where libc is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
    return ok and libc.mallopt(M_TRIM_THRESHOLD, int(trim_threshold)) == 1


class HeapTrimmer:
    """Returns free heap pages to the kernel (``malloc_trim(0)``) at most once per interval.

    Args:
        interval_s: minimum seconds (monotonic clock) between two trims; 0 disables it.

    :meth:`maybe_trim` is meant for a loop that runs between batches (the compute
    thread): it costs one clock read when no trim is due. Does nothing where libc is
    not glibc. ``trims`` counts the calls made.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._libc = _glibc() if interval_s > 0 else None
        self._last = time.monotonic()
        self.trims = 0

    def maybe_trim(self) -> bool:
        """Trim if the interval has passed since the last trim; True when it trimmed."""
        if self._libc is None:
            return False
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return False
        self._libc.malloc_trim(0)
        self._last = time.monotonic()
        self.trims += 1
        return True
