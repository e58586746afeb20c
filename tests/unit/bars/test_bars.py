"""BarBuilder (1-minute OHLCV bars keyed by exchange time) and aion.market.time.

Tick sequences are hand-built in IST with ``from_ist``; expected bars are computed by hand.
Time helpers are checked against Python's ``datetime``/``zoneinfo``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aion.bars.builder import BAR_DTYPE, BarBuilder
from aion.market.time import (
    from_ist,
    minute_of_day_ist,
    minute_start,
    parse_date,
    segment_of,
    session_date,
    session_dates,
    to_ist,
)

DAY = dt.date(2022, 11, 11)
KOLKATA = ZoneInfo("Asia/Kolkata")


def t(hh: int, mm: int, ss: int = 0, day: dt.date = DAY) -> int:
    return from_ist(day, hh, mm, ss)


Tick = tuple[int, int, float, int]  # slot, ts, price, incremental volume


def feed(bb: BarBuilder, ticks: list[Tick], oi: list[int] | None = None) -> np.ndarray:
    if not ticks:
        return bb.update(
            np.array([], np.int64),
            np.array([], np.int64),
            np.array([], np.float64),
            np.array([], np.int64),
            np.array([], np.int64),
        )
    s, ts, p, v = zip(*ticks, strict=True)
    return bb.update(
        np.array(s, np.int64),
        np.array(ts, np.int64),
        np.array(p, np.float64),
        np.array(v, np.int64),
        np.array(oi if oi is not None else [0] * len(ticks), np.int64),
    )


def rows(bars: np.ndarray) -> list[tuple]:
    """(slot, start, open, high, low, close, volume, ticks, segment) per bar."""
    assert bars.dtype == BAR_DTYPE
    return [
        (
            int(b["slot"]),
            int(b["start"]),
            float(b["open"]),
            float(b["high"]),
            float(b["low"]),
            float(b["close"]),
            int(b["volume"]),
            int(b["ticks"]),
            int(b["segment"]),
        )
        for b in bars
    ]


# ------------------------------------------------------------------------ bars
def test_start_labelled_minutes() -> None:
    bb = BarBuilder()
    closed = feed(bb, [(0, t(9, 15, 0), 100.0, 10), (0, t(9, 15, 59), 101.0, 5),
                       (0, t(9, 16, 0), 102.0, 7)])  # fmt: skip
    assert rows(closed) == [(0, t(9, 15), 100.0, 101.0, 100.0, 101.0, 15, 2, 1)]
    assert to_ist(int(closed["start"][0])).strftime("%H:%M:%S") == "09:15:00"
    rest = bb.close_all()
    assert rows(rest) == [(0, t(9, 16), 102.0, 102.0, 102.0, 102.0, 7, 1, 1)]
    assert bb.bars_closed == 2
    assert bb.late_ticks == 0


def test_ohlc_volume_and_oi_from_ticks() -> None:
    bb = BarBuilder()
    ticks = [(3, t(10, 20, 1), 100.0, 4), (3, t(10, 20, 10), 105.5, 0),
             (3, t(10, 20, 20), 98.25, 11), (3, t(10, 20, 30), 103.0, 6)]  # fmt: skip
    assert feed(bb, ticks, oi=[500, 0, 520, 0]).shape == (0,)
    (bar,) = bb.close_all()
    assert rows(np.array([bar]))[0] == (3, t(10, 20), 100.0, 105.5, 98.25, 103.0, 21, 4, 1)
    assert int(bar["oi"]) == 520  # last non-zero OI of the bar


@pytest.mark.parametrize(
    ("hh", "mm", "segment"),
    [(9, 0, 0), (9, 8, 0), (9, 14, 0), (9, 15, 1), (12, 0, 1), (15, 29, 1), (15, 30, 2),
     (15, 45, 2)],
)  # fmt: skip
def test_segment_of_bars(hh: int, mm: int, segment: int) -> None:
    bb = BarBuilder()
    feed(bb, [(0, t(hh, mm, 30), 10.0, 1)])
    (bar,) = bb.close_all()
    assert int(bar["start"]) == t(hh, mm)
    assert int(bar["segment"]) == segment


def test_bar_closes_when_its_instrument_ticks_later() -> None:
    bb = BarBuilder()
    assert feed(bb, [(0, t(9, 15, 10), 100.0, 1)]).shape == (0,)
    assert feed(bb, [(0, t(9, 15, 40), 100.5, 2)]).shape == (0,)  # same minute: still forming
    closed = feed(bb, [(0, t(9, 17, 5), 99.0, 3)])  # a gap minute: no empty bar is invented
    assert rows(closed) == [(0, t(9, 15), 100.0, 100.5, 100.0, 100.5, 3, 2, 1)]


def test_exchange_clock_closes_bars_of_quiet_instruments() -> None:
    bb = BarBuilder()
    assert feed(bb, [(0, t(9, 15, 10), 100.0, 1), (1, t(9, 15, 20), 50.0, 2)]).shape == (0,)
    # slot 2 moves the clock to 09:16: slots 0 and 1 close without ticking again
    closed = feed(bb, [(2, t(9, 16, 1), 10.0, 3)])
    assert rows(closed) == [
        (0, t(9, 15), 100.0, 100.0, 100.0, 100.0, 1, 1, 1),
        (1, t(9, 15), 50.0, 50.0, 50.0, 50.0, 2, 1, 1),
    ]
    assert bb.clock == t(9, 16, 1)
    assert rows(bb.close_all()) == [(2, t(9, 16), 10.0, 10.0, 10.0, 10.0, 3, 1, 1)]
    assert bb.close_all().shape == (0,)


def test_clock_close_within_one_batch() -> None:
    bb = BarBuilder()
    closed = feed(bb, [(0, t(9, 15, 10), 100.0, 1), (1, t(9, 16, 1), 50.0, 2)])
    assert rows(closed) == [(0, t(9, 15), 100.0, 100.0, 100.0, 100.0, 1, 1, 1)]
    assert rows(bb.close_all()) == [(1, t(9, 16), 50.0, 50.0, 50.0, 50.0, 2, 1, 1)]


def test_late_tick_goes_to_forming_bar_without_touching_prices() -> None:
    bb = BarBuilder()
    closed = feed(bb, [(0, t(9, 15, 10), 100.0, 10), (0, t(9, 16, 5), 101.0, 5)])
    assert [r[1] for r in rows(closed)] == [t(9, 15)]
    assert feed(bb, [(0, t(9, 15, 50), 999.0, 7)]).shape == (0,)  # older than the forming bar
    assert bb.late_ticks == 1
    assert rows(bb.close_all()) == [(0, t(9, 16), 101.0, 101.0, 101.0, 101.0, 12, 1, 1)]


def test_late_tick_of_closed_minute_is_carried_to_next_bar() -> None:
    bb = BarBuilder()
    feed(bb, [(0, t(9, 15, 10), 100.0, 10)])
    closed = feed(bb, [(1, t(9, 16, 5), 20.0, 1)])  # clock closes slot 0's 09:15
    assert [r[:2] for r in rows(closed)] == [(0, t(9, 15))]
    assert feed(bb, [(0, t(9, 15, 30), 999.0, 7)]).shape == (0,)  # late: carried
    assert bb.late_ticks == 1
    feed(bb, [(0, t(9, 16, 30), 101.0, 3)])
    out = rows(bb.close_all())
    assert (0, t(9, 16), 101.0, 101.0, 101.0, 101.0, 10, 1, 1) in out


def test_late_tick_volume_survives_close_all() -> None:
    bb = BarBuilder()
    feed(bb, [(0, t(15, 29, 10), 100.0, 10)])
    feed(bb, [(1, t(15, 30, 5), 20.0, 1)])  # closes slot 0's 15:29
    feed(bb, [(0, t(15, 29, 40), 100.0, 7)])  # late, carried; slot 0 never ticks again
    final = [b for b in bb.close_all() if b["slot"] == 0]
    # the 15:29 bar is re-emitted as a revision holding the late volume (store overwrites it)
    assert [(int(b["start"]), int(b["volume"]), int(b["revision"])) for b in final] == [
        (t(15, 29), 17, 1)
    ]
    assert bb.carry[0] == 0


def test_bars_identical_whatever_the_batch_split() -> None:
    ticks = [(0, t(9, 15, 10), 100.0, 10), (1, t(9, 16, 5), 20.0, 1), (0, t(9, 15, 50), 90.0, 7)]
    one = BarBuilder()
    a = rows(np.concatenate([feed(one, ticks), one.close_all()]))
    two = BarBuilder()
    b = rows(np.concatenate([feed(two, ticks[:2]), feed(two, ticks[2:]), two.close_all()]))
    assert a == b


def test_results_sorted_by_start_then_slot() -> None:
    bb = BarBuilder()
    first = feed(bb, [(5, t(9, 20, 1), 1.0, 1), (2, t(9, 20, 2), 1.0, 1),
                      (9, t(9, 21, 3), 1.0, 1), (0, t(9, 21, 4), 1.0, 1)])  # fmt: skip
    assert [(int(b["start"]), int(b["slot"])) for b in first] == [(t(9, 20), 2), (t(9, 20), 5)]
    # slot 9 closes by its own tick, slot 0 by the clock, both 09:21; slot 4 closes its 09:20
    closed = feed(bb, [(4, t(9, 20, 30), 1.0, 1), (9, t(9, 22, 0), 1.0, 1),
                       (3, t(9, 22, 1), 1.0, 1)])  # fmt: skip
    keys = [(int(b["start"]), int(b["slot"])) for b in closed]
    assert keys == [(t(9, 20), 4), (t(9, 21), 0), (t(9, 21), 9)]
    rest = [(int(b["start"]), int(b["slot"])) for b in bb.close_all()]
    assert rest == [(t(9, 22), 3), (t(9, 22), 9)]


def test_capacity_growth_keeps_forming_bars() -> None:
    bb = BarBuilder(capacity=1)
    feed(bb, [(0, t(9, 15, 1), 10.0, 1)])
    feed(bb, [(500, t(9, 15, 2), 20.0, 2), (0, t(9, 15, 3), 11.0, 3)])
    out = rows(bb.close_all())
    assert out == [
        (0, t(9, 15), 10.0, 11.0, 10.0, 11.0, 4, 2, 1),
        (500, t(9, 15), 20.0, 20.0, 20.0, 20.0, 2, 1, 1),
    ]


_stream = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.integers(0, 6 * 60),  # seconds after 09:14:00 IST, any order
        st.floats(1.0, 1000.0, allow_nan=False),
        st.integers(0, 1000),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(_stream, st.lists(st.integers(0, 80), max_size=6))
def test_volume_is_conserved_whatever_the_batch_split(
    raw: list[tuple[int, int, float, int]], cuts: list[int]
) -> None:
    base = t(9, 14)
    ticks = [(s, base + off, p, v) for s, off, p, v in raw]
    bb = BarBuilder(capacity=1)
    bounds = sorted({min(c, len(ticks)) for c in cuts} | {0, len(ticks)})
    out = [feed(bb, ticks[a:b]) for a, b in itertools.pairwise(bounds)]
    out.append(bb.close_all())
    bars = np.concatenate(out)
    fed: dict[int, int] = defaultdict(int)
    for s, _, _, v in ticks:
        fed[s] += v
    final: dict[tuple[int, int], int] = {}  # (slot, start) -> volume of the latest revision
    for b in bars:
        final[(int(b["slot"]), int(b["start"]))] = int(b["volume"])
    got: dict[int, int] = defaultdict(int)
    for (s, _start), v in final.items():
        got[s] += v
    for s in range(4):
        assert got[s] == fed[s], s
    for part in out:
        keys = [(int(b["start"]), int(b["slot"])) for b in part]
        assert keys == sorted(keys)
    # one bar per (slot, minute), start-labelled, prices from that slot's ticks in that minute
    seen = set()
    for b in bars[bars["revision"] == 0]:
        key = (int(b["slot"]), int(b["start"]))
        assert key not in seen
        seen.add(key)
        assert key[1] % 60 == 0
        prices = [p for s, ts, p, _ in ticks if s == key[0] and ts - ts % 60 == key[1]]
        assert float(b["open"]) in prices
        assert min(prices) <= float(b["low"]) <= float(b["high"]) <= max(prices)
        assert float(b["low"]) <= float(b["close"]) <= float(b["high"])
    assert bb.late_ticks <= len(ticks)


# ------------------------------------------------------------------------ market time
_epochs = st.integers(
    int(dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp()),
    int(dt.datetime(2040, 1, 1, tzinfo=dt.UTC).timestamp()),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_epochs, min_size=1, max_size=20))
def test_session_dates_and_minutes_vs_datetime(epochs: list[int]) -> None:
    arr = np.array(epochs, np.int64)
    ref = [dt.datetime.fromtimestamp(e, tz=KOLKATA) for e in epochs]
    assert session_dates(arr).tolist() == [r.year * 10_000 + r.month * 100 + r.day for r in ref]
    assert [session_date(e) for e in epochs] == session_dates(arr).tolist()
    assert minute_of_day_ist(arr).tolist() == [r.hour * 60 + r.minute for r in ref]
    expected_seg = [
        0 if (r.hour, r.minute) < (9, 15) else 1 if (r.hour, r.minute) < (15, 30) else 2
        for r in ref
    ]
    assert segment_of(arr).tolist() == expected_seg
    assert segment_of(arr).dtype == np.int8
    starts = minute_start(arr)
    assert [to_ist(int(s)) for s in starts] == [r.replace(second=0) for r in ref]


def test_ist_boundaries_around_midnight() -> None:
    # 18:29:59 UTC is 23:59:59 IST; 18:30:00 UTC is the next IST day
    e = int(dt.datetime(2022, 11, 10, 18, 29, 59, tzinfo=dt.UTC).timestamp())
    arr = np.array([e, e + 1], np.int64)
    assert session_dates(arr).tolist() == [20221110, 20221111]
    assert minute_of_day_ist(arr).tolist() == [1439, 0]
    assert from_ist(DAY, 0, 0, 0) == e + 1
    assert from_ist(DAY, 9, 15) == int(dt.datetime(2022, 11, 11, 3, 45, tzinfo=dt.UTC).timestamp())


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2022-11-11", dt.date(2022, 11, 11)), ("20221111", dt.date(2022, 11, 11)),
     ("2024-02-29", dt.date(2024, 2, 29))],
)  # fmt: skip
def test_parse_date(text: str, expected: dt.date) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["2022/11/11", "11-11-2022", "2023-02-29", "", "2022-13-01"])
def test_parse_date_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad date"):
        parse_date(text)
