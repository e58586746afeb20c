"""NSE calendar: holidays, Muhurat and special sessions, session times, is_open."""

from __future__ import annotations

import datetime as dt

import pytest

from aion.market.calendar import MarketCalendar, SpecialSession
from aion.market.time import IST, from_ist

D = dt.date

# NSE equity/F&O trading holidays of 2022 falling on weekdays (NSE circular
# NSE/CMTR/50560, Dec 2021): Republic Day, Mahashivratri, Holi, Ambedkar Jayanti,
# Good Friday, Id-ul-Fitr, Muharram, Independence Day, Ganesh Chaturthi,
# Dussehra, Diwali Laxmi Pujan (Muhurat session in the evening), Diwali
# Balipratipada, Guru Nanak Jayanti.
HOLIDAYS_2022 = [
    D(2022, 1, 26),
    D(2022, 3, 1),
    D(2022, 3, 18),
    D(2022, 4, 14),
    D(2022, 4, 15),
    D(2022, 5, 3),
    D(2022, 8, 9),
    D(2022, 8, 15),
    D(2022, 8, 31),
    D(2022, 10, 5),
    D(2022, 10, 24),
    D(2022, 10, 26),
    D(2022, 11, 8),
]
MUHURAT_2022 = D(2022, 10, 24)


@pytest.fixture(scope="module")
def cal() -> MarketCalendar:
    return MarketCalendar()


def ist(d: dt.date, hh: int, mm: int) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, hh, mm, tzinfo=IST)


def test_diwali_week_2022(cal: MarketCalendar) -> None:
    # Mon 24 Muhurat evening only, Tue 25 regular, Wed 26 Balipratipada holiday, Thu/Fri regular
    week = [D(2022, 10, 24) + dt.timedelta(days=i) for i in range(7)]
    assert [cal.is_trading_day(d) for d in week] == [True, True, False, True, True, False, False]
    assert cal.trading_days(D(2022, 10, 22), D(2022, 10, 30)) == [
        D(2022, 10, 24),
        D(2022, 10, 25),
        D(2022, 10, 27),
        D(2022, 10, 28),
    ]
    assert cal.next_trading_day(D(2022, 10, 25)) == D(2022, 10, 27)
    assert cal.previous_trading_day(D(2022, 10, 27)) == D(2022, 10, 25)
    assert cal.session(D(2022, 10, 26)) is None


def test_muhurat_session_times(cal: MarketCalendar) -> None:
    s = cal.session(MUHURAT_2022)
    assert s is not None
    assert (s.open, s.close) == (ist(MUHURAT_2022, 18, 15), ist(MUHURAT_2022, 19, 15))
    assert s.pre_open_start == ist(MUHURAT_2022, 18, 0)
    assert cal.is_open(from_ist(MUHURAT_2022, 18, 30))
    assert not cal.is_open(from_ist(MUHURAT_2022, 10, 0))


def test_guru_nanak_jayanti_2022(cal: MarketCalendar) -> None:
    assert not cal.is_trading_day(D(2022, 11, 8))
    assert cal.next_trading_day(D(2022, 11, 7)) == D(2022, 11, 9)
    assert cal.previous_trading_day(D(2022, 11, 9)) == D(2022, 11, 7)
    assert not cal.is_open(from_ist(D(2022, 11, 8), 11, 0))


def test_whole_year_2022_matches_nse_holiday_list(cal: MarketCalendar) -> None:
    start, end = D(2022, 1, 1), D(2022, 12, 31)
    weekdays = [
        start + dt.timedelta(days=i)
        for i in range((end - start).days + 1)
        if (start + dt.timedelta(days=i)).weekday() < 5
    ]
    expected = [d for d in weekdays if d not in HOLIDAYS_2022 or d == MUHURAT_2022]
    got = cal.trading_days(start, end)
    assert got == expected
    assert len(got) == 260 - 13 + 1  # weekdays - weekday holidays + the Muhurat evening


def test_regular_session_times_and_is_open(cal: MarketCalendar) -> None:
    d = D(2022, 11, 11)
    s = cal.session(d)
    assert s is not None
    assert s.pre_open_start == ist(d, 9, 0)
    assert s.pre_open_end == ist(d, 9, 8)
    assert s.open == ist(d, 9, 15)
    assert s.close == ist(d, 15, 30)
    assert s.closing_end == ist(d, 15, 40)
    assert s.name == ""
    assert s.open.utcoffset() == dt.timedelta(hours=5, minutes=30)
    assert not cal.is_open(from_ist(d, 9, 14, 59))
    assert cal.is_open(from_ist(d, 9, 15))
    assert cal.is_open(from_ist(d, 15, 29, 59))
    assert not cal.is_open(from_ist(d, 15, 30))
    assert not cal.is_open(from_ist(D(2022, 11, 12), 11, 0))  # Saturday


def test_trading_days_across_years_and_empty(cal: MarketCalendar) -> None:
    # 2022-12-30 Fri, 2023-01-02 Mon (no NSE holiday on either)
    assert cal.trading_days(D(2022, 12, 30), D(2023, 1, 2)) == [D(2022, 12, 30), D(2023, 1, 2)]
    assert cal.trading_days(D(2022, 11, 12), D(2022, 11, 13)) == []
    assert cal.trading_days(D(2022, 11, 14), D(2022, 11, 11)) == []
    assert cal.next_trading_day(D(2022, 12, 30)) == D(2023, 1, 2)


def test_special_session_on_weekend_and_override() -> None:
    # Muhurat 2023 was on Sunday 2023-11-12, 18:15-19:15 IST; XNSE cannot hold weekend sessions
    sunday = D(2023, 11, 12)
    base = MarketCalendar()
    assert not base.is_trading_day(sunday)
    cal = MarketCalendar(
        [
            SpecialSession(sunday, dt.time(18, 15), dt.time(19, 15), "Muhurat trading"),
            SpecialSession(D(2022, 11, 11), dt.time(10, 0), dt.time(14, 0), "late open"),
        ]
    )
    assert cal.is_trading_day(sunday)
    assert cal.next_trading_day(D(2023, 11, 10)) == sunday
    assert cal.previous_trading_day(D(2023, 11, 13)) == sunday
    assert sunday in cal.trading_days(D(2023, 11, 6), D(2023, 11, 19))
    s = cal.session(sunday)
    assert s is not None and s.name == "Muhurat trading"
    assert (s.open, s.close) == (ist(sunday, 18, 15), ist(sunday, 19, 15))
    assert s.closing_end == ist(sunday, 19, 25)
    assert cal.is_open(from_ist(sunday, 19, 0))
    assert not cal.is_open(from_ist(D(2022, 11, 11), 9, 30))
    assert cal.is_open(from_ist(D(2022, 11, 11), 10, 0))
    assert not cal.is_open(from_ist(D(2022, 11, 11), 14, 0))


def test_special_session_rejects_inverted_times() -> None:
    with pytest.raises(ValueError, match="must be after open"):
        SpecialSession(D(2023, 11, 12), dt.time(19, 15), dt.time(18, 15), "bad")
