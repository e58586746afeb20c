"""Options detectors: straddle/strangle premium strategies and option-wall traps.

They read ``view.chain``, the 5 strikes around the money of an underlying (index 2 =
ATM; see :class:`~aion.patterns.registry.InstrumentView`), and so fire on the
underlying's bars (``NSE:NIFTY 50``...). Two kinds of direction:

- **premium strategies** (``iv_crush_play_straddle``, ``range_bound_strangle``,
  ``premium_collection_strategy``, ``kow_signal_straddle``): the direction is that of
  the *option premium*: ``short`` = sell the straddle/strangle named in the evidence
  (``ce_strike``, ``pe_strike``, ``premium`` in rupees), ``long`` = buy it back / buy it.
  The underlying's bar only carries the signal; evidence ``premium_side`` is -1 (sell)
  or +1 (buy) to make this explicit;
- ``market_maker_trap_detection``: the direction is that of the *underlying*.

Volatilities are annualised decimals (0.15 = 15 %); realised volatility is the sample
standard deviation of 1-minute log returns x sqrt(375 x 252) (375 regular minutes a
day, 252 trading days a year). Theta is rupees per calendar day (Hull's convention, as
published by :mod:`aion.options.greeks`).

Their vectorised gates (see :mod:`aion.patterns.frame`) pass only rows that carry a chain
(``MinuteFrame.chains``), with enough history and inside their time windows.
"""

from __future__ import annotations

import math

import numpy as np

from aion.market.time import REGULAR_OPEN_MINUTE, minute_of_day_ist
from aion.patterns.frame import REGIME_LEVELS, MinuteFrame, loosen
from aion.patterns.registry import InstrumentView, Signal, register
from aion.patterns.scoring import (
    REGIMES,
    atr_or_range,
    confidence,
    context,
    history_len,
    indicator,
    ramp,
)

ANNUALISE_1M = math.sqrt(375 * 252)
"""sqrt(regular minutes per day x trading days per year): 1-minute stdev -> annual."""


def chain_vector(view: InstrumentView, name: str) -> np.ndarray | None:
    """``view.chain[name]`` as float64 (5,) when present and all finite, else None."""
    a = view.chain.get(name)
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    if a.shape != (5,) or not np.all(np.isfinite(a)):
        return None
    return a


def chain_scalar(view: InstrumentView, name: str) -> float | None:
    """A 0-d ``view.chain[name]`` as a finite float, else None."""
    a = view.chain.get(name)
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    if a.size != 1 or not np.isfinite(a).all():
        return None
    return float(a.reshape(()))


def realised_vol(view: InstrumentView, bars: int) -> float | None:
    """Annualised realised volatility of the last ``bars`` 1-minute returns (closes).

    Uses the history closes and this bar's close; None with fewer than ``bars`` returns,
    non-positive prices or zero variance.
    """
    if bars < 2 or history_len(view) < bars:
        return None
    closes = np.append(view.history["close"][-bars:], view.close)
    if not np.all(closes > 0):
        return None
    sd = float(np.std(np.diff(np.log(closes)), ddof=1))
    return sd * ANNUALISE_1M if sd > 0 and math.isfinite(sd) else None


def session_minute(view: InstrumentView) -> int:
    """Minutes since 09:15 IST of the bar's start (0 for the 09:15 bar), from exchange time."""
    return int(minute_of_day_ist(np.array([view.bar_start]))[0]) - REGULAR_OPEN_MINUTE


def _atm_iv(view: InstrumentView) -> float | None:
    ce, pe = chain_vector(view, "ce_iv"), chain_vector(view, "pe_iv")
    if ce is None or pe is None:
        return None
    iv = (ce[2] + pe[2]) / 2
    return float(iv) if iv > 0 else None


def _straddle(view: InstrumentView) -> tuple[float, float] | None:
    """(ATM strike, ATM straddle premium in rupees)."""
    k = chain_vector(view, "strike")
    ce, pe = chain_vector(view, "ce_last_price"), chain_vector(view, "pe_last_price")
    if k is None or ce is None or pe is None:
        return None
    prem = chain_scalar(view, "atm_straddle")
    prem = float(ce[2] + pe[2]) if prem is None else prem
    return (float(k[2]), prem) if prem > 0 else None


def _premium_signal(
    name: str, side: float, conf: float, view: InstrumentView, ev: dict[str, float]
) -> Signal:
    return Signal(
        name,
        "long" if side > 0 else "short",
        conf,
        {**ev, "premium_side": side, **context(view)},
    )


# ---------------------------------------------------------------------------- iv crush


def _gate_iv_crush_play_straddle(
    f: MinuteFrame, max_dte_days: float, rv_bars: int, **_: object
) -> np.ndarray:
    dte = f.chain_scalar("dte_days")
    return (
        f.has_chain()
        & (rv_bars >= 2)
        & (f.history_len >= rv_bars)
        & np.isfinite(dte)
        & ~(dte < 0)
        & ~(dte > max_dte_days)
    )


@register(
    "iv_crush_play_straddle",
    "Sell the ATM straddle near expiry when implied volatility is rich against realised",
    {
        "min_iv_rv_ratio": (1.3, "ATM IV / realised volatility needed"),
        "max_dte_days": (7.0, "trading days to expiry, at most"),
        "rv_bars": (30, "1-minute returns in the realised volatility"),
    },
    family="options",
    gate=_gate_iv_crush_play_straddle,
)
def iv_crush_play_straddle(
    view: InstrumentView, min_iv_rv_ratio: float, max_dte_days: float, rv_bars: int
) -> Signal | None:
    """IV crush play (sell the ATM straddle; direction ``short`` = sell premium).

    Rule: ATM IV = mean of the ATM call and put IVs; realised volatility from the last
    ``rv_bars`` 1-minute returns of the underlying; fires when ``IV / RV >=
    min_iv_rv_ratio`` and the chain's ``dte_days <= max_dte_days`` (implied volatility
    collapses into expiry once the uncertainty it prices passes).

    Confidence: ``0.4 + 0.35 * ramp(IV/RV, min, 2*min) + 0.25 * ramp(max_dte - dte, 0,
    max_dte)`` (nearer expiry, higher); in [0.4, 1].
    """
    iv, rv = _atm_iv(view), realised_vol(view, rv_bars)
    dte = chain_scalar(view, "dte_days")
    atm = _straddle(view)
    if iv is None or rv is None or dte is None or atm is None or dte < 0:
        return None
    ratio = iv / rv
    if ratio < min_iv_rv_ratio or dte > max_dte_days:
        return None
    conf = confidence(
        0.4,
        (0.35, ramp(ratio, min_iv_rv_ratio, 2 * min_iv_rv_ratio)),
        (0.25, ramp(max_dte_days - dte, 0.0, max_dte_days)),
    )
    return _premium_signal(
        "iv_crush_play_straddle",
        -1.0,
        conf,
        view,
        {
            "ce_strike": atm[0],
            "pe_strike": atm[0],
            "premium": atm[1],
            "atm_iv": iv,
            "realised_vol": rv,
            "dte_days": dte,
        },
    )


# ---------------------------------------------------------------------------- strangle


def _gate_range_bound_strangle(
    f: MinuteFrame,
    lookback_bars: int,
    max_range_atr: float,
    max_vwap_atr: float,
    max_adx: float,
) -> np.ndarray:
    if lookback_bars < 2:
        return np.zeros(len(f), np.bool_)
    vwap, adx, atr = f.indicator("vwap"), f.indicator("adx_14"), f.atr
    top = np.maximum(f.hist_max("high", lookback_bars), f.high)
    bottom = np.minimum(f.hist_min("low", lookback_bars), f.low)
    with np.errstate(invalid="ignore", divide="ignore"):
        range_atr, vwap_atr = (top - bottom) / atr, np.abs(f.close - vwap) / atr
    return (
        f.has_chain()
        & np.isfinite(atr)
        & np.isfinite(vwap)
        & (f.history_len >= lookback_bars)
        & ~(range_atr > loosen(max_range_atr, up=True))
        & ~(vwap_atr > loosen(max_vwap_atr, up=True))
        & ~(np.isfinite(adx) & (adx > max_adx))
    )


@register(
    "range_bound_strangle",
    "Sell the one-strike-OTM strangle when the underlying is range-bound around VWAP",
    {
        "lookback_bars": (30, "bars whose high-low range is measured"),
        "max_range_atr": (6.0, "range of the lookback, at most, in ATR"),
        "max_vwap_atr": (0.5, "|close - vwap|, at most, in ATR"),
        "max_adx": (20.0, "ADX(14) ceiling, when adx_14 is published"),
    },
    family="options",
    gate=_gate_range_bound_strangle,
)
def range_bound_strangle(
    view: InstrumentView,
    lookback_bars: int,
    max_range_atr: float,
    max_vwap_atr: float,
    max_adx: float,
) -> Signal | None:
    """Range-bound strangle (sell strikes[1] PE + strikes[3] CE; ``short`` = sell premium).

    Rule: the high-low range of the last ``lookback_bars`` history bars and this bar is
    ``<= max_range_atr`` ATR, the close is within ``max_vwap_atr`` ATR of VWAP, ADX(14)
    (when published) ``<= max_adx``, and the strangle's strikes bracket the close.
    Needs ``vwap`` and the chain.

    Confidence: ``0.4 + 0.25 * ramp(max_range - range/ATR, 0, max_range/2) + 0.2 *
    ramp(max_vwap - |close - vwap|/ATR, 0, max_vwap) + 0.15 * ramp(max_adx - adx, 0,
    max_adx/2)`` (the ADX term 0 without ADX); in [0.4, 1].
    """
    atr = atr_or_range(view)
    vwap = indicator(view, "vwap")
    k = chain_vector(view, "strike")
    ce, pe = chain_vector(view, "ce_last_price"), chain_vector(view, "pe_last_price")
    if atr is None or vwap is None or k is None or ce is None or pe is None:
        return None
    if lookback_bars < 2 or history_len(view) < lookback_bars:
        return None
    top = max(float(np.max(view.history["high"][-lookback_bars:])), view.high)
    bottom = min(float(np.min(view.history["low"][-lookback_bars:])), view.low)
    range_atr, vwap_atr = (top - bottom) / atr, abs(view.close - vwap) / atr
    adx = indicator(view, "adx_14")
    if range_atr > max_range_atr or vwap_atr > max_vwap_atr:
        return None
    if (adx is not None and adx > max_adx) or not k[1] < view.close < k[3]:
        return None
    conf = confidence(
        0.4,
        (0.25, ramp(max_range_atr - range_atr, 0.0, max_range_atr / 2)),
        (0.2, ramp(max_vwap_atr - vwap_atr, 0.0, max_vwap_atr)),
        (0.15, ramp(max_adx - adx, 0.0, max_adx / 2) if adx is not None else 0.0),
    )
    return _premium_signal(
        "range_bound_strangle",
        -1.0,
        conf,
        view,
        {
            "ce_strike": float(k[3]),
            "pe_strike": float(k[1]),
            "premium": float(ce[3] + pe[1]),
            "range_atr": range_atr,
            "vwap_distance_atr": vwap_atr,
        },
    )


# ---------------------------------------------------------------------------- trap


def _gate_market_maker_trap_detection(f: MinuteFrame, **_: object) -> np.ndarray:
    return f.has_chain() & np.isfinite(f.atr)


@register(
    "market_maker_trap_detection",
    "Underlying pokes through the open-interest wall strike (largest CE/PE OI) and closes "
    "back: trapped breakout, traded against",
    {
        "min_wall_share": (0.25, "wall strike's share of the chain's CE (PE) open interest"),
        "min_rejection_atr": (0.1, "close back inside the wall by at least this, in ATR"),
    },
    family="options",
    gate=_gate_market_maker_trap_detection,
)
def market_maker_trap_detection(
    view: InstrumentView, min_wall_share: float, min_rejection_atr: float
) -> Signal | None:
    """Market-maker trap at the option OI walls (direction of the *underlying*).

    Rule: the call wall is the strike with the largest call OI among the 5, the put wall
    the one with the largest put OI; a wall counts when it holds ``>= min_wall_share``
    of its side's OI. The bar trades above the call wall and closes back below it by
    ``>= min_rejection_atr`` ATR -> ``short`` (a bull trap: writers defend the strike);
    trades below the put wall and closes back above -> ``long``. Both at once -> None.

    Confidence: ``0.4 + 0.3 * ramp(share, min_wall_share, min(1, 2*min_wall_share))
    + 0.3 * ramp(rejection/ATR, min_rejection_atr, min_rejection_atr + 0.5)``; in [0.4, 1].
    """
    k = chain_vector(view, "strike")
    ce_oi, pe_oi = chain_vector(view, "ce_oi"), chain_vector(view, "pe_oi")
    atr = atr_or_range(view)
    if k is None or ce_oi is None or pe_oi is None or atr is None:
        return None
    need_rej = min_rejection_atr * atr
    found = []
    for oi, sign in ((ce_oi, -1.0), (pe_oi, 1.0)):
        total = float(np.sum(oi))
        if not total > 0 or np.any(oi < 0):
            continue
        i = int(np.argmax(oi))
        share, wall = float(oi[i]) / total, float(k[i])
        if share < min_wall_share:
            continue
        if sign < 0 and view.high > wall and view.close <= wall - need_rej:
            found.append((sign, wall, share, wall - view.close))
        elif sign > 0 and view.low < wall and view.close >= wall + need_rej:
            found.append((sign, wall, share, view.close - wall))
    if len(found) != 1:
        return None
    sign, wall, share, rej = found[0]
    conf = confidence(
        0.4,
        (0.3, ramp(share, min_wall_share, min(1.0, 2 * min_wall_share))),
        (0.3, ramp(rej / atr, min_rejection_atr, min_rejection_atr + 0.5)),
    )
    return Signal(
        "market_maker_trap_detection",
        "long" if sign > 0 else "short",
        conf,
        {
            "wall_strike": wall,
            "wall_oi_share": share,
            "rejection_atr": rej / atr,
            **context(view),
        },
    )


# ---------------------------------------------------------------------------- premium collection


def _gate_premium_collection_strategy(
    f: MinuteFrame, max_regime: str, rv_bars: int, start_minute: int, end_minute: int, **_: object
) -> np.ndarray:
    minute, level = f.session_minute(), f.regime_level()
    return (
        f.has_chain()
        & (level >= 0)
        & (level <= REGIME_LEVELS[max_regime])
        & (start_minute <= minute)
        & (minute <= end_minute)
        & (rv_bars >= 2)
        & (f.history_len >= rv_bars)
    )


@register(
    "premium_collection_strategy",
    "Sell the ATM straddle for theta when its daily decay yield is high, the VIX regime "
    "calm and IV not cheap",
    {
        "min_theta_yield": (0.02, "ATM (CE + PE) theta per day / straddle premium needed"),
        "max_regime": ("NORMAL", "calmest-to-this INDIA VIX regimes allowed (LOW, NORMAL, ...)"),
        "rv_bars": (30, "1-minute returns in the realised volatility"),
        "start_minute": (30, "earliest bar, minutes after 09:15 IST"),
        "end_minute": (300, "latest bar, minutes after 09:15 IST"),
    },
    family="options",
    check=lambda p: (
        None
        if p["max_regime"] in REGIMES
        else f"max_regime {p['max_regime']!r} is not one of {', '.join(REGIMES)}"
    ),
    gate=_gate_premium_collection_strategy,
)
def premium_collection_strategy(
    view: InstrumentView,
    min_theta_yield: float,
    max_regime: str,
    rv_bars: int,
    start_minute: int,
    end_minute: int,
) -> Signal | None:
    """Premium collection (sell the ATM straddle; ``short`` = sell premium).

    Rule: ``yield = -(ce_theta[2] + pe_theta[2]) / straddle`` (fraction of the premium
    decaying per calendar day) ``>= min_theta_yield``; the INDIA VIX regime is known and
    no higher than ``max_regime``; ATM IV ``>=`` realised volatility of the last
    ``rv_bars`` returns; the bar starts between ``start_minute`` and ``end_minute``
    minutes after 09:15 IST.

    Confidence: ``0.4 + 0.3 * ramp(yield, min, 2*min) + 0.15 * ramp(IV/RV, 1, 1.5)
    + 0.15 * calm`` with calm 1 in the LOW regime, 0.5 one level up, 0 beyond; in [0.4, 1].
    """
    minute = session_minute(view)
    if view.regime not in REGIMES or not start_minute <= minute <= end_minute:
        return None
    level = REGIMES.index(view.regime)
    if level > REGIMES.index(max_regime):
        return None
    ce_t, pe_t = chain_vector(view, "ce_theta"), chain_vector(view, "pe_theta")
    atm, iv, rv = _straddle(view), _atm_iv(view), realised_vol(view, rv_bars)
    if ce_t is None or pe_t is None or atm is None or iv is None or rv is None:
        return None
    theta_yield = -float(ce_t[2] + pe_t[2]) / atm[1]
    if theta_yield < min_theta_yield or iv < rv:
        return None
    conf = confidence(
        0.4,
        (0.3, ramp(theta_yield, min_theta_yield, 2 * min_theta_yield)),
        (0.15, ramp(iv / rv, 1.0, 1.5)),
        (0.15, max(0.0, 1.0 - 0.5 * level)),
    )
    return _premium_signal(
        "premium_collection_strategy",
        -1.0,
        conf,
        view,
        {
            "ce_strike": atm[0],
            "pe_strike": atm[0],
            "premium": atm[1],
            "theta_yield": theta_yield,
            "atm_iv": iv,
            "realised_vol": rv,
        },
    )


# ---------------------------------------------------------------------------- kow signal


def _gate_kow_signal_straddle(
    f: MinuteFrame, start_minute: int, end_minute: int, **_: object
) -> np.ndarray:
    minute, vwap = f.session_minute(), f.chain_scalar("atm_straddle_vwap")
    return f.has_chain() & (vwap > 0) & (start_minute <= minute) & (minute <= end_minute)


@register(
    "kow_signal_straddle",
    "ATM straddle premium vs its session VWAP: below VWAP sell the straddle, above buy it back",
    {
        "min_deviation": (0.01, "|straddle / straddle VWAP - 1| needed"),
        "start_minute": (15, "earliest bar, minutes after 09:15 IST"),
        "end_minute": (345, "latest bar, minutes after 09:15 IST (345 = 15:00)"),
    },
    family="options",
    gate=_gate_kow_signal_straddle,
)
def kow_signal_straddle(
    view: InstrumentView, min_deviation: float, start_minute: int, end_minute: int
) -> Signal | None:
    """Kow's VWAP straddle signal on the combined ATM premium.

    Rule: ``dev = atm_straddle / atm_straddle_vwap - 1`` (both from the chain; VWAP is
    the volume-weighted mean straddle premium of the session); ``dev <= -min_deviation``
    -> ``short`` (premium decaying below its VWAP: enter a short straddle);
    ``dev >= min_deviation`` -> ``long`` (premium expanding above VWAP: exit the short /
    buy). Only between ``start_minute`` and ``end_minute`` after 09:15 IST.

    Confidence: ``0.5 + 0.5 * ramp(|dev|, min_deviation, 3 * min_deviation)``; in [0.5, 1].
    """
    minute = session_minute(view)
    atm = _straddle(view)
    vwap = chain_scalar(view, "atm_straddle_vwap")
    if atm is None or vwap is None or not vwap > 0 or not start_minute <= minute <= end_minute:
        return None
    dev = atm[1] / vwap - 1.0
    if abs(dev) < min_deviation:
        return None
    conf = confidence(0.5, (0.5, ramp(abs(dev), min_deviation, 3 * min_deviation)))
    return _premium_signal(
        "kow_signal_straddle",
        1.0 if dev > 0 else -1.0,
        conf,
        view,
        {
            "ce_strike": atm[0],
            "pe_strike": atm[0],
            "premium": atm[1],
            "premium_vwap": vwap,
            "deviation": dev,
        },
    )
