"""Time to expiry of NSE options on the XNSE trading calendar.

NSE equity derivatives expire at the close of the regular session, 15:30 IST, on the expiry
date (NSE F&O contract specifications). Expiry dates come from the instrument master
(:attr:`aion.instruments.master.Instrument.expiry`, already shifted by NSE for holidays);
:func:`infer_monthly_expiry` only fills in when the master lacks the contract.

Time is counted in **trading time**: the continuous-session time left until 15:30 IST on the
expiry date, summed over the sessions of :class:`~aion.market.calendar.MarketCalendar` (nights,
weekends and holidays carry no time), in units of one regular session (09:15-15:30, 375
minutes). ``dte_days`` 4.5 is four full sessions plus half of today's. ``dte_years`` divides
by the configured trading days per year (``options.trading_days_per_year``), following Hull's
advice to measure volatility time in trading days. A shortened session (Muhurat) counts by its
length. At or after 15:30 IST on the expiry date the option is expired: both are 0.
"""

from __future__ import annotations

import calendar as _cal
import datetime as dt
from dataclasses import dataclass

from aion.market.calendar import MarketCalendar
from aion.market.time import REGULAR_CLOSE_MINUTE, REGULAR_OPEN_MINUTE, from_ist, to_ist

__all__ = [
    "EXPIRY_TIME",
    "SESSION_SECONDS",
    "TimeToExpiry",
    "expiry_epoch",
    "infer_monthly_expiry",
    "time_to_expiry",
    "trading_days_left",
]

EXPIRY_TIME = dt.time(15, 30)
"""Expiry instant on the expiry date, IST (close of the regular session)."""
SESSION_SECONDS = (REGULAR_CLOSE_MINUTE - REGULAR_OPEN_MINUTE) * 60
"""Length of one regular session, 09:15-15:30 IST: 22,500 s (one trading day of time)."""


@dataclass(frozen=True, slots=True)
class TimeToExpiry:
    """Time left to an option's expiry.

    ``dte_days``: trading time left in regular sessions (float >= 0); ``dte_years``:
    ``dte_days / trading_days_per_year``; ``expired``: True at or after 15:30 IST on the
    expiry date.
    """

    dte_days: float
    dte_years: float
    expired: bool


def expiry_epoch(expiry: dt.date) -> int:
    """Expiry instant, 15:30 IST on ``expiry``, as epoch seconds."""
    return from_ist(expiry, EXPIRY_TIME.hour, EXPIRY_TIME.minute)


def time_to_expiry(
    now_epoch_s: int,
    expiry: dt.date,
    calendar: MarketCalendar,
    trading_days_per_year: float = 252.0,
) -> TimeToExpiry:
    """Trading time from ``now_epoch_s`` (exchange time, epoch seconds) to ``expiry`` 15:30 IST.

    Sums, over the trading days from today (IST) to ``expiry``, the part of each continuous
    session ``[open, close)`` that lies between now and the expiry instant. Raises ValueError
    when ``trading_days_per_year`` is not positive.
    """
    if not trading_days_per_year > 0:
        raise ValueError(f"trading_days_per_year must be > 0, got {trading_days_per_year!r}")
    end = expiry_epoch(expiry)
    if now_epoch_s >= end:
        return TimeToExpiry(0.0, 0.0, True)
    today = to_ist(now_epoch_s).date()
    seconds = 0.0
    for d in calendar.trading_days(today, expiry):
        s = calendar.session(d)
        assert s is not None  # a trading day has a session
        lo = max(float(now_epoch_s), s.open.timestamp())
        hi = min(float(end), s.close.timestamp())
        if hi > lo:
            seconds += hi - lo
    days = seconds / SESSION_SECONDS
    return TimeToExpiry(days, days / trading_days_per_year, False)


def trading_days_left(today: dt.date, expiry: dt.date, calendar: MarketCalendar) -> int:
    """Trading days after ``today`` up to and including ``expiry`` (0 on the expiry date).

    Negative when ``expiry`` is before ``today``: minus the trading days in ``(expiry, today]``.
    """
    if expiry >= today:
        return len(calendar.trading_days(today + dt.timedelta(days=1), expiry))
    return -len(calendar.trading_days(expiry + dt.timedelta(days=1), today))


def infer_monthly_expiry(
    year: int, month: int, calendar: MarketCalendar, weekday: int = _cal.THURSDAY
) -> dt.date:
    """NSE monthly expiry rule: the last ``weekday`` of the month, moved to the previous trading
    day when NSE is closed that day (e.g. 2023-03-30 Ram Navami -> 2023-03-29).

    Thursday was the monthly expiry weekday of NSE index and stock derivatives until 2025; pass
    ``weekday`` (``calendar.TUESDAY`` etc.) for later contracts. Use only when the instrument
    master lacks the contract.
    """
    last = dt.date(year, month, _cal.monthrange(year, month)[1])
    d = last - dt.timedelta(days=(last.weekday() - weekday) % 7)
    return d if calendar.is_trading_day(d) else calendar.previous_trading_day(d)
