"""A restart must not start again a minute whose bar is already stored (CI's crash-restart
failure, ASIANPAINT 777,156 of 809,771 shares in bars): the killed scan closed the bar of
09:20 because another instrument's tick entered 09:21, and stored it; the restarted scan then
received this instrument's late tick of 09:20 first. Without the stored bar reopened, that
tick opened a fresh 09:20 bar holding only its own increment, which overwrote the stored one
and lost its volume. Written through the real store into a real redis-server."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import redis

from aion.config import load_config, load_patterns
from aion.instruments.master import InstrumentMaster
from aion.kite.encode import encode_frame
from aion.kite.wire import TICK_DTYPE
from aion.market.time import from_ist
from aion.patterns.registry import PatternEngine
from aion.pipeline.compute import ComputeEngine
from aion.pipeline.outputs import CollectedOutputs
from aion.queues import BoundedQueue
from aion.store.queries import read_bars, read_restart_state
from aion.store.writer import RedisStore, TtlSeconds

DAY = dt.date(2022, 11, 11)
DATE = 20221111
A, B = "NSE:ASIANPAINT", "NSE:SBIN"


def _frame(rows: list[tuple[int, float, int, int]]) -> bytes:
    """One full-mode frame of ``(token, last_price, volume_traded, exchange_timestamp)``."""
    a = np.zeros(len(rows), TICK_DTYPE)
    a["mode"] = 3
    a["packet_length"] = 184
    a["tradable"] = True
    for i, (tok, price, volume, ts) in enumerate(rows):
        a["instrument_token"][i] = tok
        a["last_price"][i] = price
        a["volume_traded"][i] = volume
        a["exchange_timestamp"][i] = ts
    return encode_frame(a)


def _engine(restored: dict) -> tuple[ComputeEngine, dict[str, int]]:
    master = InstrumentMaster.bundled()
    insts = {master.by_symbol(s).instrument_token: master.by_symbol(s) for s in (A, B)}
    eng = ComputeEngine(insts, load_config(), PatternEngine(load_patterns()), {}, restored,
                        outputs=CollectedOutputs())  # fmt: skip
    return eng, {i.symbol: t for t, i in insts.items()}


def _persist(client: redis.Redis, eng: ComputeEngine) -> None:
    """Everything ``eng`` handed to its output port, written by the real store."""
    assert isinstance(eng.outputs, CollectedOutputs)
    store = RedisStore(
        client, BoundedQueue("out", 100, "block", 1.0), TtlSeconds(3600, 3600, 3600, 3600)
    )
    for batch in eng.outputs.received:
        store.merge(batch)
    assert store.flush() is True


@pytest.mark.integration
def test_a_late_tick_after_a_restart_revises_the_stored_bar(redis_client: redis.Redis) -> None:
    t20, t21, t22 = (from_ist(DAY, 9, m, 10) for m in (20, 21, 22))
    first, tok = _engine({})
    first.process([
        (1, "c0", _frame([(tok[A], 2900.0, 1_000, t20), (tok[A], 2901.0, 1_600, t20 + 20)])),
        (2, "c0", _frame([(tok[B], 590.0, 50_000, t21)])),  # the clock enters 09:21
    ])  # fmt: skip
    _persist(redis_client, first)  # A's 09:20 bar (600 shares after its first tick) is stored
    stored = {b["time"]: b["volume"] for b in read_bars(redis_client, A, DATE)}
    assert stored == {"09:20": 600}
    # SIGKILL here; the restarted scan gets A's late 09:20 tick first, then 09:22
    state = read_restart_state(redis_client, [A, B])
    assert state[A]["bar_start"] == t20 - 10 and state[A]["bar"]["volume"] == 600
    second, _ = _engine(state)
    second.process([
        (3, "c0", _frame([(tok[A], 2902.0, 1_900, t20 + 40)])),  # late: 300 more of 09:20
        (4, "c0", _frame([(tok[A], 2903.0, 2_400, t22)])),
    ])  # fmt: skip
    second.finish()
    _persist(redis_client, second)
    bars = {b["time"]: b for b in read_bars(redis_client, A, DATE)}
    assert bars["09:20"]["volume"] == 600  # kept, not replaced by a 300-share 09:20
    assert bars["09:20"]["open"] == 2900.0 and bars["09:20"]["high"] == 2901.0
    # the late 300 shares land in the next bar with the 500 of 09:22: every share once
    assert bars["09:22"]["volume"] == 300 + 500
    vol = redis_client.hgetall(f"aion:{{{A}}}:volume")
    assert sum(b["volume"] for b in bars.values()) == int(vol["last_cumulative"]) - int(
        vol["first_cumulative"]
    )
    assert second.bars.late_ticks == 1


@pytest.mark.integration
def test_a_late_tick_with_no_later_bar_revises_the_stored_bar_at_the_end(
    redis_client: redis.Redis,
) -> None:
    t20, t21 = from_ist(DAY, 9, 20, 10), from_ist(DAY, 9, 21, 10)
    first, tok = _engine({})
    first.process([
        (1, "c0", _frame([(tok[A], 2900.0, 1_000, t20), (tok[A], 2901.0, 1_600, t20 + 20)])),
        (2, "c0", _frame([(tok[B], 590.0, 50_000, t21)])),
    ])  # fmt: skip
    _persist(redis_client, first)
    second, _ = _engine(read_restart_state(redis_client, [A, B]))
    second.process([(3, "c0", _frame([(tok[A], 2902.0, 1_900, t20 + 40)]))])
    second.finish()  # the late 300 shares revise the stored 09:20 bar, which keeps its 600
    _persist(redis_client, second)
    bars = read_bars(redis_client, A, DATE)
    assert [(b["time"], b["volume"], b["open"]) for b in bars] == [("09:20", 900, 2900.0)]
