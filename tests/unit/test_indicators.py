"""Incremental indicator core vs TA-Lib (EMA, RSI, ATR) and a numpy VWAP reference."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from aion.indicators import kernels
from aion.indicators.core import IndicatorConfig, IndicatorCore

DATA = Path(__file__).resolve().parents[2] / "aion" / "data"
RTOL = 1e-9


# ---------------------------------------------------------------- data loading
def _load_intraday() -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for path in sorted((DATA / "intraday_1min_2022-11-11").glob("*.txt.gz")):
        rows = []
        with gzip.open(path, "rt") as fh:
            for line in fh:
                f = line.strip().split(",")
                if "09:16" <= f[2] <= "15:30":
                    rows.append((int(f[1]), *map(float, f[3:8])))
        a = np.array(rows, dtype=np.float64)
        out[path.name.split(".")[0]] = {
            "date": a[:, 0].astype(np.int64),
            "open": a[:, 1],
            "high": a[:, 2],
            "low": a[:, 3],
            "close": a[:, 4],
            "volume": a[:, 5],
        }
    return out


def _load_daily() -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for path in sorted((DATA / "daily_kite").glob("*.csv.gz")):
        with gzip.open(path, "rt") as fh:
            header = fh.readline().strip().split(",")
            assert header[:6] == ["datetime", "open", "high", "low", "close", "volume"]
            rows = []
            for line in fh:
                f = line.strip().split(",")
                rows.append((int(f[0][:10].replace("-", "")), *map(float, f[1:6])))
        a = np.array(rows, dtype=np.float64)
        out[path.name.split("_day_")[0]] = {
            "date": a[:, 0].astype(np.int64),
            "open": a[:, 1],
            "high": a[:, 2],
            "low": a[:, 3],
            "close": a[:, 4],
            "volume": a[:, 5],
        }
    return out


@pytest.fixture(scope="module")
def intraday():
    d = _load_intraday()
    assert len(d) >= 30 and all(len(v["close"]) == 375 for v in d.values())
    return d


@pytest.fixture(scope="module")
def daily():
    d = _load_daily()
    assert len(d) >= 40 and all(len(v["close"]) > 1000 for v in d.values())
    return d


# ---------------------------------------------------------------- references
def vwap_reference(date, high, low, close, volume) -> np.ndarray:
    """Session VWAP written independently: per-session cumsums, NaN while no volume."""
    tp = (high + low + close) / 3.0
    res = np.full(len(close), np.nan)
    starts = np.flatnonzero(np.r_[True, date[1:] != date[:-1]])
    ends = np.r_[starts[1:], len(close)]
    for a, b in zip(starts, ends, strict=True):
        cv = np.cumsum(volume[a:b])
        cpv = np.cumsum(tp[a:b] * volume[a:b])
        with np.errstate(invalid="ignore", divide="ignore"):
            res[a:b] = np.where(cv > 0, cpv / cv, np.nan)
    return res


def reference(bars: dict[str, np.ndarray], cfg: IndicatorConfig) -> dict[str, np.ndarray]:
    h, lo, c = bars["high"], bars["low"], bars["close"]
    ref = {f"ema_{p}": talib.EMA(c, timeperiod=p) for p in cfg.ema_periods}
    ref[f"rsi_{cfg.rsi_period}"] = talib.RSI(c, timeperiod=cfg.rsi_period)
    ref[f"atr_{cfg.atr_period}"] = talib.ATR(h, lo, c, timeperiod=cfg.atr_period)
    ref["vwap"] = vwap_reference(bars["date"], h, lo, c, bars["volume"])
    return ref


def assert_series_match(name: str, ours: np.ndarray, ref: np.ndarray, rtol: float = RTOL) -> None:
    """Same NaN warm-up (same first output index, no NaN after) and values within rtol."""
    nan_ours, nan_ref = np.isnan(ours), np.isnan(ref)
    lead_ours = int(np.argmin(nan_ours)) if not nan_ours.all() else len(ours)
    lead_ref = int(np.argmin(nan_ref)) if not nan_ref.all() else len(ref)
    assert lead_ours == lead_ref, f"{name}: warm-up {lead_ours} bars vs reference {lead_ref}"
    np.testing.assert_array_equal(nan_ours, nan_ref, err_msg=f"{name}: NaN positions differ")
    ok = ~nan_ref
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=rtol, atol=0.0, err_msg=name)


def feed_one_by_one(core: IndicatorCore, slot: int, bars) -> dict[str, np.ndarray]:
    """One update() call per bar; returns the value series after each bar."""
    n = len(bars["close"])
    hist = {name: np.empty(n) for name in core.names()}
    s = np.array([slot], dtype=np.int64)
    for i in range(n):
        sl = slice(i, i + 1)
        core.update(
            s,
            bars["date"][sl],
            bars["open"][sl],
            bars["high"][sl],
            bars["low"][sl],
            bars["close"][sl],
            bars["volume"][sl],
        )
        for name, v in core.values(s).items():
            hist[name][i] = v[0]
    return hist


def feed_mixed_batches(core: IndicatorCore, series: list[dict], seed: int) -> list[dict]:
    """Random multi-slot batches: per batch each slot gets 0..4 of its next bars, the
    instruments interleaved randomly but each slot's bars in order. Records each slot's
    values at the end of every batch, indexed by the slot's last applied bar."""
    rng = np.random.default_rng(seed)
    n_inst = len(series)
    pos = np.zeros(n_inst, dtype=np.int64)
    lens = np.array([len(b["close"]) for b in series])
    hist = [{name: np.full(lens[k], np.nan) for name in core.names()} for k in range(n_inst)]
    seen = [np.zeros(lens[k], dtype=bool) for k in range(n_inst)]
    while (pos < lens).any():
        take = np.minimum(rng.integers(0, 5, n_inst), lens - pos)
        # per-slot sequences, then a random interleave that keeps each slot's order
        owners = np.repeat(np.arange(n_inst), take)
        rng.shuffle(owners)
        idx = np.empty(len(owners), dtype=np.int64)
        nxt = pos.copy()
        for j, k in enumerate(owners):
            idx[j] = nxt[k]
            nxt[k] += 1
        cols = {
            f: np.array([series[k][f][i] for k, i in zip(owners, idx, strict=True)])
            for f in ("date", "open", "high", "low", "close", "volume")
        }
        core.update(
            owners.astype(np.int64),
            cols["date"].astype(np.int64),
            cols["open"],
            cols["high"],
            cols["low"],
            cols["close"],
            cols["volume"],
        )
        pos = nxt
        active = np.flatnonzero(take > 0)
        vals = core.values(active)
        for j, k in enumerate(active):
            last = pos[k] - 1
            seen[k][last] = True
            for name in core.names():
                hist[k][name][last] = vals[name][j]
    return [{name: h[name][seen[k]] for name in h} | {"_mask": seen[k]} for k, h in enumerate(hist)]


# ---------------------------------------------------------------- 1. real bars
def test_parity_intraday_bar_by_bar(intraday):
    cfg = IndicatorConfig()
    core = IndicatorCore(len(intraday), cfg)
    assert core.names() == ["ema_20", "ema_50", "rsi_14", "atr_14", "vwap"]
    for slot, (sym, bars) in enumerate(intraday.items()):
        hist = feed_one_by_one(core, slot, bars)
        ref = reference(bars, cfg)
        for name in core.names():
            assert_series_match(f"{sym}:{name}", hist[name], ref[name])
    assert (core.bar_count(np.arange(len(intraday))) == 375).all()


def test_warmup_lengths_match_talib_first_output_index(intraday):
    cfg = IndicatorConfig(ema_periods=(5, 20, 50), rsi_period=14, atr_period=14)
    bars = intraday["RELIANCE"]
    hist = feed_one_by_one(IndicatorCore(1, cfg), 0, bars)
    # first non-NaN index, independently from TA-Lib and from the documented lookbacks
    for name, lookback in [("ema_5", 4), ("ema_20", 19), ("ema_50", 49)]:
        assert np.isnan(hist[name][:lookback]).all() and not np.isnan(hist[name][lookback])
        assert np.isnan(talib.EMA(bars["close"], int(name[4:]))[:lookback]).all()
    for name in ("rsi_14", "atr_14"):
        assert np.isnan(hist[name][:14]).all() and not np.isnan(hist[name][14])
    assert np.isnan(talib.RSI(bars["close"], 14)[:14]).all()
    assert np.isnan(talib.ATR(bars["high"], bars["low"], bars["close"], 14)[:14]).all()


def test_parity_intraday_mixed_batches(intraday):
    cfg = IndicatorConfig(ema_periods=(3, 20, 50), rsi_period=14, atr_period=14)
    series = list(intraday.values())
    core = IndicatorCore(len(series), cfg)
    results = feed_mixed_batches(core, series, seed=7)
    for k, bars in enumerate(series):
        ref = reference(bars, cfg)
        mask = results[k]["_mask"]
        assert mask.sum() > 50
        for name in core.names():
            ours, r = results[k][name], ref[name][mask]
            np.testing.assert_array_equal(np.isnan(ours), np.isnan(r), err_msg=name)
            ok = ~np.isnan(r)
            np.testing.assert_allclose(ours[ok], r[ok], rtol=RTOL, atol=0.0, err_msg=name)
        assert core.bar_count(np.array([k]))[0] == 375


def test_parity_daily_mixed_batches(daily):
    cfg = IndicatorConfig(ema_periods=(20, 50, 200), rsi_period=14, atr_period=14)
    series = list(daily.values())
    core = IndicatorCore(len(series), cfg)
    results = feed_mixed_batches(core, series, seed=11)
    for k, bars in enumerate(series):
        ref = reference(bars, cfg)
        mask = results[k]["_mask"]
        for name in core.names():
            ours, r = results[k][name], ref[name][mask]
            np.testing.assert_array_equal(np.isnan(ours), np.isnan(r), err_msg=name)
            ok = ~np.isnan(r)
            np.testing.assert_allclose(ours[ok], r[ok], rtol=RTOL, atol=0.0, err_msg=name)


def test_parity_daily_bar_by_bar_full_series(daily):
    cfg = IndicatorConfig(ema_periods=(20, 50), rsi_period=14, atr_period=14)
    core = IndicatorCore(4, cfg)
    for slot, sym in enumerate(list(daily)[:4]):
        hist = feed_one_by_one(core, slot, daily[sym])
        ref = reference(daily[sym], cfg)
        for name in core.names():
            assert_series_match(f"{sym}:{name}", hist[name], ref[name])


# ---------------------------------------------------------------- 2. random walks
def random_walk(seed: int, n: int = 1500) -> dict[str, np.ndarray]:
    """Random walk with gaps (jumps), flat stretches (zero changes, h == l == c) and
    monotone stretches (no losses / no gains)."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 1.0, n)
    steps[rng.random(n) < 0.02] *= 40.0  # gaps
    kind = np.zeros(n, dtype=np.int64)
    for _ in range(8):  # flat stretches of 5..80 bars
        a = rng.integers(0, n - 80)
        kind[a : a + rng.integers(5, 80)] = 1
    for _ in range(4):  # monotone up / down stretches of 20..60 bars
        a = rng.integers(0, n - 60)
        kind[a : a + rng.integers(20, 60)] = rng.choice([2, 3])
    steps[kind == 1] = 0.0
    steps[kind == 2] = np.abs(steps[kind == 2])
    steps[kind == 3] = -np.abs(steps[kind == 3])
    close = np.round(500.0 + np.cumsum(steps), 2)
    close = np.maximum(close, 1.0)
    spread = np.round(rng.random(n) * 2.0, 2)
    spread[kind == 1] = 0.0
    high = close + spread * rng.random(n)
    low = close - spread * rng.random(n)
    volume = rng.integers(0, 5000, n).astype(np.float64)
    volume[kind == 1] = 0.0
    date = 20240101 + np.repeat(np.arange(n // 375 + 1), 375)[:n]
    return {"date": date, "open": close.copy(), "high": high, "low": low, "close": close,
            "volume": volume}  # fmt: skip


@pytest.mark.parametrize(
    "cfg",
    [
        IndicatorConfig(),
        IndicatorConfig(ema_periods=(2, 3, 9), rsi_period=2, atr_period=1),
        IndicatorConfig(ema_periods=(5, 100, 200), rsi_period=5, atr_period=2),
        IndicatorConfig(ema_periods=(10,), rsi_period=30, atr_period=30),
    ],
    ids=lambda c: f"ema{c.ema_periods}-rsi{c.rsi_period}-atr{c.atr_period}",
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_parity_random_walks(cfg, seed):
    bars = random_walk(seed)
    hist = feed_one_by_one(IndicatorCore(3, cfg), 1, bars)
    ref = reference(bars, cfg)
    for name in hist:
        assert_series_match(name, hist[name], ref[name])


@pytest.mark.parametrize(
    "close",
    [
        np.full(40, 250.0),  # flat from the start: TA-Lib RSI 0, ATR 0
        250.0 + np.arange(40.0),  # no losses: RSI 100
        250.0 - np.arange(40.0),  # no gains: RSI 0
        np.r_[np.full(20, 250.0), 251.0, np.full(300, 251.0)],  # one gain then flat
        np.r_[250.0 + np.arange(16.0), np.full(30, 265.0), 250.0 - np.arange(10.0)],
    ],
    ids=["flat", "up", "down", "step", "up-flat-down"],
)
def test_degenerate_series(close):
    cfg = IndicatorConfig(ema_periods=(3, 20), rsi_period=14, atr_period=14)
    bars = {"date": np.full(len(close), 20240102), "open": close, "high": close, "low": close,
            "close": close, "volume": np.zeros(len(close))}  # fmt: skip
    hist = feed_one_by_one(IndicatorCore(1, cfg), 0, bars)
    ref = reference(bars, cfg)
    for name in hist:
        assert_series_match(name, hist[name], ref[name])
    assert np.isnan(hist["vwap"]).all()  # no volume at all


@settings(max_examples=60, deadline=None)
@given(
    prices=st.lists(st.sampled_from([99.0, 99.5, 100.0, 100.05, 101.0]), min_size=1, max_size=80),
    rsi_period=st.integers(2, 20),
    atr_period=st.integers(1, 20),
    ema_period=st.integers(2, 30),
)
def test_parity_property_small_price_alphabet(prices, rsi_period, atr_period, ema_period):
    """Few distinct prices -> many zero changes and ties; any length incl. shorter than warm-up."""
    close = np.array(prices)
    high = close + 0.5
    low = close - np.r_[0.0, np.diff(close) != 0] * 0.25
    cfg = IndicatorConfig(ema_periods=(ema_period,), rsi_period=rsi_period, atr_period=atr_period)
    n = len(close)
    bars = {"date": np.full(n, 20240102), "open": close, "high": high, "low": low,
            "close": close, "volume": np.ones(n)}  # fmt: skip
    core = IndicatorCore(1, cfg)
    # whole series in one batch for the same slot: only the final value is observable
    core.update(np.zeros(n, np.int64), bars["date"], close, high, low, close, bars["volume"])
    ref = reference(bars, cfg)
    vals = core.values(np.array([0]))
    for name in core.names():
        r, o = ref[name][-1], vals[name][0]
        if np.isnan(r):
            assert np.isnan(o), name
        else:
            assert o == pytest.approx(r, rel=RTOL, abs=0.0), name


# ---------------------------------------------------------------- 3. forming
def _snapshot(core: IndicatorCore) -> dict[str, np.ndarray]:
    snap = {k: v.copy() for k, v in vars(core).items() if isinstance(v, np.ndarray)}
    snap.pop("_scratch")  # forming()'s output buffer, not state
    assert {"count", "ema_acc", "rsi_gain", "atr_acc", "vwap_pv", "out"} <= snap.keys()
    return snap


def test_forming_equals_update_and_does_not_mutate(intraday):
    cfg = IndicatorConfig(ema_periods=(3, 20), rsi_period=5, atr_period=4)
    bars = intraday["SBIN"]
    core = IndicatorCore(3, cfg)
    other = IndicatorCore(3, cfg)
    s = np.array([2], dtype=np.int64)
    n_checked = 0
    for i in range(len(bars["close"])):
        date = int(bars["date"][i]) + (1 if i >= 200 else 0)  # session change at bar 200
        h, lo, c, v = (float(bars[f][i]) for f in ("high", "low", "close", "volume"))
        before = _snapshot(core)
        # a partial bar that is not the final one must not leave a trace either
        core.forming(2, h + 1.0, lo - 1.0, c + 0.5, v * 3, date)
        got = core.forming(2, h, lo, c, v, date)
        after = _snapshot(core)
        for k in before:
            np.testing.assert_array_equal(before[k], after[k], err_msg=k)
        core.update(s, np.array([date]), np.array([c]), np.array([h]), np.array([lo]),
                    np.array([c]), np.array([v]))  # fmt: skip
        # the other core sees only closed bars: forming must equal its post-update values
        other.update(s, np.array([date]), np.array([c]), np.array([h]), np.array([lo]),
                     np.array([c]), np.array([v]))  # fmt: skip
        want = other.values(s)
        for name in core.names():
            w = want[name][0]
            assert (np.isnan(got[name]) and np.isnan(w)) or got[name] == w, (i, name)
            n_checked += not np.isnan(w)
    assert n_checked > 4 * 300
    # forming on a fresh slot: first bar -> only VWAP defined
    f = core.forming(0, 10.0, 8.0, 9.0, 100.0, 20240102)
    assert f["vwap"] == pytest.approx(9.0) and np.isnan(f["ema_3"]) and np.isnan(f["rsi_5"])


def test_forming_session_change_resets_vwap():
    core = IndicatorCore(1)
    core.update(np.array([0]), np.array([20240102]), np.array([10.0]), np.array([12.0]),
                np.array([9.0]), np.array([12.0]), np.array([100.0]))  # fmt: skip
    assert core.values(np.array([0]))["vwap"][0] == pytest.approx(11.0)
    same = core.forming(0, 30.0, 30.0, 30.0, 100.0, 20240102)
    new = core.forming(0, 30.0, 30.0, 30.0, 100.0, 20240103)
    assert same["vwap"] == pytest.approx(20.5)
    assert new["vwap"] == pytest.approx(30.0)
    assert np.isnan(core.forming(0, 30.0, 30.0, 30.0, 0.0, 20240103)["vwap"])


# ---------------------------------------------------------------- 4. VWAP
def test_vwap_matches_numpy_reference_with_session_resets():
    rng = np.random.default_rng(5)
    n = 1200
    date = np.repeat([20240102, 20240103, 20240105, 20240108], n // 4)
    close = 200 + np.cumsum(rng.normal(0, 0.5, n))
    high = close + rng.random(n)
    low = close - rng.random(n)
    volume = rng.integers(0, 10_000, n).astype(np.float64)
    volume[300:310] = 0.0  # zero volume at the start of session 2 -> NaN there
    volume[900:] = 0.0  # an index-like session: no volume at all
    bars = {"date": date, "open": close, "high": high, "low": low, "close": close,
            "volume": volume}  # fmt: skip
    ref = vwap_reference(date, high, low, close, volume)
    assert np.isnan(ref[300:310]).all() and not np.isnan(ref[310]) and np.isnan(ref[900:]).all()
    core = IndicatorCore(2)
    hist = feed_one_by_one(core, 1, bars)
    assert_series_match("vwap", hist["vwap"], ref, rtol=1e-12)
    # session reset really discards the previous day: first bar of day 3 == its typical price
    assert hist["vwap"][600] == pytest.approx((high[600] + low[600] + close[600]) / 3, rel=1e-12)


def test_vwap_real_intraday_incl_indices(intraday):
    names = list(intraday)
    series = [intraday[k] for k in names]
    core = IndicatorCore(len(series))
    for t in range(375):  # one batch per minute with all instruments
        core.update(
            np.arange(len(series), dtype=np.int64),
            np.array([b["date"][t] for b in series]),
            np.array([b["open"][t] for b in series]),
            np.array([b["high"][t] for b in series]),
            np.array([b["low"][t] for b in series]),
            np.array([b["close"][t] for b in series]),
            np.array([b["volume"][t] for b in series]),
        )
    vw = core.values(np.arange(len(series)))["vwap"]
    for k, b in enumerate(series):
        ref = vwap_reference(b["date"], b["high"], b["low"], b["close"], b["volume"])[-1]
        if b["volume"].sum() == 0:
            assert np.isnan(vw[k]), names[k]
        else:
            assert vw[k] == pytest.approx(ref, rel=1e-12), names[k]
    assert np.isnan(vw[names.index("NIFTY")])  # an index has no volume


# ---------------------------------------------------------------- 5. grow
def test_grow_keeps_state_and_continues(intraday):
    cfg = IndicatorConfig()
    bars = intraday["INFY"]
    core = IndicatorCore(2, cfg)
    half = 120
    first = {f: v[:half] for f, v in bars.items()}
    second = {f: v[half:] for f, v in bars.items()}
    feed_one_by_one(core, 1, first)
    before = core.values(np.array([0, 1]))
    core.grow(50)
    assert core.n_slots == 50
    after = core.values(np.array([0, 1]))
    for name in core.names():
        np.testing.assert_array_equal(before[name], after[name])
    np.testing.assert_array_equal(core.bar_count(np.array([0, 1, 49])), [0, half, 0])
    assert all(np.isnan(v).all() for v in core.values(np.arange(2, 50)).values())
    core.grow(50)  # no-op
    hist = feed_one_by_one(core, 1, second)
    ref = reference(bars, cfg)
    for name in core.names():
        np.testing.assert_allclose(hist[name], ref[name][half:], rtol=RTOL, atol=0.0)
    # a new slot after growth behaves like a fresh instrument
    hist49 = feed_one_by_one(core, 49, bars)
    for name in core.names():
        assert_series_match(name, hist49[name], ref[name])


def test_input_validation():
    core = IndicatorCore(3)
    with pytest.raises(ValueError):
        core.grow(2)
    one = np.array([1.0])
    with pytest.raises(IndexError):
        core.update(np.array([3]), np.array([20240102]), one, one, one, one, one)
    with pytest.raises(ValueError):
        core.update(np.array([0, 1]), np.array([20240102]), one, one, one, one, one)
    with pytest.raises(IndexError):
        core.forming(-1, 1.0, 1.0, 1.0, 1.0, 20240102)
    with pytest.raises(ValueError):
        IndicatorConfig(ema_periods=(20, 20))
    with pytest.raises(ValueError):
        IndicatorConfig(rsi_period=1)
    core.update(np.array([], dtype=np.int64), *[np.array([])] * 6)  # empty batch is fine
    assert (core.bar_count(np.arange(3)) == 0).all()


def test_kernel_is_pure_function_of_arrays():
    """The kernel works on bare arrays without IndicatorCore (state in, state out)."""
    n, p = 2, np.array([3], dtype=np.int64)
    count = np.zeros(n, np.int64)
    prev = np.full(n, np.nan)
    ema = np.zeros((n, 1))
    g, lo_, atr = np.zeros(n), np.zeros(n), np.zeros(n)
    vd, vpv, vv = np.full(n, -1, np.int64), np.zeros(n), np.zeros(n)
    out = np.full((n, 4), np.nan)
    c = np.array([1.0, 2.0, 4.0, 8.0])
    kernels.update_bars(np.array([1, 1, 1, 1]), np.full(4, 20240102), c, c, c, np.ones(4),
                        count, prev, p, ema, 2, g, lo_, 2, atr, vd, vpv, vv, out)  # fmt: skip
    assert count.tolist() == [0, 4]
    np.testing.assert_allclose(out[1, 0], talib.EMA(c, 3)[-1], rtol=RTOL)
    np.testing.assert_allclose(out[1, 1], talib.RSI(c, 2)[-1], rtol=RTOL)
    np.testing.assert_allclose(out[1, 2], talib.ATR(c, c, c, 2)[-1], rtol=RTOL)
    assert out[1, 3] == pytest.approx(c.sum() / 4)
    assert np.isnan(out[0]).all()
