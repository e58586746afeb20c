"""Risk manager: direction-correct stops and targets, tick rounding, lot-aware sizing, refusals.

Expected values are worked out by hand from the rules in ``aion/risk/manager.py``.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aion.instruments.master import InstrumentMaster
from aion.market.time import from_ist
from aion.patterns.registry import InstrumentView, Signal
from aion.replay.session_file import read_session
from aion.risk.config import RiskConfig
from aion.risk.manager import REFUSAL_REASONS, RiskManager, RiskRefusal, TradePlan

NAN = math.nan
RISK = RiskConfig(capital=1_000_000.0, risk_per_trade=0.01, atr_stop_multiple=1.5,
                  reward_multiple=2.0)  # fmt: skip
BUY = Signal("breakout", "long", 0.9)
SELL = Signal("breakout", "short", 0.9)


def view(
    h: float, lo: float, c: float, atr: float = NAN, lot: int = 1, tick: float = 0.05,
    symbol: str = "NSE:SBIN", itype: str = "EQ",
) -> InstrumentView:  # fmt: skip
    return InstrumentView(
        symbol=symbol,
        bar_start=from_ist(dt.date(2022, 11, 11), 10, 0),
        open=c,
        high=h,
        low=lo,
        close=c,
        volume=1000.0,
        history={k: np.zeros(0) for k in ("open", "high", "low", "close", "volume")},
        indicators={"atr_14": atr},
        expected_bar_volume=100.0,
        lot_size=lot,
        tick_size=tick,
        instrument_type=itype,
    )


def plan_of(sig: Signal, v: InstrumentView, cfg: RiskConfig = RISK) -> TradePlan:
    p = RiskManager(cfg).plan(sig, v)
    assert isinstance(p, TradePlan), p
    return p


def test_buy_by_hand() -> None:
    # ATR 4 -> stop distance 6, expected move 12; risk budget 10_000 / 6 = 1666.7 units,
    # capital 1e6 / 1000 = 1000 units -> the capital caps at 1000
    p = plan_of(BUY, view(1002.0, 998.0, 1000.0, atr=4.0))
    assert p == TradePlan(
        entry=1000.0, stop=994.0, target=1012.0, quantity=1000, lots=1000, lot_size=1,
        expected_move=12.0, risk_amount=6000.0, risk_reward=2.0, stop_basis="atr",
    )  # fmt: skip


def test_sell_is_mirrored() -> None:
    p = plan_of(SELL, view(1002.0, 998.0, 1000.0, atr=4.0))
    assert (p.stop, p.target) == (1006.0, 988.0)  # a SELL's target is below its entry
    assert p.target < p.entry < p.stop
    assert p.quantity == 1000 and p.risk_reward == pytest.approx(2.0)


def test_risk_budget_binds_and_lots_round_down() -> None:
    # close 100, ATR 2 -> distance 3; 10_000 / 3 = 3333.3 units -> 3333; lot 50 -> 66 lots
    assert plan_of(BUY, view(101.0, 99.0, 100.0, atr=2.0)).quantity == 3333
    p = plan_of(BUY, view(101.0, 99.0, 100.0, atr=2.0, lot=50))
    assert (p.quantity, p.lots, p.lot_size) == (3300, 66, 50)
    assert p.risk_amount == pytest.approx(3300 * 3.0)


@pytest.mark.parametrize("atr", [NAN, 0.0])
def test_bar_range_basis_while_atr_warms_up(atr: float) -> None:
    p = plan_of(SELL, view(102.0, 99.0, 100.0, atr=atr))
    assert p.stop_basis == "bar_range"
    # basis 3 -> stop distance 4.5, expected move 9
    assert (p.stop, p.target) == (104.5, 91.0)
    assert p.quantity == 2222  # 10_000 / 4.5 = 2222.2


def test_rounding_stop_away_target_towards_entry() -> None:
    # ATR 0.37 -> distance 0.555, move 1.11
    b = plan_of(BUY, view(100.2, 99.8, 100.0, atr=0.37))
    assert (b.stop, b.target) == (99.40, 101.10)  # 99.445 down, 101.11 down
    s = plan_of(SELL, view(100.2, 99.8, 100.0, atr=0.37))
    assert (s.stop, s.target) == (100.60, 98.90)  # 100.555 up, 98.89 up
    assert b.risk_reward == pytest.approx(1.10 / 0.60)
    # an instrument with a 1-rupee tick
    w = plan_of(BUY, view(100.0, 99.0, 100.0, atr=0.5, tick=1.0))
    assert (w.stop, w.target) == (99.0, 101.0)  # 99.25 down, 101.5 down


@pytest.fixture(scope="module")
def session_master(session_2022_11_11: Path) -> InstrumentMaster:
    return read_session(session_2022_11_11).instruments()


def test_nifty_future_lot_size_from_the_master(session_master: InstrumentMaster) -> None:
    fut = session_master.by_symbol("NFO:NIFTY22NOVFUT")
    assert fut.lot_size == 50 and fut.instrument_type == "FUT"  # NSE lot in Nov 2022
    # the bundled Kite dump of 2024-04 agrees for NIFTY futures then
    assert InstrumentMaster.bundled().by_symbol("NFO:NIFTY24APRFUT").lot_size == 50
    cfg = RiskConfig(capital=1e8, risk_per_trade=0.0005, atr_stop_multiple=1.5,
                     reward_multiple=2.0)  # fmt: skip
    v = view(18360.0, 18340.0, 18350.0, atr=10.0, lot=fut.lot_size, tick=fut.tick_size,
             symbol=fut.symbol, itype="FUT")  # fmt: skip
    # budget 50_000 / 15 = 3333.3 units; capital 1e8 / 18350 = 5449.6 units -> risk binds
    buy = plan_of(BUY, v, cfg)
    assert (buy.stop, buy.target) == (18335.0, 18380.0)
    assert (buy.quantity, buy.lots) == (3300, 66)
    sell = plan_of(SELL, v, cfg)
    assert (sell.stop, sell.target) == (18365.0, 18320.0)
    assert (sell.quantity, sell.lots) == (3300, 66)
    # with 10 lakh capital one lot (9.18 lakh notional) still fits; the capital caps it
    one = plan_of(BUY, v)
    assert (one.quantity, one.lots) == (50, 1)


def test_bank_nifty_lot_above_capital_is_refused(session_master: InstrumentMaster) -> None:
    fut = session_master.by_symbol("NFO:BANKNIFTY22NOVFUT")
    assert fut.lot_size == 25
    v = view(41900.0, 41800.0, 41850.0, atr=30.0, lot=fut.lot_size, itype="FUT")
    r = RiskManager(RISK).plan(BUY, v)
    assert isinstance(r, RiskRefusal)
    assert r.reason == "size_rounds_to_zero"
    assert "1046250.00" in r.detail  # 25 x 41850 > capital 1e6


@pytest.mark.parametrize(
    ("v", "reason"),
    [
        (view(100.0, 100.0, 100.0), "zero_stop_distance"),  # flat bar, no ATR yet
        (view(100.0, 100.0, 100.0, atr=0.0), "zero_stop_distance"),
        (view(100.0, 100.0, 0.0, atr=1.0), "invalid_entry"),
        (view(100.0, 100.0, NAN, atr=1.0), "invalid_entry"),
        # one lot of 1800 at 1000 rupees costs 18 lakh > capital 10 lakh
        (view(1001.0, 999.0, 1000.0, atr=1.0, lot=1800), "size_rounds_to_zero"),
    ],
)
def test_refusals(v: InstrumentView, reason: str) -> None:
    for sig in (BUY, SELL):
        r = RiskManager(RISK).plan(sig, v)
        assert isinstance(r, RiskRefusal)
        assert r.reason == reason and r.reason in REFUSAL_REASONS and r.detail


def test_risk_budget_smaller_than_one_lot_is_refused() -> None:
    # distance 15 x lot 75 = 1125 rupees at risk > budget 1e5 x 0.01 = 1000
    cfg = RiskConfig(capital=1e5, risk_per_trade=0.01)
    r = RiskManager(cfg).plan(BUY, view(101.0, 99.0, 100.0, atr=10.0, lot=75))
    assert isinstance(r, RiskRefusal) and r.reason == "size_rounds_to_zero"


@settings(max_examples=300, deadline=None)
@given(
    st.integers(20, 2_000_000),  # entry in ticks of 0.05
    st.floats(0.01, 500.0),
    st.sampled_from([1, 15, 25, 50, 75, 1800]),
    st.booleans(),
    st.floats(0.001, 0.1),
    st.floats(0.5, 4.0),
    st.floats(0.5, 3.0),
)
def test_plan_properties(
    entry_ticks: int, atr: float, lot: int, long: bool, rpt: float, rr: float, k: float
) -> None:
    entry = round(entry_ticks * 0.05, 2)
    cfg = RiskConfig(capital=1_000_000.0, risk_per_trade=rpt, atr_stop_multiple=k,
                     reward_multiple=rr)  # fmt: skip
    res = RiskManager(cfg).plan(BUY if long else SELL, view(entry * 1.01, entry * 0.99, entry,
                                                            atr=atr, lot=lot))  # fmt: skip
    dist, move = k * atr, rr * k * atr
    if isinstance(res, RiskRefusal):
        # only two reasons can apply here; check the arithmetic behind each (the rounded
        # stop distance lies in [dist, dist + one tick))
        if res.reason == "size_rounds_to_zero":
            assert min(cfg.capital * rpt / (dist + 0.05), cfg.capital / entry) < lot
        else:
            assert res.reason == "zero_target_distance" and move < 0.05 + 1e-9
        return
    p = res
    assert p.entry == entry
    if long:
        assert p.stop < entry < p.target
    else:
        assert p.target < entry < p.stop
    stop_d, tgt_d = abs(entry - p.stop), abs(p.target - entry)
    # stop rounded away (never less risk than the rule), target towards (never more reward)
    assert dist - 1e-6 <= stop_d < dist + 0.05 + 1e-6
    assert move - 0.05 - 1e-6 < tgt_d <= move + 1e-6
    for price in (p.stop, p.target):
        assert abs(price / 0.05 - round(price / 0.05)) < 1e-6
    assert p.quantity > 0 and p.quantity == p.lots * lot and p.lot_size == lot
    assert p.quantity * entry <= cfg.capital + 1e-6
    assert p.risk_amount == pytest.approx(p.quantity * stop_d)
    assert p.risk_amount <= cfg.capital * rpt + 1e-6
    assert p.risk_reward == pytest.approx(tgt_d / stop_d)
    assert p.expected_move == pytest.approx(move)
