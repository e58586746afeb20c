"""ICT ("Inner Circle Trader") detectors: liquidity, fair value gaps, OTE, premium/discount,
kill zones and displacement.

The ICT vocabulary used here, reduced to explicit rules on 1-minute bars:

- *swing high/low*: a fractal, a bar whose high (low) is the extreme of the ``swing_bars``
  bars on each side (strictly above the bars on its left so a flat top counts once);
- *liquidity pool*: two or more swing highs (lows) within ``tolerance_atr`` ATR of each
  other ("equal highs/lows"), where stop orders rest; a *stop hunt* trades through the
  pool and closes back on the near side;
- *fair value gap* (FVG): three bars where the third bar's low is above the first bar's
  high (bullish) or its high below the first bar's low (bearish);
- *optimal trade entry* (OTE): a retracement of 62-79 % of the last impulse leg;
- *premium/discount*: the upper/lower part of the session's dealing range;
- *kill zone*: IST time windows of heavy institutional activity (configured);
- *displacement*: a large-bodied bar that breaks market structure.

Conventions (ATR units, volume caps, bounded confidence, None on missing input, a
vectorised gate per detector) are those of :mod:`aion.patterns.core`.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from aion.market.time import minute_of_day_ist
from aion.patterns.frame import MinuteFrame, loosen
from aion.patterns.registry import InstrumentView, Signal, register
from aion.patterns.scoring import (
    atr_or_range,
    bar_volume_ratio,
    capped,
    confidence,
    context,
    history_len,
    indicator,
    multiplier,
    ramp,
)


def swing_highs(high: np.ndarray, k: int) -> np.ndarray:
    """Indices of fractal swing highs in ``high`` (float64 (n,)), ascending.

    Index ``i`` (``k <= i < n - k``) is a swing high when ``high[i]`` is the maximum of
    ``high[i-k : i+k+1]`` and strictly above every ``high[i-k : i]``. int64 (m,).
    """
    n = high.shape[0]
    if k < 1 or n < 2 * k + 1:
        return np.empty(0, np.int64)
    win = sliding_window_view(high, 2 * k + 1)
    centre = high[k : n - k]
    ok = (centre >= win.max(axis=1)) & (centre > win[:, :k].max(axis=1))
    return np.flatnonzero(ok).astype(np.int64) + k


def swing_lows(low: np.ndarray, k: int) -> np.ndarray:
    """Indices of fractal swing lows (the mirror of :func:`swing_highs`)."""
    return swing_highs(-low, k)


def swing_high_mask(high: np.ndarray, k: int) -> np.ndarray:
    """Rows of :func:`swing_highs` at once: ``high`` float64 (n, w) right-aligned and
    NaN-padded on the left (:meth:`MinuteFrame.hist`) -> bool (n, w), True at every swing
    high of the row's bars. NaN counts as -inf, so a bar next to the padding may be marked
    where :func:`swing_highs` of the row's bars alone would not: a superset, for gates."""
    n, w = high.shape
    out = np.zeros((n, w), np.bool_)
    if k < 1 or w < 2 * k + 1:
        return out
    x = np.where(np.isnan(high), -np.inf, high)
    win = sliding_window_view(x, 2 * k + 1, axis=1)
    centre = x[:, k : w - k]
    ok = (centre >= win.max(axis=2)) & (centre > win[:, :, :k].max(axis=2))
    out[:, k : w - k] = ok & np.isfinite(centre)
    return out


def _none(f: MinuteFrame) -> np.ndarray:
    return np.zeros(len(f), np.bool_)


def _close_position(view: InstrumentView, sign: float) -> float:
    """Where the close sits in the bar, 1 at the extreme in the signal's direction."""
    rng = view.high - view.low
    if not rng > 0:
        return math.nan
    pos = (view.close - view.low) / rng
    return pos if sign > 0 else 1.0 - pos


# ---------------------------------------------------------------------------- liquidity_pools


def _pools(levels: np.ndarray, tol: float) -> list[tuple[float, float, int]]:
    """Cluster sorted swing prices within ``tol`` of their neighbour: (lo, hi, count)."""
    if levels.shape[0] == 0:
        return []
    s = np.sort(levels)
    out = []
    start = 0
    for i in range(1, s.shape[0] + 1):
        if i == s.shape[0] or s[i] - s[i - 1] > tol:
            out.append((float(s[start]), float(s[i - 1]), i - start))
            start = i
    return out


def _gate_liquidity_pools(
    f: MinuteFrame,
    lookback_bars: int,
    swing_bars: int,
    tolerance_atr: float,
    min_touches: int,
    min_rejection_atr: float,
) -> np.ndarray:
    if lookback_bars < 3 or swing_bars < 1:
        return _none(f)
    h, lo = f.hist("high", lookback_bars), f.hist("low", lookback_bars)
    sh, sl = swing_high_mask(h, swing_bars), swing_high_mask(-lo, swing_bars)
    need = (min_rejection_atr * f.atr)[:, None]
    c = f.close[:, None]
    # an intact level is not exceeded by the bars after its pool's last swing, which
    # include the last swing_bars bars
    tail_hi, tail_lo = (
        f.hist_max("high", swing_bars)[:, None],
        f.hist_min("low", swing_bars)[:, None],
    )
    with np.errstate(invalid="ignore"):
        short = sh & (h < f.high[:, None]) & (c <= loosen(h - need, up=True)) & ~(h < tail_hi)
        long = sl & (lo > f.low[:, None]) & (c >= loosen(lo + need)) & ~(lo > tail_lo)
    short_rows = np.any(short, axis=1)
    long_rows = np.any(long, axis=1)
    short_rows &= sh.sum(axis=1) >= min_touches
    long_rows &= sl.sum(axis=1) >= min_touches
    if min_touches >= 2:  # the level (top of its pool) has another swing within tolerance
        tol = loosen(tolerance_atr * f.atr, up=True)
        for side, swings, a, sign in ((short_rows, sh, h, 1.0), (long_rows, sl, lo, -1.0)):
            rows = np.flatnonzero(side)
            if rows.shape[0] == 0:
                continue
            x = sign * a[rows]  # levels as highs: the pool's top, neighbours below it
            ok = swings[rows]
            gap = x[:, :, None] - x[:, None, :]  # (r, i, i'): level i above swing i'
            near = ok[:, :, None] & ok[:, None, :] & (gap >= 0) & (gap <= tol[rows, None, None])
            near &= ~np.eye(x.shape[1], dtype=np.bool_)[None]
            side[rows] = near.any(axis=(1, 2))
    return (
        np.isfinite(f.atr)
        & (f.history_len >= 2 * swing_bars + 2)
        & (f.range > 0)
        & (short_rows | long_rows)
    )


@register(
    "liquidity_pools",
    "Stop hunt: a bar trades through equal swing highs/lows (a liquidity pool) and closes "
    "back inside",
    {
        "lookback_bars": (60, "history bars searched for swings"),
        "swing_bars": (2, "bars on each side of a swing (fractal order)"),
        "tolerance_atr": (0.25, "swings within this many ATR form one pool"),
        "min_touches": (2, "swings needed in a pool"),
        "min_rejection_atr": (0.1, "close back inside the pool level by at least this, in ATR"),
    },
    family="ict",
    gate=_gate_liquidity_pools,
)
def liquidity_pools(
    view: InstrumentView,
    lookback_bars: int,
    swing_bars: int,
    tolerance_atr: float,
    min_touches: int,
    min_rejection_atr: float,
) -> Signal | None:
    """Liquidity-pool sweep (stop hunt).

    Rule: find fractal swing highs/lows (order ``swing_bars``) in the last
    ``lookback_bars`` history bars and cluster them into pools (neighbours within
    ``tolerance_atr`` ATR; at least ``min_touches`` swings). A buy-side pool's level is
    its highest swing; it is intact when no later history bar traded above it. This bar
    sweeps it when ``high > level`` and ``close <= level - min_rejection_atr * ATR`` ->
    ``short`` (the stops above were taken, price rejected). Sell-side pools mirror ->
    ``long``. A bar sweeping both sides is ambiguous -> None. Among several swept pools
    the one with most touches counts.

    Confidence: ``0.4 + 0.2 * ramp(touches, min_touches, min_touches + 2)
    + 0.2 * ramp(rejection / ATR, min_rejection_atr, min_rejection_atr + 0.5)
    + 0.2 * wick`` where wick is the share of the bar's range beyond the body on the
    swept side; in [0.4, 1].
    """
    n = history_len(view)
    atr = atr_or_range(view)
    rng = view.high - view.low
    if atr is None or n < 2 * swing_bars + 2 or lookback_bars < 3 or not rng > 0:
        return None
    k = min(n, lookback_bars)
    h = view.history["high"][-k:]
    lo = view.history["low"][-k:]
    found: list[tuple[int, float, float, float]] = []  # (touches, sign, level, rejection)
    tol = tolerance_atr * atr
    need_rej = min_rejection_atr * atr
    for idx, levels, sign in (
        (swing_highs(h, swing_bars), h, -1.0),
        (swing_lows(lo, swing_bars), lo, 1.0),
    ):
        for p_lo, p_hi, count in _pools(levels[idx], tol):
            if count < min_touches:
                continue
            members = idx[(levels[idx] >= p_lo) & (levels[idx] <= p_hi)]
            after = int(members.max()) + 1
            if sign < 0:
                level = p_hi
                intact = after >= k or float(np.max(h[after:])) <= level
                swept = view.high > level and view.close <= level - need_rej
                rejection = level - view.close
            else:
                level = p_lo
                intact = after >= k or float(np.min(lo[after:])) >= level
                swept = view.low < level and view.close >= level + need_rej
                rejection = view.close - level
            if intact and swept:
                found.append((count, sign, level, rejection))
    if not found or len({f[1] for f in found}) > 1:
        return None
    count, sign, level, rejection = max(found)
    wick = (
        (view.high - max(view.open, view.close))
        if sign < 0
        else (min(view.open, view.close) - view.low)
    )
    conf = confidence(
        0.4,
        (0.2, ramp(count, min_touches, min_touches + 2)),
        (0.2, ramp(rejection / atr, min_rejection_atr, min_rejection_atr + 0.5)),
        (0.2, wick / rng),
    )
    return Signal(
        "liquidity_pools",
        "long" if sign > 0 else "short",
        conf,
        {
            "pool_level": level,
            "touches": float(count),
            "rejection_atr": rejection / atr,
            **context(view),
        },
    )


# ---------------------------------------------------------------------------- fair_value_gaps


def _gate_fair_value_gaps(f: MinuteFrame, lookback_bars: int, min_gap_atr: float) -> np.ndarray:
    h, lo = f.hist("high", lookback_bars), f.hist("low", lookback_bars)
    if lookback_bars < 3 or h.shape[1] < 3:
        return _none(f)
    need = loosen(min_gap_atr * f.atr)[:, None]
    c, o = f.close[:, None], f.open[:, None]
    n = len(f)
    # lowest low / highest high of the bars after bar i (untouched gaps), +-inf after the last
    low_after = np.minimum.accumulate(np.where(np.isnan(lo), np.inf, lo)[:, ::-1], axis=1)
    low_after = np.column_stack((low_after[:, ::-1][:, 1:], np.full(n, np.inf)))[:, 2:]
    high_after = np.maximum.accumulate(np.where(np.isnan(h), -np.inf, h)[:, ::-1], axis=1)
    high_after = np.column_stack((high_after[:, ::-1][:, 1:], np.full(n, -np.inf)))[:, 2:]
    with np.errstate(invalid="ignore"):
        top, bottom = lo[:, 2:], h[:, :-2]  # bullish gap [high[i-2], low[i]]
        bull = top > bottom
        bull_ok = bull & ~(top - bottom < need) & (f.low[:, None] <= top) & (c > bottom) & (c > o)
        bull_ok &= low_after > top
        top, bottom = lo[:, :-2], h[:, 2:]  # bearish gap [high[i], low[i-2]]
        bear = ~bull & (bottom < top)
        bear_ok = bear & ~(top - bottom < need) & (f.high[:, None] >= bottom) & (c < top) & (c < o)
        bear_ok &= high_after < bottom
    return np.isfinite(f.atr) & (f.history_len >= 3) & (bull_ok | bear_ok).any(axis=1)


@register(
    "fair_value_gaps",
    "First retest of an unfilled fair value gap (3-bar imbalance), respected by the close",
    {
        "lookback_bars": (30, "history bars searched for gaps"),
        "min_gap_atr": (0.5, "smallest gap, in ATR"),
    },
    family="ict",
    gate=_gate_fair_value_gaps,
)
def fair_value_gaps(view: InstrumentView, lookback_bars: int, min_gap_atr: float) -> Signal | None:
    """Fair value gap retest.

    Rule: in the last ``lookback_bars`` history bars, a bullish FVG at bars
    ``(i-2, i-1, i)`` is ``low[i] > high[i-2]`` (gap ``[high[i-2], low[i]]``), a bearish
    one ``high[i] < low[i-2]`` (gap ``[high[i], low[i-2]]``), at least ``min_gap_atr``
    ATR tall. The gap must be untouched by every later history bar. This bar is the first
    retest: for a bullish gap ``low <= gap top``, ``close > gap bottom`` (the gap holds)
    and ``close > open`` -> ``long``; bearish mirrors -> ``short``. The most recent
    qualifying gap counts.

    Confidence: ``0.4 + 0.3 * ramp(gap / ATR, min_gap_atr, 3 * min_gap_atr)
    + 0.3 * close_position`` (1 when the close is at the bar's extreme in the signal's
    direction); in [0.4, 1].
    """
    n = history_len(view)
    atr = atr_or_range(view)
    if atr is None or n < 3 or lookback_bars < 3:
        return None
    k = min(n, lookback_bars)
    h = view.history["high"][-k:]
    lo = view.history["low"][-k:]
    for i in range(k - 1, 1, -1):
        if lo[i] > h[i - 2]:
            bottom, top, sign = float(h[i - 2]), float(lo[i]), 1.0
            untouched = i + 1 >= k or float(np.min(lo[i + 1 :])) > top
            retest = view.low <= top and view.close > bottom and view.close > view.open
        elif h[i] < lo[i - 2]:
            bottom, top, sign = float(h[i]), float(lo[i - 2]), -1.0
            untouched = i + 1 >= k or float(np.max(h[i + 1 :])) < bottom
            retest = view.high >= bottom and view.close < top and view.close < view.open
        else:
            continue
        gap = top - bottom
        if gap < min_gap_atr * atr or not untouched:
            continue
        if not retest:
            return None  # the most recent valid gap is not being retested now
        conf = confidence(
            0.4,
            (0.3, ramp(gap / atr, min_gap_atr, 3 * min_gap_atr)),
            (0.3, _close_position(view, sign)),
        )
        return Signal(
            "fair_value_gaps",
            "long" if sign > 0 else "short",
            conf,
            {
                "gap_bottom": bottom,
                "gap_top": top,
                "gap_atr": gap / atr,
                "bars_since_gap": float(k - i),
                **context(view),
            },
        )
    return None


# ---------------------------------------------------------------------------- OTE


def _gate_optimal_trade_entry(
    f: MinuteFrame, lookback_bars: int, min_leg_atr: float, fib_low: float, fib_high: float
) -> np.ndarray:
    if lookback_bars < 3 or f.width == 0:
        return _none(f)
    top, bottom = f.hist_max("high", lookback_bars), f.hist_min("low", lookback_bars)
    leg = top - bottom
    c = f.close
    h, lo = f.hist("high", lookback_bars), f.hist("low", lookback_bars)
    hi_inf, lo_inf = np.where(np.isnan(h), -np.inf, h), np.where(np.isnan(lo), np.inf, lo)
    ih, il = np.argmax(hi_inf, axis=1), np.argmin(lo_inf, axis=1)  # first extreme, as per view
    cols = np.arange(h.shape[1])[None, :]
    with np.errstate(invalid="ignore"):
        low_after_top = np.where(cols > ih[:, None], lo_inf, np.inf).min(axis=1, initial=np.inf)
        high_after_bottom = np.where(cols > il[:, None], hi_inf, -np.inf).max(
            axis=1, initial=-np.inf
        )
    up = (
        (il < ih)
        & (low_after_top > loosen(top - fib_low * leg))
        & (f.low <= loosen(top - fib_low * leg, up=True))
        & (c >= loosen(top - fib_high * leg))
        & (f.high <= top)
        & (c > f.open)
    )
    down = (
        (ih < il)
        & (high_after_bottom < loosen(bottom + fib_low * leg, up=True))
        & (f.high >= loosen(bottom + fib_low * leg))
        & (c <= loosen(bottom + fib_high * leg, up=True))
        & (f.low >= bottom)
        & (c < f.open)
    )
    return (
        np.isfinite(f.atr)
        & (f.history_len >= 3)
        & ~(leg < loosen(min_leg_atr * f.atr))
        & (up | down)
    )


@register(
    "optimal_trade_entry",
    "First touch of the 62-79% retracement of the last impulse leg, closing back with the leg",
    {
        "lookback_bars": (30, "history bars holding the impulse leg"),
        "min_leg_atr": (3.0, "smallest leg (high - low), in ATR"),
        "fib_low": (0.62, "shallow edge of the OTE zone (retracement fraction)"),
        "fib_high": (0.79, "deep edge of the OTE zone (retracement fraction)"),
    },
    family="ict",
    check=lambda p: (
        None
        if 0.0 < p["fib_low"] < p["fib_high"] < 1.0
        else f"need 0 < fib_low < fib_high < 1, got {p['fib_low']}, {p['fib_high']}"
    ),
    gate=_gate_optimal_trade_entry,
)
def optimal_trade_entry(
    view: InstrumentView, lookback_bars: int, min_leg_atr: float, fib_low: float, fib_high: float
) -> Signal | None:
    """Optimal trade entry (OTE).

    Rule: in the last ``lookback_bars`` history bars take the highest high ``H`` and the
    lowest low ``L``; ``leg = H - L >= min_leg_atr`` ATR. When ``L`` came before ``H``
    the leg is up: the zone is ``[H - fib_high * leg, H - fib_low * leg]``; no history
    bar after ``H`` has reached the zone yet; this bar reaches it (``low <= H - fib_low *
    leg``), does not close below it (``close >= H - fib_high * leg``), does not exceed
    ``H`` and closes up -> ``long``. A down leg (``H`` before ``L``) mirrors -> ``short``.

    Confidence: ``0.4 + 0.3 * (1 - |r - mid| / (fib_high - fib_low))
    + 0.3 * ramp(leg / ATR, min_leg_atr, 2 * min_leg_atr)`` where ``r`` is the bar's
    deepest retracement and ``mid = (fib_low + fib_high) / 2``; in [0.4, 1].
    """
    n = history_len(view)
    atr = atr_or_range(view)
    if atr is None or n < 3 or lookback_bars < 3:
        return None
    k = min(n, lookback_bars)
    h = view.history["high"][-k:]
    lo = view.history["low"][-k:]
    ih, il = int(np.argmax(h)), int(np.argmin(lo))
    top, bottom = float(h[ih]), float(lo[il])
    leg = top - bottom
    if leg < min_leg_atr * atr or ih == il:
        return None
    if il < ih:  # up leg: buy the retracement
        shallow, deep = top - fib_low * leg, top - fib_high * leg
        fresh = ih + 1 >= k or float(np.min(lo[ih + 1 :])) > shallow
        hit = view.low <= shallow and view.close >= deep and view.high <= top
        r = (top - view.low) / leg
        sign = 1.0 if view.close > view.open else 0.0
    else:  # down leg: sell the retracement
        shallow, deep = bottom + fib_low * leg, bottom + fib_high * leg
        fresh = il + 1 >= k or float(np.max(h[il + 1 :])) < shallow
        hit = view.high >= shallow and view.close <= deep and view.low >= bottom
        r = (view.high - bottom) / leg
        sign = -1.0 if view.close < view.open else 0.0
    if not (fresh and hit and sign):
        return None
    mid = (fib_low + fib_high) / 2
    conf = confidence(
        0.4,
        (0.3, 1.0 - abs(r - mid) / (fib_high - fib_low)),
        (0.3, ramp(leg / atr, min_leg_atr, 2 * min_leg_atr)),
    )
    return Signal(
        "optimal_trade_entry",
        "long" if sign > 0 else "short",
        conf,
        {
            "leg_high": top,
            "leg_low": bottom,
            "retracement": r,
            "leg_atr": leg / atr,
            **context(view),
        },
    )


# ---------------------------------------------------------------------------- premium_discount


def _gate_premium_discount(
    f: MinuteFrame, min_bars: int, zone: float, min_range_atr: float
) -> np.ndarray:
    vwap, c = f.indicator("vwap"), f.close
    top = np.maximum(f.hist_max("high"), f.high)
    bottom = np.minimum(f.hist_min("low"), f.low)
    rng = top - bottom
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (c - bottom) / rng
    long = (
        (p <= loosen(zone, up=True)) & (c < vwap) & (c > np.maximum(f.open, f.hist_col("high", 1)))
    )
    short = (p >= loosen(1 - zone)) & (c > vwap) & (c < np.minimum(f.open, f.hist_col("low", 1)))
    return (
        np.isfinite(f.atr)
        & np.isfinite(vwap)
        & (f.history_len >= max(1, min_bars))
        & ~(rng < loosen(min_range_atr * f.atr))
        & (rng > 0)
        & (long | short)
    )


@register(
    "premium_discount",
    "Rejection bar deep in the discount (premium) of the session's dealing range, on the "
    "far side of VWAP",
    {
        "min_bars": (30, "history bars needed before the dealing range counts"),
        "zone": (0.2, "discount = lowest fraction of the range, premium = highest"),
        "min_range_atr": (6.0, "smallest dealing range, in ATR"),
    },
    family="ict",
    check=lambda p: None if 0.0 < p["zone"] < 0.5 else f"zone must be in (0, 0.5), got {p['zone']}",
    gate=_gate_premium_discount,
)
def premium_discount(
    view: InstrumentView, min_bars: int, zone: float, min_range_atr: float
) -> Signal | None:
    """Premium / discount of the dealing range.

    Rule: the dealing range is the high ``H`` and low ``L`` of the history (up to 64
    bars) and this bar, at least ``min_range_atr`` ATR tall, with ``min_bars`` bars of
    history; ``p = (close - L) / (H - L)``. In discount (``p <= zone``), below VWAP, on a
    bar closing up and above the previous bar's high -> ``long``; in premium
    (``p >= 1 - zone``), above VWAP, closing down and below the previous bar's low ->
    ``short``. Needs ``vwap``.

    Confidence: ``0.4 + 0.3 * ramp(zone - p', 0, zone) + 0.15 * ramp(|close - vwap| /
    ATR, 0, 2) + 0.15 * close_position`` with ``p' = p`` for a long and ``1 - p`` for a
    short; in [0.4, 1].
    """
    n = history_len(view)
    atr = atr_or_range(view)
    vwap = indicator(view, "vwap")
    if atr is None or vwap is None or n < max(1, min_bars):
        return None
    top = max(float(np.max(view.history["high"])), view.high)
    bottom = min(float(np.min(view.history["low"])), view.low)
    rng = top - bottom
    if rng < min_range_atr * atr or not rng > 0:
        return None
    p = (view.close - bottom) / rng
    prev_high, prev_low = float(view.history["high"][-1]), float(view.history["low"][-1])
    if p <= zone and view.close < vwap and view.close > max(view.open, prev_high):
        sign, depth = 1.0, p
    elif p >= 1 - zone and view.close > vwap and view.close < min(view.open, prev_low):
        sign, depth = -1.0, 1.0 - p
    else:
        return None
    conf = confidence(
        0.4,
        (0.3, ramp(zone - depth, 0.0, zone)),
        (0.15, ramp(abs(view.close - vwap) / atr, 0.0, 2.0)),
        (0.15, _close_position(view, sign)),
    )
    return Signal(
        "premium_discount",
        "long" if sign > 0 else "short",
        conf,
        {
            "range_position": p,
            "range_high": top,
            "range_low": bottom,
            "vwap": vwap,
            **context(view),
        },
    )


# ---------------------------------------------------------------------------- killzone

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


@lru_cache(maxsize=64)
def parse_windows(windows: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """``("09:15-10:00", ...)`` -> IST minute-of-day ranges ``((555, 600), ...)``, end exclusive.

    Raises:
        ValueError: a window is not ``HH:MM-HH:MM`` or does not end after it starts.
    """
    out = []
    for w in windows:
        m = _WINDOW.match(str(w))
        if not m:
            raise ValueError(f"window {w!r} is not HH:MM-HH:MM (IST)")
        a = int(m[1]) * 60 + int(m[2])
        b = int(m[3]) * 60 + int(m[4])
        if b <= a:
            raise ValueError(f"window {w!r} must end after it starts")
        out.append((a, b))
    return tuple(out)


def _check_windows(p: dict[str, Any]) -> str | None:
    try:
        parse_windows(tuple(p["windows"]))
    except ValueError as exc:
        return f"windows: {exc}"
    return None


def _gate_killzone(
    f: MinuteFrame,
    windows: tuple[str, ...],
    min_range_atr: float,
    min_body_fraction: float,
    min_volume_ratio: float,
    **_: object,
) -> np.ndarray:
    mod = f.minute_of_day()
    inside = np.zeros(len(f), np.bool_)
    for a, b in parse_windows(tuple(windows)):
        inside |= (a <= mod) & (mod < b)
    rng, vr = f.range, f.bar_ratio
    with np.errstate(invalid="ignore", divide="ignore"):
        body = np.where(rng > 0, f.body / rng, np.nan)
    return (
        inside
        & np.isfinite(f.atr)
        & (rng > 0)
        & ~np.isnan(vr)
        & ~(vr < loosen(min_volume_ratio * f.multiplier))
        & ~(rng < loosen(min_range_atr * f.atr))
        & ~(np.abs(body) < loosen(min_body_fraction))
    )


@register(
    "killzone",
    "Displacement bar (large range, strong body, heavy volume) inside a configured IST kill zone",
    {
        "windows": (("09:15-10:15", "14:30-15:15"), "IST kill zones, HH:MM-HH:MM, end exclusive"),
        "min_range_atr": (1.5, "bar range needed, in ATR"),
        "min_body_fraction": (0.6, "|close-open| / (high-low) needed"),
        "min_volume_ratio": (2.0, "bar RVOL vs the time-of-day baseline (x multiplier)"),
        "ratio_cap": (10.0, "cap on the RVOL before scoring"),
    },
    family="ict",
    check=_check_windows,
    gate=_gate_killzone,
)
def killzone(
    view: InstrumentView,
    windows: tuple[str, ...],
    min_range_atr: float,
    min_body_fraction: float,
    min_volume_ratio: float,
    ratio_cap: float,
) -> Signal | None:
    """Kill-zone displacement.

    Rule: the bar starts inside one of ``windows`` (IST, from the bar's exchange time
    via :func:`aion.market.time.minute_of_day_ist`); its range is ``>= min_range_atr``
    ATR, its body ``>= min_body_fraction`` of the range, and its RVOL against the
    time-of-day baseline ``>= min_volume_ratio * m``. Direction = sign of the body.

    Confidence: ``0.4 + 0.2 * ramp(range / ATR, min_range_atr, 2 * min_range_atr)
    + 0.2 * |body| + 0.2 * ramp(min(rvol, cap), min_volume_ratio * m, cap)``; in [0.4, 1].
    """
    mod = int(minute_of_day_ist(np.array([view.bar_start]))[0])
    if not any(a <= mod < b for a, b in parse_windows(tuple(windows))):
        return None
    atr = atr_or_range(view)
    rng = view.high - view.low
    vr = bar_volume_ratio(view)
    need = min_volume_ratio * multiplier(view)
    if atr is None or not rng > 0 or math.isnan(vr) or vr < need:
        return None
    body = (view.close - view.open) / rng
    if rng < min_range_atr * atr or abs(body) < min_body_fraction:
        return None
    cr = capped(vr, ratio_cap)
    conf = confidence(
        0.4,
        (0.2, ramp(rng / atr, min_range_atr, 2 * min_range_atr)),
        (0.2, abs(body)),
        (0.2, ramp(cr, need, ratio_cap)),
    )
    return Signal(
        "killzone",
        "long" if body > 0 else "short",
        conf,
        {
            "minute_of_day_ist": float(mod),
            "range_atr": rng / atr,
            "body_fraction": body,
            "volume_ratio": cr,
            **context(view),
        },
    )


# ---------------------------------------------------------------------------- ict_momentum


def _gate_ict_momentum(
    f: MinuteFrame, lookback_bars: int, swing_bars: int, min_body_atr: float, **_: object
) -> np.ndarray:
    if lookback_bars < 3 or swing_bars < 1:
        return _none(f)
    vwap, c, body = f.indicator("vwap"), f.close, f.body
    prev = f.hist_col("close", 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        body_atr = np.abs(body) / f.atr
    return (
        np.isfinite(f.atr)
        & np.isfinite(vwap)
        & (f.history_len >= 2 * swing_bars + 2)
        & (((body > 0) & (c > vwap) & (prev < c)) | ((body < 0) & (c < vwap) & (prev > c)))
        & ~(body_atr < loosen(min_body_atr))
    )


@register(
    "ict_momentum",
    "Displacement: a large-bodied bar closing through the last swing high/low (break of "
    "structure) on the VWAP side of the move",
    {
        "lookback_bars": (30, "history bars searched for the last swing"),
        "swing_bars": (2, "bars on each side of a swing (fractal order)"),
        "min_body_atr": (1.2, "body |close - open| needed, in ATR"),
        "ratio_cap": (10.0, "cap on the bar RVOL before scoring"),
    },
    family="ict",
    gate=_gate_ict_momentum,
)
def ict_momentum(
    view: InstrumentView, lookback_bars: int, swing_bars: int, min_body_atr: float, ratio_cap: float
) -> Signal | None:
    """ICT momentum (displacement with a break of structure).

    Rule (long; short mirrors): the most recent fractal swing high (order ``swing_bars``)
    in the last ``lookback_bars`` history bars is at ``S``; the previous close is ``<=
    S`` and this bar closes above ``S`` (the break happens on this bar) with a body
    ``close - open >= min_body_atr`` ATR, and ``close > vwap``. Needs ``vwap``.

    Confidence: ``0.4 + 0.3 * ramp(body / ATR, min_body_atr, 2 * min_body_atr)
    + 0.15 * fvg + 0.15 * ramp(min(rvol, cap), 1, 3)`` where ``fvg`` is 1 when the bar
    leaves a fair value gap (its low above the high two bars back; mirrored for a short)
    and the RVOL term is 0 without a baseline; in [0.4, 1].
    """
    n = history_len(view)
    atr = atr_or_range(view)
    vwap = indicator(view, "vwap")
    if atr is None or vwap is None or n < 2 * swing_bars + 2 or lookback_bars < 3:
        return None
    k = min(n, lookback_bars)
    h = view.history["high"][-k:]
    lo = view.history["low"][-k:]
    prev_close = float(view.history["close"][-1])
    body = view.close - view.open
    if body > 0:
        idx = swing_highs(h, swing_bars)
        if idx.shape[0] == 0:
            return None
        level = float(h[idx[-1]])
        ok = prev_close <= level < view.close and view.close > vwap
        fvg = float(view.low > float(view.history["high"][-2]))
    elif body < 0:
        idx = swing_lows(lo, swing_bars)
        if idx.shape[0] == 0:
            return None
        level = float(lo[idx[-1]])
        ok = prev_close >= level > view.close and view.close < vwap
        fvg = float(view.high < float(view.history["low"][-2]))
    else:
        return None
    body_atr = abs(body) / atr
    if not ok or body_atr < min_body_atr:
        return None
    conf = confidence(
        0.4,
        (0.3, ramp(body_atr, min_body_atr, 2 * min_body_atr)),
        (0.15, fvg),
        (0.15, ramp(capped(bar_volume_ratio(view), ratio_cap), 1.0, 3.0)),
    )
    return Signal(
        "ict_momentum",
        "long" if body > 0 else "short",
        conf,
        {
            "structure_level": level,
            "body_atr": body_atr,
            "fair_value_gap": fvg,
            **context(view),
        },
    )
