"""Option contracts: master rows first; the strict symbol parser rejects look-alikes."""

from __future__ import annotations

import datetime as dt

import pytest

from aion.instruments.master import Instrument, InstrumentMaster
from aion.market.calendar import MarketCalendar
from aion.options.symbols import option_contract, parse_option_symbol, underlying_symbol

D = dt.date


@pytest.fixture(scope="module")
def cal() -> MarketCalendar:
    return MarketCalendar()


@pytest.mark.parametrize(
    ("symbol", "name", "expiry", "strike", "kind"),
    [
        ("NFO:NIFTY22NOV18000CE", "NIFTY", D(2022, 11, 24), 18000.0, "CE"),
        ("NIFTY22N1718000CE", "NIFTY", D(2022, 11, 17), 18000.0, "CE"),
        ("NFO:BANKNIFTY22D0141500PE", "BANKNIFTY", D(2022, 12, 1), 41500.0, "PE"),
        ("NFO:NIFTY2211718000PE", "NIFTY", D(2022, 1, 17), 18000.0, "PE"),
        ("NFO:NIFTY23MAR17000PE", "NIFTY", D(2023, 3, 29), 17000.0, "PE"),  # 30th: holiday
        ("NFO:M&M22NOV1250CE", "M&M", D(2022, 11, 24), 1250.0, "CE"),
        ("NFO:BAJAJ-AUTO22NOV3600PE", "BAJAJ-AUTO", D(2022, 11, 24), 3600.0, "PE"),
        ("NFO:RELIANCE22NOV2612.5CE", "RELIANCE", D(2022, 11, 24), 2612.5, "CE"),
        ("BFO:SENSEX24APR75000CE", "SENSEX", D(2024, 4, 25), 75000.0, "CE"),
    ],
)
def test_parses_monthly_and_weekly_symbols(
    cal: MarketCalendar, symbol: str, name: str, expiry: dt.date, strike: float, kind: str
) -> None:
    c = parse_option_symbol(symbol, cal)
    assert c is not None
    assert (c.name, c.expiry, c.strike, c.option_type) == (name, expiry, strike, kind)
    assert c.source == "symbol"
    assert c.is_call == (kind == "CE")


@pytest.mark.parametrize(
    "symbol",
    [
        "NSE:BAJAJ FINANCE",
        "NSE:BAJFINANCE",
        "NSE:NIFTY 50",
        "NFO:NIFTY22NOVFUT",
        "NSE:NIFTY22NOV18000CE",  # an option symbol on a cash exchange
        "NFO:NIFTY22NOV18000XE",
        "NFO:NIFTY22NOV018000CE",  # strike with a leading zero
        "NFO:NIFTY22NOV0CE",
        "NFO:NIFTY22N3118000CE",  # 31 November
        "NFO:NIFTY22X1718000CE",
        "NFO:22NOV18000CE",  # no name
        "NFO:NIFTY 22NOV18000CE",
        "NFO:nifty22nov18000ce",
        "NFO:NIFTY22NOV18000CEX",
        "",
    ],
)
def test_rejects_look_alikes(cal: MarketCalendar, symbol: str) -> None:
    assert parse_option_symbol(symbol, cal) is None


def test_master_row_wins_over_the_symbol(cal: MarketCalendar) -> None:
    master = InstrumentMaster.bundled()
    inst = master.by_symbol("NFO:BANKNIFTY24APR48000CE")
    c = option_contract(inst, cal)
    assert c is not None and c.source == "master"
    # BANKNIFTY's April 2024 monthly expired on Wednesday 24 Apr (the master); the Thursday rule
    # the parser falls back to would say the 25th
    assert c.expiry == D(2024, 4, 24) == inst.expiry
    assert (c.strike, c.option_type, c.lot_size) == (48000.0, "CE", 15)
    assert c.underlying == "NSE:NIFTY BANK"
    parsed = parse_option_symbol(inst.symbol, cal)
    assert parsed is not None and parsed.expiry == D(2024, 4, 25)


def test_fallback_only_without_a_usable_row(cal: MarketCalendar) -> None:
    bare = Instrument(1, 1, "NIFTY22NOV18000CE", "", 0.0, None, 0.0, 0.05, 50, "", "", "NFO")
    c = option_contract(bare, cal)
    assert c is not None and c.source == "symbol"
    assert (c.expiry, c.strike, c.lot_size, c.underlying) == (
        D(2022, 11, 24),
        18000.0,
        50,
        "NSE:NIFTY 50",
    )
    # an equity or a future is never read as an option, whatever its symbol looks like
    eq = Instrument(2, 2, "BAJAJ FINANCE", "", 0.0, None, 0.0, 0.05, 1, "EQ", "NSE", "NSE")
    fut = Instrument(3, 3, "NIFTY22NOV18000CE", "", 0.0, None, 0.0, 0.05, 50, "FUT", "", "NFO")
    assert option_contract(eq, cal) is None
    assert option_contract(fut, cal) is None
    # a row typed PE whose symbol says CE is inconsistent: no contract
    pe = Instrument(4, 4, "NIFTY22NOV18000CE", "", 0.0, None, 0.0, 0.05, 50, "PE", "", "NFO")
    assert option_contract(pe, cal) is None
    # the master's row for the same symbol fills in a bare row
    full = Instrument(
        5, 5, "NIFTY22NOV18000CE", "NIFTY", 0.0, D(2022, 11, 24), 18000.0, 0.05, 50, "CE", "", "NFO"
    )
    got = option_contract(bare, cal, InstrumentMaster([full]))
    assert got is not None and got.source == "master"


def test_underlying_symbol() -> None:
    assert underlying_symbol("NIFTY") == "NSE:NIFTY 50"
    assert underlying_symbol("BANKNIFTY") == "NSE:NIFTY BANK"
    assert underlying_symbol("RELIANCE") == "NSE:RELIANCE"
