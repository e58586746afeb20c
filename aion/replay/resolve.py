"""Vendor names -> Kite instruments for ``aion session build`` (rules 7 and 8 of
:mod:`aion.replay.builder`): indices by name, ``<NAME>_F1``/``_F2`` to the near/next month
future on the session date, anything else to the NSE equity; contracts missing from the
instrument master get a deterministic synthetic token and a synthesised master row."""

from __future__ import annotations

import calendar
import datetime as dt
import re
import zlib

from aion.instruments.master import Instrument, InstrumentMaster
from aion.market.calendar import MarketCalendar
from aion.options.expiry import infer_monthly_expiry
from aion.options.symbols import INDEX_UNDERLYINGS

__all__ = [
    "MONTHS",
    "SYNTH_LOT_SIZES",
    "VENDOR_INDEX_SYMBOLS",
    "Resolver",
    "add_month",
    "monthly_expiry",
    "resolve",
    "resolve_vendor_symbol",
    "synthetic_token",
]

VENDOR_INDEX_SYMBOLS: dict[str, str] = {**INDEX_UNDERLYINGS, "INDIAVIX": "NSE:INDIA VIX"}
"""Vendor index names -> ``EXCHANGE:TRADINGSYMBOL`` of the Kite index instrument."""

SYNTH_LOT_SIZES: dict[str, int] = {"NIFTY": 50, "BANKNIFTY": 25}
"""Lot sizes (units) for synthesised index futures; NSE values in force in Nov 2022."""

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
"""Month codes of NFO tradingsymbols (``NIFTY22NOVFUT``)."""

_FUT_RE = re.compile(r"^(?P<name>.+)_F(?P<k>[12])$")
_SEGMENT_ID = {"NSE": 1, "NFO": 2}


def synthetic_token(symbol: str, exchange: str) -> int:
    """Deterministic token for a contract missing from the master.

    ``(zlib.crc32(symbol.encode()) & 0xFFFFFF) << 8 | segment``, symbol ``EXCHANGE:TRADINGSYMBOL``,
    segment NSE 1 / NFO 2 (Kite's low-byte segment codes, so price divisors stay right).
    """
    return ((zlib.crc32(symbol.encode()) & 0xFFFFFF) << 8) | _SEGMENT_ID[exchange]


def monthly_expiry(year: int, month: int, weekday: int = calendar.THURSDAY) -> dt.date:
    """NSE monthly F&O expiry rule on the XNSE calendar
    (:func:`aion.options.expiry.infer_monthly_expiry`)."""
    return infer_monthly_expiry(year, month, MarketCalendar(), weekday)


def add_month(y: int, m: int, k: int) -> tuple[int, int]:
    """(year, month) ``k`` months after ``(y, m)``."""
    i = y * 12 + (m - 1) + k
    return i // 12, i % 12 + 1


class Resolver:
    """Vendor names -> instruments of one master (rules 7-8), caching its futures by
    (name, expiry year, month)."""

    def __init__(self, master: InstrumentMaster) -> None:
        self.master = master
        self._futs: dict[tuple[str, int, int], Instrument] | None = None

    def futures_index(self) -> dict[tuple[str, int, int], Instrument]:
        if self._futs is None:
            futs: dict[tuple[str, int, int], Instrument] = {}
            for inst in self.master:
                if inst.instrument_type == "FUT" and inst.exchange == "NFO" and inst.expiry:
                    futs[(inst.name, inst.expiry.year, inst.expiry.month)] = inst
            self._futs = futs
        return self._futs

    def expiry(self, name: str, y: int, m: int) -> tuple[dt.date, Instrument | None]:
        inst = self.futures_index().get((name, y, m))
        if inst is not None and inst.expiry is not None:
            return inst.expiry, inst
        return monthly_expiry(y, m), None

    def future(self, name: str, k: int, date: dt.date) -> tuple[Instrument, bool]:
        y, m = date.year, date.month
        exp, _ = self.expiry(name, y, m)
        if date > exp:
            y, m = add_month(y, m, 1)
        y, m = add_month(y, m, k - 1)
        exp, inst = self.expiry(name, y, m)
        if inst is not None:
            return inst, False
        tsym = f"{name}{y % 100:02d}{MONTHS[m - 1]}FUT"
        found = self.master.find(f"NFO:{tsym}")
        if found is not None:
            return found, False
        lot = SYNTH_LOT_SIZES.get(name)
        if lot is None:
            same = [i for (n, _, _), i in self.futures_index().items() if n == name]
            lot = max(same, key=lambda i: i.expiry or dt.date.min).lot_size if same else 1
        token = synthetic_token(f"NFO:{tsym}", "NFO")
        return (
            Instrument(
                token, token >> 8, tsym, name, 0.0, exp, 0.0, 0.05, lot, "FUT", "NFO-FUT", "NFO"
            ),
            True,
        )

    def equity(self, name: str) -> tuple[Instrument, bool]:
        found = self.master.find(f"NSE:{name}")
        if found is not None:
            return found, False
        token = synthetic_token(f"NSE:{name}", "NSE")
        return Instrument(
            token, token >> 8, name, name, 0.0, None, 0.0, 0.05, 1, "EQ", "NSE", "NSE"
        ), True


def resolve_vendor_symbol(
    vendor: str, date: dt.date, master: InstrumentMaster
) -> tuple[Instrument, bool]:
    """Vendor name on ``date`` -> (instrument, synthesised?). See rule 7/8 of the module doc."""
    return resolve(Resolver(master), vendor, date)


def resolve(res: Resolver, vendor: str, date: dt.date) -> tuple[Instrument, bool]:
    """:func:`resolve_vendor_symbol` with ``res``'s master and cache."""
    if vendor in VENDOR_INDEX_SYMBOLS:
        sym = VENDOR_INDEX_SYMBOLS[vendor]
        inst = res.master.find(sym)
        if inst is None:
            raise ValueError(f"vendor index {vendor!r} -> {sym!r} is not in the instrument master")
        return inst, False
    m = _FUT_RE.match(vendor)
    if m:
        return res.future(m["name"], int(m["k"]), date)
    return res.equity(vendor)
