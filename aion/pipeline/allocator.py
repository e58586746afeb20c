"""Process-level tuning of glibc's allocator for the compute thread's batch arrays.

Every batch allocates a few columnar arrays of a few megabytes (a 184-byte full
packet becomes a 336-byte :data:`~aion.kite.protocol.TICK_DTYPE` row). glibc
serves allocations above ``M_MMAP_THRESHOLD`` (128 KiB by default, adapted
upwards only after such a block is freed) with a fresh ``mmap`` and returns
freed heap tops above ``M_TRIM_THRESHOLD`` to the kernel, so each batch paid
one page fault per 4 KiB it wrote: measured here, decoding 400 frames (40,000
packets) took 6.3 ms with the defaults and 2.3 ms with a 64 MiB mmap threshold.

The price is memory that glibc keeps after it is freed. The trim threshold
applies to each arena (one per thread that allocates, up to 8 per core), and
freed blocks below the heap top are never returned by the threshold alone.
Measured with 9,000 instruments replayed at max speed (10 session minutes,
archive off): with a 128 MiB trim threshold the arenas held 517 MiB of which
284 MiB were free (``mallinfo2``), RSS 1,036 MiB; a 16 MiB threshold left
158 MiB free; ``malloc_trim(0)`` (which also releases free pages inside the
heap) returned 128 MiB more at a cost of about 4 ms per call. :class:`HeapTrimmer`
calls it at most once per interval from the compute thread, between batches. The default
trim threshold (``memory.trim_threshold_mb`` = 64) stays above one 22 MiB decode chunk
(:data:`aion.pipeline.compute.MAX_CHUNK_PACKETS` rows of 336 bytes), so the decode arrays
are reused; compute-only CPU time with these settings was within 5% of the old ones.

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


def tune_malloc(mmap_threshold: int = 64 << 20, trim_threshold: int = 64 << 20) -> bool:
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
