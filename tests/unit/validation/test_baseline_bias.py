"""The coin-flip baseline on a driftless random walk has the mean R its geometry predicts.

The walk moves one tick (0.05 rupees) up or down per step, ``STEPS`` steps per 1-minute bar.
Stop and target lie on the tick grid (the baseline rounds them like the risk manager), so an
exit fills exactly at its level and the price is a martingale: by optional stopping the
expected exit price equals the entry, and with a constant risk per trade the expected R is 0,
at every window (trades still open are marked at the close, also a martingale). Where one
bar can reach both levels, the rule "both counts as the stop" takes something off; that
prediction is computed independently by following each trade on the walk's steps, which
know which level came first.

The detector-like alerts fire *after* a large 10-minute move, as breakout and volume
detectors do. The old baseline drew entries up to 30 minutes *before* the alert's bar, whose
windows held that move, and a coin flip with reward:risk 2 earns on a large move of either
sign (on 2022-11-11: +0.09 R at 30 minutes for the draws before the alert's bar, -0.01 R for
those after). Drawn from the alert's bar on, it must centre on the prediction here too. (On
this walk the old draw's bonus, about +0.04 R, is inside the interval: the rule "never
before the alert's bar" itself is tested in test_validation.py.)
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from aion.market.time import from_ist
from aion.validation.forward import Bars, random_baseline

TICK = 0.05
T0 = from_ist(dt.date(2022, 11, 11), 9, 15)


def walk(rng: np.random.Generator, minutes: int, steps: int) -> tuple[np.ndarray, Bars]:
    """Tick-level path (int ticks, shape (minutes * steps + 1,)) and its 1-minute bars."""
    path = 20_000 + np.concatenate([[0], np.cumsum(rng.choice([-1, 1], minutes * steps))])
    per = path[1:].reshape(minutes, steps)
    opens = path[:-1:steps]
    # prices as a vendor file gives them: decimal rupees, the nearest float to 2 decimals
    hi = np.round(np.maximum(per.max(axis=1), opens) * TICK, 2)
    lo = np.round(np.minimum(per.min(axis=1), opens) * TICK, 2)
    start = T0 + 60 * np.arange(minutes, dtype=np.int64)
    return path, Bars(start, hi, lo, np.round(per[:, -1] * TICK, 2))


def alert(sym: str, bars: Bars, i: int, stop_ticks: int, rr: float) -> dict:
    entry = float(bars.close[i])
    risk = stop_ticks * TICK
    return {"alert_id": f"{sym}:{i}", "symbol": sym, "pattern": "p", "direction": "long",
            "confidence": 0.9, "bar_start": int(bars.start[i]), "entry": entry,
            "stop": entry - risk, "target": entry + rr * risk}  # fmt: skip


def per_alert_interval(base: pl.DataFrame, window: int) -> tuple[float, float, float]:
    """Mean R with a 95% t interval over alerts (draws of one alert averaged: not independent)."""
    m = (
        base.filter((pl.col("window_min") == window) & (pl.col("outcome") != "no_data"))
        .group_by("alert_id")
        .agg(pl.col("r").mean())["r"]
        .to_numpy()
    )
    half = float(sps.t.ppf(0.975, m.shape[0] - 1)) * m.std(ddof=1) / np.sqrt(m.shape[0])
    return float(m.mean()), float(m.mean()) - half, float(m.mean()) + half


def tick_level_r(path: np.ndarray, steps: int, row: dict) -> float:
    """The trade of ``row`` followed step by step for its window; a minute whose steps reach
    both levels counts as the stop (the bar rule), else whichever level came first."""
    i0 = (row["bar_start"] - T0) // 60 + 1  # entry at the close of its bar
    end = min(i0 + row["window_min"], (path.shape[0] - 1) // steps)
    sign = 1 if row["direction"] == "long" else -1
    e, s, t = (round(row[k] / TICK) for k in ("entry", "stop", "target"))
    for m in range(i0, end):
        seg = path[m * steps : (m + 1) * steps + 1]
        st = np.flatnonzero(sign * (seg - s) <= 0)
        tg = np.flatnonzero(sign * (seg - t) >= 0)
        if st.shape[0]:
            return -1.0
        if tg.shape[0]:
            return abs(t - e) / abs(e - s)
    if end == i0:
        return float("nan")
    return sign * (path[end * steps] - e) / abs(e - s)


@pytest.mark.parametrize("timing", ["random", "after_move"])
def test_coin_flip_on_a_driftless_walk_centres_on_zero(timing: str) -> None:
    rng = np.random.default_rng(20221111)
    bars_by: dict[str, Bars] = {}
    alerts = []
    for k in range(300):
        _, bars = walk(rng, 240, 20)
        sym = f"NSE:W{k}"
        bars_by[sym] = bars
        if timing == "random":
            picks = [int(rng.integers(40, 150))]
        else:  # the bar after the walk moved >= 30 ticks in 10 minutes, like a breakout
            move = np.abs(bars.close[10:] - bars.close[:-10]) / TICK
            picks = [int(i) + 10 for i in np.flatnonzero(move >= 30) if 40 <= i + 10 < 150][:1]
        alerts += [alert(sym, bars, i, 10, 2.0) for i in picks]
    assert len(alerts) >= 150
    base = random_baseline(alerts, bars_by, (10, 60), draws=4, jitter_min=30, seed=5)
    # levels on the tick grid, so fills at the level are exact
    for col in ("stop", "target"):
        ticks = base[col].to_numpy() / TICK
        assert np.allclose(ticks, np.round(ticks))
    for w in (10, 60):
        m, lo, hi = per_alert_interval(base, w)
        assert lo <= 0.0 <= hi, (timing, w, m, lo, hi)
        assert hi - lo < 0.5  # a test that could fail: the interval is not everything


def test_both_levels_in_one_bar_match_the_step_level_prediction() -> None:
    """Wide bars (60 steps), tight levels (3 and 6 ticks): bars often reach both, and the
    stop-first rule makes the coin flip lose; the baseline matches a step-level follow."""
    rng = np.random.default_rng(7)
    paths, bars_by, alerts = {}, {}, []
    for k in range(200):
        path, bars = walk(rng, 120, 60)
        sym = f"NSE:W{k}"
        paths[sym], bars_by[sym] = path, bars
        alerts.append(alert(sym, bars, int(rng.integers(10, 60)), 3, 2.0))
    base = random_baseline(alerts, bars_by, (30,), draws=3, jitter_min=20, seed=9)
    expected = np.array([tick_level_r(paths[r["symbol"]], 60, r)
                         for r in base.iter_rows(named=True)])  # fmt: skip
    got = base["r"].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-9)  # trade by trade, the same R
    _, _, hi = per_alert_interval(base, 30)
    assert hi < 0.0  # stop-first on ambiguous bars: the coin flip loses on average
