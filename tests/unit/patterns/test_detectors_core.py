"""Core detectors: each fires with the expected direction on a constructed scenario and stays
silent on a near miss.

Thresholds and confidences are checked on hand-built views against the formulas documented in
the detectors' docstrings, computed by hand here.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pattern_views import bars, hist, make_view, run

from aion.market.time import from_ist
from aion.patterns.detectors import breakout, volume_spike
from aion.patterns.registry import InstrumentView

DAY = dt.date(2022, 11, 11)
NAN = math.nan
VS = {"min_ratio": 3.0, "ratio_cap": 10.0, "min_body_fraction": 0.3}
BO = {"lookback_bars": 20, "min_volume_ratio": 1.5, "ratio_cap": 10.0}


def _hist(n: int, high: float = 105.0, low: float = 95.0, volume: float = 100.0) -> dict:
    return {
        "open": np.full(n, 100.0),
        "high": np.full(n, high),
        "low": np.full(n, low),
        "close": np.full(n, 100.0),
        "volume": np.full(n, volume),
    }


def view(
    o: float = 100.0,
    h: float = 110.0,
    lo: float = 100.0,
    c: float = 105.0,
    v: float = 1000.0,
    expected: float = 100.0,
    history: dict | None = None,
    atr: float = NAN,
    symbol: str = "NSE:SBIN",
    bar_start: int | None = None,
    lot: int = 1,
) -> InstrumentView:
    return InstrumentView(
        symbol=symbol,
        bar_start=from_ist(DAY, 10, 0) if bar_start is None else bar_start,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=v,
        history=_hist(0) if history is None else history,
        indicators={"atr_14": atr},
        expected_bar_volume=expected,
        lot_size=lot,
    )


# ------------------------------------------------------------------------ volume_spike
def test_volume_spike_ratio_threshold() -> None:
    # expected 100/min; body (105-100)/(110-100) = 0.5
    assert volume_spike(view(v=300.0), **VS) is not None  # ratio exactly 3.0 fires
    assert volume_spike(view(v=299.0), **VS) is None


def test_volume_spike_body_threshold() -> None:
    assert volume_spike(view(c=103.0, v=500.0), **VS) is not None  # body exactly 0.3
    assert volume_spike(view(c=102.99, v=500.0), **VS) is None
    sig = volume_spike(view(o=103.0, c=100.0, v=500.0), **VS)  # body -0.3 -> short
    assert sig is not None and sig.direction == "short"


def test_volume_spike_confidence_by_hand() -> None:
    # ratio 650/100 = 6.5 -> ramp (6.5-3)/(10-3) = 0.5; body (100-105)/10 = -0.5
    # conf = 0.5 + 0.3*0.5 + 0.2*0.5 = 0.75, direction short
    sig = volume_spike(view(o=105.0, c=100.0, v=650.0), **VS)
    assert sig is not None
    assert sig.pattern == "volume_spike"
    assert sig.direction == "short"
    assert sig.confidence == pytest.approx(0.75, abs=1e-12)
    assert sig.evidence["volume_ratio"] == pytest.approx(6.5)


def test_volume_spike_capped_ratio_and_full_body() -> None:
    # ratio 50 capped at 10 -> ramp 1; body 1 -> conf 0.5 + 0.3 + 0.2 = 1.0
    sig = volume_spike(view(o=100.0, h=110.0, lo=100.0, c=110.0, v=5000.0), **VS)
    assert sig is not None and sig.direction == "long"
    assert sig.confidence == pytest.approx(1.0)
    assert sig.evidence["volume_ratio"] == 10.0


@pytest.mark.parametrize(
    "kw", [{"expected": NAN}, {"expected": 0.0}, {"h": 100.0, "lo": 100.0, "c": 100.0}]
)
def test_volume_spike_needs_expectation_and_range(kw: dict) -> None:
    assert volume_spike(view(v=10_000.0, **kw), **VS) is None


# ------------------------------------------------------------------------ breakout
def test_breakout_volume_threshold() -> None:
    h = _hist(20)  # range 95..105, mean volume 100
    assert breakout(view(h=107.0, lo=103.0, c=106.0, v=150.0, history=h), **BO) is not None
    assert breakout(view(h=107.0, lo=103.0, c=106.0, v=149.0, history=h), **BO) is None


def test_breakout_price_threshold_and_direction() -> None:
    h = _hist(20)
    assert breakout(view(h=105.0, lo=103.0, c=105.0, v=500.0, history=h), **BO) is None  # == high
    sig = breakout(view(h=105.2, lo=103.0, c=105.01, v=500.0, history=h), **BO)
    assert sig is not None and sig.direction == "long"
    assert breakout(view(h=97.0, lo=95.0, c=95.0, v=500.0, history=h), **BO) is None  # == low
    sig = breakout(view(o=96.0, h=96.0, lo=93.0, c=94.0, v=500.0, history=h), **BO)
    assert sig is not None and sig.direction == "short"
    assert sig.evidence["range_low"] == 95.0


def test_breakout_lookback() -> None:
    assert breakout(view(h=107.0, lo=103.0, c=106.0, v=500.0, history=_hist(19)), **BO) is None
    # only the last 20 bars form the range: an older 200 high does not count
    h = _hist(25)
    h["high"][:5] = 200.0
    sig = breakout(view(h=107.0, lo=103.0, c=106.0, v=500.0, history=h), **BO)
    assert sig is not None and sig.evidence["range_high"] == 105.0
    h["high"][5] = 200.0  # now inside the window
    assert breakout(view(h=107.0, lo=103.0, c=106.0, v=500.0, history=h), **BO) is None


def test_breakout_without_volume_never_fires() -> None:
    h = _hist(20, volume=0.0)
    assert breakout(view(h=120.0, lo=103.0, c=120.0, v=0.0, history=h), **BO) is None


def test_breakout_confidence_by_hand() -> None:
    # close 106 vs high 105: distance 1, ATR 2 -> ramp 0.5; vr 300/100 = 3 -> (3-1.5)/8.5
    sig = breakout(view(h=107.0, lo=103.0, c=106.0, v=300.0, history=_hist(20), atr=2.0), **BO)
    assert sig is not None and sig.direction == "long"
    assert sig.confidence == pytest.approx(0.4 + 0.15 + 0.3 * 1.5 / 8.5, abs=1e-12)
    assert sig.evidence["distance_atr"] == pytest.approx(0.5)
    # before ATR is warm the bar's range (4) scales the distance: 1/4 -> 0.3*0.25
    sig = breakout(view(h=107.0, lo=103.0, c=106.0, v=300.0, history=_hist(20)), **BO)
    assert sig is not None
    assert sig.confidence == pytest.approx(0.4 + 0.075 + 0.3 * 1.5 / 8.5, abs=1e-12)


_pos = st.floats(0.01, 1e5, allow_nan=False, allow_infinity=False)


@st.composite
def _views(draw: st.DrawFn) -> InstrumentView:
    prices = sorted(draw(st.lists(_pos, min_size=4, max_size=4)))
    lo, a, b, hi = prices
    o, c = (a, b) if draw(st.booleans()) else (b, a)
    n = draw(st.integers(0, 30))
    hist = {
        k: np.array(draw(st.lists(_pos, min_size=n, max_size=n)), dtype=np.float64)
        for k in ("open", "high", "low", "close", "volume")
    }
    return view(
        o=o,
        h=hi,
        lo=lo,
        c=c,
        v=draw(st.floats(0.0, 1e9)),
        expected=draw(st.one_of(st.just(NAN), st.floats(0.0, 1e7))),
        history=hist,
        atr=draw(st.one_of(st.just(NAN), st.floats(0.0, 1e4))),
    )


@settings(max_examples=300, deadline=None)
@given(
    _views(),
    st.floats(0.1, 20.0),
    st.floats(0.1, 50.0),
    st.floats(0.0, 1.0),
    st.integers(1, 30),
)
def test_confidence_always_in_unit_interval(
    v: InstrumentView, min_ratio: float, cap: float, body: float, lookback: int
) -> None:
    s1 = volume_spike(v, min_ratio=min_ratio, ratio_cap=cap, min_body_fraction=body)
    s2 = breakout(v, lookback_bars=lookback, min_volume_ratio=min_ratio, ratio_cap=cap)
    for sig in (s1, s2):
        if sig is not None:
            assert 0.0 <= sig.confidence <= 1.0
            assert sig.direction in ("long", "short")
    if s1 is not None:
        assert s1.confidence >= 0.5
        assert (s1.direction == "long") == (v.close > v.open)
    if s2 is not None:
        assert s2.confidence >= 0.4
        assert (s2.direction == "long") == (v.close > s2.evidence["range_high"])


# ------------------------------------------------------------------------ volume_breakout
def _vb(**kw) -> InstrumentView:  # type: ignore[no-untyped-def]
    base = dict(
        o=104.0, h=107.0, lo=103.0, c=106.0, history=hist(20), atr=2.0, rvol_bar=4.0, rvol_cum=2.0
    )
    return make_view(**(base | kw))


def test_volume_breakout_fires_long_and_short_by_hand() -> None:
    sig = run("volume_breakout", _vb())
    assert sig is not None and sig.direction == "long"
    # 0.4 + 0.25*(4-2.5)/7.5 + 0.2*(2-1.2)/1.2 + 0.15*ramp(1/2, 0, 1)
    assert sig.confidence == pytest.approx(0.4 + 0.05 + 0.2 * 0.8 / 1.2 + 0.075, abs=1e-12)
    assert sig.evidence["range_high"] == 105.0
    sig = run("volume_breakout", _vb(o=96.0, h=97.0, lo=93.0, c=94.0))
    assert sig is not None and sig.direction == "short"


@pytest.mark.parametrize(
    "kw",
    [
        {"rvol_cum": 1.19},  # the day's volume is not running hot
        {"rvol_cum": NAN},  # no baseline -> no signal
        {"rvol_bar": 2.4},
        {"c": 104.0},  # inside the range
        {"history": hist(14)},  # too early in the session
        {"threshold_multiplier": 2.0},  # needs rvol_bar 5 and rvol_cum 2.4 now
    ],
)
def test_volume_breakout_silent(kw: dict) -> None:
    assert run("volume_breakout", _vb(**kw)) is None


# ------------------------------------------------------------------------ divergence
def _div(rising: bool, late_volume: float = 500.0) -> InstrumentView:
    closes = np.arange(101.0, 120.0) if rising else np.arange(119.0, 100.0, -1.0)
    vol = np.r_[np.full(10, 1000.0), np.full(9, late_volume)]
    h = hist(19, open=closes, high=closes + 0.5, low=closes - 0.5, close=closes, volume=vol)
    c = 120.0 if rising else 100.0
    return make_view(o=c, h=c + 0.5, lo=c - 0.5, c=c, v=late_volume, history=h, atr=2.0)


def test_volume_price_divergence_rise_on_fading_volume_is_short() -> None:
    sig = run("volume_price_divergence", _div(True))
    assert sig is not None and sig.direction == "short"
    # vr = 500/1000 = 0.5: falling ramp (0.5-0.7)/(0.7/3-0.7); move 19/2 = 9.5 ATR -> 1
    assert sig.evidence["volume_ratio"] == pytest.approx(0.5)
    assert sig.confidence == pytest.approx(0.4 + 0.3 * (0.2 / (0.7 - 0.7 / 3)) + 0.3)
    sig = run("volume_price_divergence", _div(False))
    assert sig is not None and sig.direction == "long"


def test_volume_price_divergence_silent_when_volume_confirms() -> None:
    assert run("volume_price_divergence", _div(True, late_volume=1000.0)) is None
    assert run("volume_price_divergence", _div(True, late_volume=701.0)) is None
    # a small move is no divergence either
    assert run("volume_price_divergence", _div(True), min_move_atr=10.0) is None


# ------------------------------------------------------------------------ momentum
def _mom(up: bool, rsi: float, ema: float | None = None, v: float = 200.0) -> InstrumentView:
    s = 1.0 if up else -1.0
    closes = np.r_[np.full(15, 100.0), 100.0 + s * np.arange(1.0, 6.0)]
    h = hist(20, open=closes, high=closes + 0.5, low=closes - 0.5, close=closes)
    c = 100.0 + 6 * s
    ema20 = 100.0 + 2 * s if ema is None else ema
    return make_view(
        o=c - s,
        h=c + 0.5,
        lo=c - 1.5,
        c=c,
        v=v,
        history=h,
        atr=2.0,
        indicators={"ema_20": ema20, "rsi_14": rsi},
    )


def test_momentum_fires_with_direction_by_hand() -> None:
    # move 5 = 2.5 ATR; every step with the move; RSI 65; volume 200 / 100
    want = 0.4 + 0.2 * (1.0 / 1.5) + 0.15 + 0.15 * (10 / 12.5) + 0.1 * (0.8 / 8.8)
    up = run("upside_momentum", _mom(True, 65.0))
    assert up is not None and up.direction == "long"
    assert up.confidence == pytest.approx(want, abs=1e-12)
    down = run("downside_momentum", _mom(False, 35.0))
    assert down is not None and down.direction == "short"
    assert down.confidence == pytest.approx(want, abs=1e-12)
    # the two never fire the other way round
    assert run("downside_momentum", _mom(True, 65.0)) is None
    assert run("upside_momentum", _mom(False, 35.0)) is None


@pytest.mark.parametrize(
    "kw",
    [
        {"rsi": 85.0},  # overextended
        {"rsi": 50.0},  # not strong
        {"rsi": 65.0, "ema": 107.0},  # below EMA(20)
        {"rsi": 65.0, "v": 110.0},  # no volume
    ],
)
def test_upside_momentum_silent(kw: dict) -> None:
    assert run("upside_momentum", _mom(True, **kw)) is None


def test_momentum_needs_indicators() -> None:
    v = _mom(True, 65.0)
    bare = make_view(o=v.open, h=v.high, lo=v.low, c=v.close, v=v.volume, history=v.history)
    assert run("upside_momentum", bare) is None


# ------------------------------------------------------------------------ reversal
def _decline() -> dict:
    rows = [(110.0, 111.0, 109.0, 110.0)] * 5
    for c in np.arange(109.0, 94.0, -1.0):
        rows.append((c + 1, c + 1.5, c - 0.5, c))
    return bars(rows)


def test_reversal_long_after_decline_by_hand() -> None:
    v = make_view(o=95.0, h=97.0, lo=94.8, c=96.8, v=300.0, history=_decline(), atr=2.0)
    sig = run("reversal", v)
    assert sig is not None and sig.direction == "long"
    assert sig.evidence["extreme"] == 94.5
    # move 109 - 94.5 = 7.25 ATR -> 1; vr 3 -> (3-1.5)/8.5; close position 2/2.2
    want = 0.4 + 0.2 + 0.2 * 1.5 / 8.5 + 0.2 * 2.0 / 2.2
    assert sig.confidence == pytest.approx(want, abs=1e-12)


def test_reversal_short_after_rally() -> None:
    d = _decline()
    mirror = hist(
        20, open=200 - d["open"], high=200 - d["low"], low=200 - d["high"], close=200 - d["close"]
    )
    v = make_view(o=105.0, h=105.2, lo=103.0, c=103.2, v=300.0, history=mirror, atr=2.0)
    sig = run("reversal", v)
    assert sig is not None and sig.direction == "short"


def test_reversal_silent_without_confirmation() -> None:
    d = _decline()
    # closes below the previous bar's high (96.5): no confirmation
    assert (
        run("reversal", make_view(o=95.0, h=97.0, lo=94.8, c=96.4, v=300.0, history=d, atr=2.0))
        is None
    )
    # confirmed but on thin volume
    assert (
        run("reversal", make_view(o=95.0, h=97.0, lo=94.8, c=96.8, v=140.0, history=d, atr=2.0))
        is None
    )
    # the move was too small in ATR terms
    assert (
        run("reversal", make_view(o=95.0, h=97.0, lo=94.8, c=96.8, v=300.0, history=d, atr=5.0))
        is None
    )


# ------------------------------------------------------------------------ hidden_accumulation
def _book(tb: float, ts: float, bq: float = 600.0, aq: float = 400.0) -> dict[str, float]:
    return {
        "total_buy_quantity": tb,
        "total_sell_quantity": ts,
        "bid_quantity_5": bq,
        "ask_quantity_5": aq,
    }


def test_hidden_accumulation_by_hand() -> None:
    v = make_view(
        o=100.0,
        h=100.5,
        lo=99.8,
        c=100.2,
        history=hist(5),
        atr=1.0,
        book=_book(7000.0, 3000.0),
        rvol_bar=2.0,
    )
    sig = run("hidden_accumulation", v)
    assert sig is not None and sig.direction == "long"
    # imb 0.4 -> (0.4-0.3)/0.3; depth 0.2 -> 0.2/0.3; rvol 2 -> 0.5
    assert sig.confidence == pytest.approx(0.4 + 0.1 + 0.1 + 0.075, abs=1e-12)
    v = make_view(
        o=100.0,
        h=100.5,
        lo=99.8,
        c=100.2,
        history=hist(5),
        atr=1.0,
        book=_book(3000.0, 7000.0, 400.0, 600.0),
    )
    sig = run("hidden_accumulation", v)
    assert sig is not None and sig.direction == "short"


@pytest.mark.parametrize(
    "book,c",
    [
        ({}, 100.2),  # no depth (ltp/quote packets, the replayed session)
        ({"total_buy_quantity": 0.0, "total_sell_quantity": 0.0}, 100.2),
        (_book(6000.0, 4000.0), 100.2),  # imbalance 0.2 < 0.3
        (_book(7000.0, 3000.0, 300.0, 700.0), 100.2),  # depth disagrees
        (_book(7000.0, 3000.0), 101.0),  # the price already moved 1 ATR
    ],
)
def test_hidden_accumulation_silent(book: dict, c: float) -> None:
    v = make_view(o=100.0, h=101.0, lo=99.8, c=c, history=hist(5), atr=1.0, book=book)
    assert run("hidden_accumulation", v) is None
