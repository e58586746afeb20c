"""Soundness of the detectors' vectorised gates: the gated pattern engine
(:meth:`PatternEngine.detect_minute`) gives exactly the signals of running every detector
on every bar, on the real 2022-11-11 session (with a derived option chain) and on seeded
synthetic minutes built to trigger each detector; and every gate passes somewhere (a gate
that is always False, or never exercised, fails here)."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import numpy as np
import pytest
from pattern_views import DAY, make_view

from aion.config import load_config, load_patterns
from aion.patterns.frame import HISTORY_FIELDS, MinuteFrame, mean_ranges
from aion.patterns.registry import (
    InstrumentView,
    PatternEngine,
    Signal,
    known_detectors,
    register,
)
from aion.patterns.scoring import atr_or_range, history_len
from aion.pipeline.compute import ComputeEngine
from aion.replay.builder import build_session
from aion.replay.session_file import read_session
from aion.volume.averages import (
    bundled_adjustment_factors,
    bundled_daily_dir,
    daily_averages,
    read_adjustment_factors,
)

DATA = Path(__file__).resolve().parents[3] / "aion" / "data" / "intraday_1min_2022-11-11"
FILES = ["HDFCBANK", "RELIANCE", "SBIN", "INFY", "TATAMOTORS", "NIFTY", "INDIAVIX", "NIFTY_F1"]


class CheckedEngine(PatternEngine):
    """The gated engine, checked minute by minute against every detector on every row."""

    minutes = 0

    def detect_minute(self, frame, view_of):  # type: ignore[no-untyped-def]
        built: list[int] = []

        def once(j: int) -> InstrumentView:
            built.append(j)
            return view_of(j)

        got = super().detect_minute(frame, once)
        assert len(built) == len(set(built)), "a row's view was built twice"
        want = [(view_of(j), s) for j in range(len(frame)) for s in self.detect(view_of(j))]
        assert key(got) == key(want)
        self.minutes += 1
        return got


def key(pairs: list[tuple[InstrumentView, Signal]]) -> list[tuple[str, int, str]]:
    """Comparable form (repr: evidence may hold NaN, which is unequal to itself)."""
    return [(v.symbol, v.bar_start, repr(s)) for v, s in pairs]


# ------------------------------------------------------------------------ real session
@pytest.fixture(scope="module")
def real_stats(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, float]]:
    out = tmp_path_factory.mktemp("gates") / "s.session.gz"
    build_session([DATA / f"{f}.txt.gz" for f in FILES], DAY, out, option_chain=2)
    session = read_session(out)
    insts = {i.instrument_token: i for i in session.instruments()}
    cfg = load_config()
    wanted = {i.tradingsymbol for i in insts.values() if i.exchange == "NSE"}
    factors = read_adjustment_factors(bundled_adjustment_factors())
    avgs = daily_averages(bundled_daily_dir(), DAY, cfg.volume.average_days, factors, wanted)
    patterns = CheckedEngine(load_patterns())
    eng = ComputeEngine(insts, cfg, patterns, {k: a.avg_volume for k, a in avgs.items()}, {})
    for i in range(0, len(session.frames), 64):
        part = zip(session.ts_ns[i : i + 64], session.frames[i : i + 64], strict=True)
        eng.process([(int(t), "c0", f) for t, f in part])
    eng.finish()
    assert patterns.minutes >= 375 and eng.alerts
    stats = patterns.gate_stats
    assert stats.bars == eng.counters.regular_bars
    assert stats.viewed < stats.bars / 2, stats.report()  # most bars never build a view
    return stats.report()


def test_gated_engine_matches_every_detector_on_the_real_session(
    real_stats: dict[str, dict[str, float]],
) -> None:
    fired = {n for n, r in real_stats.items() if r["fired"]}
    assert len(fired) >= 15, sorted(fired)  # the check above compared real signals
    for name, r in real_stats.items():
        assert r["fired"] <= r["passed"], name
        assert r["pass_rate"] < 0.5, (name, r)  # gates do filter


# ------------------------------------------------------------------------ synthetic minutes
def frame_of(views: list[InstrumentView]) -> MinuteFrame:
    """The MinuteFrame of hand-made views (an independent assembly of the columns)."""
    n = len(views)
    lens = np.array([history_len(v) for v in views], np.int64)
    m = int(lens.max())
    hist = np.full((5, n, m), np.nan)
    for j, v in enumerate(views):
        for i, f in enumerate(HISTORY_FIELDS):
            hist[i, j, m - lens[j] :] = v.history[f]

    def col(get) -> np.ndarray:  # type: ignore[no-untyped-def]
        return np.array([get(v) for v in views], np.float64)

    ind_names = {k for v in views for k in v.indicators}
    prof_names = {k for v in views for k in v.profile}
    book_f = ("total_buy_quantity", "total_sell_quantity", "bid_quantity_5", "ask_quantity_5")
    return MinuteFrame(
        slot=np.arange(n),
        bar_start=np.array([v.bar_start for v in views], np.int64),
        open=col(lambda v: v.open),
        high=col(lambda v: v.high),
        low=col(lambda v: v.low),
        close=col(lambda v: v.close),
        volume=col(lambda v: v.volume),
        indicators={k: col(lambda v, k=k: v.indicators.get(k, math.nan)) for k in ind_names},
        expected_bar_volume=col(lambda v: v.expected_bar_volume),
        rvol_bar=col(lambda v: v.rvol_bar),
        rvol_cum=col(lambda v: v.rvol_cum),
        threshold_multiplier=col(lambda v: v.threshold_multiplier),
        regime=[v.regime for v in views],
        profile={k: col(lambda v, k=k: v.profile.get(k, math.nan)) for k in prof_names},
        history=hist,
        history_len=lens,
        book=np.array([[v.book.get(f, math.nan) for f in book_f] for v in views], np.float64),
        chains={j: v.chain for j, v in enumerate(views) if v.chain},
    )


def random_view(rng: np.random.Generator) -> InstrumentView:
    """A bar after a random-walk history with trends, spikes, fading volume, gaps, swings,
    and random indicators, RVOL, regime, profile, book and option chain."""
    n = int(rng.choice([0, 2, 5, 16, 25, 31, 40, 64]))
    px = 1000.0
    step = rng.choice([0.5, 2.0, 6.0])
    drift = rng.choice([-1.0, 0.0, 1.0]) * step * rng.uniform(0, 1.2)
    close = px + np.cumsum(rng.normal(drift, step, n + 1))
    if n > 10 and rng.random() < 0.5:  # swing: reverse the last third
        k = n // 3
        close[-k:] = close[-k - 1] - np.cumsum(np.abs(rng.normal(drift, step, k)))
    opn = np.r_[close[0], close[:-1]] + rng.normal(0, step / 3, n + 1)
    wick = np.abs(rng.normal(0, step, (2, n + 1)))
    if rng.random() < 0.3:  # gaps between bars
        opn += rng.normal(0, 3 * step, n + 1)
    high = np.maximum(opn, close) + wick[0]
    low = np.minimum(opn, close) - wick[1]
    vol = rng.lognormal(8, 0.5, n + 1)
    if rng.random() < 0.4:
        vol *= np.linspace(2.0, 0.3, n + 1)  # fading volume
    if rng.random() < 0.4:
        vol[-1] *= rng.uniform(2, 12)  # spike
    hist = {"open": opn[:-1], "high": high[:-1], "low": low[:-1], "close": close[:-1],
            "volume": vol[:-1]}  # fmt: skip
    c = float(close[-1])
    mr = float(np.mean(high - low))
    indicators = {
        "atr_14": float(rng.choice([math.nan, mr * rng.uniform(0.3, 1.5)])),
        "ema_20": c - rng.normal(0, 3 * step),
        "rsi_14": float(rng.uniform(10, 90)),
        "vwap": c + rng.normal(0, 4 * step),
        "adx_14": float(rng.choice([math.nan, rng.uniform(5, 40)])),
    }
    prof: dict[str, float] = {}
    if rng.random() < 0.7:
        poc = c + rng.normal(0, 3 * step)
        prof = {"poc": poc, "vah": poc + abs(rng.normal(2 * step, step)),
                "val": poc - abs(rng.normal(2 * step, step)),
                "hvn_1": c + rng.normal(0, 2 * step), "lvn_1": c + rng.normal(0, 2 * step),
                "poc_prev": poc + rng.normal(0, step),
                "vah_prev": poc + abs(rng.normal(2 * step, step)),
                "val_prev": poc - abs(rng.normal(2 * step, step))}  # fmt: skip
    book: dict[str, float] = {}
    if rng.random() < 0.5:
        b, a = rng.lognormal(10, 1, 2)
        book = {"total_buy_quantity": b, "total_sell_quantity": a,
                "bid_quantity_5": b * rng.uniform(0.5, 1.5), "ask_quantity_5": a}  # fmt: skip
    chain: dict[str, np.ndarray] = {}
    if rng.random() < 0.3:
        atm = round(c / 50) * 50
        strikes = atm + 50.0 * np.arange(-2, 3)
        iv = rng.uniform(0.1, 0.6)
        prem = float(rng.uniform(20, 80))
        chain = {"strike": strikes,
                 "ce_last_price": np.maximum(c - strikes, 0) + prem,
                 "pe_last_price": np.maximum(strikes - c, 0) + prem,
                 "ce_iv": np.full(5, iv), "pe_iv": np.full(5, iv),
                 "ce_theta": np.full(5, -rng.uniform(1, 5)),
                 "pe_theta": np.full(5, -rng.uniform(1, 5)),
                 "ce_oi": rng.lognormal(10, 1, 5), "pe_oi": rng.lognormal(10, 1, 5),
                 "dte_days": np.array(float(rng.choice([1.0, 3.0, 12.0]))),
                 "atm_straddle": np.array(2 * prem),
                 "atm_straddle_vwap": np.array(2 * prem * rng.uniform(0.95, 1.05))}  # fmt: skip
    hh, mm = divmod(555 + int(rng.integers(0, 375)), 60)
    return make_view(
        float(opn[-1]), float(high[-1]), float(low[-1]), c, float(vol[-1]),
        expected=float(rng.choice([math.nan, np.exp(8)])),
        history=hist, indicators=indicators, atr=indicators.pop("atr_14"), at=(hh, mm),
        rvol_bar=float(rng.choice([math.nan, vol[-1] / np.exp(8)])),
        rvol_cum=float(rng.choice([math.nan, rng.uniform(0.5, 3)])),
        threshold_multiplier=float(rng.choice([1.0, 1.3, math.nan])),
        regime=str(rng.choice(["", "LOW", "NORMAL", "HIGH"])),
        profile=prof, book=book, chain=chain,
    )  # fmt: skip


def test_gated_engine_matches_every_detector_on_synthetic_minutes(
    real_stats: dict[str, dict[str, float]],
) -> None:
    rng = np.random.default_rng(20221111)
    engine = CheckedEngine(load_patterns())
    for _ in range(12):
        views = [random_view(rng) for _ in range(300)]
        engine.detect_minute(frame_of(views), lambda j, views=views: views[j])
    synth = engine.gate_stats.report()
    rates = {
        n: (round(real_stats[n]["pass_rate"], 4), round(r["pass_rate"], 4))
        for n, r in synth.items()
    }
    for name in synth:  # each gate passes somewhere, and each detector fires somewhere
        assert synth[name]["passed"] + real_stats[name]["passed"] > 0, rates
        assert synth[name]["fired"] + real_stats[name]["fired"] > 0, (name, rates)
        assert synth[name]["pass_rate"] < 1.0, (name, rates)  # never always True


def test_frame_mean_range_equals_the_per_view_fallback() -> None:
    rng = np.random.default_rng(7)
    views = [random_view(rng) for _ in range(200)]
    f = frame_of(views)
    for j, v in enumerate(views):
        assert f.mean_range[j] == atr_or_range(make_view(v.open, v.high, v.low, v.close,
                                                         history=v.history))  # fmt: skip
        want = np.mean([v.high - v.low, *(v.history["high"] - v.history["low"]).tolist()])
        assert f.mean_range[j] == want
    lens = f.history_len
    assert np.array_equal(mean_ranges(f.high, f.low, f.history, lens), f.mean_range)


def test_a_detector_needs_a_gate_at_registration() -> None:
    with pytest.raises(TypeError):
        register("no_gate", "x", {})  # type: ignore[call-arg]
    for name, det in known_detectors().items():
        assert det.gate is not None, f"{name} has no gate"
        defaults = {k: d for k, (d, _h) in det.params.items()}
        inspect.signature(det.gate).bind(object(), **defaults)  # takes every parameter


def test_gates_are_checked_for_shape() -> None:
    engine = PatternEngine(load_patterns())
    bad = engine.active[0]
    d = bad.detector
    wrong = lambda f, **p: np.ones(len(f) + 1, np.bool_)  # noqa: E731
    broken = type(d)(d.name, d.fn, "x", d.params, "core", None, wrong)
    engine.active[0] = type(bad)(broken, bad.params, None, 0)
    v = make_view(history=None, at=(10, 0))
    with pytest.raises(ValueError, match="must return bool"):
        engine.detect_minute(frame_of([v]), lambda j: v)


def test_history_window_is_the_ring_buffer_in_order() -> None:
    from aion.bars.builder import BAR_DTYPE
    from aion.pipeline.compute import HISTORY_BARS, _History

    h = _History(3)
    d = 20221111
    for t in range(HISTORY_BARS + 5):  # slot 0 wraps around, slot 1 has 3 bars, slot 2 none
        slots = np.array([0, 1] if t < 3 else [0], np.int64)
        bars = np.zeros(slots.shape[0], BAR_DTYPE)
        bars["close"] = 100 + t + 1000 * slots
        h.append_many(slots, np.full(slots.shape[0], d), bars)
    win, lens = h.window(np.array([0, 1, 2]), np.array([d, d, d]))
    assert lens.tolist() == [HISTORY_BARS, 3, 0] and win.shape == (5, 3, HISTORY_BARS)
    close = win[HISTORY_FIELDS.index("close")]
    assert close[0].tolist() == [100.0 + t for t in range(5, HISTORY_BARS + 5)]
    assert close[1, -3:].tolist() == [1100.0, 1101.0, 1102.0] and np.isnan(close[1, :-3]).all()
    assert np.isnan(close[2]).all()
    _, lens = h.window(np.array([0]), np.array([d + 1]))  # a new session: no history
    assert lens.tolist() == [0]
