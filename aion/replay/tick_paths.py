"""Tick paths of ``aion session build``: vendor bars -> ticks inside each minute, then Kite's
tick fields (rules 2-5 of :mod:`aion.replay.builder`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from aion.instruments.master import Instrument
from aion.kite.wire import LEN_FULL, LEN_INDEX_FULL
from aion.market.time import from_ist
from aion.replay.vendor_bars import VendorBar

__all__ = [
    "MAX_TICKS_PER_MINUTE",
    "MIN_TICKS_PER_MINUTE",
    "SNAPSHOT_HHMM",
    "TICK_OFFSETS_S",
    "instrument_path",
    "ticks_array",
]

TICK_OFFSETS_S: tuple[int, int, int, int] = (1, 15, 30, 50)
"""Second offsets inside the covered minute: open, nearer extreme, other extreme, close."""

SNAPSHOT_HHMM = (9, 0)
"""IST time of the pre-open snapshot (rule 4)."""


@dataclass
class _Path:
    """Tick path of one instrument: parallel lists, time order."""

    t: list[int] = field(default_factory=list)  # epoch s
    px: list[int] = field(default_factory=list)  # paise
    inc: list[int] = field(default_factory=list)  # shares
    oi: list[int] = field(default_factory=list)
    traded: list[bool] = field(default_factory=list)

    def add(self, t: int, px: int, inc: int, oi: int, traded: bool) -> None:
        self.t.append(t)
        self.px.append(px)
        self.inc.append(inc)
        self.oi.append(oi)
        self.traded.append(traded)


def _paise(x: float) -> int:
    return round(x * 100)


MIN_TICKS_PER_MINUTE = len(TICK_OFFSETS_S)
MAX_TICKS_PER_MINUTE = 600
"""Bounds of ``ticks_per_minute`` (rule 2): the 4-tick path up to 10 ticks per second."""


def _bar_ticks(bar: VendorBar, start: int, path: _Path, per_minute: int) -> None:
    o, h, lo, c = (_paise(x) for x in (bar.open, bar.high, bar.low, bar.close))
    near, far = (h, lo) if abs(h - o) <= abs(o - lo) else (lo, h)
    q, r = divmod(bar.volume, per_minute)
    if per_minute == MIN_TICKS_PER_MINUTE:
        offsets: list[int] = list(TICK_OFFSETS_S)
        prices = [o, near, far, c]
    else:  # Kite's density: a linear path through the 4 anchors (rule 2)
        k = per_minute
        anchors = [0, k // 3, 2 * k // 3, k - 1]
        path_px = np.interp(np.arange(k), anchors, [o, near, far, c])
        prices = np.rint(path_px).astype(np.int64).tolist()
        offsets = [i * 60 // k for i in range(k)]
    for i, (off, px) in enumerate(zip(offsets, prices, strict=True)):
        path.add(start + off, px, q + (1 if i < r else 0), bar.oi, True)


def instrument_path(
    bars: Sequence[VendorBar],
    date: dt.date,
    is_index: bool,
    per_second: dict[int, float] | None,
    per_minute: int = MIN_TICKS_PER_MINUTE,
) -> _Path:
    """The tick path of one instrument's ``bars`` of ``date`` (time order): the pre-open
    snapshot (rule 4), ``per_minute`` ticks per regular bar (rule 2) or its per-second values
    (rule 9), one tick per non-regular row (rule 3)."""
    path = _Path()
    first = bars[0]
    path.add(from_ist(date, *SNAPSHOT_HHMM), _paise(first.open), 0, first.oi, False)
    by_minute: dict[int, list[int]] = {}
    if per_second:
        for sec in sorted(per_second):
            by_minute.setdefault(sec - sec % 60, []).append(sec)
    for bar in bars:
        stamp = from_ist(date, bar.stamp // 60, bar.stamp % 60)
        if bar.regular:
            start = stamp - 60
            secs = by_minute.get(start)
            if secs:
                for s in secs:
                    assert per_second is not None
                    path.add(s, _paise(per_second[s]), 0, bar.oi, True)
            else:
                _bar_ticks(bar, start, path, per_minute)
        else:
            traded = bar.volume > 0 and not is_index
            path.add(stamp, _paise(bar.close), bar.volume, bar.oi, traded)
    return path


def _running_max(x: np.ndarray, mask: np.ndarray, fill: int) -> np.ndarray:
    v = np.where(mask, x, fill)
    return np.maximum.accumulate(v)


def ticks_array(
    path: _Path, inst: Instrument, prev_close: float, dtype: np.dtype, mode: int
) -> np.ndarray:
    """``path`` as tick rows of ``dtype`` (Kite's fields, rule 5: cumulative volume, day
    VWAP, day OHLC from the first traded tick, ``close`` = ``prev_close`` rupees) in
    ``mode``."""
    n = len(path.t)
    t = np.asarray(path.t, dtype=np.int64)
    px = np.asarray(path.px, dtype=np.int64)
    inc = np.asarray(path.inc, dtype=np.int64)
    oi = np.asarray(path.oi, dtype=np.int64)
    traded = np.asarray(path.traded, dtype=bool)
    cum = np.cumsum(inc)
    turnover = np.cumsum(px * inc)
    with np.errstate(divide="ignore", invalid="ignore"):
        atp_paise = np.where(cum > 0, np.rint(turnover / np.maximum(cum, 1)), 0)
    idx = np.where(inc > 0, np.arange(n), -1)
    idx = np.maximum.accumulate(idx)
    ltq = np.where(idx >= 0, inc[np.maximum(idx, 0)], 0)
    seen = np.logical_or.accumulate(traded)
    first = int(np.argmax(traded)) if traded.any() else -1
    big = np.iinfo(np.int64).max
    high = _running_max(px, traded, 0)
    low = -_running_max(-px, traded, -big)
    opn = np.where(seen, px[first] if first >= 0 else 0, 0)
    high = np.where(seen, high, 0)
    low = np.where(seen, low, 0)
    tidx = np.maximum.accumulate(np.where(traded, np.arange(n), -1))
    ltt = np.where(tidx >= 0, t[np.maximum(tidx, 0)], 0)
    has_oi = oi > 0
    oi_hi = np.where(np.logical_or.accumulate(has_oi), _running_max(oi, has_oi, 0), 0)
    oi_lo = np.where(np.logical_or.accumulate(has_oi), -_running_max(-oi, has_oi, -big), 0)

    a = np.zeros(n, dtype=dtype)
    a["instrument_token"] = inst.instrument_token
    a["mode"] = mode
    a["packet_length"] = LEN_INDEX_FULL if inst.is_index else LEN_FULL
    a["tradable"] = not inst.is_index
    last = px / 100.0
    a["last_price"] = last
    a["open"] = opn / 100.0
    a["high"] = high / 100.0
    a["low"] = low / 100.0
    a["close"] = prev_close
    a["change"] = (last - prev_close) / prev_close * 100.0 if prev_close else 0.0
    a["exchange_timestamp"] = t
    if not inst.is_index:
        a["last_traded_quantity"] = ltq
        a["average_traded_price"] = atp_paise / 100.0
        a["volume_traded"] = cum
        a["last_trade_time"] = ltt
        a["oi"] = oi
        a["oi_day_high"] = oi_hi
        a["oi_day_low"] = oi_lo
    return a
