"""Memory bounds of the scan (issue 8/9): the compute step's byte budget on the raw queue,
the archive's pending-row bound, the heap trimmer and the ``memory:`` config section."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from aion.archive.store import Archive
from aion.archive.writer import ArchiveWriter
from aion.bars.builder import BAR_DTYPE
from aion.config import ConfigError
from aion.market.time import SEGMENT_REGULAR
from aion.pipeline.allocator import HeapTrimmer
from aion.pipeline.config import MemoryConfig
from aion.queues import BoundedQueue
from aion.store.batch import BarColumns, StoreBatch

DAY = dt.date(2022, 11, 11)
T0 = 1_668_138_300  # 2022-11-11 09:15 IST


def test_get_many_stops_at_the_byte_budget_and_frees_what_it_took() -> None:
    q: BoundedQueue[bytes] = BoundedQueue("raw", 100, max_bytes=1000, size_of=len)
    for i in range(8):
        assert q.put(bytes([i]) * 100)
    got = q.get_many(512, 0.1, max_bytes=250)
    # 100 + 100 < 250, the third reaches 300 >= 250: three items, in order
    assert got == [bytes([i]) * 100 for i in range(3)]
    assert q._bytes == 500  # the five left
    assert len(q.get_many(512, 0.1)) == 5  # no budget: everything
    assert q._bytes == 0


def test_get_many_always_takes_one_oversized_item() -> None:
    q: BoundedQueue[bytes] = BoundedQueue("raw", 100, max_bytes=10_000, size_of=len)
    q.put(b"x" * 5000)
    q.put(b"y")
    assert q.get_many(512, 0.1, max_bytes=10) == [b"x" * 5000]
    assert q.get_many(512, 0.1, max_bytes=10) == [b"y"]


def _bar_batch(symbol: str, start: int) -> StoreBatch:
    """One closed regular bar as the archive receives it (the bar builder's row)."""
    row = np.zeros(1, BAR_DTYPE)
    row[0] = (0, start, 100.0, 101.0, 99.0, 100.5, 10, 0, 4, SEGMENT_REGULAR, 0, False)
    return StoreBatch(bar_columns=[BarColumns(row, np.array([20221111]), [symbol])])


def test_archive_writes_early_when_pending_rows_reach_the_bound(tmp_path: Path) -> None:
    q: BoundedQueue[StoreBatch] = BoundedQueue("archive", 100)
    # an interval far beyond the test: only the row bound can trigger the writes
    w = ArchiveWriter(Archive(tmp_path), q, flush_interval_s=3600.0, max_pending_rows=3)
    w.start()
    for i in range(7):
        w.submit(_bar_batch(f"NSE:S{i}", T0))
    deadline = time.monotonic() + 10
    while len(Archive(tmp_path).parts("bars_1m", DAY)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    parts = Archive(tmp_path).parts("bars_1m", DAY)
    assert len(parts) == 2  # rows 1-3 and 4-6; the 7th waits (below the bound)
    assert Archive(tmp_path).read("bars_1m", [DAY]).height == 6
    w.stop()
    got = Archive(tmp_path).read("bars_1m", [DAY])
    assert sorted(got["symbol"].to_list()) == [f"NSE:S{i}" for i in range(7)]


def test_trimmer_off_and_rate_limited() -> None:
    off = HeapTrimmer(0.0)
    assert not off.maybe_trim() and off.trims == 0
    t = HeapTrimmer(3600.0)
    assert not t.maybe_trim()  # the interval starts at construction
    t._last -= 3601.0
    if t._libc is None:  # not glibc: nothing to do, never trims
        assert not t.maybe_trim()
        return
    assert t.maybe_trim() and t.trims == 1
    assert not t.maybe_trim() and t.trims == 1


_TRIM_CHILD = textwrap.dedent(
    """
    import os
    from aion.pipeline.allocator import HeapTrimmer, tune_malloc

    def rss_mb():
        with open(f"/proc/{os.getpid()}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024

    assert tune_malloc(64 << 20, 1 << 30)  # a trim threshold the test heap never reaches
    blocks = [bytearray(b"x" * (256 << 10)) for _ in range(800)]  # 200 MiB on the heap
    keep = blocks[-1]  # pins the heap top: free pages lie below it
    del blocks
    before = rss_mb()
    t = HeapTrimmer(1e-9)
    assert t.maybe_trim()
    print(before, rss_mb())
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_trim_returns_freed_heap_pages_to_the_kernel() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _TRIM_CHILD], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    before, after = map(float, out.stdout.split())
    assert before - after > 150, (before, after)  # of the 200 MiB freed below the top


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"mmap_threshold_mb": 0}, "memory.mmap_threshold_mb"),
        ({"trim_threshold_mb": -1}, "memory.trim_threshold_mb"),
        ({"trim_interval_s": -0.5}, "memory.trim_interval_s"),
    ],
)
def test_memory_config_rejects_bad_values(kwargs: dict[str, float], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        MemoryConfig(**kwargs)  # type: ignore[arg-type]


def test_store_shadow_keeps_long_values_as_fingerprints_and_still_sees_changes() -> None:
    from aion.store.shadow import FINGERPRINT_MIN_CHARS, hset_changed

    short, long_ = "123.45", "p" * (FINGERPRINT_MIN_CHARS + 500)
    sent, cmd = hset_changed("k", {"a": short, "bins": long_}, None)
    # the shadow holds the short text and a 64-bit int for the long one, not its 564 chars
    assert sent["a"] == short and isinstance(sent["bins"], int)
    assert cmd.endswith(f"${len(long_)}\r\n{long_}\r\n")  # Redis still gets the full text
    # unchanged: nothing to send; one character changed in the long value: it is sent
    assert hset_changed("k", {"a": short, "bins": long_}, sent) == ({}, "")
    changed = long_[:-1] + "q"
    sent2, cmd2 = hset_changed("k", {"a": short, "bins": changed}, sent)
    assert list(sent2) == ["bins"] and cmd2 == (
        f"*4\r\n$4\r\nHSET\r\n$1\r\nk\r\n$4\r\nbins\r\n${len(changed)}\r\n{changed}\r\n"
    )
    # non-ASCII long values are packed from the text (bytes lengths), not from the shadow
    uni = "₹" * (FINGERPRINT_MIN_CHARS + 1)
    _, cmd3 = hset_changed("k", {"u": uni}, None)
    assert cmd3.endswith(f"${len(uni.encode())}\r\n{uni}\r\n")
