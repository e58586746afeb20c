"""Time to expiry on NSE trading days: holiday weeks, holiday-shifted expiries, 15:30 cut-off."""

from __future__ import annotations

import datetime as dt

import pytest

from aion.instruments.master import InstrumentMaster
from aion.market.calendar import MarketCalendar
from aion.market.time import from_ist
from aion.options.expiry import (
    expiry_epoch,
    infer_monthly_expiry,
    time_to_expiry,
    trading_days_left,
)

D = dt.date
SESSION_MIN = 375  # 09:15-15:30 IST


@pytest.fixture(scope="module")
def cal() -> MarketCalendar:
    return MarketCalendar()


def test_week_with_guru_nanak_jayanti_holiday(cal: MarketCalendar) -> None:
    # weekly expiry Thu 2022-11-10; Tue 2022-11-08 is an NSE holiday: Mon, Wed, Thu remain
    exp = D(2022, 11, 10)
    before_open = time_to_expiry(from_ist(D(2022, 11, 7), 8, 0), exp, cal)
    assert before_open.dte_days == pytest.approx(3.0, abs=1e-12)
    assert before_open.dte_years == pytest.approx(3.0 / 252, abs=1e-15)
    assert not before_open.expired
    # 12:22:30 is half of the Monday session (187.5 of 375 minutes)
    mid = time_to_expiry(from_ist(D(2022, 11, 7), 12, 22, 30), exp, cal)
    assert mid.dte_days == pytest.approx(2.5, abs=1e-12)
    # the holiday carries no time: Monday's close and Wednesday's open are the same DTE
    assert time_to_expiry(from_ist(D(2022, 11, 7), 15, 30), exp, cal).dte_days == pytest.approx(2)
    assert time_to_expiry(from_ist(D(2022, 11, 8), 11, 0), exp, cal).dte_days == pytest.approx(2)
    assert time_to_expiry(from_ist(D(2022, 11, 9), 9, 15), exp, cal).dte_days == pytest.approx(2)
    assert time_to_expiry(
        from_ist(D(2022, 11, 7), 15, 30), exp, cal, trading_days_per_year=250
    ).dte_years == pytest.approx(2 / 250)
    assert trading_days_left(D(2022, 11, 7), exp, cal) == 2
    assert trading_days_left(exp, exp, cal) == 0
    assert trading_days_left(D(2022, 11, 11), exp, cal) == -1


def test_expiry_moved_for_holiday_from_master(cal: MarketCalendar) -> None:
    # Thu 2024-04-11 was an NSE holiday (Id-ul-Fitr): NSE moved that week's NIFTY expiry to
    # Wed 2024-04-10; the bundled Kite dump carries the moved date
    master = InstrumentMaster.bundled()
    inst = master.by_symbol("NFO:NIFTY2441022000CE")
    assert inst.expiry == D(2024, 4, 10)
    assert not cal.is_trading_day(D(2024, 4, 11))
    tte = time_to_expiry(from_ist(D(2024, 4, 8), 9, 0), inst.expiry, cal)
    assert tte.dte_days == pytest.approx(3.0)  # Mon 8, Tue 9, Wed 10
    # the inferred monthly rule moves a holiday expiry to the previous trading day
    assert infer_monthly_expiry(2023, 3, cal) == D(2023, 3, 29)  # Thu 30 Mar 2023 Ram Navami
    assert infer_monthly_expiry(2022, 11, cal) == D(2022, 11, 24)


def test_inferred_monthly_expiries_match_the_master(cal: MarketCalendar) -> None:
    # every NIFTY monthly contract in the 2024-04-06 dump up to 2025-06 (later ones follow
    # SEBI's 2025 weekday change or lie beyond the calendar's holiday coverage)
    master = InstrumentMaster.bundled()
    expiries = {
        i.expiry
        for i in master
        if i.name == "NIFTY" and i.instrument_type == "FUT" and i.expiry is not None
    }
    checked = 0
    for e in sorted(expiries):
        if e <= D(2025, 6, 30):
            assert infer_monthly_expiry(e.year, e.month, cal) == e
            checked += 1
    assert checked >= 3


def test_expiry_day_after_1530(cal: MarketCalendar) -> None:
    exp = D(2022, 11, 24)
    assert time_to_expiry(from_ist(exp, 15, 29), exp, cal).dte_days == pytest.approx(
        1 / SESSION_MIN
    )
    for hh, mm in ((15, 30), (15, 31), (18, 0)):
        tte = time_to_expiry(from_ist(exp, hh, mm), exp, cal)
        assert tte.expired and tte.dte_days == 0.0 and tte.dte_years == 0.0
    assert time_to_expiry(from_ist(D(2022, 11, 25), 10, 0), exp, cal).expired
    assert expiry_epoch(exp) == from_ist(exp, 15, 30)


def test_muhurat_session_counts_by_its_length(cal: MarketCalendar) -> None:
    # Mon 2022-10-24: Muhurat 18:15-19:15 only; Tue 25 full; Wed 26 holiday; Thu 27 expiry
    tte = time_to_expiry(from_ist(D(2022, 10, 24), 10, 0), D(2022, 10, 27), cal)
    assert tte.dte_days == pytest.approx(2 + 60 / SESSION_MIN)


def test_rejects_bad_year_basis(cal: MarketCalendar) -> None:
    with pytest.raises(ValueError, match="trading_days_per_year"):
        time_to_expiry(from_ist(D(2022, 11, 7), 10, 0), D(2022, 11, 10), cal, 0.0)
