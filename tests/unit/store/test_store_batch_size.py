"""``StoreBatch.nbytes``: the compute -> store queue bound counts a batch's arrays exactly and
its dict entries roughly, and is the same number every time it is asked (the queue subtracts
what it added)."""

from __future__ import annotations

import numpy as np

from aion.queues import BoundedQueue
from aion.store.batch import ENTRY_BYTES, StateColumns, StoreBatch
from aion.store.encode import render_cells


def _batch(rows: int) -> StoreBatch:
    cells = render_cells(np.arange(rows * 3, dtype=np.float64).reshape(rows, 3), [2, 2, -1], "nan")
    keys = [f"k{i}" for i in range(rows)]
    b = StoreBatch(columns=[StateColumns("tick", ("a", "b", "c"), keys, cells)])
    b.state["aion:x"] = {"f": "1", "g": "2"}
    return b


def test_nbytes_counts_arrays_and_entries() -> None:
    b = _batch(1000)
    c = b.columns[0].cells
    arrays = c.text.nbytes + c.start.nbytes + c.end.nbytes
    assert arrays >= 1000 * 3 * 16  # two int64 offsets per cell at least
    assert b.nbytes() == arrays + 3 * ENTRY_BYTES  # one key + two fields
    assert b.nbytes() == b.nbytes()
    assert StoreBatch().nbytes() == 0


def test_out_queue_blocks_on_bytes_then_frees_them() -> None:
    big = _batch(20_000)
    q: BoundedQueue[StoreBatch] = BoundedQueue(
        "out", 1000, "block", 0.05, max_bytes=big.nbytes() + 1, size_of=StoreBatch.nbytes
    )
    assert q.put(big)
    assert not q.put(_batch(10))  # no room: waited 50 ms, then dropped and counted
    assert q.stats.dropped == 1
    assert q.get_many(10, timeout=0.1) == [big]
    assert q.put(_batch(10))  # the bytes were given back
