"""The scan universe: ``config/aion.yaml`` ``universe:`` resolved against the instrument master.

Entries (all optional, resolved at start-up):

- ``symbols`` and ``indices``: ``EXCHANGE:TRADINGSYMBOL`` (``NSE:RELIANCE``, ``NSE:NIFTY 50``);
- ``futures``: per underlying (the master's ``name`` column, e.g. ``NIFTY``), the ``near``
  (nearest expiry on or after the scan date), ``next`` and ``far`` month futures
  (``instrument_type`` ``FUT``);
- ``options``: per underlying, the CE and PE contracts of one expiry (``near``/``next``/``far``
  or a date) whose strikes lie within ``strikes`` listed strikes either side of at-the-money;
  ATM is the listed strike nearest to ``atm_strike``, else to the last price of ``spot``
  (asked of ``spot_price``, else the master's ``last_price`` column);
- ``modes``: per-symbol mode; everything else gets ``kite.default_mode`` (or the selector's).

Facts about contracts (expiry, strike, type) come from the master's columns, never from the
symbol string (DESIGN.md, "Instrument master").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aion.instruments.config import FuturesSelector, OptionsSelector, UniverseConfig
from aion.instruments.master import Instrument, InstrumentMaster
from aion.kite.wire import MODE_CODES

__all__ = ["Universe", "UniverseError", "resolve_universe"]

_MONTH_INDEX = {"near": 0, "next": 1, "far": 2}


class UniverseError(ValueError):
    """The universe cannot be resolved; ``str()`` is one line naming the entry and the fix."""


@dataclass
class Universe:
    """Resolved instruments and the mode of each (``MODE_LTP``/``MODE_QUOTE``/``MODE_FULL``).

    Both dicts are keyed by ``instrument_token`` and keep the order entries were added.
    """

    instruments: dict[int, Instrument] = field(default_factory=dict)
    modes: dict[int, int] = field(default_factory=dict)

    def add(self, inst: Instrument, mode: int) -> None:
        """Add ``inst`` (an instrument listed twice keeps its first mode)."""
        if inst.instrument_token not in self.instruments:
            self.instruments[inst.instrument_token] = inst
            self.modes[inst.instrument_token] = mode

    def __len__(self) -> int:
        return len(self.instruments)


def _lookup(master: InstrumentMaster, symbol: str, key: str) -> Instrument:
    inst = master.find(symbol)
    if inst is None:
        raise UniverseError(f"universe.{key}: {symbol!r} is not in the instrument master")
    return inst


def _derivatives(
    master: Iterable[Instrument], underlying: str, exchange: str, types: tuple[str, ...]
) -> list[Instrument]:
    return [
        i
        for i in master
        if i.name == underlying
        and i.exchange == exchange
        and i.instrument_type in types
        and i.expiry is not None
    ]


def _expiries(rows: list[Instrument], today: dt.date) -> list[dt.date]:
    return sorted({i.expiry for i in rows if i.expiry is not None and i.expiry >= today})


def futures_for(master: InstrumentMaster, sel: FuturesSelector, today: dt.date) -> list[Instrument]:
    """The futures ``sel`` names (near/next/far month on ``today``, an IST date)."""
    rows = _derivatives(master, sel.underlying, sel.exchange, ("FUT",))
    expiries = _expiries(rows, today)
    out: list[Instrument] = []
    for m in sel.months:
        k = _MONTH_INDEX[m]
        if k >= len(expiries):
            raise UniverseError(
                f"universe.futures: no {m}-month {sel.exchange} future of {sel.underlying!r} "
                f"expiring on or after {today} in the instrument master ({len(expiries)} found)"
            )
        out.extend(i for i in rows if i.expiry == expiries[k])
    return out


def options_for(
    master: InstrumentMaster,
    sel: OptionsSelector,
    today: dt.date,
    spot_price: Callable[[str], float | None] | None = None,
) -> list[Instrument]:
    """CE and PE contracts of ``sel``'s expiry within +/- ``sel.strikes`` strikes of ATM.

    Returns contracts sorted by (strike, CE before PE).

    Raises:
        UniverseError: no such expiry, or no price to locate ATM.
    """
    rows = _derivatives(master, sel.underlying, sel.exchange, ("CE", "PE"))
    expiries = _expiries(rows, today)
    if sel.expiry in _MONTH_INDEX:
        k = _MONTH_INDEX[sel.expiry]
        if k >= len(expiries):
            raise UniverseError(
                f"universe.options: no {sel.expiry} expiry of {sel.underlying!r} options on or "
                f"after {today} in the instrument master ({len(expiries)} found)"
            )
        expiry = expiries[k]
    else:
        expiry = dt.date.fromisoformat(sel.expiry)
        if expiry not in expiries:
            raise UniverseError(
                f"universe.options: {sel.underlying!r} has no options expiring {expiry} "
                "in the instrument master"
            )
    chain = [i for i in rows if i.expiry == expiry]
    strikes = sorted({i.strike for i in chain})
    ref = sel.atm_strike
    if ref is None:
        assert sel.spot is not None  # OptionsSelector requires spot or atm_strike
        price = spot_price(sel.spot) if spot_price is not None else None
        if price is None or not price > 0:
            spot = master.find(sel.spot)
            price = spot.last_price if spot is not None else None
        if price is None or not price > 0:
            raise UniverseError(
                f"universe.options: no price for {sel.spot!r} to locate the ATM strike of "
                f"{sel.underlying!r}; set atm_strike or provide Kite credentials"
            )
        ref = price
    atm = min(range(len(strikes)), key=lambda j: (abs(strikes[j] - ref), strikes[j]))
    lo, hi = max(0, atm - sel.strikes), min(len(strikes), atm + sel.strikes + 1)
    wanted = set(strikes[lo:hi])
    picked = [i for i in chain if i.strike in wanted]
    picked.sort(key=lambda i: (i.strike, i.instrument_type))
    return picked


def resolve_universe(
    cfg: UniverseConfig,
    master: InstrumentMaster,
    default_mode: str,
    today: dt.date,
    spot_price: Callable[[str], float | None] | None = None,
    symbols: Iterable[str] = (),
) -> Universe:
    """Resolve the configured universe (or just ``symbols`` when given) to tokens and modes.

    Args:
        cfg: the validated ``universe:`` section.
        master: the instrument master (Kite's dump of the day, or local CSVs).
        default_mode: ``ltp``/``quote``/``full`` for entries without their own mode.
        today: the scan's IST trading date (expiries before it are ignored).
        spot_price: symbol -> last price in rupees (Kite's LTP), or None.
        symbols: ``--symbols`` from the command line: replaces the configured universe.

    Raises:
        UniverseError: an entry is not in the master or cannot be resolved.
    """
    uni = Universe()

    def mode_of(inst: Instrument, own: str | None) -> int:
        return MODE_CODES[cfg.modes.get(inst.symbol) or own or default_mode]

    explicit = list(symbols)
    if explicit:
        for s in explicit:
            inst = _lookup(master, s, "symbols (--symbols)")
            uni.add(inst, mode_of(inst, None))
        return uni
    for key, group in (("symbols", cfg.symbols), ("indices", cfg.indices)):
        for s in group:
            inst = _lookup(master, s, key)
            uni.add(inst, mode_of(inst, None))
    for fsel in cfg.futures:
        for inst in futures_for(master, fsel, today):
            uni.add(inst, mode_of(inst, fsel.mode))
    for osel in cfg.options:
        for inst in options_for(master, osel, today, spot_price):
            uni.add(inst, mode_of(inst, osel.mode))
    return uni
