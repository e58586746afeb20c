"""Builders of hand-made :class:`InstrumentView` scenarios for the detector tests."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np

from aion.market.time import from_ist
from aion.patterns.registry import InstrumentView, known_detectors

DAY = dt.date(2022, 11, 11)
NAN = math.nan


def hist(
    n: int = 0,
    *,
    open: Any = 100.0,
    high: Any = 105.0,
    low: Any = 95.0,
    close: Any = 100.0,
    volume: Any = 100.0,
) -> dict[str, np.ndarray]:
    """History arrays of ``n`` bars; each field a scalar (filled) or a sequence."""
    out = {}
    for k, v in (
        ("open", open),
        ("high", high),
        ("low", low),
        ("close", close),
        ("volume", volume),
    ):
        a = np.asarray(v, dtype=np.float64)
        out[k] = np.full(n, float(a)) if a.ndim == 0 else a.copy()
    return out


def bars(ohlc: list[tuple[float, float, float, float]], volume: float = 100.0) -> dict:
    """History from explicit ``(open, high, low, close)`` rows, constant volume."""
    a = np.asarray(ohlc, dtype=np.float64).reshape(-1, 4)
    return hist(
        a.shape[0],
        open=a[:, 0],
        high=a[:, 1],
        low=a[:, 2],
        close=a[:, 3],
        volume=np.full(a.shape[0], volume),
    )


def make_view(
    o: float = 100.0,
    h: float = 110.0,
    lo: float = 100.0,
    c: float = 105.0,
    v: float = 1000.0,
    *,
    expected: float = 100.0,
    history: dict | None = None,
    indicators: dict[str, float] | None = None,
    atr: float = NAN,
    at: tuple[int, int] = (10, 0),
    **kw: Any,
) -> InstrumentView:
    """A view of one closed bar at IST ``at`` on 2022-11-11; ``kw`` sets other fields."""
    ind = {"atr_14": atr} | (indicators or {})
    return InstrumentView(
        symbol=kw.pop("symbol", "NSE:SBIN"),
        bar_start=from_ist(DAY, *at),
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=v,
        history=hist(0) if history is None else history,
        indicators=ind,
        expected_bar_volume=expected,
        **kw,
    )


def defaults(name: str) -> dict[str, Any]:
    """A detector's default parameters, as the engine resolves them."""
    return {k: d for k, (d, _h) in known_detectors()[name].params.items()}


def run(name: str, view: InstrumentView, **overrides: Any):  # type: ignore[no-untyped-def]
    """Call detector ``name`` with its defaults and ``overrides``."""
    return known_detectors()[name].fn(view, **(defaults(name) | overrides))
