"""Pattern registry, detectors, risk manager and alert manager.

Thresholds and confidences are checked on hand-built views against the formulas documented in
the detectors' docstrings, computed by hand here.
"""

from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aion.alerts.manager import AlertManager
from aion.config import ConfigError, PatternConfig, RiskConfig
from aion.market.time import from_ist
from aion.patterns.detectors import breakout, volume_spike
from aion.patterns.registry import InstrumentView, PatternEngine, Signal, known_detectors
from aion.risk.manager import RiskManager, TradePlan

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


# ------------------------------------------------------------------------ registry
def test_known_detectors_include_the_shipped_ones() -> None:
    known = known_detectors()
    assert {"volume_spike", "breakout"} <= set(known)
    assert set(known["volume_spike"].params) == set(VS)
    assert set(known["breakout"].params) == set(BO)


def test_registry_rejects_unknown_detector() -> None:
    with pytest.raises(ConfigError) as ei:
        PatternEngine([PatternConfig(name="head_and_shoulders")])
    msg = str(ei.value)
    assert "head_and_shoulders" in msg
    assert "breakout" in msg and "volume_spike" in msg
    assert "\n" not in msg


def test_registry_rejects_unknown_param() -> None:
    with pytest.raises(ConfigError) as ei:
        PatternEngine([PatternConfig(name="volume_spike", params={"min_ratoi": 2.0})])
    msg = str(ei.value)
    assert "volume_spike.params.min_ratoi" in msg
    for p in VS:
        assert p in msg


def test_engine_defaults_overrides_and_disabled() -> None:
    eng = PatternEngine(
        [
            PatternConfig(name="volume_spike", params={"min_ratio": 5.0}, cooldown_s=60),
            PatternConfig(name="breakout", enabled=False),
        ]
    )
    act = eng.settings("volume_spike")
    assert act.params == {"min_ratio": 5.0, "ratio_cap": 10.0, "min_body_fraction": 0.3}
    assert act.cooldown_s == 60
    with pytest.raises(KeyError):
        eng.settings("breakout")
    # ratio 4 fires with the default 3 but not with the configured 5
    assert volume_spike(view(v=400.0), **VS) is not None
    assert eng.detect(view(v=400.0)) == []
    assert [s.pattern for s in eng.detect(view(v=500.0))] == ["volume_spike"]


def test_signal_validates() -> None:
    with pytest.raises(ValueError):
        Signal("x", "up", 0.5)
    with pytest.raises(ValueError):
        Signal("x", "long", 1.01)


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


# ------------------------------------------------------------------------ risk
RISK = RiskConfig(capital=1_000_000.0, risk_per_trade=0.01, atr_stop_multiple=1.5,
                  reward_multiple=2.0)  # fmt: skip
LONG = Signal("breakout", "long", 0.8)
SHORT = Signal("breakout", "short", 0.8)


def test_risk_long_atr_basis_by_hand() -> None:
    # ATR 4 -> stop distance 6; risk 10_000 / 6 = 1666.7 shares, capital 1e6 / 1000 = 1000 caps
    plan = RiskManager(RISK).plan(LONG, view(h=1002.0, lo=998.0, c=1000.0, atr=4.0))
    assert plan == TradePlan(1000.0, 994.0, 1012.0, 1000, 2.0, "atr")


def test_risk_short_atr_basis_with_lots() -> None:
    plan = RiskManager(RISK).plan(SHORT, view(h=1002.0, lo=998.0, c=1000.0, atr=4.0, lot=75))
    assert plan is not None
    assert (plan.stop, plan.target) == (1006.0, 988.0)
    assert plan.quantity == 975  # 1000 // 75 = 13 lots
    assert plan.risk_reward == pytest.approx(2.0)


def test_risk_bound_by_risk_budget() -> None:
    # close 100, ATR 2 -> distance 3; 10_000 / 3 = 3333.3 -> 3333 shares; lot 50 -> 3300
    rm = RiskManager(RISK)
    assert rm.plan(LONG, view(h=101.0, lo=99.0, c=100.0, atr=2.0)).quantity == 3333
    assert rm.plan(LONG, view(h=101.0, lo=99.0, c=100.0, atr=2.0, lot=50)).quantity == 3300


@pytest.mark.parametrize("atr", [NAN, 0.0])
def test_risk_bar_range_basis(atr: float) -> None:
    plan = RiskManager(RISK).plan(SHORT, view(h=102.0, lo=99.0, c=100.0, atr=atr))
    assert plan is not None
    assert plan.stop_basis == "bar_range"
    assert (plan.stop, plan.target) == (103.0, 94.0)  # distance 3 = high - low
    assert plan.quantity == 3333


def test_risk_flat_bar_without_atr_uses_one_tick() -> None:
    plan = RiskManager(RISK, tick_size=0.05).plan(LONG, view(h=100.0, lo=100.0, c=100.0))
    assert plan is not None
    assert plan.stop == pytest.approx(99.95)
    assert plan.target == pytest.approx(100.10)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(20, 2_000_000),  # entry in ticks of 0.05
    st.floats(0.0, 500.0),
    st.sampled_from([1, 15, 25, 50, 75, 1800]),
    st.booleans(),
    st.floats(0.001, 0.1),
    st.floats(1.0, 4.0),  # below 1 a one-tick stop can round the target onto the entry
)
def test_risk_plan_properties(
    entry_ticks: int, atr: float, lot: int, long: bool, rpt: float, rr: float
) -> None:
    entry = round(entry_ticks * 0.05, 2)
    cfg = RiskConfig(capital=1_000_000.0, risk_per_trade=rpt, reward_multiple=rr)
    sig = LONG if long else SHORT
    plan = RiskManager(cfg).plan(sig, view(h=entry * 1.01, lo=entry * 0.99, c=entry, atr=atr,
                                           lot=lot))  # fmt: skip
    assert plan is not None
    assert plan.entry == entry
    if long:
        assert plan.stop < entry < plan.target
    else:
        assert plan.target < entry < plan.stop
    stop_d = abs(entry - plan.stop)
    # target at reward_multiple x stop distance, up to rounding each price to the 0.05 tick
    assert abs(abs(plan.target - entry) - rr * stop_d) <= 0.025 * (1 + rr) + 1e-6
    assert plan.quantity >= 0
    assert plan.quantity % lot == 0
    assert plan.quantity * entry <= cfg.capital + 1e-6
    assert plan.quantity * stop_d <= cfg.capital * rpt + 1e-6
    assert plan.stop_basis == ("atr" if atr > 0 else "bar_range")


# ------------------------------------------------------------------------ alerts
PLAN = TradePlan(100.0, 98.0, 104.0, 10, 2.0, "atr")


def _sig(conf: float = 0.7, pattern: str = "volume_spike", direction: str = "long") -> Signal:
    return Signal(pattern, direction, conf, {"volume_ratio": 4.0})


def _at(hh: int, mm: int, symbol: str = "NSE:SBIN") -> InstrumentView:
    return view(bar_start=from_ist(DAY, hh, mm), symbol=symbol)


def test_alert_threshold() -> None:
    am = AlertManager(0.6)
    assert am.consider(_sig(0.59), _at(10, 0), PLAN, None, 900, True) is None
    assert am.counters.below_confidence == 1
    assert am.consider(_sig(0.6), _at(10, 0), PLAN, None, 900, True) is not None  # inclusive
    # a pattern's own threshold replaces the default
    assert am.consider(_sig(0.7), _at(10, 0, "NSE:TCS"), PLAN, 0.8, 900, True) is None
    assert am.consider(_sig(0.5), _at(10, 0, "NSE:INFY"), PLAN, 0.4, 900, True) is not None
    assert am.counters.published == 2
    assert am.counters.signals == 4


def test_alert_id_and_fields() -> None:
    am = AlertManager(0.6)
    a = am.consider(_sig(0.75, direction="short"), _at(9, 47), PLAN, None, 900, True)
    assert a is not None
    assert a.alert_id == "20221111:NSE:SBIN:volume_spike:09:47"
    assert a.date == 20221111
    assert a.stream_id == f"{(from_ist(DAY, 9, 48)) * 1000}-0"  # bar end, ms
    f = a.fields()
    assert f["bar_time"] == "2022-11-11T09:47:00+0530"
    assert f["direction"] == "short"
    assert f["confidence"] == "0.7500"
    assert f["entry"] == "100.00" and f["quantity"] == "10"
    assert f["evidence.volume_ratio"] == "4"


def test_alert_cooldown_on_exchange_time() -> None:
    am = AlertManager(0.6)
    assert am.consider(_sig(), _at(10, 0), PLAN, None, 900, True) is not None
    assert am.consider(_sig(), _at(10, 14), PLAN, None, 900, True) is None  # 840 s < 900
    assert am.counters.cooldown == 1
    # other pattern / other symbol are not cooled down
    assert am.consider(_sig(pattern="breakout"), _at(10, 5), PLAN, None, 900, True) is not None
    assert am.consider(_sig(), _at(10, 5, "NSE:TCS"), PLAN, None, 900, True) is not None
    a = am.consider(_sig(), _at(10, 15), PLAN, None, 900, True)  # exactly 900 s later
    assert a is not None and a.alert_id.endswith(":10:15")
    # the cooldown restarts from the last published alert
    assert am.consider(_sig(), _at(10, 29), PLAN, None, 900, True) is None
    assert am.consider(_sig(), _at(10, 30), PLAN, None, 900, True) is not None


def test_alert_duplicate_and_unsized() -> None:
    am = AlertManager(0.6)
    assert am.consider(_sig(), _at(10, 0), PLAN, None, 0, True) is not None
    assert am.consider(_sig(), _at(10, 0), PLAN, None, 0, True) is None
    assert am.counters.duplicate == 1
    assert am.consider(_sig(), _at(10, 1), None, None, 0, True) is None
    zero = TradePlan(100.0, 98.0, 104.0, 0, 2.0, "atr")
    assert am.consider(_sig(), _at(10, 2), zero, None, 0, True) is None
    assert am.counters.unsized == 2


def test_alert_market_hours_guard() -> None:
    am = AlertManager(0.6, market_hours_only=True)
    assert am.consider(_sig(0.99), _at(9, 8), PLAN, None, 900, False) is None
    assert am.counters.outside_hours == 1
    assert am.counters.published == 0
    free = AlertManager(0.6, market_hours_only=False)
    a = free.consider(_sig(0.99), _at(9, 8), PLAN, None, 900, False)
    assert a is not None and a.alert_id == "20221111:NSE:SBIN:volume_spike:09:08"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.sampled_from(["NSE:A", "NSE:B", "NFO:C"]),
                          st.sampled_from(["volume_spike", "breakout"])), max_size=40))  # fmt: skip
def test_stream_ids_strictly_increasing(events: list[tuple[int, str, str]]) -> None:
    am = AlertManager(0.0)
    base = from_ist(DAY, 9, 15)
    prev: tuple[int, int] | None = None
    ids = set()
    last: dict[tuple[str, str], int] = {}
    for minute, sym, pat in events:
        v = view(bar_start=base + 60 * minute, symbol=sym)
        a = am.consider(_sig(0.9, pattern=pat), v, PLAN, None, 0, True)
        key = (sym, pat, minute)
        # cooldown 0: a repeat of the same bar is a duplicate; an older bar than the last
        # published one of the same (symbol, pattern) is inside the (negative) cooldown
        if key in ids or minute < last.get((sym, pat), -1):
            assert a is None
            continue
        ids.add(key)
        last[(sym, pat)] = minute
        assert a is not None
        m = re.fullmatch(r"(\d+)-(\d+)", a.stream_id)
        assert m is not None
        cur = (int(m[1]), int(m[2]))
        if prev is not None:
            assert cur > prev
        assert cur[0] >= (v.bar_start + 60) * 1000
        prev = cur
        hhmm = (dt.datetime(2022, 11, 11, 9, 15) + dt.timedelta(minutes=minute)).strftime("%H:%M")
        assert a.alert_id == f"20221111:{sym}:{pat}:{hhmm}"
