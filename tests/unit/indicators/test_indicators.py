"""Incremental indicator core vs TA-Lib and vs plain numpy references.

TA-Lib's batch functions are the reference for every indicator it has (EMA, SMA, RSI,
ATR, MACD, BBANDS, ADX/+DI/-DI, STOCH, WILLR, CCI, ROC, OBV, AD, MFI); session VWAP and
its bands, Keltner, Donchian and Chaikin Money Flow are checked against numpy written
here (and, where TA-Lib 0.8 has them, against ``talib.KC/DONCHIAN/CMF`` as well).
Values must match within 1e-9 relative from the first bar TA-Lib outputs (its lookback,
default unstable period 0) and be NaN exactly where the reference is NaN.
"""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from numba.core.runtime import _nrt_python, rtsys
from numpy.lib.stride_tricks import sliding_window_view

from aion.config import ConfigError
from aion.indicators import kernels
from aion.indicators.config import IndicatorsConfig
from aion.indicators.core import IndicatorCore

DATA = Path(__file__).resolve().parents[3] / "aion" / "data"
RTOL = 1e-9
FIELDS = ("date", "open", "high", "low", "close", "volume")
DEFAULT_NAMES = [
    *("ema_5", "ema_10", "ema_20", "ema_50", "ema_100", "ema_200", "sma_20", "sma_50"),
    *("rsi_14", "atr_14", "macd", "macd_signal", "macd_hist"),
    *("bb_upper", "bb_middle", "bb_lower", "adx_14", "plus_di_14", "minus_di_14"),
    *("stoch_k", "stoch_d", "willr_14", "cci_20", "roc_10", "obv", "ad", "cmf_20", "mfi_14"),
    *("vwap", "vwap_sd", "kc_upper", "kc_middle", "kc_lower"),
    *("donchian_upper", "donchian_middle", "donchian_lower"),
    *("vwap_upper_1", "vwap_lower_1", "vwap_upper_2", "vwap_lower_2"),
]


# ---------------------------------------------------------------- data loading
def _columns(rows: list[tuple]) -> dict[str, np.ndarray]:
    a = np.array(rows, dtype=np.float64)
    out = {f: a[:, i] for i, f in enumerate(FIELDS)}
    out["date"] = out["date"].astype(np.int64)
    return out


def _load_intraday() -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for path in sorted((DATA / "intraday_1min_2022-11-11").glob("*.txt.gz")):
        rows = []
        with gzip.open(path, "rt") as fh:
            for line in fh:
                f = line.strip().split(",")
                if "09:16" <= f[2] <= "15:30":
                    rows.append((int(f[1]), *map(float, f[3:8])))
        out[path.name.split(".")[0]] = _columns(rows)
    return out


def _load_kite(folder: str, sep: str) -> dict[str, dict[str, np.ndarray]]:
    """Kite candles CSV: datetime,open,high,low,close,volume[,oi]; date = the IST day."""
    out = {}
    for path in sorted((DATA / folder).glob("*.csv.gz")):
        with gzip.open(path, "rt") as fh:
            header = fh.readline().strip().split(",")
            assert header[:6] == ["datetime", "open", "high", "low", "close", "volume"]
            rows = []
            for line in fh:
                f = line.strip().split(",")
                rows.append((int(f[0][:10].replace("-", "")), *map(float, f[1:6])))
        out[path.name.split(sep)[0]] = _columns(rows)
    return out


@pytest.fixture(scope="module")
def intraday():
    d = _load_intraday()
    assert len(d) >= 30 and all(len(v["close"]) == 375 for v in d.values())
    return d


@pytest.fixture(scope="module")
def daily():
    d = _load_kite("daily_kite", "_day_")
    assert len(d) >= 40 and all(len(v["close"]) > 1000 for v in d.values())
    return d


@pytest.fixture(scope="module")
def hourly():
    d = _load_kite("hourly_kite", "_60minute_")
    assert len(d) >= 40 and all(len(v["close"]) > 1500 for v in d.values())
    # hourly candles: several bars share a session date (VWAP resets daily)
    assert all(np.unique(v["date"]).size * 5 < len(v["date"]) for v in d.values())
    return d


# ---------------------------------------------------------------- references
def vwap_reference(date, high, low, close, volume, mults=(1.0, 2.0)) -> dict[str, np.ndarray]:
    """Session VWAP and its volume-weighted population std dev, two-pass per bar."""
    tp = (high + low + close) / 3.0
    n = len(close)
    vwap, sd = np.full(n, np.nan), np.full(n, np.nan)
    starts = np.flatnonzero(np.r_[True, date[1:] != date[:-1]])
    for a, b in zip(starts, np.r_[starts[1:], n], strict=True):
        for t in range(a, b):
            w, x = volume[a : t + 1], tp[a : t + 1]
            if w.sum() > 0:
                vwap[t] = (x * w).sum() / w.sum()
                sd[t] = np.sqrt((w * (x - vwap[t]) ** 2).sum() / w.sum())
    ref = {"vwap": vwap, "vwap_sd": sd}
    for m in mults:
        ref[f"vwap_upper_{m:g}"] = vwap + m * sd
        ref[f"vwap_lower_{m:g}"] = vwap - m * sd
    return ref


def keltner_reference(high, low, close, period, atr_period, mult) -> dict[str, np.ndarray]:
    """EMA(period) of typical price (seeded with the mean of the first ``period``) +/-
    ``mult`` x Wilder ATR(atr_period) whose seed is the mean of the ``atr_period`` true
    ranges ending at the first output bar max(period, atr_period + 1)."""
    n = len(close)
    tp = (high + low + close) / 3.0
    ema = np.full(n, np.nan)
    if n >= period:
        ema[period - 1] = tp[:period].mean()
        for i in range(period, n):
            ema[i] = ema[i - 1] + 2.0 / (period + 1) * (tp[i] - ema[i - 1])
    prev = np.r_[np.nan, close[:-1]]
    tr = np.max([high - low, np.abs(high - prev), np.abs(low - prev)], axis=0)
    first = max(period, atr_period + 1) - 1
    atr = np.full(n, np.nan)
    if n > first:
        atr[first] = tr[first - atr_period + 1 : first + 1].mean()
        for i in range(first + 1, n):
            atr[i] = (atr[i - 1] * (atr_period - 1) + tr[i]) / atr_period
    mid = np.where(np.isnan(atr), np.nan, ema)
    return {"kc_upper": mid + mult * atr, "kc_middle": mid, "kc_lower": mid - mult * atr}


def window_reference(high, low, close, volume, don: int, cmf: int) -> dict[str, np.ndarray]:
    """Donchian channel and Chaikin Money Flow from sliding windows."""
    n = len(close)
    ref = {k: np.full(n, np.nan) for k in ("donchian_upper", "donchian_lower", f"cmf_{cmf}")}
    if n >= don:
        ref["donchian_upper"][don - 1 :] = sliding_window_view(high, don).max(axis=1)
        ref["donchian_lower"][don - 1 :] = sliding_window_view(low, don).min(axis=1)
    ref["donchian_middle"] = (ref["donchian_upper"] + ref["donchian_lower"]) / 2.0
    rng = high - low
    with np.errstate(invalid="ignore", divide="ignore"):
        mfv = np.where(rng > 0, ((close - low) - (high - close)) / rng * volume, 0.0)
    if n >= cmf:
        smf = sliding_window_view(mfv, cmf).sum(axis=1)
        sv = sliding_window_view(volume, cmf).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ref[f"cmf_{cmf}"][cmf - 1 :] = np.where(sv > 0, smf / sv, 0.0)
    return ref


def talib_reference(bars, cfg: IndicatorsConfig) -> dict[str, np.ndarray]:
    h, lo, c, v = bars["high"], bars["low"], bars["close"], bars["volume"]
    ref = {f"ema_{p}": talib.EMA(c, p) for p in cfg.ema_periods}
    ref |= {f"sma_{p}": talib.SMA(c, p) for p in cfg.sma_periods}
    ref[f"rsi_{cfg.rsi_period}"] = talib.RSI(c, cfg.rsi_period)
    ref[f"atr_{cfg.atr_period}"] = talib.ATR(h, lo, c, cfg.atr_period)
    macd = talib.MACD(c, cfg.macd_fast, cfg.macd_slow, cfg.macd_signal)
    ref |= dict(zip(("macd", "macd_signal", "macd_hist"), macd, strict=True))
    bb = talib.BBANDS(c, cfg.bb_period, cfg.bb_nbdev, cfg.bb_nbdev, 0)
    ref |= dict(zip(("bb_upper", "bb_middle", "bb_lower"), bb, strict=True))
    p = cfg.adx_period
    ref[f"adx_{p}"] = talib.ADX(h, lo, c, p)
    ref[f"plus_di_{p}"] = talib.PLUS_DI(h, lo, c, p)
    ref[f"minus_di_{p}"] = talib.MINUS_DI(h, lo, c, p)
    k, d = talib.STOCH(h, lo, c, cfg.stoch_fastk, cfg.stoch_slowk, 0, cfg.stoch_slowd, 0)
    ref["stoch_k"], ref["stoch_d"] = k, d
    ref[f"willr_{cfg.willr_period}"] = talib.WILLR(h, lo, c, cfg.willr_period)
    ref[f"cci_{cfg.cci_period}"] = talib.CCI(h, lo, c, cfg.cci_period)
    ref[f"roc_{cfg.roc_period}"] = talib.ROC(c, cfg.roc_period)
    ref["obv"] = talib.OBV(c, v)
    ref["ad"] = talib.AD(h, lo, c, v)
    ref[f"mfi_{cfg.mfi_period}"] = talib.MFI(h, lo, c, v, cfg.mfi_period)
    return ref


def numpy_reference(bars, cfg: IndicatorsConfig) -> dict[str, np.ndarray]:
    h, lo, c, v = bars["high"], bars["low"], bars["close"], bars["volume"]
    ref = vwap_reference(bars["date"], h, lo, c, v, cfg.vwap_band_multipliers)
    kc = (cfg.keltner_period, cfg.keltner_atr_period, cfg.keltner_multiplier)
    ref |= keltner_reference(h, lo, c, *kc)
    return ref | window_reference(h, lo, c, v, cfg.donchian_period, cfg.cmf_period)


def reference(bars, cfg: IndicatorsConfig) -> dict[str, np.ndarray]:
    return talib_reference(bars, cfg) | numpy_reference(bars, cfg)


def assert_series_match(name: str, ours: np.ndarray, ref: np.ndarray) -> None:
    """Same NaN warm-up (same first output index, no NaN after) and values within RTOL.

    ``vwap_sd`` is a standard deviation that is 0 on flat sessions, where the two-pass
    reference leaves rounding residue: it is compared with an absolute tolerance of
    1e-9 of the price level as well.
    """
    nan_ours, nan_ref = np.isnan(ours), np.isnan(ref)
    lead_ours = int(np.argmin(nan_ours)) if not nan_ours.all() else len(ours)
    lead_ref = int(np.argmin(nan_ref)) if not nan_ref.all() else len(ref)
    assert lead_ours == lead_ref, f"{name}: warm-up {lead_ours} bars vs reference {lead_ref}"
    np.testing.assert_array_equal(nan_ours, nan_ref, err_msg=f"{name}: NaN positions differ")
    ok = ~nan_ref
    atol = 0.0
    if name.endswith("vwap_sd") and ok.any():
        atol = 1e-9 * float(np.nanmax(np.abs(ours)) + 1.0)
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=RTOL, atol=atol, err_msg=name)


def assert_all_match(label: str, names: list[str], hist: dict, ref: dict) -> None:
    assert set(names) == set(ref), f"reference covers {sorted(set(names) ^ set(ref))}"
    for name in names:
        assert_series_match(f"{label}:{name}", hist[name], ref[name])


# ---------------------------------------------------------------- feeding
def feed_one_by_one(core: IndicatorCore, slot: int, bars) -> dict[str, np.ndarray]:
    """One update() call per bar; returns the values() series after each bar."""
    n = len(bars["close"])
    hist = {name: np.empty(n) for name in core.names()}
    s = np.array([slot], dtype=np.int64)
    for i in range(n):
        sl = slice(i, i + 1)
        core.update(s, *(bars[f][sl] for f in FIELDS))
        for name, v in core.values(s).items():
            hist[name][i] = v[0]
    return hist


def feed_lockstep(core: IndicatorCore, series: list[dict]) -> list[dict[str, np.ndarray]]:
    """Batch ``t`` holds bar ``t`` of every instrument that has one (as compute.py feeds
    one minute of all instruments); returns per instrument the value series."""
    lens = np.array([len(b["close"]) for b in series])
    rows = [np.empty((n, len(core.names()))) for n in lens]
    cols = {f: np.full((len(series), lens.max()), np.nan) for f in FIELDS}
    for k, b in enumerate(series):
        for f in FIELDS:
            cols[f][k, : lens[k]] = b[f]
    for t in range(lens.max()):
        slots = np.flatnonzero(lens > t)
        core.update(slots, *(cols[f][slots, t] for f in FIELDS))
        vals = core.values(slots)
        block = np.stack([vals[name] for name in core.names()], axis=1)
        for j, k in enumerate(slots):
            rows[k][t] = block[j]
    return [{name: r[:, i] for i, name in enumerate(core.names())} for r in rows]


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
        owners = np.repeat(np.arange(n_inst), take)
        rng.shuffle(owners)
        idx = np.empty(len(owners), dtype=np.int64)
        nxt = pos.copy()
        for j, k in enumerate(owners):
            idx[j] = nxt[k]
            nxt[k] += 1
        cols = {
            f: np.array([series[k][f][i] for k, i in zip(owners, idx, strict=True)]) for f in FIELDS
        }
        core.update(owners.astype(np.int64), *(cols[f] for f in FIELDS))
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
def test_default_names_and_config_file():
    core = IndicatorCore(1)
    assert core.names() == DEFAULT_NAMES
    assert len(set(core.names())) == len(core.names())


@pytest.mark.parametrize("source", ["intraday", "hourly", "daily"])
def test_parity_real_bars_all_kernels(source, request):
    """Every kernel on every instrument of the real 1-minute day, hourly and daily bars."""
    data = request.getfixturevalue(source)
    cfg = IndicatorsConfig()
    core = IndicatorCore(len(data), cfg)
    hists = feed_lockstep(core, list(data.values()))
    n_values = 0
    for (sym, bars), hist in zip(data.items(), hists, strict=True):
        assert_all_match(f"{source}:{sym}", core.names(), hist, reference(bars, cfg))
        n_values += int((~np.isnan(hist["ema_200"])).sum())
    assert n_values > 0 if source != "intraday" else n_values > 30 * 150
    np.testing.assert_array_equal(
        core.bar_count(np.arange(len(data))), [len(b["close"]) for b in data.values()]
    )


def test_warmup_first_output_bar_is_talib_lookback(intraday):
    """First non-NaN index of each output equals TA-Lib's documented lookback."""
    cfg = IndicatorsConfig()
    hist = feed_one_by_one(IndicatorCore(1, cfg), 0, intraday["RELIANCE"])
    lookbacks = {"ema_5": 4, "ema_200": 199, "sma_50": 49, "rsi_14": 14, "atr_14": 14,
                 "macd": 33, "macd_signal": 33, "bb_upper": 19, "adx_14": 27,
                 "plus_di_14": 14, "stoch_k": 17, "stoch_d": 17, "willr_14": 13, "cci_20": 19,
                 "roc_10": 10, "obv": 0, "ad": 0, "cmf_20": 19, "mfi_14": 14, "vwap": 0,
                 "kc_upper": 19, "donchian_lower": 19}  # fmt: skip
    for name, lookback in lookbacks.items():
        assert np.isnan(hist[name][:lookback]).all(), name
        assert not np.isnan(hist[name][lookback:]).any(), name


def test_parity_intraday_mixed_batches(intraday):
    cfg = IndicatorsConfig(ema_periods=(3, 20, 50), sma_periods=(5,), macd_fast=5,
                           macd_slow=13, macd_signal=4, stoch_slowk=1)  # fmt: skip
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
            atol = 1e-9 * float(np.max(r[ok], initial=0.0)) if name == "vwap_sd" else 0.0
            np.testing.assert_allclose(ours[ok], r[ok], rtol=RTOL, atol=atol, err_msg=name)
        assert core.bar_count(np.array([k]))[0] == 375


# ---------------------------------------------------------------- 2. random walks
def random_walk(seed: int, n: int = 1500) -> dict[str, np.ndarray]:
    """Random walk with gaps (jumps), flat stretches (zero changes, h == l == c, no
    volume) and monotone stretches (no losses / no gains); 4 sessions of 375 bars."""
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


CONFIGS = [
    IndicatorsConfig(),
    IndicatorsConfig(ema_periods=(2, 3, 9), sma_periods=(2, 7), rsi_period=2, atr_period=1,
                     macd_fast=2, macd_slow=3, macd_signal=2, bb_period=2, bb_nbdev=1.0,
                     adx_period=2, stoch_fastk=1, stoch_slowk=1, stoch_slowd=1,
                     willr_period=2, cci_period=2, roc_period=1, cmf_period=1, mfi_period=2,
                     vwap_band_multipliers=(0.5,), keltner_period=2, keltner_atr_period=1,
                     keltner_multiplier=1.5, donchian_period=1),
    IndicatorsConfig(ema_periods=(10,), sma_periods=(), rsi_period=30, atr_period=30,
                     macd_fast=20, macd_slow=40, macd_signal=15, bb_period=60, bb_nbdev=3.0,
                     adx_period=30, stoch_fastk=30, stoch_slowk=5, stoch_slowd=7,
                     willr_period=40, cci_period=45, roc_period=25, cmf_period=50,
                     mfi_period=35, vwap_band_multipliers=(1.0, 1.5, 3.0), keltner_period=5,
                     keltner_atr_period=30, keltner_multiplier=1.0, donchian_period=55),
]  # fmt: skip


@pytest.mark.parametrize("cfg", CONFIGS, ids=["default", "short", "long"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_parity_random_walks(cfg, seed):
    bars = random_walk(seed)
    core = IndicatorCore(3, cfg)
    hist = feed_one_by_one(core, 1, bars)
    assert_all_match(f"seed{seed}", core.names(), hist, reference(bars, cfg))


def test_keltner_donchian_cmf_equal_talib_08_too():
    """TA-Lib 0.8 added KC, DONCHIAN and CMF: a second, independent reference."""
    bars = random_walk(4)
    h, lo, c, v = bars["high"], bars["low"], bars["close"], bars["volume"]
    hist = feed_one_by_one(IndicatorCore(1), 0, bars)
    kc = dict(zip(("kc_upper", "kc_middle", "kc_lower"), talib.KC(h, lo, c, 20, 10, 2.0),
                  strict=True))  # fmt: skip
    dc = talib.DONCHIAN(h, lo, 20)
    dc = dict(zip(("donchian_upper", "donchian_middle", "donchian_lower"), dc, strict=True))
    for name, ref in {**kc, **dc, "cmf_20": talib.CMF(h, lo, c, v, 20)}.items():
        assert_series_match(name, hist[name], ref)


@pytest.mark.parametrize(
    "close",
    [
        np.full(60, 250.0),  # flat from the start: RSI 0, ATR 0, DI 0, CCI 0, %K 0
        250.0 + np.arange(60.0),  # no losses: RSI 100
        250.0 - np.arange(60.0),  # no gains: RSI 0
        np.r_[np.full(20, 250.0), 251.0, np.full(300, 251.0)],  # one gain then flat
        np.r_[250.0 + np.arange(16.0), np.full(40, 265.0), 250.0 - np.arange(10.0)],
        np.r_[np.full(30, 0.1 + 0.2), np.full(30, 0.3)],  # sub-epsilon residue, tiny prices
    ],
    ids=["flat", "up", "down", "step", "up-flat-down", "residue"],
)
def test_degenerate_series(close):
    bars = {"date": np.full(len(close), 20240102), "open": close, "high": close, "low": close,
            "close": close, "volume": np.zeros(len(close))}  # fmt: skip
    core = IndicatorCore(1)
    hist = feed_one_by_one(core, 0, bars)
    assert_all_match("degenerate", core.names(), hist, reference(bars, core.config))
    assert np.isnan(hist["vwap"]).all()  # no volume at all


@settings(max_examples=40, deadline=None)
@given(
    prices=st.lists(st.sampled_from([99.0, 99.5, 100.0, 100.05, 101.0]), min_size=1, max_size=90),
    volumes=st.lists(st.sampled_from([0.0, 1.0, 250.0]), min_size=90, max_size=90),
    short=st.integers(2, 12),
    long_=st.integers(13, 30),
)
def test_parity_property_small_price_alphabet(prices, volumes, short, long_):
    """Few distinct prices -> many zero changes and ties; any length incl. shorter than
    warm-up; the whole series in one batch, so only the final values are observable."""
    close = np.array(prices)
    n = len(close)
    high = close + 0.5
    low = close - np.r_[0.0, np.diff(close) != 0] * 0.25
    bars = {"date": np.full(n, 20240102), "open": close, "high": high, "low": low,
            "close": close, "volume": np.array(volumes[:n])}  # fmt: skip
    cfg = IndicatorsConfig(ema_periods=(short, long_), sma_periods=(short,), rsi_period=short,
                           atr_period=long_, macd_fast=short, macd_slow=long_,
                           macd_signal=short, bb_period=long_, adx_period=short,
                           stoch_fastk=long_, stoch_slowk=short % 4 + 1, willr_period=short,
                           cci_period=long_, roc_period=short, cmf_period=short,
                           mfi_period=long_, keltner_period=long_, keltner_atr_period=short,
                           donchian_period=long_)  # fmt: skip
    core = IndicatorCore(1, cfg)
    core.update(np.zeros(n, np.int64), *(bars[f] for f in FIELDS))
    ref = reference(bars, cfg)
    vals = core.values(np.array([0]))
    for name in core.names():
        r, o = ref[name][-1], vals[name][0]
        if np.isnan(r):
            assert np.isnan(o), name
        elif name == "vwap_sd":
            assert o == pytest.approx(r, rel=RTOL, abs=1e-9 * close.max()), name
        else:
            assert o == pytest.approx(r, rel=RTOL, abs=0.0), name


# ---------------------------------------------------------------- 3. forming
def _snapshot(core: IndicatorCore) -> dict[str, np.ndarray]:
    snap = {k: v.copy() for k, v in vars(core).items() if isinstance(v, np.ndarray)}
    assert {"istate", "fstate", "ring", "out"} <= snap.keys()
    return snap


def test_forming_equals_update_and_does_not_mutate(intraday):
    cfg = IndicatorsConfig(ema_periods=(3, 20), rsi_period=5, atr_period=4, macd_fast=3,
                           macd_slow=8, macd_signal=3, adx_period=4)  # fmt: skip
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
        one = [np.array([x]) for x in (date, c, h, lo, c, v)]
        core.update(s, *one)
        # the other core sees only closed bars: forming must equal its post-update values
        other.update(s, *one)
        want = other.values(s)
        for name in core.names():
            w = want[name][0]
            assert (np.isnan(got[name]) and np.isnan(w)) or got[name] == w, (i, name)
            n_checked += not np.isnan(w)
    assert n_checked > 40 * 300
    # forming on a fresh slot: first bar -> only the cumulative ones and VWAP defined
    f = core.forming(0, 10.0, 8.0, 9.0, 100.0, 20240102)
    assert f["vwap"] == pytest.approx(9.0) and f["obv"] == 100.0 and f["vwap_sd"] == 0.0
    assert np.isnan(f["ema_3"]) and np.isnan(f["rsi_5"]) and np.isnan(f["stoch_k"])


def test_forming_values_vectorised_equals_per_slot(intraday):
    series = list(intraday.values())[:6]
    core = IndicatorCore(len(series))
    feed_lockstep(core, [{f: b[f][:300] for f in FIELDS} for b in series])
    slots = np.array([5, 0, 3, 3])  # a slot may repeat: each row is independent
    bar = {f: np.array([series[k][f][300 + j] for j, k in enumerate(slots)]) for f in FIELDS}
    bar["high"] = bar["high"] + np.array([0.0, 0.0, 0.0, 2.0])
    many = core.forming_values(slots, bar["date"], bar["high"], bar["low"], bar["close"],
                               bar["volume"])  # fmt: skip
    for j, k in enumerate(slots):
        hlcv = (float(bar[f][j]) for f in ("high", "low", "close", "volume"))
        one = core.forming(int(k), *hlcv, int(bar["date"][j]))
        for name in core.names():
            np.testing.assert_equal(many[name][j], one[name], err_msg=name)
    assert many["donchian_upper"][3] >= many["donchian_upper"][2]


def test_forming_session_change_resets_vwap():
    core = IndicatorCore(1)
    core.update(np.array([0]), np.array([20240102]), np.array([10.0]), np.array([12.0]),
                np.array([9.0]), np.array([12.0]), np.array([100.0]))  # fmt: skip
    assert core.values(np.array([0]))["vwap"][0] == pytest.approx(11.0)
    same = core.forming(0, 30.0, 30.0, 30.0, 100.0, 20240102)
    new = core.forming(0, 30.0, 30.0, 30.0, 100.0, 20240103)
    assert same["vwap"] == pytest.approx(20.5)
    # two equal-volume bars at 11 and 30: population sd = 9.5, bands at +/- 1 and 2 sd
    assert same["vwap_sd"] == pytest.approx(9.5)
    assert same["vwap_upper_2"] == pytest.approx(39.5) and same["vwap_lower_1"] == 11.0
    assert new["vwap"] == pytest.approx(30.0) and new["vwap_sd"] == 0.0
    assert np.isnan(core.forming(0, 30.0, 30.0, 30.0, 0.0, 20240103)["vwap"])


# ---------------------------------------------------------------- 4. VWAP
def test_vwap_bands_match_numpy_reference_with_session_resets():
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
    assert np.isnan(ref["vwap"][300:310]).all() and not np.isnan(ref["vwap"][310])
    assert np.isnan(ref["vwap_upper_2"][900:]).all()
    hist = feed_one_by_one(IndicatorCore(2), 1, bars)
    for name, r in ref.items():
        assert_series_match(name, hist[name], r)
    # session reset really discards the previous day: first bar of day 3 == its typical price
    assert hist["vwap"][600] == pytest.approx((high[600] + low[600] + close[600]) / 3, rel=1e-12)
    assert hist["vwap_sd"][600] == 0.0 and hist["vwap_sd"][601] > 0.0


def test_vwap_real_intraday_incl_indices(intraday):
    names = list(intraday)
    hists = feed_lockstep(IndicatorCore(len(names)), list(intraday.values()))
    for sym, hist in zip(names, hists, strict=True):
        b = intraday[sym]
        ref = vwap_reference(b["date"], b["high"], b["low"], b["close"], b["volume"])
        if b["volume"].sum() == 0:
            assert np.isnan(hist["vwap"]).all() and np.isnan(hist["vwap_upper_1"]).all(), sym
        for name, r in ref.items():
            assert_series_match(f"{sym}:{name}", hist[name], r)
    assert np.isnan(hists[names.index("NIFTY")]["vwap"]).all()  # an index has no volume


# ---------------------------------------------------------------- 5. grow, validation
def test_grow_keeps_state_and_continues(intraday):
    bars = intraday["INFY"]
    core = IndicatorCore(2)
    half = 120
    feed_one_by_one(core, 1, {f: v[:half] for f, v in bars.items()})
    before = core.values(np.array([0, 1]))
    core.grow(50)
    assert core.n_slots == 50
    after = core.values(np.array([0, 1]))
    for name in core.names():
        np.testing.assert_array_equal(before[name], after[name])
    np.testing.assert_array_equal(core.bar_count(np.array([0, 1, 49])), [0, half, 0])
    assert all(np.isnan(v).all() for v in core.values(np.arange(2, 50)).values())
    core.grow(50)  # no-op
    hist = feed_one_by_one(core, 1, {f: v[half:] for f, v in bars.items()})
    ref = reference(bars, core.config)
    for name in core.names():
        assert_series_match(name, hist[name], ref[name][half:])
    # a new slot after growth behaves like a fresh instrument
    assert_all_match("slot49", core.names(), feed_one_by_one(core, 49, bars), ref)


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
    core.update(np.array([], dtype=np.int64), *[np.array([])] * 6)  # empty batch is fine
    assert (core.bar_count(np.arange(3)) == 0).all()


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"ema_periods": (20, 20)}, "indicators.ema_periods"),
        ({"ema_periods": ()}, "indicators.ema_periods"),
        ({"sma_periods": (1,)}, "indicators.sma_periods"),
        ({"rsi_period": 1}, "indicators.rsi_period"),
        ({"macd_fast": 26, "macd_slow": 12}, "indicators.macd_slow"),
        ({"bb_nbdev": 0.0}, "indicators.bb_nbdev"),
        ({"stoch_slowd": 0}, "indicators.stoch_slowd"),
        ({"vwap_band_multipliers": (1.0, 1.0)}, "indicators.vwap_band_multipliers"),
        ({"timeframes": {"7m": {}}}, "indicators.timeframes.7m"),
        ({"timeframes": {"5m": {"cci_period": 1}}}, "indicators.timeframes.5m"),
        ({"timeframes": {"5m": {"nope": 1}}}, "indicators.timeframes.5m.nope"),
    ],
)
def test_config_errors_name_the_key(kwargs, key):
    with pytest.raises(ConfigError) as exc:
        IndicatorsConfig(**kwargs)
    assert str(exc.value).startswith(key) and "\n" not in str(exc.value)


def test_per_timeframe_sets_from_config():
    cfg = IndicatorsConfig(timeframes={"5m": {"ema_periods": [9, 21], "rsi_period": 7}})
    five = cfg.for_timeframe("5m")
    assert five.ema_periods == (9, 21) and five.rsi_period == 7 and five.atr_period == 14
    assert cfg.for_timeframe("1m").ema_periods == (5, 10, 20, 50, 100, 200)
    names = IndicatorCore(1, five).names()
    assert names[:3] == ["ema_9", "ema_21", "sma_20"] and "rsi_7" in names


# ---------------------------------------------------------------- 6. no allocation
def test_update_allocates_nothing_per_instrument():
    """One update() call allocates the same, small amount whether it updates 1 or 20,000
    instruments: no Python object per instrument (tracemalloc) and no Numba heap block
    per update (NRT statistics count only the per-call argument wrappers)."""
    n = 20_000
    core = IndicatorCore(n)
    inputs = {}
    for k in (1, n):
        x = np.linspace(100.0, 101.0, k)
        inputs[k] = (np.arange(k, dtype=np.int64), np.full(k, 20240102, np.int64), x, x + 1.0,
                     x - 1.0, x, np.full(k, 10.0))  # fmt: skip
    core.update(*inputs[1])  # compile / load the cache outside the measurement
    was_enabled = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    try:
        measured = {}
        for _ in range(3):
            for k in (1, n):
                nrt0 = rtsys.get_allocation_stats()
                tracemalloc.start()
                core.update(*inputs[k])
                _cur, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                nrt1 = rtsys.get_allocation_stats()
                measured[k] = (peak, nrt1.alloc - nrt0.alloc, nrt1.free - nrt0.free)
    finally:
        if not was_enabled:
            _nrt_python.memsys_disable_stats()
    (peak_1, alloc_1, free_1), (peak_n, alloc_n, free_n) = measured[1], measured[n]
    assert alloc_n == alloc_1 and free_n == free_1 and alloc_1 == free_1
    assert alloc_1 <= 16  # one wrapper per array argument of update_bars
    assert peak_n < 4096 and peak_n <= peak_1 + 1024, measured
    np.testing.assert_array_equal(core.bar_count(np.array([0, 1, n - 1])), [7, 3, 3])
    assert len(core._params) == kernels.N_PARAMS
