"""BookTracker: the book at a bar's close is the last full tick before the bar's end,
whatever the batching of the ticks."""

from __future__ import annotations

import numpy as np
import pytest

from aion.kite.wire import MODE_FULL, MODE_QUOTE, TICK_DTYPE
from aion.pipeline.book import BOOK_FIELDS, BookTracker

T0 = 1_668_138_300  # 2022-11-11 09:15 IST


def _ticks(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.zeros(n, TICK_DTYPE)
    t["mode"] = rng.choice([MODE_FULL, MODE_QUOTE], n, p=[0.8, 0.2])
    t["tradable"] = True
    t["total_buy_quantity"] = rng.integers(0, 10_000, n)
    t["total_sell_quantity"] = rng.integers(0, 10_000, n)
    t["depth_buy_quantity"] = rng.integers(0, 500, (n, 5))
    t["depth_sell_quantity"] = rng.integers(0, 500, (n, 5))
    slots = rng.integers(0, 3, n).astype(np.int64)
    ts = np.sort(T0 + rng.integers(0, 300, n)).astype(np.int64)
    return t, slots, ts


def _reference(t: np.ndarray, slots: np.ndarray, ts: np.ndarray, slot: int, end: int) -> dict:
    idx = np.flatnonzero((slots == slot) & (ts < end) & (t["mode"] == MODE_FULL))
    if idx.size == 0:
        return {}
    r = t[idx[-1]]
    vals = (
        r["total_buy_quantity"],
        r["total_sell_quantity"],
        r["depth_buy_quantity"].sum(),
        r["depth_sell_quantity"].sum(),
    )
    return dict(zip(BOOK_FIELDS, map(float, vals), strict=True))


def _feed(tracker: BookTracker, t: np.ndarray, slots: np.ndarray, ts: np.ndarray) -> None:
    """What the compute thread hands over: the full-mode ticks' book rows."""
    full = t["mode"] == MODE_FULL
    rows = np.column_stack(
        [
            t["total_buy_quantity"][full],
            t["total_sell_quantity"][full],
            t["depth_buy_quantity"][full].sum(axis=1),
            t["depth_sell_quantity"][full].sum(axis=1),
        ]
    ).astype(np.float64)
    tracker.on_ticks(slots[full], ts[full], rows)


@pytest.mark.parametrize("batch", [1, 7, 50, 1000])
def test_book_at_close_is_independent_of_batching(batch: int) -> None:
    t, slots, ts = _ticks(400, seed=batch)
    tracker = BookTracker(3)
    checked = 0
    for lo in range(0, t.shape[0], batch):
        hi = lo + batch
        _feed(tracker, t[lo:hi], slots[lo:hi], ts[lo:hi])
        # bars that close in this batch: every minute end the batch's clock has passed
        prev_clock = int(ts[lo - 1]) if lo else T0 - 1
        for end in range(T0 + 60, T0 + 360, 60):
            if prev_clock < end <= int(ts[min(hi, t.shape[0]) - 1]):
                for s in range(3):
                    assert tracker.at_close(s, end) == _reference(t, slots, ts, s, end)
                    checked += 1
    assert checked >= 3


def test_quote_only_instrument_has_no_book() -> None:
    t, slots, ts = _ticks(50, seed=1)
    t["mode"] = MODE_QUOTE
    tracker = BookTracker(3)
    _feed(tracker, t, slots, ts)
    assert tracker.at_close(0, T0 + 600) == {}


def test_out_of_order_ticks_pick_the_latest_time_then_the_latest_arrival() -> None:
    """Within a batch the book at a close is the full tick with the latest time before the
    bar's end (ties: the later arrival), as a sort by (slot, time, arrival) finds it."""
    tracker = BookTracker(2)
    slots = np.array([1, 1, 1, 1, 0], np.int64)
    ts = np.array([T0 + 30, T0 + 10, T0 + 30, T0 + 70, T0 + 5], np.int64)
    rows = np.arange(20, dtype=np.float64).reshape(5, 4)
    tracker.on_ticks(slots, ts, rows)
    assert tracker.at_close(1, T0 + 60) == dict(zip(BOOK_FIELDS, rows[2].tolist(), strict=True))
    assert tracker.at_close(1, T0 + 20) == dict(zip(BOOK_FIELDS, rows[1].tolist(), strict=True))
    assert tracker.at_close(0, T0 + 60) == dict(zip(BOOK_FIELDS, rows[4].tolist(), strict=True))
    assert tracker.at_close(1, T0 + 10) == {}  # nothing before, nothing stored before
    # the stored book moved to each slot's latest tick; the next batch falls back to it
    tracker.on_ticks(np.array([0], np.int64), np.array([T0 + 200]), rows[:1])
    assert tracker.at_close(1, T0 + 120) == dict(zip(BOOK_FIELDS, rows[3].tolist(), strict=True))
