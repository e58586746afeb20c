"""Absurd values inside well-formed frames are rejected tick by tick and counted; the good
ticks of the same frame still count (negative/zero prices, absurd timestamps, falling
cumulative volume, unknown tokens)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

from aion.config import load_config, load_patterns
from aion.instruments.master import InstrumentMaster
from aion.kite.encode import encode_frame
from aion.kite.wire import TICK_DTYPE
from aion.market.time import from_ist
from aion.patterns.registry import PatternEngine
from aion.pipeline.compute import ComputeEngine
from aion.pipeline.outputs import CollectedOutputs
from aion.store import keys

T0 = from_ist(dt.date(2022, 11, 11), 9, 20, 5)


def _engine() -> tuple[ComputeEngine, int]:
    inst = InstrumentMaster.bundled().by_symbol("NSE:HDFCBANK")
    eng = ComputeEngine({inst.instrument_token: inst}, load_config(),
                        PatternEngine(load_patterns()), {}, {})  # fmt: skip
    return eng, inst.instrument_token


def _frame(token: int, rows: list[tuple[float, int, int]]) -> bytes:
    a = np.zeros(len(rows), TICK_DTYPE)
    a["instrument_token"] = token
    a["mode"] = 3
    a["packet_length"] = 184
    a["tradable"] = True
    for i, (price, volume, ts) in enumerate(rows):
        a["last_price"][i] = price
        a["volume_traded"][i] = volume
        a["exchange_timestamp"][i] = ts
    return encode_frame(a)


def test_absurd_ticks_are_rejected_one_by_one_with_counters(tmp_path: Path) -> None:
    eng, tok = _engine()
    good = [(1600.0, 1000, T0), (1601.0, 1500, T0 + 1), (1602.5, 2100, T0 + 2)]
    bad_values = [(-5.0, 1600, T0 + 1), (0.0, 1700, T0 + 1)]  # negative and zero price
    bad_times = [(1601.0, 1800, 315_532_800), (1601.0, 1900, 4_200_000_000)]
    falling = [(1601.0, 1200, T0 + 2)]  # cumulative below the 1500 already seen
    frame = _frame(tok, [good[0], bad_values[0], good[1], bad_values[1], bad_times[0],
                         falling[0], bad_times[1], good[2]])  # fmt: skip
    frame_unknown = _frame(tok + 256, [(10.0, 5, T0)])
    eng.process([(1, "c0", frame), (2, "c0", frame_unknown)])
    c = eng.counters
    assert c.ticks == 9
    assert c.invalid_ticks == 4  # 2 prices + 2 timestamps (1980, 2103)
    assert c.unknown_tokens == 1
    assert eng.volume.counters.bad_ticks == 1  # the falling cumulative
    # the good ticks were applied: first sight seeds 1000, then +500, +600
    snap = eng.volume.snapshot(0)
    assert (snap["first_cumulative"], snap["last_cumulative"]) == (1000, 2100)
    assert snap["incremental_total"] == 1100
    # the bar holds the good ticks' prices only (the rejected ones must not shift the columns)
    eng.finish()
    out = eng.outputs
    assert isinstance(out, CollectedOutputs)
    key = keys.bars_1m("NSE:HDFCBANK", 20221111)
    bars = [
        json.loads(v)
        for b in out.batches
        for k, fields in b.bar_mappings()
        if k == key
        for v in fields.values()
    ]
    assert len(bars) == 1
    b = bars[0]
    assert (b["open"], b["high"], b["low"], b["close"]) == (1600.0, 1602.5, 1600.0, 1602.5)
    # 3 good ticks + the falling-cumulative one (its price is fine; its volume counts 0)
    assert b["volume"] == 1100 and b["ticks"] == 4
