"""NSE trading calendar: trading days and session times (XNSE, pandas-market-calendars).

The source of holidays and special sessions is the ``XNSE`` calendar of
pandas-market-calendars (curated from NSE circulars, coverage 1996-2026; outside
that range it knows no holidays and every weekday is a trading day). Its schedule
gives, per trading day, the continuous-session open and close; Muhurat (Diwali
evening) sessions on weekdays are already in it as special opens/closes
(2022-10-24: 18:15-19:15 IST).

Session segments around the continuous session follow the regular NSE equity
timetable (NSE circulars on the pre-open call auction and the closing session):
pre-open order entry 15 minutes before the open until 7 minutes before it
(09:00-09:08 for the 09:15 open), closing session from the close for 10 minutes
(15:30-15:40), post-close session until 30 minutes after the close (15:40-16:00). The same
offsets are applied to special sessions. The feed's hours (when a lost connection is worth
retrying forever) are pre-open start to post-close end: :meth:`MarketCalendar.in_feed_hours`.

:class:`SpecialSession` covers what the library cannot: an exchange-announced
session on a day XNSE marks closed (a Muhurat session on a weekend, e.g.
2023-11-12) or changed hours on a trading day. It wins over the library.

Dates are IST calendar dates (:class:`datetime.date`); instants are tz-aware IST
datetimes or integer epoch seconds (see :mod:`aion.market.time`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from aion.market.time import IST, to_ist

PRE_OPEN_LEAD = dt.timedelta(minutes=15)  # pre-open order entry starts open - 15 min (09:00)
PRE_OPEN_MATCH_LEAD = dt.timedelta(minutes=7)  # call-auction match at open - 7 min (09:08)
CLOSING_SESSION = dt.timedelta(minutes=10)  # closing session close .. close + 10 min (15:40)
POST_CLOSE_END = dt.timedelta(minutes=30)  # post-close session ends close + 30 min (16:00)

# Searching for the next/previous trading day gives up after this many calendar
# days; NSE has never been closed for more than a few consecutive days.
_MAX_GAP_DAYS = 30


@dataclass(frozen=True, slots=True)
class SpecialSession:
    """An exchange-announced session outside the library calendar.

    ``date`` is the IST trading date; ``open``/``close`` are naive IST wall-clock
    times of the continuous session (``close`` after ``open``); ``name`` labels it
    (e.g. ``"Muhurat trading"``). Raises ValueError if ``close <= open``.
    """

    date: dt.date
    open: dt.time
    close: dt.time
    name: str = ""

    def __post_init__(self) -> None:
        if self.close <= self.open:
            raise ValueError(
                f"special session {self.date} {self.name!r}: close {self.close} "
                f"must be after open {self.open}"
            )


@dataclass(frozen=True, slots=True)
class SessionTimes:
    """Session times of one trading day, tz-aware IST datetimes.

    ``pre_open_start``..``pre_open_end``: pre-open order entry and call-auction
    match; ``open``..``close``: continuous trading; ``close``..``closing_end``:
    closing session; ``closing_end``..``post_close_end``: post-close session. ``name`` is empty
    for a library session, else the :class:`SpecialSession` name.
    """

    date: dt.date
    pre_open_start: dt.datetime
    pre_open_end: dt.datetime
    open: dt.datetime
    close: dt.datetime
    closing_end: dt.datetime
    post_close_end: dt.datetime
    name: str = ""

    @classmethod
    def around(
        cls, date: dt.date, open_: dt.datetime, close: dt.datetime, name: str = ""
    ) -> SessionTimes:
        """Build the segments around a continuous session ``open_``..``close`` (IST-aware)."""
        return cls(
            date=date,
            pre_open_start=open_ - PRE_OPEN_LEAD,
            pre_open_end=open_ - PRE_OPEN_MATCH_LEAD,
            open=open_,
            close=close,
            closing_end=close + CLOSING_SESSION,
            post_close_end=close + POST_CLOSE_END,
            name=name,
        )


@lru_cache(maxsize=64)
def _library_year(year: int) -> dict[dt.date, tuple[dt.datetime, dt.datetime]]:
    """XNSE schedule of one calendar year: date -> (open, close) as IST-aware datetimes.

    Cached per year: building a pandas-market-calendars schedule costs
    milliseconds to tens of milliseconds, far too slow for per-tick calls.
    """
    import pandas_market_calendars as pmc

    sched = pmc.get_calendar("XNSE").schedule(f"{year}-01-01", f"{year}-12-31")
    out: dict[dt.date, tuple[dt.datetime, dt.datetime]] = {}
    for day, opened, closed in zip(
        sched.index, sched["market_open"], sched["market_close"], strict=True
    ):
        out[day.date()] = (
            opened.to_pydatetime().astimezone(IST),
            closed.to_pydatetime().astimezone(IST),
        )
    return out


class MarketCalendar:
    """NSE trading days and session times (XNSE + configured special sessions).

    ``special_sessions`` add a session on a day the library marks closed, or
    replace the library's times on a trading day; a later entry for the same
    date wins. Methods take IST calendar dates; ``is_open`` takes epoch seconds.
    """

    def __init__(self, special_sessions: Sequence[SpecialSession] = ()) -> None:
        self._special: dict[dt.date, SpecialSession] = {s.date: s for s in special_sessions}

    @property
    def special_sessions(self) -> tuple[SpecialSession, ...]:
        """The configured special sessions, by date."""
        return tuple(self._special[d] for d in sorted(self._special))

    def session(self, d: dt.date) -> SessionTimes | None:
        """Session times on IST date ``d``, or None when NSE is closed that day."""
        special = self._special.get(d)
        if special is not None:
            return SessionTimes.around(
                d,
                dt.datetime.combine(d, special.open, tzinfo=IST),
                dt.datetime.combine(d, special.close, tzinfo=IST),
                special.name,
            )
        times = _library_year(d.year).get(d)
        if times is None:
            return None
        return SessionTimes.around(d, times[0], times[1])

    def is_trading_day(self, d: dt.date) -> bool:
        """True when NSE holds a session on IST date ``d`` (special sessions included)."""
        return d in self._special or d in _library_year(d.year)

    def trading_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Trading days from ``start`` to ``end``, both inclusive, ascending ([] if end < start)."""
        out: list[dt.date] = []
        for year in range(start.year, end.year + 1):
            days = set(_library_year(year))
            days.update(d for d in self._special if d.year == year)
            out.extend(d for d in sorted(days) if start <= d <= end)
        return out

    def next_trading_day(self, d: dt.date) -> dt.date:
        """First trading day strictly after ``d``. Raises LookupError after a 30-day gap."""
        return self._step(d, 1)

    def previous_trading_day(self, d: dt.date) -> dt.date:
        """Last trading day strictly before ``d``. Raises LookupError after a 30-day gap."""
        return self._step(d, -1)

    def _step(self, d: dt.date, direction: int) -> dt.date:
        one = dt.timedelta(days=direction)
        cur = d
        for _ in range(_MAX_GAP_DAYS):
            cur += one
            if self.is_trading_day(cur):
                return cur
        raise LookupError(f"no NSE trading day within {_MAX_GAP_DAYS} days of {d}")

    def is_open(self, epoch_s: int) -> bool:
        """True when ``epoch_s`` (UTC epoch seconds) lies in a continuous session [open, close)."""
        now = to_ist(epoch_s)
        times = self.session(now.date())
        return times is not None and times.open <= now < times.close

    def in_feed_hours(self, epoch_s: float) -> bool:
        """True when ``epoch_s`` (UTC epoch seconds) lies between a session's pre-open start
        and its post-close end (09:00-16:00 IST on a regular trading day): the hours in which
        the exchange feed is expected to run, so a lost connection is retried without end."""
        now = to_ist(epoch_s)
        times = self.session(now.date())
        return times is not None and times.pre_open_start <= now < times.post_close_end
