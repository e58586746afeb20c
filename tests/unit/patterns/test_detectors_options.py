"""Options detectors on a hand-built 5-strike chain (index 2 = ATM): each fires with the
expected direction and stays silent on a near miss; confidences by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from pattern_views import hist, make_view, run

from aion.config import ConfigError
from aion.patterns.config import PatternConfig
from aion.patterns.registry import InstrumentView, PatternEngine

STRIKES = np.array([18200.0, 18250.0, 18300.0, 18350.0, 18400.0])


def chain(**kw: float | list[float]) -> dict[str, np.ndarray]:
    """A NIFTY-like chain around 18300; keyword arguments replace fields."""
    c = {
        "strike": STRIKES,
        "ce_last_price": [260.0, 225.0, 195.0, 165.0, 140.0],
        "pe_last_price": [135.0, 155.0, 190.0, 215.0, 250.0],
        "ce_iv": [0.2] * 5,
        "pe_iv": [0.2] * 5,
        "ce_theta": [-7.0, -7.5, -8.0, -7.5, -7.0],
        "pe_theta": [-6.5, -6.8, -7.0, -6.8, -6.5],
        "ce_oi": [1.0e6] * 5,
        "pe_oi": [1.0e6] * 5,
        "spot": 18300.0,
        "dte_days": 3.0,
        "atm_straddle": 385.0,
        "atm_straddle_vwap": 385.0,
    } | kw
    return {k: np.asarray(v, dtype=np.float64) for k, v in c.items()}


def quiet_history(n: int = 30, step: float = 0.0002) -> dict:
    """Closes alternating +-step in log terms around 18300."""
    closes = 18300.0 * np.exp(step * (np.arange(n) % 2))
    return hist(n, open=closes, high=closes + 5, low=closes - 5, close=closes)


def uview(
    c: float = 18300.0,
    *,
    h: float | None = None,
    lo: float | None = None,
    at: tuple[int, int] = (11, 0),
    **kw,
) -> InstrumentView:  # type: ignore[no-untyped-def]
    base = dict(
        history=quiet_history(),
        atr=10.0,
        chain=chain(),
        at=at,
        expected=math.nan,
        symbol="NSE:NIFTY 50",
    )
    return make_view(
        c, c + 5 if h is None else h, c - 5 if lo is None else lo, c, 0.0, **(base | kw)
    )


def rv_by_hand(v: InstrumentView, n: int = 30) -> float:
    closes = [*v.history["close"][-n:].tolist(), v.close]
    r = [math.log(b / a) for a, b in itertools.pairwise(closes)]
    m = sum(r) / len(r)
    return math.sqrt(sum((x - m) ** 2 for x in r) / (len(r) - 1)) * math.sqrt(375 * 252)


# ------------------------------------------------------------------------ iv crush
def test_iv_crush_sells_the_straddle_by_hand() -> None:
    v = uview()
    sig = run("iv_crush_play_straddle", v)
    assert sig is not None and sig.direction == "short"
    rv = rv_by_hand(v)
    assert sig.evidence["realised_vol"] == pytest.approx(rv, rel=1e-9)
    ratio = 0.2 / rv
    want = 0.4 + 0.35 * min(1.0, (ratio - 1.3) / 1.3) + 0.25 * (7.0 - 3.0) / 7.0
    assert sig.confidence == pytest.approx(want, abs=1e-12)
    assert sig.evidence["premium"] == 385.0 and sig.evidence["premium_side"] == -1.0
    assert sig.evidence["ce_strike"] == sig.evidence["pe_strike"] == 18300.0


@pytest.mark.parametrize(
    "kw",
    [
        {"chain": chain(dte_days=9.0)},  # far from expiry
        {"history": quiet_history(step=0.002)},  # realised vol 10x: IV is not rich
        {"chain": {}},  # no chain
        {"history": quiet_history(20)},  # too few returns for the realised volatility
    ],
)
def test_iv_crush_silent(kw: dict) -> None:
    assert run("iv_crush_play_straddle", uview(**kw)) is None


# ------------------------------------------------------------------------ strangle
def test_range_bound_strangle_by_hand() -> None:
    v = uview(indicators={"vwap": 18301.0, "adx_14": 15.0})
    sig = run("range_bound_strangle", v)
    assert sig is not None and sig.direction == "short"
    assert (sig.evidence["pe_strike"], sig.evidence["ce_strike"]) == (18250.0, 18350.0)
    assert sig.evidence["premium"] == 165.0 + 155.0
    hi = max(float(np.max(v.history["high"])), v.high)
    lo = min(float(np.min(v.history["low"])), v.low)
    range_atr = (hi - lo) / 10.0
    want = (
        0.4
        + 0.25 * min(1.0, (6.0 - range_atr) / 3.0)
        + 0.2 * (0.5 - 0.1) / 0.5
        + 0.15 * (20.0 - 15.0) / 10.0
    )
    assert sig.confidence == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize(
    "ind,atr",
    [
        ({"vwap": 18301.0, "adx_14": 30.0}, 10.0),  # trending
        ({"vwap": 18320.0}, 10.0),  # 2 ATR from VWAP
        ({"adx_14": 15.0}, 10.0),  # no VWAP
        ({"vwap": 18301.0}, 2.0),  # range 13.7 = 6.8 ATR: not range-bound
    ],
)
def test_range_bound_strangle_silent(ind: dict, atr: float) -> None:
    assert run("range_bound_strangle", uview(indicators=ind, atr=atr)) is None


# ------------------------------------------------------------------------ trap
WALL = [1.0e6, 1.0e6, 1.0e6, 4.0e6, 3.0e6]  # 18350 holds 4/10 of the call OI


def test_market_maker_trap_by_hand() -> None:
    v = uview(18340.0, h=18360.0, lo=18330.0, chain=chain(ce_oi=WALL))
    sig = run("market_maker_trap_detection", v)
    assert sig is not None and sig.direction == "short"
    assert sig.evidence["wall_strike"] == 18350.0
    # share 0.4 -> (0.4-0.25)/0.25; rejection 10/10 ATR -> 1
    assert sig.confidence == pytest.approx(0.4 + 0.3 * 0.6 + 0.3, abs=1e-12)
    put_wall = [3.0e6, 4.0e6, 1.0e6, 1.0e6, 1.0e6]
    v = uview(18260.0, h=18270.0, lo=18240.0, chain=chain(pe_oi=put_wall))
    sig = run("market_maker_trap_detection", v)
    assert sig is not None and sig.direction == "long"
    assert sig.evidence["wall_strike"] == 18250.0


@pytest.mark.parametrize(
    "c,h,oi",
    [
        (18352.0, 18360.0, WALL),  # closes above the wall: a real breakout
        (18349.5, 18360.0, WALL),  # back inside by less than 0.1 ATR
        (18340.0, 18349.0, WALL),  # never traded through the wall
        (18340.0, 18360.0, [1.0e6] * 5),  # no wall: OI spread evenly (share 0.2)
    ],
)
def test_market_maker_trap_silent(c: float, h: float, oi: list[float]) -> None:
    v = uview(c, h=h, lo=18330.0, chain=chain(ce_oi=oi))
    assert run("market_maker_trap_detection", v) is None


# ------------------------------------------------------------------------ premium collection
def test_premium_collection_by_hand() -> None:
    v = uview(regime="NORMAL")
    sig = run("premium_collection_strategy", v)
    assert sig is not None and sig.direction == "short"
    y = (8.0 + 7.0) / 385.0
    iv_rv = 0.2 / rv_by_hand(v)
    want = 0.4 + 0.3 * min(1.0, (y - 0.02) / 0.02) + 0.15 * min(1.0, (iv_rv - 1) / 0.5) + 0.075
    assert sig.evidence["theta_yield"] == pytest.approx(y)
    assert sig.confidence == pytest.approx(want, abs=1e-12)
    low = run("premium_collection_strategy", uview(regime="LOW"))
    assert low is not None and low.confidence == pytest.approx(want + 0.075, abs=1e-12)


@pytest.mark.parametrize(
    "kw",
    [
        {"regime": "HIGH"},
        {"regime": ""},  # regime unknown
        {"regime": "NORMAL", "at": (9, 30)},  # before 09:45
        {"regime": "NORMAL", "chain": chain(ce_theta=[-2.0] * 5, pe_theta=[-2.0] * 5)},
        {"regime": "NORMAL", "history": quiet_history(step=0.002)},  # IV below realised
    ],
)
def test_premium_collection_silent(kw: dict) -> None:
    assert run("premium_collection_strategy", uview(**kw)) is None


def test_premium_collection_rejects_unknown_regime() -> None:
    with pytest.raises(ConfigError, match="max_regime"):
        PatternEngine([PatternConfig("premium_collection_strategy", params={"max_regime": "CALM"})])


# ------------------------------------------------------------------------ kow
def test_kow_signal_by_hand() -> None:
    sig = run(
        "kow_signal_straddle", uview(chain=chain(atm_straddle=396.0, atm_straddle_vwap=404.0))
    )
    assert sig is not None and sig.direction == "short"
    dev = 396.0 / 404.0 - 1
    assert sig.confidence == pytest.approx(0.5 + 0.5 * (abs(dev) - 0.01) / 0.02, abs=1e-12)
    sig = run(
        "kow_signal_straddle", uview(chain=chain(atm_straddle=412.0, atm_straddle_vwap=400.0))
    )
    assert sig is not None and sig.direction == "long" and sig.confidence == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kw",
    [
        {"chain": chain(atm_straddle=402.0, atm_straddle_vwap=400.0)},  # 0.5 % from VWAP
        {"chain": chain(atm_straddle=380.0, atm_straddle_vwap=400.0), "at": (15, 10)},  # late
        {"chain": chain(atm_straddle=380.0, atm_straddle_vwap=400.0), "at": (9, 20)},  # early
        {"chain": {k: v for k, v in chain(atm_straddle=380.0).items() if k != "atm_straddle_vwap"}},
    ],
)
def test_kow_signal_silent(kw: dict) -> None:
    assert run("kow_signal_straddle", uview(**kw)) is None
