"""Core detectors: volume, momentum, breakouts, reversals and order-book imbalance.

Each detector is a pure function ``(view, **params) -> Signal | None`` (see
:mod:`aion.patterns.registry`). Conventions shared by all of them:

- ``view.history`` holds the session's closed regular bars before this one (oldest
  first, at most 64); a detector needing more bars than exist returns None.
- Distances are in ATR units (``atr_14``; before it is warm, the mean bar range of
  the history and this bar, see :func:`~aion.patterns.scoring.atr_or_range`).
- Volume thresholds that demand *more than normal* volume are multiplied by
  ``view.threshold_multiplier`` (session window x INDIA VIX regime); volume ratios
  are capped at ``ratio_cap`` (10) before scoring.
- Confidence = base + weighted ramps, weights summing to <= 1 - base
  (:func:`~aion.patterns.scoring.confidence`), so it lies in [0, 1] by construction.
- Missing or NaN inputs give None, never an exception.
- Each detector registers a vectorised *gate* ``_gate_<name>(frame, **params)``, a
  necessary condition over the whole minute (:mod:`aion.patterns.frame`); the detector
  itself runs only on the bars its gate passed, so the gate never decides a signal.
"""

from __future__ import annotations

import math

import numpy as np

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
    recent_volume_ratio,
    value,
)


def _direction(sign: float) -> str:
    return "long" if sign > 0 else "short"


def _none(f: MinuteFrame) -> np.ndarray:
    """A gate passing no row (parameters that can never fire)."""
    return np.zeros(len(f), np.bool_)


def _gate_volume_spike(
    f: MinuteFrame, min_ratio: float, min_body_fraction: float, **_: object
) -> np.ndarray:
    ratio, rng = f.bar_ratio, f.range
    with np.errstate(invalid="ignore", divide="ignore"):
        body = np.where(rng > 0, f.body / rng, np.nan)
    return (
        ~np.isnan(ratio)
        & ~(ratio < loosen(min_ratio * f.multiplier))
        & (rng > 0)
        & ~(np.abs(body) < loosen(min_body_fraction))
    )


def _gate_breakout(
    f: MinuteFrame, lookback_bars: int, min_volume_ratio: float, **_: object
) -> np.ndarray:
    if lookback_bars < 1 or lookback_bars > f.width:
        return _none(f)
    vr = f.recent_volume_ratio(lookback_bars)
    hi, lo = f.hist_max("high", lookback_bars), f.hist_min("low", lookback_bars)
    return (
        (f.history_len >= lookback_bars)
        & ~np.isnan(vr)
        & ~(vr < loosen(min_volume_ratio * f.multiplier))
        & ((f.close > hi) | (f.close < lo))
    )


def _gate_volume_breakout(
    f: MinuteFrame,
    lookback_bars: int,
    min_bars: int,
    min_bar_ratio: float,
    min_rvol_cum: float,
    **_: object,
) -> np.ndarray:
    if lookback_bars < 1:
        return _none(f)
    br, cum, m = f.bar_ratio, f.rvol_cum, f.multiplier
    hi, lo = f.hist_max("high", lookback_bars), f.hist_min("low", lookback_bars)
    return (
        (f.history_len >= max(1, min_bars))
        & ~np.isnan(br)
        & np.isfinite(cum)
        & ~(br < loosen(min_bar_ratio * m))
        & ~(cum < loosen(min_rvol_cum * m))
        & ((f.close > hi) | (f.close < lo))
    )


def _gate_volume_price_divergence(
    f: MinuteFrame, lookback_bars: int, min_move_atr: float, max_volume_ratio: float
) -> np.ndarray:
    k = lookback_bars - 1
    if lookback_bars < 4 or k > f.width:
        return _none(f)
    closes = np.column_stack((f.hist("close", k), f.close))
    vols = np.column_stack((f.hist("volume", k), f.volume))
    half = lookback_bars // 2
    with np.errstate(invalid="ignore", divide="ignore"):
        early, late = vols[:, :half].mean(axis=1), vols[:, half:].mean(axis=1)
        vr = late / early
        move = f.close - closes[:, 0]
        move_atr = np.abs(move) / f.atr
    up = (f.close >= closes.max(axis=1)) & (move > 0)
    down = (f.close <= closes.min(axis=1)) & (move < 0)
    return (
        (f.history_len >= k)
        & (early > 0)
        & np.isfinite(f.atr)
        & ~(vr > loosen(max_volume_ratio, up=True))
        & (up | down)
        & ~(move_atr < loosen(min_move_atr))
    )


# ---------------------------------------------------------------------------- volume_spike


@register(
    "volume_spike",
    "Bar volume far above the expected volume of this minute, directed by the bar's body",
    {
        "min_ratio": (3.0, "bar volume / expected minute volume needed (x threshold multiplier)"),
        "ratio_cap": (10.0, "cap on the ratio before scoring"),
        "min_body_fraction": (0.3, "|close-open| / (high-low) needed for a direction"),
    },
    gate=_gate_volume_spike,
)
def volume_spike(
    view: InstrumentView, min_ratio: float, ratio_cap: float, min_body_fraction: float
) -> Signal | None:
    """Volume spike.

    Rule: ``ratio = volume / expected`` (``view.rvol_bar`` when the time-of-day baseline
    is known, else ``volume / expected_bar_volume``); fires when
    ``ratio >= min_ratio * m`` (``m`` = threshold multiplier) and the bar's body is at
    least ``min_body_fraction`` of its range; direction = sign of ``close - open``.

    Confidence: ``0.5 + 0.3 * ramp(min(ratio, cap), min_ratio * m, cap) + 0.2 * |body|``
    with ``body = (close - open) / (high - low)``; in [0.5, 1] when it fires.
    """
    ratio = bar_volume_ratio(view)
    if math.isnan(ratio):
        return None
    need = min_ratio * multiplier(view)
    rng = view.high - view.low
    if ratio < need or not rng > 0:
        return None
    body = (view.close - view.open) / rng
    if abs(body) < min_body_fraction:
        return None
    cr = capped(ratio, ratio_cap)
    conf = confidence(0.5, (0.3, ramp(cr, need, ratio_cap)), (0.2, abs(body)))
    return Signal(
        "volume_spike",
        _direction(body),
        conf,
        {
            "volume_ratio": cr,
            "body_fraction": body,
            "expected_bar_volume": view.expected_bar_volume,
            **context(view),
        },
    )


# ---------------------------------------------------------------------------- breakout


@register(
    "breakout",
    "Close beyond the prior N-bar high/low with volume above the N-bar mean",
    {
        "lookback_bars": (20, "prior regular 1-minute bars forming the range"),
        "min_volume_ratio": (1.5, "bar volume / mean volume of the prior bars (x multiplier)"),
        "ratio_cap": (10.0, "cap on the volume ratio before scoring"),
    },
    gate=_gate_breakout,
)
def breakout(
    view: InstrumentView, lookback_bars: int, min_volume_ratio: float, ratio_cap: float
) -> Signal | None:
    """Range breakout with volume confirmation.

    Rule: with at least ``lookback_bars`` prior regular bars, ``close > max(high)``
    of those bars is a long breakout, ``close < min(low)`` a short one, provided
    ``volume >= min_volume_ratio * m * mean(volume)`` of those bars (``m`` = threshold
    multiplier). Instruments without volume (indices) never qualify.

    Confidence: ``0.4 + 0.3 * ramp(distance / ATR, 0, 1)
    + 0.3 * ramp(min(vr, cap), min_vr * m, cap)`` where distance is how far the close is
    beyond the range and ATR is ATR(14) (the bar's range before ATR is warm); in [0.4, 1].
    """
    if history_len(view) < lookback_bars or lookback_bars < 1:
        return None
    hist = view.history
    hi = float(np.max(hist["high"][-lookback_bars:]))
    lo = float(np.min(hist["low"][-lookback_bars:]))
    vr = recent_volume_ratio(view, lookback_bars)
    need = min_volume_ratio * multiplier(view)
    if math.isnan(vr) or vr < need:
        return None
    if view.close > hi:
        direction, dist = "long", view.close - hi
    elif view.close < lo:
        direction, dist = "short", lo - view.close
    else:
        return None
    atr = indicator(view, "atr_14")
    scale = atr if atr is not None and atr > 0 else max(view.high - view.low, 1e-9)
    cr = capped(vr, ratio_cap)
    conf = confidence(0.4, (0.3, ramp(dist / scale, 0.0, 1.0)), (0.3, ramp(cr, need, ratio_cap)))
    return Signal(
        "breakout",
        direction,
        conf,
        {
            "range_high": hi,
            "range_low": lo,
            "volume_ratio": cr,
            "distance_atr": dist / scale,
            **context(view),
        },
    )


# ---------------------------------------------------------------------------- volume_breakout


@register(
    "volume_breakout",
    "New session-range high/low on a bar with heavy time-of-day volume and elevated day RVOL",
    {
        "lookback_bars": (60, "prior regular bars forming the session range (history holds 64)"),
        "min_bars": (15, "bars of history needed before the range counts"),
        "min_bar_ratio": (2.5, "bar volume / expected volume at this minute (x multiplier)"),
        "min_rvol_cum": (1.2, "cumulative RVOL of the day needed (x multiplier)"),
        "ratio_cap": (10.0, "cap on both volume ratios before scoring"),
    },
    gate=_gate_volume_breakout,
)
def volume_breakout(
    view: InstrumentView,
    lookback_bars: int,
    min_bars: int,
    min_bar_ratio: float,
    min_rvol_cum: float,
    ratio_cap: float,
) -> Signal | None:
    """Volume-led breakout of the session range.

    Rule: with at least ``min_bars`` prior bars, the close is beyond the high (long) or
    low (short) of the last ``lookback_bars`` of them, the bar's RVOL against the
    time-of-day baseline is ``>= min_bar_ratio * m`` and the day's cumulative RVOL is
    ``>= min_rvol_cum * m`` (``m`` = threshold multiplier). Unlike ``breakout`` (short
    range, volume vs recent bars), this needs the day's volume itself to be running
    above normal; without RVOL (no daily history) it never fires.

    Confidence: ``0.4 + 0.25 * ramp(min(rvol_bar, cap), min_bar_ratio*m, cap)
    + 0.2 * ramp(min(rvol_cum, cap), min_rvol_cum*m, 2*min_rvol_cum*m)
    + 0.15 * ramp(distance / ATR, 0, 1)``; in [0.4, 1].
    """
    n = history_len(view)
    if n < max(1, min_bars) or lookback_bars < 1:
        return None
    k = min(n, lookback_bars)
    m = multiplier(view)
    bar_ratio = bar_volume_ratio(view)
    cum = view.rvol_cum
    if math.isnan(bar_ratio) or not math.isfinite(cum):
        return None
    need_bar, need_cum = min_bar_ratio * m, min_rvol_cum * m
    if bar_ratio < need_bar or cum < need_cum:
        return None
    hi = float(np.max(view.history["high"][-k:]))
    lo = float(np.min(view.history["low"][-k:]))
    if view.close > hi:
        sign, dist = 1.0, view.close - hi
    elif view.close < lo:
        sign, dist = -1.0, lo - view.close
    else:
        return None
    atr = atr_or_range(view)
    dist_atr = dist / atr if atr else math.nan
    cb, cc = capped(bar_ratio, ratio_cap), capped(cum, ratio_cap)
    conf = confidence(
        0.4,
        (0.25, ramp(cb, need_bar, ratio_cap)),
        (0.2, ramp(cc, need_cum, 2 * need_cum)),
        (0.15, ramp(dist_atr, 0.0, 1.0)),
    )
    return Signal(
        "volume_breakout",
        _direction(sign),
        conf,
        {
            "range_high": hi,
            "range_low": lo,
            "rvol_bar": cb,
            "rvol_cum": cc,
            "distance_atr": dist_atr,
            **context(view),
        },
    )


# ---------------------------------------------------------------------------- divergence


@register(
    "volume_price_divergence",
    "Price at a new N-bar closing extreme while volume fades: exhaustion, traded against",
    {
        "lookback_bars": (20, "bars in the window, this one included"),
        "min_move_atr": (2.0, "close-to-close move over the window needed, in ATR"),
        "max_volume_ratio": (0.7, "mean volume of the window's later half / earlier half, at most"),
    },
    gate=_gate_volume_price_divergence,
)
def volume_price_divergence(
    view: InstrumentView, lookback_bars: int, min_move_atr: float, max_volume_ratio: float
) -> Signal | None:
    """Volume-price divergence.

    Rule: over a window of ``lookback_bars`` bars (the last ``lookback_bars - 1`` history
    bars and this one) the close is the window's highest close and has risen at least
    ``min_move_atr`` ATR from the window's first close, while the mean volume of the
    later half of the window is at most ``max_volume_ratio`` x that of the earlier half:
    a rise on fading volume -> ``short``. The mirror (lowest close, fall, fading volume)
    -> ``long``. The threshold is a ratio of the instrument's own volumes within one
    window, so the threshold multiplier does not apply. Needs volume (not indices).

    Confidence: ``0.4 + 0.3 * ramp(vr, max_volume_ratio, max_volume_ratio / 3)
    + 0.3 * ramp(move / ATR, min_move_atr, 2 * min_move_atr)`` (a falling ramp in the
    volume ratio ``vr``: the more volume fades, the higher); in [0.4, 1].
    """
    if lookback_bars < 4 or history_len(view) < lookback_bars - 1:
        return None
    k = lookback_bars - 1
    closes = np.append(view.history["close"][-k:], view.close)
    vols = np.append(view.history["volume"][-k:], view.volume)
    half = lookback_bars // 2
    early, late = float(np.mean(vols[:half])), float(np.mean(vols[half:]))
    if not early > 0:
        return None
    vr = late / early
    atr = atr_or_range(view)
    if atr is None or vr > max_volume_ratio:
        return None
    move = view.close - float(closes[0])
    if view.close >= float(np.max(closes)) and move > 0:
        sign = -1.0
    elif view.close <= float(np.min(closes)) and move < 0:
        sign = 1.0
    else:
        return None
    move_atr = abs(move) / atr
    if move_atr < min_move_atr:
        return None
    conf = confidence(
        0.4,
        (0.3, ramp(vr, max_volume_ratio, max_volume_ratio / 3)),
        (0.3, ramp(move_atr, min_move_atr, 2 * min_move_atr)),
    )
    return Signal(
        "volume_price_divergence",
        _direction(sign),
        conf,
        {"volume_ratio": vr, "move_atr": move_atr, **context(view)},
    )


# ---------------------------------------------------------------------------- momentum

_MOMENTUM_PARAMS: dict[str, tuple[object, str]] = {
    "lookback_bars": (5, "bars over which the move is measured"),
    "min_move_atr": (1.5, "close move over the lookback needed, in ATR"),
    "min_up_fraction": (0.8, "share of the lookback's bar-to-bar closes in the move's direction"),
    "rsi_min": (55.0, "RSI(14) floor for up-momentum (100 - this is the down ceiling)"),
    "rsi_max": (80.0, "RSI(14) ceiling for up-momentum: beyond it the move is overextended"),
    "min_volume_ratio": (1.2, "bar volume / mean of the last volume_lookback bars (x multiplier)"),
    "volume_lookback": (20, "bars in the volume mean"),
    "ratio_cap": (10.0, "cap on the volume ratio before scoring"),
}


def _gate_momentum(
    f: MinuteFrame,
    sign: float,
    lookback_bars: int,
    min_move_atr: float,
    rsi_min: float,
    rsi_max: float,
    min_volume_ratio: float,
    volume_lookback: int,
) -> np.ndarray:
    if lookback_bars < 1 or lookback_bars > f.width:
        return _none(f)
    ema20, rsi, atr = f.indicator("ema_20"), f.indicator("rsi_14"), f.atr
    rsi_dir = rsi if sign > 0 else 100.0 - rsi
    move = sign * (f.close - f.hist_col("close", lookback_bars))
    vr = f.recent_volume_ratio(volume_lookback)
    return (
        (f.history_len >= max(lookback_bars, volume_lookback))
        & np.isfinite(ema20)
        & np.isfinite(rsi)
        & np.isfinite(atr)
        & (sign * (f.close - ema20) > 0)
        & ~(move < loosen(min_move_atr * atr))
        & (rsi_min <= rsi_dir)
        & (rsi_dir <= rsi_max)
        & ~np.isnan(vr)
        & ~(vr < loosen(min_volume_ratio * f.multiplier))
    )


def _gate_upside_momentum(
    f: MinuteFrame,
    lookback_bars: int,
    min_move_atr: float,
    rsi_min: float,
    rsi_max: float,
    min_volume_ratio: float,
    volume_lookback: int,
    **_: object,
) -> np.ndarray:
    return _gate_momentum(
        f, 1.0, lookback_bars, min_move_atr, rsi_min, rsi_max, min_volume_ratio, volume_lookback
    )


def _gate_downside_momentum(
    f: MinuteFrame,
    lookback_bars: int,
    min_move_atr: float,
    rsi_min: float,
    rsi_max: float,
    min_volume_ratio: float,
    volume_lookback: int,
    **_: object,
) -> np.ndarray:
    return _gate_momentum(
        f, -1.0, lookback_bars, min_move_atr, rsi_min, rsi_max, min_volume_ratio, volume_lookback
    )


def _momentum(
    view: InstrumentView,
    sign: float,
    lookback_bars: int,
    min_move_atr: float,
    min_up_fraction: float,
    rsi_min: float,
    rsi_max: float,
    min_volume_ratio: float,
    volume_lookback: int,
    ratio_cap: float,
) -> Signal | None:
    n = history_len(view)
    if lookback_bars < 1 or n < max(lookback_bars, volume_lookback):
        return None
    ema20, rsi = indicator(view, "ema_20"), indicator(view, "rsi_14")
    atr = atr_or_range(view)
    if ema20 is None or rsi is None or atr is None:
        return None
    closes = np.append(view.history["close"][-lookback_bars:], view.close)
    move = sign * (view.close - float(closes[0]))
    steps = sign * np.diff(closes)
    frac = float(np.mean(steps > 0))
    rsi_dir = rsi if sign > 0 else 100.0 - rsi
    vr = recent_volume_ratio(view, volume_lookback)
    need = min_volume_ratio * multiplier(view)
    if (
        sign * (view.close - ema20) <= 0
        or move < min_move_atr * atr
        or frac < min_up_fraction
        or not rsi_min <= rsi_dir <= rsi_max
        or math.isnan(vr)
        or vr < need
    ):
        return None
    cr = capped(vr, ratio_cap)
    conf = confidence(
        0.4,
        (0.2, ramp(move / atr, min_move_atr, 2 * min_move_atr)),
        (0.15, ramp(frac, min_up_fraction, 1.0)),
        (0.15, ramp(rsi_dir, rsi_min, (rsi_min + rsi_max) / 2)),
        (0.1, ramp(cr, need, ratio_cap)),
    )
    name = "upside_momentum" if sign > 0 else "downside_momentum"
    return Signal(
        name,
        _direction(sign),
        conf,
        {
            "move_atr": move / atr,
            "directional_fraction": frac,
            "rsi_14": rsi,
            "volume_ratio": cr,
            **context(view),
        },
    )


@register(
    "upside_momentum",
    "Persistent rise over the last N bars above EMA(20), RSI strong but not overextended, "
    "with volume",
    dict(_MOMENTUM_PARAMS),
    gate=_gate_upside_momentum,
)
def upside_momentum(view: InstrumentView, **params: float) -> Signal | None:
    """Upside momentum (``long``).

    Rule: with ``c0`` the close ``lookback_bars`` bars ago: ``close - c0 >=
    min_move_atr * ATR``; at least ``min_up_fraction`` of the ``lookback_bars``
    bar-to-bar close changes are up; ``close > ema_20``; ``rsi_min <= rsi_14 <=
    rsi_max``; bar volume ``>= min_volume_ratio * m`` x the mean of the last
    ``volume_lookback`` bars. Needs ``ema_20``, ``rsi_14`` and volume.

    Confidence: ``0.4 + 0.2 * ramp(move/ATR, min, 2*min) + 0.15 * ramp(fraction,
    min_up_fraction, 1) + 0.15 * ramp(rsi, rsi_min, (rsi_min+rsi_max)/2)
    + 0.1 * ramp(min(vr, cap), min_vr*m, cap)``; in [0.4, 1].
    """
    return _momentum(view, 1.0, **params)  # type: ignore[arg-type]


@register(
    "downside_momentum",
    "Persistent fall over the last N bars below EMA(20), RSI weak but not washed out, with volume",
    dict(_MOMENTUM_PARAMS),
    gate=_gate_downside_momentum,
)
def downside_momentum(view: InstrumentView, **params: float) -> Signal | None:
    """Downside momentum (``short``): the mirror of :func:`upside_momentum`.

    Rule: ``c0 - close >= min_move_atr * ATR``; at least ``min_up_fraction`` of the
    bar-to-bar changes are down; ``close < ema_20``; ``100 - rsi_max <= rsi_14 <=
    100 - rsi_min``; the same volume condition.

    Confidence: as :func:`upside_momentum` with ``100 - rsi_14`` in the RSI term.
    """
    return _momentum(view, -1.0, **params)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- reversal


def _gate_reversal(
    f: MinuteFrame,
    lookback_bars: int,
    min_move_atr: float,
    extreme_within: int,
    min_volume_ratio: float,
    volume_lookback: int,
    **_: object,
) -> np.ndarray:
    if lookback_bars < 2 or extreme_within < 1 or lookback_bars > f.width:
        return _none(f)
    c, atr = f.close, f.atr
    first = f.hist_col("close", lookback_bars)
    need_move = loosen(min_move_atr * atr)
    low_ext = np.minimum(f.hist_min("low", lookback_bars), f.low)
    high_ext = np.maximum(f.hist_max("high", lookback_bars), f.high)
    long = (c > f.open) & (c > f.hist_col("high", 1)) & ~(first - low_ext < need_move)
    short = (c < f.open) & (c < f.hist_col("low", 1)) & ~(high_ext - first < need_move)
    vr = f.recent_volume_ratio(volume_lookback)
    return (
        (f.history_len >= max(lookback_bars, volume_lookback))
        & np.isfinite(atr)
        & (f.range > 0)
        & (long | short)
        & ~np.isnan(vr)
        & ~(vr < loosen(min_volume_ratio * f.multiplier))
    )


@register(
    "reversal",
    "A fresh N-bar extreme after a strong move, then a bar closing back through the prior "
    "bar's high/low on volume",
    {
        "lookback_bars": (15, "bars in which the move and the extreme are found"),
        "min_move_atr": (3.0, "move from the window's first close to the extreme, in ATR"),
        "extreme_within": (3, "the extreme must lie in this bar or the previous N-1 bars"),
        "min_volume_ratio": (1.5, "bar volume / mean of the last volume_lookback (x multiplier)"),
        "volume_lookback": (20, "bars in the volume mean"),
        "ratio_cap": (10.0, "cap on the volume ratio before scoring"),
    },
    gate=_gate_reversal,
)
def reversal(
    view: InstrumentView,
    lookback_bars: int,
    min_move_atr: float,
    extreme_within: int,
    min_volume_ratio: float,
    volume_lookback: int,
    ratio_cap: float,
) -> Signal | None:
    """Reversal after an extended move.

    Rule (long; short mirrors): among the last ``lookback_bars`` history bars and this
    one, the lowest low lies within the last ``extreme_within`` bars; the decline from
    the window's first close to that low is ``>= min_move_atr`` ATR; this bar closes up
    (``close > open``) and above the previous bar's high; bar volume ``>=
    min_volume_ratio * m`` x the mean of the last ``volume_lookback`` bars.

    Confidence: ``0.4 + 0.2 * ramp(move/ATR, min, 2*min) + 0.2 * ramp(min(vr, cap),
    min_vr*m, cap) + 0.2 * close_position`` where close_position is ``(close - low) /
    (high - low)`` for a long (``(high - close) / (high - low)`` for a short); in [0.4, 1].
    """
    n = history_len(view)
    if lookback_bars < 2 or extreme_within < 1 or n < max(lookback_bars, volume_lookback):
        return None
    atr = atr_or_range(view)
    rng = view.high - view.low
    if atr is None or not rng > 0:
        return None
    h = np.append(view.history["high"][-lookback_bars:], view.high)
    lo = np.append(view.history["low"][-lookback_bars:], view.low)
    first = float(view.history["close"][-lookback_bars])
    prev_high = float(view.history["high"][-1])
    prev_low = float(view.history["low"][-1])
    recent = slice(len(h) - extreme_within, len(h))
    if view.close > view.open and view.close > prev_high:
        extreme = float(np.min(lo))
        sign, move, fresh = 1.0, first - extreme, float(np.min(lo[recent])) == extreme
        pos = (view.close - view.low) / rng
    elif view.close < view.open and view.close < prev_low:
        extreme = float(np.max(h))
        sign, move, fresh = -1.0, extreme - first, float(np.max(h[recent])) == extreme
        pos = (view.high - view.close) / rng
    else:
        return None
    vr = recent_volume_ratio(view, volume_lookback)
    need = min_volume_ratio * multiplier(view)
    if not fresh or move < min_move_atr * atr or math.isnan(vr) or vr < need:
        return None
    cr = capped(vr, ratio_cap)
    conf = confidence(
        0.4,
        (0.2, ramp(move / atr, min_move_atr, 2 * min_move_atr)),
        (0.2, ramp(cr, need, ratio_cap)),
        (0.2, pos),
    )
    return Signal(
        "reversal",
        _direction(sign),
        conf,
        {"extreme": extreme, "move_atr": move / atr, "volume_ratio": cr, **context(view)},
    )


# ---------------------------------------------------------------------------- hidden_accumulation


def _gate_hidden_accumulation(
    f: MinuteFrame, min_imbalance: float, lookback_bars: int, max_move_atr: float, **_: object
) -> np.ndarray:
    tb, ts = f.book[:, 0], f.book[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        imb = (tb - ts) / (tb + ts)
        move_atr = np.abs(f.close - f.hist_col("close", lookback_bars)) / f.atr
    ok = (
        np.isfinite(tb)
        & np.isfinite(ts)
        & ~(tb < 0)
        & ~(ts < 0)
        & (tb + ts > 0)
        & ~(np.abs(imb) < min_imbalance)
        & (f.history_len >= max(1, lookback_bars))
        & np.isfinite(f.atr)
    )
    if lookback_bars >= 1:  # (lookback 0 reads the oldest bar: not gated on the move)
        ok &= ~(move_atr > loosen(max_move_atr, up=True))
    return ok


@register(
    "hidden_accumulation",
    "Order-book imbalance (total and 5-level depth) building while the price stays flat",
    {
        "min_imbalance": (0.3, "(buy - sell) / (buy + sell) of total quantities needed"),
        "lookback_bars": (5, "bars over which the price must stay flat"),
        "max_move_atr": (0.5, "largest close move over the lookback, in ATR"),
        "ratio_cap": (10.0, "cap on the bar RVOL before scoring"),
    },
    gate=_gate_hidden_accumulation,
)
def hidden_accumulation(
    view: InstrumentView,
    min_imbalance: float,
    lookback_bars: int,
    max_move_atr: float,
    ratio_cap: float,
) -> Signal | None:
    """Hidden accumulation (or distribution) in the order book.

    Rule: ``imb = (total_buy_quantity - total_sell_quantity) / (sum)`` from the book at
    the bar's close; fires when ``|imb| >= min_imbalance``, the 5-level depth imbalance
    ``(bid_quantity_5 - ask_quantity_5) / (sum)`` (when the depth is known) has the same
    sign, and the close has moved at most ``max_move_atr`` ATR from the close
    ``lookback_bars`` bars ago (pressure not yet in the price). Direction = sign of
    ``imb``. No book (ltp/quote or index packets, or the replayed session whose depth is
    zero) -> no signal.

    Confidence: ``0.4 + 0.3 * ramp(|imb|, min_imbalance, min(1, 2*min_imbalance))
    + 0.15 * ramp(|depth imb|, 0, min_imbalance) + 0.15 * ramp(min(rvol_bar, cap), 1, 3)``
    (the last term 0 without RVOL); in [0.4, 1].
    """
    tb, ts = value(view.book, "total_buy_quantity"), value(view.book, "total_sell_quantity")
    if tb is None or ts is None or tb < 0 or ts < 0 or not tb + ts > 0:
        return None
    imb = (tb - ts) / (tb + ts)
    if abs(imb) < min_imbalance or history_len(view) < max(1, lookback_bars):
        return None
    bq, aq = value(view.book, "bid_quantity_5"), value(view.book, "ask_quantity_5")
    depth = math.nan
    if bq is not None and aq is not None and bq >= 0 and aq >= 0 and bq + aq > 0:
        depth = (bq - aq) / (bq + aq)
        if depth * imb < 0:
            return None
    atr = atr_or_range(view)
    if atr is None:
        return None
    move_atr = abs(view.close - float(view.history["close"][-lookback_bars])) / atr
    if move_atr > max_move_atr:
        return None
    rvol = capped(bar_volume_ratio(view), ratio_cap)
    conf = confidence(
        0.4,
        (0.3, ramp(abs(imb), min_imbalance, min(1.0, 2 * min_imbalance))),
        (0.15, ramp(abs(depth), 0.0, min_imbalance)),
        (0.15, ramp(rvol, 1.0, 3.0)),
    )
    return Signal(
        "hidden_accumulation",
        _direction(imb),
        conf,
        {"imbalance": imb, "depth_imbalance": depth, "move_atr": move_atr, **context(view)},
    )
