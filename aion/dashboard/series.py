"""Chart series of one instrument's day for the dashboard, from the bars Redis holds.

Redis keeps only the *latest* indicator values per instrument (``aion:{SYM}:ind:1m``), so the
per-bar EMA and VWAP lines of the chart are recomputed here from the stored bars with the
project's own indicator core (:class:`aion.indicators.core.IndicatorCore`, the kernels the scan
runs), never a second implementation: the last point of each line equals what the scan stored
for 1-minute bars.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from aion.indicators.config import IndicatorsConfig
from aion.indicators.core import IndicatorCore
from aion.market.time import IST_OFFSET_S

CHART_SERIES = (
    "ema_20",
    "ema_50",
    "vwap",
    "vwap_upper_1",
    "vwap_lower_1",
    "vwap_upper_2",
    "vwap_lower_2",
)
"""Indicator lines drawn on the price chart (names of :meth:`IndicatorCore.names`)."""


def chart_time(epoch_s: int) -> int:
    """A bar start (epoch seconds, UTC) as the chart's time axis value: the chart library
    labels its axis in UTC, so times are shifted by +05:30 to read as IST."""
    return int(epoch_s) + IST_OFFSET_S


def indicator_series(
    bars: Sequence[dict[str, Any]],
    date: int,
    config: IndicatorsConfig,
    names: Sequence[str] = CHART_SERIES,
) -> dict[str, list[dict[str, float]]]:
    """Per-bar values of ``names`` after each of ``bars`` closed, as chart points.

    Args:
        bars: one session's bars of one instrument, sorted by ``start`` (epoch s), prices in
            rupees, ``volume`` in shares (:func:`aion.store.queries.read_bars`).
        date: the session date YYYYMMDD (VWAP is per session).
        config: indicator periods for the bars' timeframe (``config.indicators.for_timeframe``).
        names: outputs to keep.

    Returns:
        ``{name: [{"time": chart time, "value": rupees}, ...]}``; bars where the value is
        still warming up (NaN) are left out.

    Raises:
        KeyError: a name the indicator core does not produce.
    """
    core = IndicatorCore(1, config)
    known = set(core.names())
    missing = [n for n in names if n not in known]
    if missing:
        raise KeyError(f"indicator core has no output {missing[0]!r}")
    out: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    slot = np.zeros(1, np.int64)
    day = np.full(1, date, np.int64)
    for bar in bars:
        core.update(
            slot,
            day,
            np.array([bar["open"]], np.float64),
            np.array([bar["high"]], np.float64),
            np.array([bar["low"]], np.float64),
            np.array([bar["close"]], np.float64),
            np.array([bar["volume"]], np.float64),
        )
        values = core.values(slot)
        t = chart_time(bar["start"])
        for n in names:
            v = float(values[n][0])
            if not math.isnan(v):
                out[n].append({"time": t, "value": v})
    return out


def warm_up() -> None:
    """Run the indicator kernels once on one made-up bar, so they are loaded (Numba's cache)
    before the first chart is asked for."""
    bar = {"start": 0, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}
    indicator_series([bar], 19700101, IndicatorsConfig())
