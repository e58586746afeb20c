"""``queues:``, ``memory:``, ``threads:``: the bounded queues between the threads, the
allocator and garbage collector, and thread scheduling of a scan."""

from __future__ import annotations

from dataclasses import dataclass

from aion.config_checks import ConfigError, check_positive


@dataclass(frozen=True)
class QueuesConfig:
    raw_maxsize: int = 20_000
    raw_max_mb: int = 32
    compute_batch_mb: int = 32
    out_maxsize: int = 20_000
    out_max_mb: int = 128
    block_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        check_positive("queues.raw_maxsize", self.raw_maxsize)
        check_positive("queues.raw_max_mb", self.raw_max_mb)
        check_positive("queues.compute_batch_mb", self.compute_batch_mb)
        check_positive("queues.out_maxsize", self.out_maxsize)
        check_positive("queues.out_max_mb", self.out_max_mb)
        check_positive("queues.block_timeout_s", self.block_timeout_s)


@dataclass(frozen=True)
class MemoryConfig:
    """``memory:``: glibc allocator settings (see :mod:`aion.pipeline.allocator`) and
    CPython's cyclic garbage collector during a scan.

    ``gc_thresholds``: :func:`gc.set_threshold` ``(gen0, gen1, gen2)`` while a scan runs
    (restored by :meth:`aion.app.Scanner.stop`; CPython's default is ``(700, 10, 10)``). A
    minute close of 9,000 instruments allocates on the order of 10^5 short-lived containers,
    so the default runs a generation-0 collection every 700 of them and periodically a full
    one over every tracked object; the default ``(50000, 20, 20)`` collects far less often
    (decision and measurements: ``docs/decisions/0001-gc-thresholds.md``).
    """

    mmap_threshold_mb: int = 1
    trim_threshold_mb: int = 64
    trim_interval_s: float = 1.0
    gc_thresholds: tuple[int, ...] = (50_000, 20, 20)

    def __post_init__(self) -> None:
        if len(self.gc_thresholds) != 3 or any(t < 1 for t in self.gc_thresholds):
            raise ConfigError(
                "memory.gc_thresholds: must be three integers >= 1 (gen0, gen1, gen2; "
                f"CPython's default is [700, 10, 10]), got {list(self.gc_thresholds)!r}"
            )
        check_positive("memory.mmap_threshold_mb", self.mmap_threshold_mb)
        check_positive("memory.trim_threshold_mb", self.trim_threshold_mb)
        if self.trim_interval_s < 0:
            raise ConfigError(
                f"memory.trim_interval_s: must be >= 0 seconds (0 = never), "
                f"got {self.trim_interval_s!r}"
            )


@dataclass(frozen=True)
class ThreadsConfig:
    """``threads:``: CPython thread scheduling of a scan (set by :meth:`aion.app.Scanner.start`).

    ``gil_switch_interval_ms``: :func:`sys.setswitchinterval` in milliseconds, how long a
    thread waiting for the GIL lets the running one keep it before asking it to drop it
    (CPython's default is 5). A thread coming back from a call that released the GIL (numpy,
    Numba ``nogil`` kernels, socket I/O) waits up to this long while another thread runs
    Python code, per call; the default 0.5 ms keeps the compute thread's minute close from
    waiting on the feed and store threads (decision and measurements:
    ``docs/decisions/0002-gil-hand-offs.md``).
    """

    gil_switch_interval_ms: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.gil_switch_interval_ms <= 100.0:
            raise ConfigError(
                "threads.gil_switch_interval_ms: must be > 0 and <= 100 milliseconds "
                f"(CPython's default is 5), got {self.gil_switch_interval_ms!r}"
            )
