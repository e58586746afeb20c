"""ChainTracker: IV and Greeks on option ticks, the 5-strike chain view, straddle VWAP."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from scipy.stats import norm

from aion.config import OptionsConfig
from aion.instruments.master import Instrument
from aion.market.calendar import MarketCalendar
from aion.market.time import from_ist
from aion.options.chain import CHAIN_ARRAY_KEYS, ChainTracker
from aion.store import keys

DAY = dt.date(2022, 11, 11)
EXPIRY = dt.date(2022, 11, 24)
STRIKES = [18000, 18050, 18100, 18150, 18200, 18250, 18300]
CFG = OptionsConfig(rate=0.065, dividend_yield=0.0, trading_days_per_year=252.0)


def call_price(s: float, k: float, t: float, sigma: float, r: float) -> float:
    d1 = (math.log(s / k) + (r + sigma**2 / 2) * t) / (sigma * math.sqrt(t))
    return s * norm.cdf(d1) - k * math.exp(-r * t) * norm.cdf(d1 - sigma * math.sqrt(t))


def put_price(s: float, k: float, t: float, sigma: float, r: float) -> float:
    return call_price(s, k, t, sigma, r) - s + k * math.exp(-r * t)  # put-call parity


def universe() -> list[Instrument]:
    out = [
        Instrument(256265, 1001, "NIFTY 50", "NIFTY 50", 0, None, 0, 0, 0, "EQ", "INDICES", "NSE")
    ]
    tok = 1000
    for k in STRIKES:
        for kind in ("CE", "PE"):
            tok += 1
            out.append(
                Instrument(
                    tok,
                    tok,
                    f"NIFTY22NOV{k}{kind}",
                    "NIFTY",
                    0,
                    EXPIRY,
                    float(k),
                    0.05,
                    50,
                    kind,
                    "NFO-OPT",
                    "NFO",
                )
            )
    out.append(Instrument(5, 5, "RELIANCE", "RELIANCE", 0, None, 0, 0.05, 1, "EQ", "NSE", "NSE"))
    return out


@pytest.fixture
def tracker() -> ChainTracker:
    return ChainTracker(universe(), MarketCalendar(), CFG)


def feed(tr: ChainTracker, now: int, spot: float, sigma: float, vol: int) -> np.ndarray:
    """One batch: the index tick, then every option priced at ``sigma`` with day volume."""
    insts = universe()
    # dte at now: Nov 11 10:00 -> 5.5 h of 6.25 h left today + 9 sessions to the 24th
    t = (5.5 / 6.25 + 9) / 252
    slots, prices = [0], [spot]
    for s, inst in enumerate(insts):
        if inst.instrument_type in ("CE", "PE"):
            f = call_price if inst.instrument_type == "CE" else put_price
            slots.append(s)
            prices.append(f(spot, inst.strike, t, sigma, CFG.rate))
    n = len(slots)
    return tr.on_ticks(
        np.array(slots, np.int64),
        np.full(n, now, np.int64),
        np.array(prices),
        np.full(n, vol, np.int64),
        np.arange(n, dtype=np.int64) * 100,
    )


def test_greeks_on_ticks_recover_the_volatility(tracker: ChainTracker) -> None:
    now = from_ist(DAY, 10, 0)
    assert tracker.has_options and tracker.has_chain(0) and not tracker.has_chain(15)
    updated = feed(tracker, now, 18160.0, 0.155, 1000)
    assert len(updated) == 2 * len(STRIKES)
    t = (5.5 / 6.25 + 9) / 252
    for s in range(1, 1 + 2 * len(STRIKES)):
        view = tracker.option_view(s)
        assert view["iv"] == pytest.approx(0.155, abs=1e-9)
        assert view["dte_days"] == pytest.approx(5.5 / 6.25 + 9, abs=1e-9)
        assert view["dte_years"] == pytest.approx(t, abs=1e-12)
        k = view["strike"]
        d1 = (math.log(18160 / k) + (CFG.rate + 0.155**2 / 2) * t) / (0.155 * math.sqrt(t))
        call = tracker.contracts[int(tracker.option_index[s])].is_call
        assert view["delta"] == pytest.approx(norm.cdf(d1) - (0 if call else 1), abs=1e-7)
        assert view["gamma"] == pytest.approx(norm.pdf(d1) / (18160 * 0.155 * math.sqrt(t)))
    assert tracker.option_view(0) == {} and tracker.option_view(15) == {}
    writes = tracker.store_writes(updated)
    st = writes[keys.option("NFO:NIFTY22NOV18150CE")]
    assert st["iv_reason"] == "" and float(st["iv"]) == pytest.approx(0.155, abs=1e-6)
    assert st["expiry"] == "2022-11-24" and st["underlying"] == "NSE:NIFTY 50"


def test_chain_view_centres_on_atm(tracker: ChainTracker) -> None:
    now = from_ist(DAY, 10, 0)
    feed(tracker, now, 18160.0, 0.155, 1000)
    chain = tracker.chain_view(0, now)
    assert set(CHAIN_ARRAY_KEYS) <= set(chain)
    assert chain["strike"].tolist() == [18050, 18100, 18150, 18200, 18250]
    for key in CHAIN_ARRAY_KEYS:
        assert chain[key].shape == (5,)
    ce, pe = chain["ce_last_price"][2], chain["pe_last_price"][2]
    assert float(chain["atm_straddle"]) == pytest.approx(ce + pe)
    assert float(chain["spot"]) == 18160.0
    assert np.all(np.diff(chain["ce_delta"]) < 0) and np.all(chain["pe_delta"] < 0)
    assert chain["ce_oi"].tolist() != chain["pe_oi"].tolist()
    # the first snapshot's volume since the session start weights the first straddle
    assert float(chain["atm_straddle_vwap"]) == pytest.approx(ce + pe)
    # a minute later: spot up, vols up, 500 more units traded in each leg
    later = now + 60
    feed(tracker, later, 18160.0, 0.17, 1500)
    chain2 = tracker.chain_view(0, later)
    s2 = float(chain2["atm_straddle"])
    assert s2 > ce + pe
    expected = ((ce + pe) * 2000 + s2 * 1000) / 3000
    assert float(chain2["atm_straddle_vwap"]) == pytest.approx(expected)
    # at the grid's edge the chain is NaN-padded: spot 18010 -> ATM 18000 at index 2
    feed(tracker, later + 60, 18010.0, 0.17, 1500)
    edge = tracker.chain_view(0, later + 60)
    assert np.isnan(edge["strike"][:2]).all() and edge["strike"][2] == 18000
    assert np.isnan(edge["ce_iv"][:2]).all()


def test_expired_chain_and_missing_underlying() -> None:
    insts = universe()[1:]  # no NIFTY 50 slot: no spot, no Greeks
    tr = ChainTracker(insts, MarketCalendar(), CFG)
    now = from_ist(DAY, 10, 0)
    upd = tr.on_ticks(
        np.array([0], np.int64), np.array([now]), np.array([120.0]), np.array([10]), np.array([5])
    )
    assert upd.tolist() == [0]
    assert math.isnan(tr.option_view(0)["iv"])
    assert tr.state(0)["iv_reason"] == "bad input"
    tr2 = ChainTracker(universe(), MarketCalendar(), CFG)
    after = from_ist(EXPIRY, 15, 30)
    tr2.on_ticks(
        np.array([0, 1], np.int64),
        np.array([after, after]),
        np.array([18100.0, 50.0]),
        np.array([0, 10]),
        np.array([0, 5]),
    )
    assert tr2.state(0)["iv_reason"] == "zero time"
    assert tr2.chain_view(0, after) == {}
