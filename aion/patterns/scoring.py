"""Scoring primitives shared by the detectors: ramps, bounded confidences, safe inputs.

Every detector builds its confidence with :func:`confidence`: a base plus weighted
terms, each term clipped to [0, 1] (NaN counts as 0) and the weights summing to at
most ``1 - base``, so the result lies in [base, 1] by construction. Volume ratios
pass through :func:`capped` before they enter a term.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from aion.patterns.registry import InstrumentView

DEFAULT_RATIO_CAP = 10.0
"""Cap applied to volume ratios before scoring (the issue's default)."""


def ramp(x: float, lo: float, hi: float) -> float:
    """0 at ``lo``, 1 at ``hi``, linear between, clipped to [0, 1]; NaN -> 0.

    ``lo > hi`` is allowed and gives a falling ramp (still 0 at ``lo``, 1 at ``hi``).
    ``lo == hi`` is a step: 1 when ``x >= hi``.
    """
    if math.isnan(x):
        return 0.0
    if hi == lo:
        return 1.0 if x >= hi else 0.0
    return min(1.0, max(0.0, (x - lo) / (hi - lo)))


def confidence(base: float, *terms: tuple[float, float]) -> float:
    """``base + sum(weight * clip(term, 0, 1))``; each term NaN -> 0.

    Args:
        base: the confidence of a bare rule match, in [0, 1].
        terms: ``(weight, term)`` pairs, weights >= 0 summing to <= ``1 - base``.

    Returns:
        A value in [base, base + sum(weights)] within [0, 1].

    Raises:
        ValueError: the weights could push the result above 1 (a coding error).
    """
    total_w = sum(w for w, _ in terms)
    if base < 0 or any(w < 0 for w, _ in terms) or base + total_w > 1.0 + 1e-12:
        raise ValueError(f"confidence weights {base} + {total_w} exceed 1")
    s = base
    for w, t in terms:
        if not math.isnan(t):
            s += w * min(1.0, max(0.0, t))
    return min(1.0, s)


def capped(ratio: float, cap: float = DEFAULT_RATIO_CAP) -> float:
    """A volume ratio limited to ``cap`` (NaN stays NaN)."""
    return min(ratio, cap) if not math.isnan(ratio) else ratio


def finite(x: float | None) -> bool:
    """True for a real, finite number."""
    return x is not None and isinstance(x, float | int) and math.isfinite(x)


def indicator(view: InstrumentView, name: str) -> float | None:
    """``view.indicators[name]`` when present and finite, else None."""
    v = view.indicators.get(name)
    return float(v) if v is not None and finite(v) else None


def value(d: Mapping[str, float], name: str) -> float | None:
    """``d[name]`` as a float when present and finite, else None (profile, book, option dicts)."""
    v = d.get(name)
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def atr_or_range(view: InstrumentView, atr_name: str = "atr_14") -> float | None:
    """ATR when warm, else the mean range of the history and this bar; None when flat.

    Rupees. Used to express distances in ATR units before the ATR is warm. The mean
    range is ``view.mean_range`` when the minute's frame precomputed it
    (:attr:`aion.patterns.frame.MinuteFrame.mean_range`, the same value), else computed
    here from ``view.history``.
    """
    atr = indicator(view, atr_name)
    if atr is not None and atr > 0:
        return atr
    r = view.mean_range
    if math.isnan(r):
        h, lo = view.history.get("high"), view.history.get("low")
        bar = np.array([view.high - view.low])
        if h is not None and lo is not None and h.shape[0] == lo.shape[0] and h.shape[0]:
            bar = np.concatenate((bar, h - lo))
        r = float(np.mean(bar))
    return r if math.isfinite(r) and r > 0 else None


def bar_volume_ratio(view: InstrumentView) -> float:
    """This bar's volume over its expected volume; NaN when no expectation exists.

    Uses ``view.rvol_bar`` (time-of-day baseline) when finite, else ``volume /
    expected_bar_volume``. Uncapped: callers cap with :func:`capped`.
    """
    if finite(view.rvol_bar):
        return float(view.rvol_bar)
    exp = view.expected_bar_volume
    if finite(exp) and exp > 0 and finite(view.volume):
        return view.volume / exp
    return math.nan


def recent_volume_ratio(view: InstrumentView, lookback: int) -> float:
    """This bar's volume over the mean volume of the last ``lookback`` history bars.

    NaN when fewer bars exist or they carry no volume (indices).
    """
    vol = view.history.get("volume")
    if vol is None or vol.shape[0] < lookback or lookback <= 0:
        return math.nan
    m = float(np.mean(vol[-lookback:]))
    return view.volume / m if m > 0 else math.nan


def multiplier(view: InstrumentView) -> float:
    """``view.threshold_multiplier`` when finite and positive, else 1 (neutral)."""
    m = view.threshold_multiplier
    return float(m) if finite(m) and m > 0 else 1.0


REGIMES = ("LOW", "NORMAL", "HIGH", "PANIC")
"""INDIA VIX regimes in increasing order (see :class:`InstrumentView`)."""


def context(view: InstrumentView) -> dict[str, float]:
    """Evidence every detector records: the volume threshold multiplier applied and the regime.

    Evidence values are numbers, so the INDIA VIX regime is recorded as its level in
    :data:`REGIMES` (``regime_level`` 0 LOW .. 3 PANIC); absent when the regime is unknown.
    """
    ev = {"threshold_multiplier": multiplier(view)}
    if view.regime in REGIMES:
        ev["regime_level"] = float(REGIMES.index(view.regime))
    return ev


def history_len(view: InstrumentView) -> int:
    """Number of closed bars in ``view.history`` (0 when any OHLCV array is missing or
    their lengths differ)."""
    h = view.history
    try:
        n = h["close"].shape[0]
        same = (
            h["open"].shape[0] == n
            and h["high"].shape[0] == n
            and h["low"].shape[0] == n
            and h["volume"].shape[0] == n
        )
    except KeyError:
        return 0
    return n if same else 0
