"""The fused tick pass (aion/pipeline/ticks.py) against a straightforward per-tick reference.

The reference decodes the same frames with ``decode_frames`` (TICK_DTYPE rows; the decoder is
cross-checked against kiteconnect in test_kite_protocol.py) and applies the compute engine's
rules one tick at a time in plain Python: exchange time filled from the running maximum,
validation, token -> slot, incremental volume, latest tick per slot, book rows.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from aion.bars.builder import BarBuilder
from aion.kite.decode import decode_frames, join_frames
from aion.kite.encode import encode_frame
from aion.kite.wire import MODE_FULL, MODE_LTP, MODE_QUOTE, TICK_DTYPE
from aion.market.time import from_ist, session_date
from aion.pipeline.book import BOOK_FIELDS, BookTracker
from aion.pipeline.ticks import TickPath
from aion.volume.state import VolumeStateManager

EQ = [738561, 779521, 2953217]  # NSE tokens (segment 1)
INDEX = 256265  # NSE index (segment 9)
UNKNOWN = 12345601
TOKENS = np.array(sorted([*EQ, INDEX]), np.int64)
T0 = from_ist(dt.date(2022, 11, 11), 15, 28, 0)  # the session ends; the next day follows
T1 = from_ist(dt.date(2022, 11, 14), 9, 15, 0)


def _tick(token: int, mode: int, price: float, volume: int, ts: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.zeros(1, TICK_DTYPE)
    t["instrument_token"] = token
    t["mode"] = mode
    t["last_price"] = price
    t["volume_traded"] = volume
    t["last_traded_quantity"] = rng.integers(1, 100)
    t["average_traded_price"] = round(price - 0.05, 2)
    t["total_buy_quantity"] = rng.integers(0, 10_000)
    t["total_sell_quantity"] = rng.integers(0, 10_000)
    t["depth_buy_quantity"] = rng.integers(0, 500, 5)
    t["depth_sell_quantity"] = rng.integers(0, 500, 5)
    t["oi"] = rng.integers(0, 1000) if mode == MODE_FULL else 0
    t["exchange_timestamp"] = ts if mode == MODE_FULL else 0
    t["close"] = price
    return t


def _frames(seed: int = 3, clean: bool = False) -> list[bytes]:
    """Frames of mixed packets; ``clean``: every timed packet is kept (no unknown token, zero
    price or absurd timestamp: their exchange time moves the running time that packets
    without one take within their chunk, but not the engine's clock between chunks)."""
    rng = np.random.default_rng(seed)
    frames: list[bytes] = [encode_frame(np.concatenate([_tick(EQ[0], MODE_LTP, 10.0, 0, 0, 1)]))]
    cum = {tok: int(rng.integers(0, 1000)) for tok in EQ}
    ts = T0
    for f in range(40):
        rows = []
        for j in range(int(rng.integers(1, 12))):
            tok = int(rng.choice([*EQ, INDEX] if clean else [*EQ, INDEX, UNKNOWN]))
            mode = int(rng.choice([MODE_LTP, MODE_QUOTE, MODE_FULL], p=[0.2, 0.2, 0.6]))
            ts += int(rng.integers(0, 9))
            if f == 25 and j == 0:
                ts = T1  # a new IST day
            price = round(float(rng.uniform(90, 110)), 2)
            if rng.random() < 0.05 and not clean:
                price = 0.0  # invalid
            if tok in cum:
                cum[tok] += int(rng.integers(-50, 400))  # sometimes falling: a bad tick
                cum[tok] = max(cum[tok], 0)
            t = _tick(tok, mode, price, cum.get(tok, 0), ts, seed * 1000 + f * 20 + j)
            if rng.random() < 0.03 and not clean:
                t["exchange_timestamp"] = 4_200_000_000  # 2103: invalid, and raises the clock
            rows.append(t)
        frames.append(encode_frame(np.concatenate(rows)))
        if f % 9 == 4:
            frames.append(b"\x00")  # heartbeat
        if f == 17:
            frames.append(frames[-2][:-3])  # truncated: nothing of it counts
    return frames


def _reference(frames: list[bytes], clock: int = 0) -> dict:
    ticks = decode_frames(frames).ticks
    slot_of = {int(t): s for s, t in enumerate(TOKENS)}
    running = clock
    out: dict = {"cols": [], "untimed": 0, "invalid": 0, "unknown": 0, "latest": {}, "book": []}
    seen: dict[int, tuple[int, int]] = {}  # slot -> (session date, last cumulative)
    for r in ticks:
        ets = int(r["exchange_timestamp"])
        running = max(running, ets)
        t = ets if ets > 0 else running
        untimed = t <= 0
        bad = (not untimed and not (946_684_800 <= t <= 4_102_444_800)) or not (r["last_price"] > 0)
        s = slot_of.get(int(r["instrument_token"]))
        out["untimed"] += untimed
        out["invalid"] += (not untimed) and bad
        out["unknown"] += s is None
        if untimed or bad or s is None:
            continue
        d = session_date(t)
        hv = int(r["mode"]) != MODE_LTP and bool(r["tradable"])
        c = int(r["volume_traded"])
        inc = 0
        if hv:
            if s not in seen:
                seen[s] = (d, c)
            elif d > seen[s][0]:
                seen[s], inc = (d, c), c
            elif d == seen[s][0] and c >= seen[s][1]:
                seen[s], inc = (d, c), c - seen[s][1]
        out["cols"].append((s, t, d, float(r["last_price"]), c, int(r["oi"]), inc))
        out["latest"][s] = (t, hv, float(r["last_price"]), int(r["mode"]), c,
                            int(r["last_traded_quantity"]),
                            float(r["average_traded_price"]), int(r["oi"]))  # fmt: skip
        if int(r["mode"]) == MODE_FULL and r["tradable"]:
            book = (float(r["total_buy_quantity"]), float(r["total_sell_quantity"]),
                    float(r["depth_buy_quantity"].sum()),
                    float(r["depth_sell_quantity"].sum()))  # fmt: skip
            out["book"].append((s, t, book))
    return out


class _Engine:
    """The state the compute engine hands to TickPath.run."""

    def __init__(self, restorable: np.ndarray | None = None) -> None:
        n = TOKENS.shape[0]
        self.path = TickPath(TOKENS, np.zeros(n, np.bool_) if restorable is None else restorable)
        self.seen = np.zeros(n, np.bool_)
        self.volume = VolumeStateManager(n)
        self.bars = BarBuilder(n)
        self.book = BookTracker(n)
        self.pending = np.zeros(n, np.bool_)
        self.clock = 0
        self.restored: list[tuple[int, int]] = []
        self.cols: list[tuple] = []
        self.closed: list[np.ndarray] = []
        self.counts = np.zeros(4, np.int64)

    def restore(self, s: int, date: int) -> None:
        self.restored.append((s, date))
        self.volume.restore(s, date, 0, 100)

    def run(self, frames: list[bytes]) -> None:
        joined = join_frames(frames)
        cols, n, closed = self.path.run(joined, self.clock, self.seen, self.volume, self.bars,
                                        self.book, self.pending, self.restore)  # fmt: skip
        self.clock = max(self.clock, n.max_ts)
        self.counts += (n.packets, n.untimed, n.invalid, n.unknown)
        self.cols += list(zip(cols.slot.tolist(), cols.ts.tolist(), cols.date.tolist(),
                              cols.price.tolist(), cols.volume_traded.tolist(), cols.oi.tolist(),
                              cols.incremental.tolist(), strict=True))  # fmt: skip
        self.closed.append(closed)


def test_tick_columns_counts_latest_and_book_equal_the_reference() -> None:
    frames = _frames()
    ref = _reference(frames)
    eng = _Engine()
    eng.run(frames)
    packets = decode_frames(frames).ticks.shape[0]
    assert eng.counts.tolist() == [packets, ref["untimed"], ref["invalid"], ref["unknown"]]
    assert ref["untimed"] >= 1 and ref["invalid"] >= 1 and ref["unknown"] >= 1
    assert eng.cols == ref["cols"]
    assert len({c[2] for c in ref["cols"]}) == 2  # both trading dates were crossed
    lt = eng.path.latest
    slots = lt.take()
    assert slots.tolist() == sorted(ref["latest"])
    for s in slots.tolist():
        got = (int(lt.ts[s]), bool(lt.has_volume[s]), float(lt.last_price[s]), int(lt.mode[s]),
               int(lt.volume_traded[s]), int(lt.last_traded_quantity[s]),
               float(lt.average_traded_price[s]), int(lt.oi[s]))  # fmt: skip
        assert got == ref["latest"][s]
    assert lt.take().shape[0] == 0  # take() cleared the marks
    # the book at any end: the full tick with the latest time before it (then latest arrival)
    for s in range(TOKENS.shape[0]):
        for end in (T0 + 30, T0 + 120, T1 + 60, T1 + 600):
            cand = [(t, i, b) for i, (bs, t, b) in enumerate(ref["book"]) if bs == s and t < end]
            want = dict(zip(BOOK_FIELDS, max(cand)[2], strict=True)) if cand else {}
            assert eng.book.at_close(s, end) == want


def test_bars_and_volume_equal_the_bar_builder_fed_the_reference_columns() -> None:
    frames = _frames(seed=5)
    ref = _reference(frames)
    eng = _Engine()
    eng.run(frames)
    cols = np.array([c[:2] + c[5:] for c in ref["cols"]], np.int64).reshape(-1, 4)
    price = np.array([c[3] for c in ref["cols"]], np.float64)
    builder = BarBuilder(TOKENS.shape[0])
    want = builder.update(cols[:, 0], cols[:, 1], price, cols[:, 3], cols[:, 2])
    assert np.array_equal(eng.closed[0], want)
    assert np.array_equal(eng.bars.close_all(), builder.close_all())
    assert eng.bars.late_ticks == builder.late_ticks
    # volume conservation: per slot, the increments sum to last - first cumulative
    v = eng.volume
    for s in range(TOKENS.shape[0]):
        if v.seen[s]:
            total = sum(c[6] for c in ref["cols"] if c[0] == s and c[2] == v.session[s])
            assert total == v.last_cumulative[s] - v.first_cumulative[s]


@pytest.mark.parametrize("per_chunk", [1, 3, 7])
def test_any_chunking_gives_the_same_results(per_chunk: int) -> None:
    frames = _frames(seed=9, clean=True)
    whole = _Engine()
    whole.run(frames)
    parts = _Engine()
    for lo in range(0, len(frames), per_chunk):
        parts.run(frames[lo : lo + per_chunk])
    assert parts.cols == whole.cols
    assert parts.counts.tolist() == whole.counts.tolist()
    assert np.array_equal(np.concatenate(parts.closed), np.concatenate(whole.closed))
    for a, b in zip(parts.volume.state(), whole.volume.state(), strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(parts.bars.close_all(), whole.bars.close_all())


def test_restore_runs_once_per_slot_before_its_volume_and_gap_flags_the_first_tick() -> None:
    frames = _frames(seed=11)
    ref = _reference(frames)
    first_eq = next(c for c in ref["cols"] if c[0] == 1 and c[4] > 0)  # slot 1: EQ[0]
    restorable = np.zeros(TOKENS.shape[0], np.bool_)
    restorable[1] = True
    eng = _Engine(restorable)
    eng.pending[2] = True  # slot 2 waits for its first tick after a feed gap
    eng.run(frames[:20])
    eng.run(frames[20:])
    first_date = next(c[2] for c in ref["cols"] if c[0] == 1)
    assert eng.restored == [(1, first_date)]
    # restored as "last cumulative 100": the first volume tick of that date yields cum - 100
    first_inc = next(c[6] for c in eng.cols if c[0] == 1 and c[4] > 0)
    assert first_eq[2] == first_date
    assert first_inc == (first_eq[4] - 100 if first_eq[4] >= 100 else 0)
    assert not eng.pending[2]
    gap_bars = np.concatenate([*eng.closed, eng.bars.close_all()])
    first_ts = next(c[1] for c in ref["cols"] if c[0] == 2)
    flagged = gap_bars[gap_bars["gap"]]
    assert flagged["slot"].tolist() == [2]
    assert int(flagged["start"][0]) == first_ts - first_ts % 60
