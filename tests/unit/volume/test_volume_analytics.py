"""Columnar volume analytics of a minute: RVOL, regime, profile extras and store writes on ticks
made from the bundled 2022-11-11 vendor bars, checked against straightforward computations, and
identical whatever the batching of ticks."""

from __future__ import annotations

import datetime as dt
import gzip
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from aion.bars.builder import BAR_DTYPE
from aion.config import load_config
from aion.instruments.master import Instrument
from aion.market.time import SEGMENT_REGULAR, from_ist
from aion.store import keys
from aion.store.batch import StoreBatch
from aion.volume.analytics import BarAnalyticsColumns, VolumeAnalytics
from aion.volume.baseline import BaselineSet, VolumeBaseline, uniform_baseline

ROOT = Path(__file__).resolve().parents[3]
INTRADAY = ROOT / "aion" / "data" / "intraday_1min_2022-11-11"
DAY = dt.date(2022, 11, 11)
DATE = 20221111
MINUTES = 12  # 09:15 .. 09:26
VENDORS = ("HDFCBANK", "SBIN", "RELIANCE", "INDIAVIX")
AVG = {"NSE:HDFCBANK": 3.0e6, "NSE:SBIN": 9.0e6}  # RELIANCE: no average -> NaN RVOL


def instrument(token: int, symbol: str, index: bool = False) -> Instrument:
    return Instrument(token, token, symbol, symbol, 0.0, None, 0.0, 0.0 if index else 0.05,
                      0 if index else 1, "EQ", "INDICES" if index else "NSE", "NSE")  # fmt: skip


def ticks_from_vendor_bars() -> tuple[np.ndarray, ...]:
    """4 ticks per vendor bar (open, high, low, close at +5/+20/+35/+50 s), volume split
    1:2:3:rest; INDIA VIX (slot 3) carries no volume. Time order."""
    rows = []
    for slot, vendor in enumerate(VENDORS):
        with gzip.open(INTRADAY / f"{vendor}.txt.gz", "rt") as fh:
            for line in fh:
                _s, _d, hhmm, o, h, lo, c, v, _oi = line.strip().split(",")
                end = int(hhmm[:2]) * 60 + int(hhmm[3:])
                m = end - 1 - (9 * 60 + 15)
                if not 0 <= m < MINUTES:
                    continue
                start = from_ist(DAY, (end - 1) // 60, (end - 1) % 60)
                vol = int(v)
                parts = [vol // 7, 2 * (vol // 7), 3 * (vol // 7)]
                parts.append(vol - sum(parts))
                for k, (px, q) in enumerate(zip((o, h, lo, c), parts, strict=True)):
                    rows.append((start + 5 + 15 * k, slot, float(px), q if slot < 3 else 0))
    rows.sort()
    ts, slots, price, incr = (np.array(c) for c in zip(*rows, strict=True))
    return slots.astype(np.int64), ts.astype(np.int64), price.astype(np.float64), \
        incr.astype(np.int64)  # fmt: skip


def bars_of(minute: int, ticks: tuple[np.ndarray, ...]) -> np.ndarray:
    slots, ts, price, incr = ticks
    start = from_ist(DAY, 9, 15) + 60 * minute
    out = []
    for s in range(3):  # the three equities' regular bars (VIX bars are not evaluated here)
        sel = (slots == s) & (ts >= start) & (ts < start + 60)
        b = np.zeros(1, BAR_DTYPE)
        b["slot"], b["start"], b["segment"] = s, start, SEGMENT_REGULAR
        b["open"], b["close"] = price[sel][0], price[sel][-1]
        b["high"], b["low"] = price[sel].max(), price[sel].min()
        b["volume"], b["ticks"] = incr[sel].sum(), sel.sum()
        out.append(b)
    return np.concatenate(out)


def analytics() -> VolumeAnalytics:
    cfg = load_config(ROOT / "config")
    insts = [instrument(1, "HDFCBANK"), instrument(2, "SBIN"), instrument(3, "RELIANCE"),
             instrument(4, "INDIA VIX", index=True)]  # fmt: skip
    curve = np.sqrt(np.arange(376) / 375.0)  # front-loaded day
    bs = BaselineSet({"NSE:HDFCBANK": VolumeBaseline("NSE:HDFCBANK", curve, 60, "intraday")},
                     uniform_baseline())  # fmt: skip
    return VolumeAnalytics(insts, cfg, AVG, baselines=bs)


def run(
    chunks: list[slice] | None,
) -> tuple[list[BarAnalyticsColumns], StoreBatch, VolumeAnalytics]:
    """Feed the ticks in ``chunks`` (None: all before any bar) and evaluate each minute's bars
    as soon as a tick at or after its end has been fed (at the end for the last minutes)."""
    ticks = ticks_from_vendor_bars()
    slots, ts, price, incr = ticks
    va = analytics()
    batch = StoreBatch()
    out: list[BarAnalyticsColumns] = []
    nxt = 0

    def close_until(t: int) -> None:
        nonlocal nxt
        while nxt < MINUTES and from_ist(DAY, 9, 15) + 60 * (nxt + 1) <= t:
            bars = bars_of(nxt, ticks)
            dates = np.full(3, DATE)
            va.on_closed_bars(bars, np.zeros(4, np.int64))
            cols = va.on_regular_bars(bars, dates)
            va.record_bars(bars, dates, cols, batch)
            out.append(cols)
            nxt += 1

    for sl in chunks if chunks is not None else [slice(0, ts.shape[0])]:
        va.on_ticks(slots[sl], ts[sl], np.full(ts[sl].shape[0], DATE), price[sl], incr[sl])
        if chunks is not None:
            close_until(int(ts[sl].max()))
    close_until(2**40)
    va.finish(batch)
    return out, batch, va


def test_rvol_regime_and_profile_extras_against_straightforward_values() -> None:
    cols, batch, va = run(None)
    slots, ts, price, incr = ticks_from_vendor_bars()
    vix_ts, vix_px = ts[slots == 3], price[slots == 3]
    curve = np.sqrt(np.arange(376) / 375.0)
    cum = {0: 0, 1: 0, 2: 0}
    for m, c in enumerate(cols):
        end = from_ist(DAY, 9, 15) + 60 * (m + 1)
        vix = float(vix_px[vix_ts < end][-1])
        assert c.vix.tolist() == [vix] * 3
        regime = "LOW" if vix < 12 else "NORMAL" if vix < 20 else "HIGH"  # shipped bands
        mult = (1.5 if m < 15 else 1.0) * {"LOW": 0.9, "NORMAL": 1.0, "HIGH": 1.25}[regime]
        assert c.regime == [regime] * 3 and c.threshold_multiplier.tolist() == [mult] * 3
        for j, sym in enumerate(("NSE:HDFCBANK", "NSE:SBIN", "NSE:RELIANCE")):
            sel = (slots == j) & (ts >= end - 60) & (ts < end)
            vol = int(incr[sel].sum())
            cum[j] += vol
            share = curve if j == 0 else np.arange(376) / 375.0
            if sym in AVG:
                assert c.expected_bar_volume[j] == AVG[sym] * (share[m + 1] - share[m])
                assert c.rvol_bar[j] == vol / (AVG[sym] * (share[m + 1] - share[m]))
                assert c.rvol_cum[j] == cum[j] / (AVG[sym] * share[m + 1])
            else:
                assert math.isnan(c.rvol_cum[j]) and math.isnan(c.rvol_bar[j])
            row = c.row(j)
            upto = (slots == j) & (ts < end)
            assert row.profile["total_volume"] == float(incr[upto].sum())
            close = float(price[sel][-1])
            for node in ("hvn", "lvn"):
                levels = [v for k, v in row.profile.items() if k.startswith(f"{node}_")
                          and k[4:].isdigit()]  # fmt: skip
                if levels:
                    assert row.profile[node] == min(levels, key=lambda x: (abs(x - close), x))
                else:
                    assert node not in row.profile
            if m:
                for k in ("poc", "vah", "val"):
                    assert row.profile[f"{k}_prev"] == cols[m - 1].row(j).profile[k]
            else:
                assert "poc_prev" not in row.profile
            shift = np.round(row.profile["poc"] - cols[0].profile["poc"][j], 6)
            assert row.profile["poc_shift"] == shift
    # store writes: the RVOL JSON holds the columns, the profile hash the statistics
    stored: dict[str, dict[str, str]] = {}
    for key, fields in batch.bar_mappings():
        stored.setdefault(key, {}).update(fields)
    entry = json.loads(stored[keys.rvol("NSE:HDFCBANK", DATE)]["09:20"])
    c5 = cols[5]
    assert sorted(entry) == [
        "cum_volume",
        "expected_bar",
        "expected_cum",
        "minute",
        "multiplier",
        "poc",
        "regime",
        "rvol_bar",
        "rvol_cum",
        "start",
        "vix",
        "volume",
    ]
    assert entry["rvol_cum"] == float(np.round(c5.rvol_cum[0], 6))
    assert entry["poc"] == c5.profile["poc"][0] and entry["regime"] == c5.regime[0]
    assert entry["minute"] == 5
    assert entry["volume"] == int(bars_of(5, (slots, ts, price, incr))["volume"][0])
    reliance = json.loads(stored[keys.rvol("NSE:RELIANCE", DATE)]["09:20"])
    assert reliance["rvol_cum"] is None and reliance["expected_bar"] is None
    prof = batch.state_mappings()[keys.profile("NSE:HDFCBANK", DATE)]
    last = cols[-1].row(0).profile
    assert float(prof["poc"]) == last["poc"] and prof["baseline"] == "intraday"
    assert prof["bar_start"] == str(from_ist(DAY, 9, 15) + 60 * (MINUTES - 1))
    bins = json.loads(prof["bins"])
    assert sum(v for _p, v in bins) == float(prof["total_volume"]) == int(incr[slots == 0].sum())
    assert va.profiles.total[0] == int(incr[slots == 0].sum())


def test_bins_are_written_every_interval_and_at_session_end() -> None:
    ticks = ticks_from_vendor_bars()
    va = analytics()
    interval = va.config.volume.profile.bins_interval_min
    written = []
    for m in range(MINUTES):
        end = from_ist(DAY, 9, 15) + 60 * (m + 1)
        sel = (ticks[1] >= end - 60) & (ticks[1] < end)
        va.on_ticks(ticks[0][sel], ticks[1][sel], np.full(sel.sum(), DATE), ticks[2][sel],
                    ticks[3][sel])  # fmt: skip
        batch = StoreBatch()
        bars = bars_of(m, ticks)
        cols = va.on_regular_bars(bars, np.full(3, DATE))
        va.record_bars(bars, np.full(3, DATE), cols, batch)
        prof = batch.state_mappings()[keys.profile("NSE:SBIN", DATE)]
        if "bins" in prof:
            written.append(m)
            assert sum(v for _p, v in json.loads(prof["bins"])) == float(prof["total_volume"])
    assert written == list(range(0, MINUTES, interval))
    batch = StoreBatch()
    va.finish(batch)
    prof = batch.state_mappings()[keys.profile("NSE:SBIN", DATE)]
    assert sum(v for _p, v in json.loads(prof["bins"])) == int(ticks[3][ticks[0] == 1].sum())


@pytest.mark.parametrize("seed", [0, 1])
def test_results_do_not_depend_on_the_batching_of_ticks(seed: int) -> None:
    ref_cols, ref_batch, _ = run(None)
    n = ticks_from_vendor_bars()[0].shape[0]
    rng = np.random.default_rng(seed)
    cuts = np.unique(np.concatenate(([0], rng.integers(1, n, 40), [n])))
    cols, batch, _ = run([slice(int(a), int(b)) for a, b in itertools.pairwise(cuts.tolist())])
    assert len(cols) == len(ref_cols) == MINUTES
    for a, b in zip(cols, ref_cols, strict=True):
        assert a.regime == b.regime and a.profile.keys() == b.profile.keys()
        for name in ("minute_of_session", "expected_bar_volume", "rvol_cum", "rvol_bar",
                     "threshold_multiplier", "vix"):  # fmt: skip
            assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
        for k in a.profile:
            assert np.array_equal(a.profile[k], b.profile[k], equal_nan=True), k
    assert batch.bar_mappings() == ref_batch.bar_mappings()
    assert batch.state_mappings() == ref_batch.state_mappings()


def test_bar_profile_holds_the_ticks_that_arrived_before_its_closing_tick() -> None:
    """A late tick (exchange time inside the bar) arriving after the tick that closed the bar
    is not in that bar's profile, whether it came in the closing tick's batch or later; it is
    in the next bar's."""
    t0 = from_ist(DAY, 9, 15)
    feed = [  # (ts, price, volume): SBIN (slot 1) only
        (t0 + 5, 500.0, 10),
        (t0 + 61, 501.0, 5),  # the first tick of 09:16: closes the 09:15 bar
        (t0 + 50, 499.0, 7),  # late: 09:15 exchange time, arrived after the close
        (t0 + 70, 502.0, 3),
    ]

    def bar(minute: int) -> np.ndarray:
        b = np.zeros(1, BAR_DTYPE)
        b["slot"], b["start"], b["segment"] = 1, t0 + 60 * minute, SEGMENT_REGULAR
        b["open"] = b["high"] = b["low"] = b["close"] = 500.0
        return b

    def total_volume(va: VolumeAnalytics, minute: int) -> float:
        cols = va.on_regular_bars(bar(minute), np.array([DATE]))
        return float(cols.profile["total_volume"][0])

    def totals(batches: list[list[int]]) -> list[float]:
        """Feed the batches, evaluating the 09:15 bar right after the batch holding the
        closing tick (as the engine does) and the 09:16 bar at the end."""
        va = analytics()
        out = []
        for idx in batches:
            ts, px, q = (np.array([feed[k][f] for k in idx]) for f in range(3))
            n = len(idx)
            va.on_ticks(np.ones(n, np.int64), ts.astype(np.int64), np.full(n, DATE),
                        px.astype(np.float64), q.astype(np.int64))  # fmt: skip
            if 1 in idx:
                out.append(total_volume(va, 0))
        out.append(total_volume(va, 1))
        return out

    assert totals([[0, 1, 2, 3]]) == [10.0, 25.0]
    assert totals([[0, 1, 2], [3]]) == [10.0, 25.0]
    assert totals([[0, 1], [2], [3]]) == [10.0, 25.0]
    assert totals([[0], [1], [2, 3]]) == [10.0, 25.0]
