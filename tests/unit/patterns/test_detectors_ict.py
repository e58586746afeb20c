"""ICT detectors: each fires with the expected direction on a constructed scenario and stays
silent on a near miss; confidences recomputed by hand from the docstring formulas."""

from __future__ import annotations

import numpy as np
import pytest
from pattern_views import NAN, bars, hist, make_view, run

from aion.config import ConfigError
from aion.patterns.config import PatternConfig
from aion.patterns.ict import parse_windows, swing_highs, swing_lows
from aion.patterns.registry import InstrumentView, PatternEngine

BASE = (100.0, 101.0, 99.0, 100.0)


def mirror(h: dict) -> dict:
    """Price history reflected around 100 (200 - x): highs become lows."""
    return hist(
        h["close"].shape[0],
        open=200 - h["open"],
        high=200 - h["low"],
        low=200 - h["high"],
        close=200 - h["close"],
        volume=h["volume"],
    )


def mview(o: float, h: float, lo: float, c: float, history: dict, **kw) -> InstrumentView:  # type: ignore[no-untyped-def]
    """The mirrored bar of ``make_view(o, h, lo, c)`` with mirrored history."""
    return make_view(200 - o, 200 - lo, 200 - h, 200 - c, history=mirror(history), **kw)


def test_swings_by_hand() -> None:
    x = np.array([1.0, 2.0, 5.0, 2.0, 1.0, 5.0, 5.0, 1.0, 0.0])
    assert swing_highs(x, 2).tolist() == [2, 5]  # the flat top at 5,6 counts once
    assert swing_lows(-x, 2).tolist() == [2, 5]
    assert swing_highs(x, 5).tolist() == []


# ------------------------------------------------------------------------ liquidity_pools
def _pools(second_high: float = 110.1, later_high: float = 101.0) -> dict:
    rows = [BASE] * 12
    rows[3] = (100.0, 110.0, 99.0, 100.0)
    rows[8] = (100.0, second_high, 99.0, 100.0)
    rows[10] = (100.0, later_high, 99.0, 100.0)
    return bars(rows)


def test_liquidity_pool_sweep_short_by_hand() -> None:
    sig = run("liquidity_pools", make_view(105.0, 110.6, 104.0, 108.0, history=_pools(), atr=2.0))
    assert sig is not None and sig.direction == "short"
    assert sig.evidence["pool_level"] == 110.1 and sig.evidence["touches"] == 2.0
    # touches 2 -> 0; rejection 2.1/2 ATR -> 1; upper wick 2.6 of 6.6
    assert sig.confidence == pytest.approx(0.4 + 0.0 + 0.2 + 0.2 * 2.6 / 6.6, abs=1e-12)
    sig = run("liquidity_pools", mview(105.0, 110.6, 104.0, 108.0, _pools(), atr=2.0))
    assert sig is not None and sig.direction == "long"
    assert sig.evidence["pool_level"] == pytest.approx(200 - 110.1)


@pytest.mark.parametrize(
    "c,hist_kw",
    [
        (110.0, {}),  # closes back only 0.1 below the level: less than 0.1 ATR = 0.2
        (108.0, {"second_high": 101.0}),  # a single swing is no pool
        (108.0, {"second_high": 111.0}),  # 1 ATR apart: two pools of one swing each
        (108.0, {"later_high": 111.0}),  # the pool was already swept
    ],
)
def test_liquidity_pool_silent(c: float, hist_kw: dict) -> None:
    v = make_view(105.0, 110.6, 104.0, c, history=_pools(**hist_kw), atr=2.0)
    assert run("liquidity_pools", v) is None


# ------------------------------------------------------------------------ fair_value_gaps
def _fvg(touch_low: float = 105.0) -> dict:
    rows = [BASE] * 10 + [
        (100.0, 101.0, 99.0, 100.5),
        (100.5, 106.0, 100.5, 105.8),  # displacement
        (105.8, 107.0, 104.0, 106.5),  # low 104 > high 101 two bars back: gap [101, 104]
        (106.5, 108.0, touch_low, 107.0),
        (107.0, 108.0, 105.0, 107.5),
    ]
    return bars(rows)


def test_fair_value_gap_retest_by_hand() -> None:
    sig = run("fair_value_gaps", make_view(104.5, 105.5, 103.0, 105.2, history=_fvg(), atr=2.0))
    assert sig is not None and sig.direction == "long"
    assert (sig.evidence["gap_bottom"], sig.evidence["gap_top"]) == (101.0, 104.0)
    # gap 3 = 1.5 ATR -> ramp(1.5, 0.5, 1.5) = 1; close position 2.2 / 2.5
    assert sig.confidence == pytest.approx(0.4 + 0.3 + 0.3 * 2.2 / 2.5, abs=1e-12)
    sig = run("fair_value_gaps", mview(104.5, 105.5, 103.0, 105.2, _fvg(), atr=2.0))
    assert sig is not None and sig.direction == "short"


@pytest.mark.parametrize(
    "bar,touch_low",
    [
        ((104.5, 105.5, 104.5, 105.2), 105.0),  # does not reach the gap
        ((103.0, 103.5, 100.0, 100.5), 105.0),  # fills it: closes below its bottom
        ((104.5, 105.5, 103.0, 105.2), 103.5),  # not the first retest
    ],
)
def test_fair_value_gap_silent(bar: tuple, touch_low: float) -> None:
    assert run("fair_value_gaps", make_view(*bar, history=_fvg(touch_low), atr=2.0)) is None


# ------------------------------------------------------------------------ OTE
def _leg(pullback_low: float = 106.0) -> dict:
    rows = [
        (102.0, 103.0, 101.0, 102.0),
        (102.0, 102.5, 100.5, 101.0),
        (101.0, 101.5, 100.0, 101.2),
    ]
    for j in range(8):
        c = 102.0 + j
        rows.append((c - 1, c + (1.0 if j == 7 else 0.5), c - 1.5, c))
    rows += [(109.0, 109.5, 107.0, 107.5), (107.5, 108.0, pullback_low, 106.5)]
    return bars(rows)


def test_ote_long_by_hand() -> None:
    sig = run("optimal_trade_entry", make_view(103.0, 104.5, 102.9, 104.0, history=_leg(), atr=2.0))
    assert sig is not None and sig.direction == "long"
    assert (sig.evidence["leg_low"], sig.evidence["leg_high"]) == (100.0, 110.0)
    r = (110.0 - 102.9) / 10.0
    want = 0.4 + 0.3 * (1 - abs(r - 0.705) / 0.17) + 0.3 * (5.0 - 3.0) / 3.0
    assert sig.confidence == pytest.approx(want, abs=1e-12)
    sig = run("optimal_trade_entry", mview(103.0, 104.5, 102.9, 104.0, _leg(), atr=2.0))
    assert sig is not None and sig.direction == "short"


@pytest.mark.parametrize(
    "bar,pullback_low,atr",
    [
        ((106.0, 106.5, 105.0, 106.2), 106.0, 2.0),  # a shallow pullback, not in the zone
        ((103.0, 103.2, 101.0, 101.5), 106.0, 2.0),  # closes through the 79% level
        ((103.0, 104.5, 102.9, 104.0), 103.5, 2.0),  # the zone was already reached
        ((103.0, 104.5, 102.9, 104.0), 106.0, 4.0),  # leg of 2.5 ATR is too small
    ],
)
def test_ote_silent(bar: tuple, pullback_low: float, atr: float) -> None:
    v = make_view(*bar, history=_leg(pullback_low), atr=atr)
    assert run("optimal_trade_entry", v) is None


def test_ote_rejects_bad_zone() -> None:
    with pytest.raises(ConfigError, match="fib_low"):
        PatternEngine([PatternConfig("optimal_trade_entry", params={"fib_low": 0.8})])


# ------------------------------------------------------------------------ premium_discount
def _fall() -> dict:
    c = np.arange(120.0, 90.0, -1.0)
    return hist(30, open=c + 1, high=c + 1.5, low=c - 0.5, close=c)


def test_premium_discount_long_by_hand() -> None:
    v = make_view(91.0, 93.0, 90.8, 92.8, history=_fall(), atr=2.0, indicators={"vwap": 105.0})
    sig = run("premium_discount", v)
    assert sig is not None and sig.direction == "long"
    p = (92.8 - 90.5) / (121.5 - 90.5)
    want = 0.4 + 0.3 * (0.2 - p) / 0.2 + 0.15 * 1.0 + 0.15 * (2.0 / 2.2)
    assert sig.confidence == pytest.approx(want, abs=1e-12)
    v = mview(91.0, 93.0, 90.8, 92.8, _fall(), atr=2.0, indicators={"vwap": 95.0})
    sig = run("premium_discount", v)
    assert sig is not None and sig.direction == "short"


@pytest.mark.parametrize(
    "bar,ind,atr",
    [
        ((91.0, 93.0, 90.8, 92.8), {"vwap": 90.0}, 2.0),  # above VWAP: no discount buy
        ((91.0, 93.0, 90.8, 92.8), {}, 2.0),  # no VWAP
        ((91.0, 92.6, 90.8, 92.4), {"vwap": 105.0}, 2.0),  # not above the previous high
        ((91.0, 93.0, 90.8, 92.8), {"vwap": 105.0}, 6.0),  # range 31 < 6 ATR
        ((99.0, 99.6, 98.8, 99.5), {"vwap": 105.0}, 1.0),  # p = 0.29: not in the discount
    ],
)
def test_premium_discount_silent(bar: tuple, ind: dict, atr: float) -> None:
    v = make_view(*bar, history=_fall(), atr=atr, indicators=ind)
    assert run("premium_discount", v) is None


# ------------------------------------------------------------------------ killzone
def _kz(at: tuple[int, int], **kw) -> InstrumentView:  # type: ignore[no-untyped-def]
    base = dict(history=hist(10), atr=2.0, rvol_bar=3.0, at=at)
    return make_view(100.0, 104.0, 99.8, 103.8, **(base | kw))


def test_killzone_by_hand() -> None:
    sig = run("killzone", _kz((9, 30)))
    assert sig is not None and sig.direction == "long"
    want = 0.4 + 0.2 * (2.1 - 1.5) / 1.5 + 0.2 * (3.8 / 4.2) + 0.2 * (1.0 / 8.0)
    assert sig.confidence == pytest.approx(want, abs=1e-12)
    assert sig.evidence["minute_of_day_ist"] == 9 * 60 + 30
    assert run("killzone", _kz((10, 14))) is not None
    short = make_view(
        103.8, 104.0, 99.8, 100.0, history=hist(10), atr=2.0, rvol_bar=3.0, at=(14, 45)
    )
    sig = run("killzone", short)
    assert sig is not None and sig.direction == "short"


@pytest.mark.parametrize(
    "at,kw",
    [
        ((10, 15), {}),  # windows are end-exclusive
        ((12, 0), {}),  # lunch is no kill zone
        ((9, 30), {"rvol_bar": 1.9}),
        ((9, 30), {"threshold_multiplier": 1.6}),  # the opening window asks for RVOL 3.2
        ((9, 30), {"atr": 3.0}),  # range 1.4 ATR
    ],
)
def test_killzone_silent(at: tuple[int, int], kw: dict) -> None:
    assert run("killzone", _kz(at, **kw)) is None


def test_killzone_windows_from_config() -> None:
    eng = PatternEngine([PatternConfig("killzone", params={"windows": ["11:55-12:05"]})])
    act = eng.settings("killzone")
    assert act.params["windows"] == ("11:55-12:05",)
    assert [s.pattern for s in eng.detect(_kz((12, 0)))] == ["killzone"]
    assert eng.detect(_kz((9, 30))) == []
    assert parse_windows(("09:15-10:15",)) == ((555, 615),)
    for bad in (["9:15-10:00"], ["10:00-09:15"], ["25:00-26:00"]):
        with pytest.raises(ConfigError, match=r"killzone\.params: windows"):
            PatternEngine([PatternConfig("killzone", params={"windows": bad})])
    with pytest.raises(ConfigError, match="wrong type"):
        PatternEngine([PatternConfig("killzone", params={"windows": "09:15-10:00"})])


# ------------------------------------------------------------------------ ict_momentum
def _structure() -> dict:
    rows = [BASE] * 5 + [
        (100.0, 103.0, 100.0, 102.5),
        (102.5, 105.0, 102.0, 104.0),  # swing high 105
        (104.0, 104.5, 102.0, 102.5),
        (102.5, 103.0, 101.5, 102.0),
        (102.0, 102.5, 101.0, 101.5),
    ]
    return bars(rows)


def test_ict_momentum_by_hand() -> None:
    v = make_view(
        102.0,
        107.5,
        101.8,
        107.2,
        history=_structure(),
        atr=2.0,
        expected=NAN,
        indicators={"vwap": 101.0},
    )
    sig = run("ict_momentum", v)
    assert sig is not None and sig.direction == "long"
    assert sig.evidence["structure_level"] == 105.0
    assert sig.confidence == pytest.approx(0.7, abs=1e-12)  # body 2.6 ATR -> 0.3; no FVG/RVOL
    v = make_view(
        102.0,
        107.5,
        103.1,
        107.2,
        history=_structure(),
        atr=2.0,
        rvol_bar=3.0,
        indicators={"vwap": 101.0},
    )
    sig = run("ict_momentum", v)  # low 103.1 > 103 (high two bars back): an FVG, and RVOL 3
    assert sig is not None and sig.confidence == pytest.approx(1.0)
    v = mview(102.0, 107.5, 101.8, 107.2, _structure(), atr=2.0, indicators={"vwap": 99.0})
    sig = run("ict_momentum", v)
    assert sig is not None and sig.direction == "short"


@pytest.mark.parametrize(
    "bar,vwap",
    [
        ((102.0, 107.5, 101.8, 107.2), 108.0),  # below VWAP
        ((106.0, 107.5, 105.8, 107.2), 101.0),  # body 0.6 ATR: no displacement
        ((102.0, 104.8, 101.8, 104.7), 101.0),  # does not break the swing high
    ],
)
def test_ict_momentum_silent(bar: tuple, vwap: float) -> None:
    v = make_view(*bar, history=_structure(), atr=2.0, indicators={"vwap": vwap})
    assert run("ict_momentum", v) is None
