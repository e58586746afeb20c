"""``calendar:``: special sessions the XNSE calendar lacks, and the scan lead time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aion.config_checks import ConfigError, check_at_least
from aion.market.calendar import MarketCalendar, SpecialSession


@dataclass(frozen=True)
class SpecialSessionConfig:
    """A ``calendar.special_sessions`` entry: ``date`` YYYY-MM-DD, ``open``/``close`` HH:MM IST."""

    date: str = ""
    open: str = ""
    close: str = ""
    name: str = ""


@dataclass(frozen=True)
class CalendarConfig:
    """``calendar:``: sessions the XNSE calendar lacks (e.g. a weekend Muhurat session)."""

    special_sessions: tuple[SpecialSessionConfig, ...] = ()
    scan_lead_minutes: int = 15

    def __post_init__(self) -> None:
        check_at_least("calendar.scan_lead_minutes", self.scan_lead_minutes, 0)
        self.market_calendar()  # validates every entry

    def market_calendar(self) -> MarketCalendar:
        """The XNSE calendar with the configured special sessions.

        Raises:
            ConfigError: a bad date/time, naming ``calendar.special_sessions[i].<key>``.
        """
        out = []
        for i, s in enumerate(self.special_sessions):
            key = f"calendar.special_sessions[{i}]"
            try:
                day = dt.datetime.strptime(s.date, "%Y-%m-%d").date()
            except ValueError as exc:
                raise ConfigError(f"{key}.date: {s.date!r} must be YYYY-MM-DD") from exc
            times = []
            for name, text in (("open", s.open), ("close", s.close)):
                try:
                    times.append(dt.datetime.strptime(text, "%H:%M").time())
                except ValueError as exc:
                    raise ConfigError(f"{key}.{name}: {text!r} must be HH:MM (IST)") from exc
            if times[1] <= times[0]:
                raise ConfigError(f"{key}.close: {s.close} must be after open {s.open}")
            out.append(SpecialSession(day, times[0], times[1], s.name))
        return MarketCalendar(out)
