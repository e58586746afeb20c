"""Option contracts: facts from the instrument master, a strict symbol parser as fallback.

An option's underlying, expiry, strike and type come from the instrument master's columns
(``name``, ``expiry``, ``strike``, ``instrument_type``; see :mod:`aion.instruments.master`).
:func:`parse_option_symbol` reads a Kite NFO/BFO option tradingsymbol only when the master
lacks the row. Kite writes option tradingsymbols in two shapes (Kite Connect docs, "Instruments"):

* monthly contracts ``<NAME><YY><MON><STRIKE><CE|PE>``: ``NIFTY22NOV18000CE``; the expiry day is
  not in the symbol and is inferred by the NSE monthly rule
  (:func:`aion.options.expiry.infer_monthly_expiry`);
* weekly contracts ``<NAME><YY><M><DD><STRIKE><CE|PE>``, ``M`` = ``1``-``9`` for January to
  September and ``O``, ``N``, ``D`` for October to December: ``NIFTY22N1718000CE`` expires
  2022-11-17.

The parser is strict: the whole string must match, the exchange (when given) must be a
derivatives segment (``NFO``, ``BFO``), the name must end in a letter (``&`` or ``-`` allowed
inside), the date must exist and the strike must be positive. Anything else is "not an option":
``NSE:BAJAJ FINANCE``, ``NSE:RELIANCE``, ``NFO:NIFTY22NOVFUT``, ``NSE:NIFTY22NOV18000CE``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from aion.instruments.master import Instrument, InstrumentMaster
from aion.market.calendar import MarketCalendar
from aion.options.expiry import infer_monthly_expiry

__all__ = [
    "INDEX_UNDERLYINGS",
    "OptionContract",
    "option_contract",
    "parse_option_symbol",
    "underlying_symbol",
]

INDEX_UNDERLYINGS: dict[str, str] = {
    "NIFTY": "NSE:NIFTY 50",
    "BANKNIFTY": "NSE:NIFTY BANK",
    "FINNIFTY": "NSE:NIFTY FIN SERVICE",
    "MIDCPNIFTY": "NSE:NIFTY MID SELECT",
}
"""Kite ``name`` of NSE index derivatives -> the index instrument (``EXCHANGE:TRADINGSYMBOL``)."""

OPTION_EXCHANGES = ("NFO", "BFO")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKLY_MONTH = {**{str(i): i for i in range(1, 10)}, "O": 10, "N": 11, "D": 12}
_NAME = r"(?P<name>[A-Z0-9][A-Z0-9&\-]*?[A-Z&\-])"
_STRIKE = r"(?P<strike>[1-9]\d*(?:\.\d+)?)(?P<type>CE|PE)"
_MONTHLY_RE = re.compile(rf"{_NAME}(?P<yy>\d\d)(?P<mon>{'|'.join(_MONTHS)}){_STRIKE}")
_WEEKLY_RE = re.compile(rf"{_NAME}(?P<yy>\d\d)(?P<m>[1-9OND])(?P<dd>\d\d){_STRIKE}")


@dataclass(frozen=True, slots=True)
class OptionContract:
    """One option: ``symbol`` ``EXCHANGE:TRADINGSYMBOL``; ``name`` the underlying's Kite name
    (``NIFTY``); ``underlying`` its instrument symbol (``NSE:NIFTY 50``); ``expiry`` IST date
    (expires 15:30 IST); ``strike`` rupees; ``option_type`` ``CE`` or ``PE``; ``lot_size`` units
    (0 when unknown); ``source`` ``master`` or ``symbol`` (parsed fallback)."""

    symbol: str
    name: str
    underlying: str
    expiry: dt.date
    strike: float
    option_type: str
    lot_size: int = 0
    source: str = "master"

    @property
    def is_call(self) -> bool:
        """True for a call (``CE``)."""
        return self.option_type == "CE"


def underlying_symbol(name: str) -> str:
    """Underlying instrument of a derivative's Kite ``name``: an index for the index names in
    :data:`INDEX_UNDERLYINGS`, else the NSE equity ``NSE:<name>``."""
    return INDEX_UNDERLYINGS.get(name, f"NSE:{name}")


def parse_option_symbol(symbol: str, calendar: MarketCalendar) -> OptionContract | None:
    """Parse ``[EXCHANGE:]TRADINGSYMBOL`` of an NSE option; None when it is not one.

    Fallback only (see the module docstring); monthly expiries are inferred on ``calendar``.
    Without an exchange prefix ``NFO`` is assumed.
    """
    exchange, _, tsym = symbol.rpartition(":")
    exchange = exchange or "NFO"
    if exchange not in OPTION_EXCHANGES:
        return None
    m = _MONTHLY_RE.fullmatch(tsym)
    if m is not None:
        year = 2000 + int(m["yy"])
        expiry = infer_monthly_expiry(year, _MONTHS.index(m["mon"]) + 1, calendar)
    else:
        m = _WEEKLY_RE.fullmatch(tsym)
        if m is None:
            return None
        try:
            expiry = dt.date(2000 + int(m["yy"]), _WEEKLY_MONTH[m["m"]], int(m["dd"]))
        except ValueError:
            return None
    name = m["name"]
    return OptionContract(
        symbol=f"{exchange}:{tsym}",
        name=name,
        underlying=underlying_symbol(name),
        expiry=expiry,
        strike=float(m["strike"]),
        option_type=m["type"],
        source="symbol",
    )


def option_contract(
    inst: Instrument, calendar: MarketCalendar, master: InstrumentMaster | None = None
) -> OptionContract | None:
    """The option contract of an instrument, or None when it is not an option.

    Uses the row's own columns when they describe an option (``instrument_type`` CE/PE with an
    expiry and a positive strike), else the row for the same symbol in ``master``, else the
    symbol parser (only for rows without an ``instrument_type``, so an ``EQ`` or ``FUT`` row is
    never read as an option).
    """
    for row in (inst, master.find(inst.symbol) if master is not None else None):
        if row is None:
            continue
        if row.instrument_type in ("CE", "PE") and row.expiry is not None and row.strike > 0:
            return OptionContract(
                symbol=row.symbol,
                name=row.name,
                underlying=underlying_symbol(row.name),
                expiry=row.expiry,
                strike=float(row.strike),
                option_type=row.instrument_type,
                lot_size=int(row.lot_size),
            )
    if inst.instrument_type in ("", "CE", "PE"):
        parsed = parse_option_symbol(inst.symbol, calendar)
        kind = inst.instrument_type
        if parsed is not None and parsed.option_type == (kind or parsed.option_type):
            return OptionContract(
                parsed.symbol,
                parsed.name,
                parsed.underlying,
                parsed.expiry,
                parsed.strike,
                parsed.option_type,
                int(inst.lot_size),
                "symbol",
            )
    return None
