"""Volume-profile detectors: value-area breakouts and the advanced profile setups.

They read ``view.profile`` (the session's volume profile at this bar's close, see
:class:`~aion.patterns.registry.InstrumentView`): ``poc``, ``vah``, ``val`` are
required; ``hvn_1``, ``hvn_2``... / ``lvn_1``... (node prices, :mod:`aion.volume.profile`)
enable the node tests, and ``poc_prev``, ``vah_prev``, ``val_prev`` (the same after the
previous bar) the POC-shift and value-area expansion/contraction setups. A missing key
skips the setups that need it; without ``poc``/``vah``/``val`` nothing fires.

Conventions (ATR units, volume caps, bounded confidence, a vectorised gate per detector)
as in :mod:`aion.patterns.core`.
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
    multiplier,
    ramp,
    recent_volume_ratio,
    value,
)


def nearest_node(profile: dict[str, float], kind: str, price: float) -> float | None:
    """The ``kind`` (``hvn``/``lvn``) node nearest to ``price``, from keys ``hvn_1``, ..."""
    best: float | None = None
    for k in profile:
        if k.startswith(kind + "_") and k[len(kind) + 1 :].isdigit():
            p = value(profile, k)
            if p is not None and (best is None or abs(p - price) < abs(best - price)):
                best = p
    return best


def _volume_ratio(view: InstrumentView, lookback: int = 20) -> float:
    """Bar RVOL (time-of-day baseline); without one, volume over the last 20 bars' mean."""
    vr = bar_volume_ratio(view)
    return vr if not math.isnan(vr) else recent_volume_ratio(view, lookback)


def _frame_volume_ratio(f: MinuteFrame, lookback: int = 20) -> np.ndarray:
    """Vectorised :func:`_volume_ratio`, float64 (n,)."""
    return np.where(np.isnan(f.bar_ratio), f.recent_volume_ratio(lookback), f.bar_ratio)


def _nodes(f: MinuteFrame, kind: str) -> list[np.ndarray]:
    """The profile's ``kind`` node columns (``hvn_1``...), as :func:`nearest_node` reads them."""
    p = kind + "_"
    return [v for k, v in f.profile.items() if k.startswith(p) and k[len(p) :].isdigit()]


def _gate_volume_profile_breakout(
    f: MinuteFrame, acceptance_bars: int, min_bars: int, min_volume_ratio: float, **_: object
) -> np.ndarray:
    if acceptance_bars < 1:
        return np.zeros(len(f), np.bool_)
    vah, val, c = f.profile_col("vah"), f.profile_col("val"), f.close
    before = f.hist_col("close", acceptance_bars)
    vr = _frame_volume_ratio(f)
    return (
        np.isfinite(vah)
        & np.isfinite(val)
        & np.isfinite(f.atr)
        & (f.history_len >= max(min_bars, acceptance_bars))
        & (((c > vah) & (before <= vah)) | ((c < val) & (before >= val)))
        & ~np.isnan(vr)
        & ~(vr < loosen(min_volume_ratio * f.multiplier))
    )


@register(
    "volume_profile_breakout",
    "Acceptance outside the value area: N closes beyond VAH/VAL after a close inside, with volume",
    {
        "acceptance_bars": (2, "consecutive closes beyond the value area edge, this bar included"),
        "min_bars": (30, "history bars needed before the profile counts"),
        "min_volume_ratio": (1.5, "bar RVOL needed (x multiplier); vs 20-bar mean without RVOL"),
        "ratio_cap": (10.0, "cap on the volume ratio before scoring"),
    },
    family="volume_profile",
    gate=_gate_volume_profile_breakout,
)
def volume_profile_breakout(
    view: InstrumentView,
    acceptance_bars: int,
    min_bars: int,
    min_volume_ratio: float,
    ratio_cap: float,
) -> Signal | None:
    """Value-area breakout with acceptance.

    Rule: the last ``acceptance_bars`` closes (history and this bar) are all above VAH
    and the close before them is at or below VAH -> ``long``; all below VAL after a
    close at or above VAL -> ``short``. This bar's volume ratio (bar RVOL against the
    time-of-day baseline; without one, volume / mean of the last 20 bars) must be
    ``>= min_volume_ratio * m``. Needs ``min_bars`` bars of history.

    Confidence: ``0.4 + 0.3 * ramp(distance beyond the edge / ATR, 0, 1)
    + 0.3 * ramp(min(vr, cap), min_volume_ratio * m, cap)``; in [0.4, 1].
    """
    vah, val = value(view.profile, "vah"), value(view.profile, "val")
    n = history_len(view)
    atr = atr_or_range(view)
    if vah is None or val is None or atr is None or acceptance_bars < 1:
        return None
    if n < max(min_bars, acceptance_bars):
        return None
    closes = [*view.history["close"][-acceptance_bars:].tolist(), view.close]
    before, accepted = closes[0], closes[1:]
    if all(c > vah for c in accepted) and before <= vah:
        sign, dist = 1.0, view.close - vah
    elif all(c < val for c in accepted) and before >= val:
        sign, dist = -1.0, val - view.close
    else:
        return None
    vr = _volume_ratio(view)
    need = min_volume_ratio * multiplier(view)
    if math.isnan(vr) or vr < need:
        return None
    cr = capped(vr, ratio_cap)
    conf = confidence(0.4, (0.3, ramp(dist / atr, 0.0, 1.0)), (0.3, ramp(cr, need, ratio_cap)))
    return Signal(
        "volume_profile_breakout",
        "long" if sign > 0 else "short",
        conf,
        {"vah": vah, "val": val, "distance_atr": dist / atr, "volume_ratio": cr, **context(view)},
    )


SETUPS = {
    1.0: "poc_rejection",
    2.0: "poc_shift",
    3.0: "hvn_test",
    4.0: "lvn_traverse",
    5.0: "value_area_expansion",
    6.0: "value_area_contraction",
}
"""Codes of :func:`volume_profile_advanced`'s setups (evidence ``setup``)."""


def _gate_volume_profile_advanced(
    f: MinuteFrame,
    min_bars: int,
    min_rejection_atr: float,
    min_shift_atr: float,
    min_traverse_body: float,
    min_va_change: float,
    **_: object,
) -> np.ndarray:
    """Prerequisites of every setup, and at least one setup's own tests."""
    poc, vah, val = f.profile_col("poc"), f.profile_col("vah"), f.profile_col("val")
    lo, hi, rng, atr, o, c = f.low, f.high, f.range, f.atr, f.open, f.close

    def rejection(level: np.ndarray) -> np.ndarray:  # POC / HVN rejection's tests
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.abs(c - level) / atr
        return (
            (lo <= level)
            & (level <= hi)
            & ((o - level) * (c - level) > 0)
            & ~(d < loosen(min_rejection_atr))
        )

    setup = rejection(poc)
    for node in _nodes(f, "hvn"):  # HVN test: the nearest HVN passes them
        setup |= rejection(node)
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.abs(poc - f.profile_col("poc_prev")) / atr
        body = np.abs(f.body) / rng
        vah_prev, val_prev = f.profile_col("vah_prev"), f.profile_col("val_prev")
        width_prev = vah_prev - val_prev
        change = np.abs((vah - val) / width_prev - 1.0)
    setup |= np.isfinite(shift) & ~(shift < loosen(min_shift_atr))  # POC shift
    lvn = np.zeros(len(f), np.bool_)
    for node in _nodes(f, "lvn"):  # LVN traverse: the nearest LVN lies between open and close
        lvn |= (o - node) * (c - node) < 0
    setup |= lvn & ~(body < loosen(min_traverse_body))  # LVN traverse
    setup |= (  # value-area expansion / contraction
        np.isfinite(vah_prev)
        & np.isfinite(val_prev)
        & (width_prev > 0)
        & ~(change < loosen(min_va_change))
    )
    return (
        np.isfinite(poc)
        & np.isfinite(vah)
        & np.isfinite(val)
        & np.isfinite(atr)
        & (rng > 0)
        & (f.history_len >= min_bars)
        & setup
    )


@register(
    "volume_profile_advanced",
    "Profile setups: POC rejection, POC shift, HVN test, LVN traverse, value-area "
    "expansion/contraction; the strongest wins",
    {
        "min_bars": (60, "history bars needed before the profile counts"),
        "min_rejection_atr": (0.5, "POC/HVN rejection: close this far from the level, in ATR"),
        "min_shift_atr": (0.5, "POC shift: POC move on this bar, in ATR"),
        "min_traverse_body": (0.6, "LVN traverse: |body| / range needed"),
        "min_va_change": (0.1, "value area width change on this bar, as a fraction"),
        "ratio_cap": (10.0, "cap on the volume ratio before scoring"),
    },
    family="volume_profile",
    gate=_gate_volume_profile_advanced,
)
def volume_profile_advanced(
    view: InstrumentView,
    min_bars: int,
    min_rejection_atr: float,
    min_shift_atr: float,
    min_traverse_body: float,
    min_va_change: float,
    ratio_cap: float,
) -> Signal | None:
    """Advanced volume-profile setups (evidence ``setup`` codes in :data:`SETUPS`).

    Rules (each needs ``min_bars`` of history and its profile keys; ``d`` = distance of
    the close from the level in ATR, ``vr`` = volume ratio as in
    :func:`volume_profile_breakout`, capped):

    1. POC rejection: the bar trades through the POC (``low <= poc <= high``), opens and
       closes on the same side, ``d >= min_rejection_atr`` -> that side (above = long).
       Confidence ``0.4 + 0.2 * ramp(d, min, 3*min) + 0.2 * wick + 0.2 * ramp(vr, 1, 3)``
       (wick = share of the range beyond the body on the POC side).
    2. POC shift: ``poc - poc_prev >= min_shift_atr`` ATR (value migrates up) and the
       close is above the new POC -> long; mirror -> short. Confidence ``0.4 + 0.3 *
       ramp(shift/ATR, min, 2*min) + 0.3 * ramp(vr, 1, 3)``.
    3. HVN test: as the POC rejection, at the high-volume node nearest to the close.
    4. LVN traverse: the bar opens on one side of the low-volume node nearest to it and
       closes on the other with ``|body| >= min_traverse_body`` of its range (price moves
       fast through thin volume) -> the body's direction. Confidence ``0.4 + 0.2 *
       |body| + 0.2 * ramp(vr, 1.5, 4) + 0.2 * ramp(range / ATR, 1, 2)``.
    5. Value-area expansion: width ``vah - val`` grew by ``>= min_va_change`` on this bar
       and only one edge moved (VAH up -> long, VAL down -> short). Confidence ``0.4 +
       0.3 * ramp(change, min, 3*min) + 0.3 * ramp(vr, 1, 3)``.
    6. Value-area contraction: width shrank by ``>= min_va_change``: balance, traded back
       toward the POC (close above POC -> short, below -> long). Confidence ``0.4 + 0.3 *
       ramp(change, min, 3*min) + 0.3 * ramp(d from POC, 0, 2)``.

    The highest-confidence setup is returned; in [0.4, 1].
    """
    prof = view.profile
    poc, vah, val = value(prof, "poc"), value(prof, "vah"), value(prof, "val")
    atr = atr_or_range(view)
    rng = view.high - view.low
    if poc is None or vah is None or val is None or atr is None or not rng > 0:
        return None
    if history_len(view) < min_bars:
        return None
    vr = capped(_volume_ratio(view), ratio_cap)
    body = (view.close - view.open) / rng
    found: list[tuple[float, float, float, float]] = []  # (confidence, sign, setup, level)

    def rejection(level: float | None, code: float) -> None:
        if level is None or not view.low <= level <= view.high:
            return
        if (view.open - level) * (view.close - level) <= 0:
            return
        d = abs(view.close - level) / atr
        if d < min_rejection_atr:
            return
        above = view.close > level
        wick = (
            (min(view.open, view.close) - view.low)
            if above
            else (view.high - max(view.open, view.close))
        )
        conf = confidence(
            0.4,
            (0.2, ramp(d, min_rejection_atr, 3 * min_rejection_atr)),
            (0.2, wick / rng),
            (0.2, ramp(vr, 1.0, 3.0)),
        )
        found.append((conf, 1.0 if above else -1.0, code, level))

    rejection(poc, 1.0)
    rejection(nearest_node(prof, "hvn", view.close), 3.0)

    poc_prev = value(prof, "poc_prev")
    if poc_prev is not None:
        shift = (poc - poc_prev) / atr
        if abs(shift) >= min_shift_atr and (view.close - poc) * shift > 0:
            conf = confidence(
                0.4,
                (0.3, ramp(abs(shift), min_shift_atr, 2 * min_shift_atr)),
                (0.3, ramp(vr, 1.0, 3.0)),
            )
            found.append((conf, math.copysign(1.0, shift), 2.0, poc))

    lvn = nearest_node(prof, "lvn", (view.open + view.close) / 2)
    if (
        lvn is not None
        and (view.open - lvn) * (view.close - lvn) < 0
        and abs(body) >= min_traverse_body
    ):
        conf = confidence(
            0.4, (0.2, abs(body)), (0.2, ramp(vr, 1.5, 4.0)), (0.2, ramp(rng / atr, 1.0, 2.0))
        )
        found.append((conf, math.copysign(1.0, body), 4.0, lvn))

    vah_prev, val_prev = value(prof, "vah_prev"), value(prof, "val_prev")
    if vah_prev is not None and val_prev is not None and vah_prev - val_prev > 0:
        change = (vah - val) / (vah_prev - val_prev) - 1.0
        up, down = vah > vah_prev, val < val_prev
        if change >= min_va_change and up != down:
            conf = confidence(
                0.4,
                (0.3, ramp(change, min_va_change, 3 * min_va_change)),
                (0.3, ramp(vr, 1.0, 3.0)),
            )
            found.append((conf, 1.0 if up else -1.0, 5.0, vah if up else val))
        elif -change >= min_va_change and view.close != poc:
            conf = confidence(
                0.4,
                (0.3, ramp(-change, min_va_change, 3 * min_va_change)),
                (0.3, ramp(abs(view.close - poc) / atr, 0.0, 2.0)),
            )
            found.append((conf, -1.0 if view.close > poc else 1.0, 6.0, poc))

    if not found:
        return None
    conf, sign, setup, level = max(found)
    return Signal(
        "volume_profile_advanced",
        "long" if sign > 0 else "short",
        conf,
        {
            "setup": setup,
            "level": level,
            "poc": poc,
            "vah": vah,
            "val": val,
            "volume_ratio": vr,
            **context(view),
        },
    )
