"""Detectors: one function each, registered by name (see :mod:`aion.patterns.registry`).

Every confidence is bounded to [0, 1] by construction; volume ratios are capped
(``ratio_cap``) before they enter a score.
"""

from __future__ import annotations

import math

import numpy as np

from aion.patterns.registry import InstrumentView, Signal, register


def _ramp(x: float, lo: float, hi: float) -> float:
    """0 at ``lo``, 1 at ``hi``, linear between, clipped to [0, 1]."""
    if hi <= lo:
        return 1.0 if x >= hi else 0.0
    return min(1.0, max(0.0, (x - lo) / (hi - lo)))


@register(
    "volume_spike",
    "Bar volume far above the expected per-minute volume (20-day average / 375), "
    "directed by the bar's body",
    {
        "min_ratio": (3.0, "bar volume / expected minute volume needed"),
        "ratio_cap": (10.0, "cap on the ratio before scoring"),
        "min_body_fraction": (0.3, "|close-open| / (high-low) needed for a direction"),
    },
)
def volume_spike(
    view: InstrumentView, min_ratio: float, ratio_cap: float, min_body_fraction: float
) -> Signal | None:
    """Volume spike.

    Rule: ``ratio = volume / expected_bar_volume`` (expected = 20-day average daily
    volume / 375 regular minutes); fires when ``ratio >= min_ratio`` and the bar's
    body is at least ``min_body_fraction`` of its range; direction = sign of
    ``close - open``.

    Confidence: ``0.5 + 0.3 * ramp(min(ratio, cap), min_ratio, cap) + 0.2 * body_fraction``
    where ``ramp`` is linear 0..1; in [0.5, 1] when it fires.
    """
    exp = view.expected_bar_volume
    if not (exp > 0) or math.isnan(exp):
        return None
    ratio = view.volume / exp
    rng = view.high - view.low
    if ratio < min_ratio or rng <= 0:
        return None
    body = (view.close - view.open) / rng
    if abs(body) < min_body_fraction:
        return None
    capped = min(ratio, ratio_cap)
    conf = 0.5 + 0.3 * _ramp(capped, min_ratio, ratio_cap) + 0.2 * min(1.0, abs(body))
    return Signal(
        "volume_spike",
        "long" if body > 0 else "short",
        min(1.0, conf),
        {"volume_ratio": capped, "body_fraction": body, "expected_bar_volume": exp},
    )


@register(
    "breakout",
    "Close beyond the prior N-bar high/low with volume above the N-bar mean",
    {
        "lookback_bars": (20, "prior regular 1-minute bars forming the range"),
        "min_volume_ratio": (1.5, "bar volume / mean volume of the prior bars needed"),
        "ratio_cap": (10.0, "cap on the volume ratio before scoring"),
    },
)
def breakout(
    view: InstrumentView, lookback_bars: int, min_volume_ratio: float, ratio_cap: float
) -> Signal | None:
    """Range breakout with volume confirmation.

    Rule: with at least ``lookback_bars`` prior regular bars, ``close > max(high)``
    of those bars is a long breakout, ``close < min(low)`` a short one, provided
    ``volume >= min_volume_ratio * mean(volume)`` of those bars. Instruments
    without volume (indices) never qualify.

    Confidence: ``0.4 + 0.3 * ramp(distance / ATR, 0, 1) + 0.3 * ramp(min(vr, cap), min_vr, cap)``
    where distance is how far the close is beyond the range and ATR is ATR(14)
    (the bar's range before ATR is warm); in [0.4, 1].
    """
    hist = view.history
    if hist["close"].shape[0] < lookback_bars:
        return None
    hi = float(np.max(hist["high"][-lookback_bars:]))
    lo = float(np.min(hist["low"][-lookback_bars:]))
    mean_vol = float(np.mean(hist["volume"][-lookback_bars:]))
    if mean_vol <= 0:
        return None
    vr = view.volume / mean_vol
    if vr < min_volume_ratio:
        return None
    if view.close > hi:
        direction, dist = "long", view.close - hi
    elif view.close < lo:
        direction, dist = "short", lo - view.close
    else:
        return None
    atr = view.indicators.get("atr_14", math.nan)
    scale = atr if atr > 0 else max(view.high - view.low, 1e-9)
    capped = min(vr, ratio_cap)
    conf = (
        0.4 + 0.3 * _ramp(dist / scale, 0.0, 1.0) + 0.3 * _ramp(capped, min_volume_ratio, ratio_cap)
    )
    return Signal(
        "breakout",
        direction,
        min(1.0, conf),
        {"range_high": hi, "range_low": lo, "volume_ratio": capped, "distance_atr": dist / scale},
    )
