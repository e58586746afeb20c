"""Exchange time: IST conversions and NSE session segments.

All timestamps inside aion are integer epoch seconds (UTC epoch, as carried by
Kite's ``exchange_timestamp``/``last_trade_time`` fields) or epoch nanoseconds
where the name says ``_ns``. Wall-clock IST views are built here and only here.

NSE equity session (IST): pre-open order entry 09:00-09:08 with the call
auction match at 09:08, continuous trading 09:15:00-15:29:59, closing session
15:30-15:40, post-close 15:40-16:00 (NSE circular on pre-open/closing sessions).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np

IST = ZoneInfo("Asia/Kolkata")
IST_OFFSET_S = 19_800  # +05:30, no DST in India

REGULAR_OPEN_MINUTE = 9 * 60 + 15  # 09:15 IST, minute of day
REGULAR_CLOSE_MINUTE = 15 * 60 + 30  # 15:30 IST: last regular 1-minute bar starts 15:29

SEGMENT_PREOPEN = 0
SEGMENT_REGULAR = 1
SEGMENT_POSTCLOSE = 2
SEGMENT_NAMES = {
    SEGMENT_PREOPEN: "preopen",
    SEGMENT_REGULAR: "regular",
    SEGMENT_POSTCLOSE: "postclose",
}


def to_ist(epoch_s: int | float) -> dt.datetime:
    """Epoch seconds -> tz-aware IST datetime."""
    return dt.datetime.fromtimestamp(epoch_s, tz=IST)


def from_ist(date: dt.date, hh: int, mm: int, ss: int = 0) -> int:
    """IST wall-clock date and time -> epoch seconds (int)."""
    return int(dt.datetime(date.year, date.month, date.day, hh, mm, ss, tzinfo=IST).timestamp())


def ymd(d: dt.date) -> int:
    """A date as the int YYYYMMDD used in key names and summaries."""
    return d.year * 10_000 + d.month * 100 + d.day


def session_date(epoch_s: int) -> int:
    """Trading date of an exchange timestamp as an int YYYYMMDD (IST calendar date)."""
    return ymd(to_ist(epoch_s).date())


def session_dates(epoch_s: np.ndarray) -> np.ndarray:
    """Vectorised :func:`session_date`: int64 epoch seconds (n,) -> int64 YYYYMMDD (n,)."""
    days = (epoch_s.astype(np.int64) + IST_OFFSET_S) // 86_400
    d64 = days.astype("datetime64[D]")
    y = d64.astype("datetime64[Y]").astype(np.int64) + 1970
    m = d64.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dd = (d64 - d64.astype("datetime64[M]")).astype(np.int64) + 1
    return y * 10_000 + m * 100 + dd


def minute_start(epoch_s: np.ndarray) -> np.ndarray:
    """Start of the 1-minute bar (epoch seconds) holding each timestamp; int64 (n,)."""
    e = epoch_s.astype(np.int64)
    return e - (e % 60)


def minute_of_day_ist(epoch_s: np.ndarray) -> np.ndarray:
    """IST minute of day (0..1439) of each epoch second; int64 (n,)."""
    return ((epoch_s.astype(np.int64) + IST_OFFSET_S) % 86_400) // 60


def segment_of(epoch_s: np.ndarray) -> np.ndarray:
    """Session segment per timestamp: 0 pre-open (<09:15), 1 regular (09:15-15:29), 2 post-close.

    int8 (n,). Bars are start-labelled, so the bar starting 15:29 is the last regular one.
    """
    mod = minute_of_day_ist(epoch_s)
    seg = np.full(mod.shape, SEGMENT_REGULAR, dtype=np.int8)
    seg[mod < REGULAR_OPEN_MINUTE] = SEGMENT_PREOPEN
    seg[mod >= REGULAR_CLOSE_MINUTE] = SEGMENT_POSTCLOSE
    return seg


def parse_date(text: str) -> dt.date:
    """Parse ``YYYY-MM-DD`` or ``YYYYMMDD``; raises ValueError naming the bad value."""
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"bad date {text!r}: expected YYYY-MM-DD")
