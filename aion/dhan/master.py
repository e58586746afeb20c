"""Dhan's scrip master (security-id CSV) as aion instruments (``EXCHANGE:TRADINGSYMBOL``).

Source: DhanHQ v2 docs, "Instrument List" (https://dhanhq.co/docs/v2/instruments/): the compact
file ``https://images.dhan.co/api-data/api-scrip-master.csv`` with the columns
:data:`DHAN_COLUMNS` (in that order in the published file): exchange (``NSE``/``BSE``/``MCX``),
segment letter (``E`` equity, ``D`` derivatives, ``C`` currency, ``M`` commodity, ``I`` index),
security id, instrument name (``EQUITY``, ``INDEX``, ``FUTIDX``, ``OPTSTK``, ...), trading symbol,
lot units, Dhan's display symbol, expiry date (``YYYY-MM-DD HH:MM:SS``; ``0001-01-01`` or empty
when none), strike (``-0.01`` for futures), option type (``CE``/``PE``, ``XX`` when none), tick
size, expiry flag, exchange instrument type, series and the symbol name.

Mapping to :class:`aion.instruments.master.Instrument`:

* ``instrument_token`` is :func:`aion.dhan.wire.instrument_token` of the row's (segment,
  security id), the token the Dhan decoder writes into ticks; ``exchange_token`` is the
  security id.
* With a Kite instrument master (aion's bundled one by default) a row that Kite knows takes
  Kite's symbol and facts, so keys and alerts do not depend on the provider: cash and F&O rows
  by token (Dhan's security id is the exchange token, so the token is Kite's), index rows by
  exchange and Dhan's display symbol in capitals (``Nifty 50`` -> ``NSE:NIFTY 50``).
* Rows Kite does not know are built from Dhan's columns: exchange ``NSE``/``BSE``/``MCX`` with
  ``D`` rows on ``NFO``/``BFO`` and ``C`` rows on ``CDS``/``BCD`` (Kite's exchange names), the
  trading symbol as Dhan writes it, ``instrument_type`` ``FUT``/``CE``/``PE``/``EQ`` (indices
  ``EQ`` in segment ``INDICES``, as Kite lists them), tick size read as paise (the published
  file writes RELIANCE ``10.0000`` where Kite's master has 0.10 rupees).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path

import polars as pl

from aion.dhan.wire import instrument_token
from aion.instruments.master import Instrument, InstrumentMaster

__all__ = ["DHAN_COLUMNS", "SAMPLE_CSV", "dhan_segment", "load_scrip_master"]

DHAN_COLUMNS: tuple[str, ...] = (
    "SEM_EXM_EXCH_ID",
    "SEM_SEGMENT",
    "SEM_SMST_SECURITY_ID",
    "SEM_INSTRUMENT_NAME",
    "SEM_EXPIRY_CODE",
    "SEM_TRADING_SYMBOL",
    "SEM_LOT_UNITS",
    "SEM_CUSTOM_SYMBOL",
    "SEM_EXPIRY_DATE",
    "SEM_STRIKE_PRICE",
    "SEM_OPTION_TYPE",
    "SEM_TICK_SIZE",
    "SEM_EXPIRY_FLAG",
    "SEM_EXCH_INSTRUMENT_TYPE",
    "SEM_SERIES",
    "SM_SYMBOL_NAME",
)
_REQUIRED = ("SEM_EXM_EXCH_ID", "SEM_SEGMENT", "SEM_SMST_SECURITY_ID", "SEM_TRADING_SYMBOL")

#: A few rows in the published format (see ``aion/data/PROVENANCE.md`` section 9).
SAMPLE_CSV = Path(__file__).resolve().parents[1] / "data" / "dhan" / "api-scrip-master-sample.csv"

# (exchange, segment letter) -> (Dhan segment code, Kite exchange, Kite segment for cash/index)
_SEGMENTS: dict[tuple[str, str], tuple[int, str, str]] = {
    ("NSE", "I"): (0, "NSE", "INDICES"),
    ("BSE", "I"): (0, "BSE", "INDICES"),
    ("NSE", "E"): (1, "NSE", "NSE"),
    ("NSE", "D"): (2, "NFO", "NFO"),
    ("NSE", "C"): (3, "CDS", "CDS"),
    ("BSE", "E"): (4, "BSE", "BSE"),
    ("MCX", "M"): (5, "MCX", "MCX"),
    ("BSE", "C"): (7, "BCD", "BCD"),
    ("BSE", "D"): (8, "BFO", "BFO"),
}


def dhan_segment(exchange: str, segment: str) -> int:
    """Dhan's feed segment code of a scrip-master row (``NSE``, ``E`` -> 1 NSE_EQ).

    Raises ValueError naming the pair when Dhan's docs list no feed segment for it.
    """
    try:
        return _SEGMENTS[(exchange, segment)][0]
    except KeyError:
        msg = f"no Dhan feed segment for exchange {exchange!r} segment {segment!r}"
        raise ValueError(msg) from None


def _expiry(text: str) -> dt.date | None:
    text = text.strip()
    if not text or text.startswith("0001-01-01"):
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"bad SEM_EXPIRY_DATE {text!r}: expected YYYY-MM-DD[ HH:MM:SS]") from None


def _num(text: str) -> float:
    text = text.strip()
    return float(text) if text else 0.0


def _own_row(r: dict[str, str], token: int, sid: int) -> Instrument:
    _, exchange, segment = _SEGMENTS[(r["SEM_EXM_EXCH_ID"], r["SEM_SEGMENT"])]
    kind = r.get("SEM_INSTRUMENT_NAME", "")
    if kind.startswith("FUT"):
        itype, segment = "FUT", f"{segment}-FUT"
    elif kind.startswith("OPT"):
        itype, segment = r.get("SEM_OPTION_TYPE", ""), f"{segment}-OPT"
    else:
        itype = "EQ"
    is_index = segment == "INDICES"
    return Instrument(
        instrument_token=token,
        exchange_token=sid,
        tradingsymbol=r["SEM_TRADING_SYMBOL"],
        name=r.get("SM_SYMBOL_NAME", ""),
        last_price=0.0,
        expiry=_expiry(r.get("SEM_EXPIRY_DATE", "")),
        strike=max(_num(r.get("SEM_STRIKE_PRICE", "")), 0.0),
        tick_size=0.0 if is_index else _num(r.get("SEM_TICK_SIZE", "")) / 100,
        lot_size=0 if is_index else int(_num(r.get("SEM_LOT_UNITS", ""))),
        instrument_type=itype,
        segment=segment,
        exchange=exchange,
    )


def load_scrip_master(
    path: str | Path, kite: InstrumentMaster | None = None, *, use_kite: bool = True
) -> InstrumentMaster:
    """Read Dhan's compact scrip master CSV into an :class:`InstrumentMaster` keyed by the
    tokens the Dhan decoder writes (see the module docstring for the mapping).

    ``kite``: the Kite master whose symbols and facts win for the instruments it knows (default
    :meth:`InstrumentMaster.bundled`); ``use_kite=False`` maps every row from Dhan's columns
    alone. Rows on exchange/segment pairs without a feed segment (none in the published file
    today) are skipped. Raises ValueError (one line, naming the file) for a missing file, a
    file without the required columns, or a bad security id or expiry.
    """
    path = Path(path)
    try:
        df = pl.read_csv(io.BytesIO(path.read_bytes()), infer_schema=False)
    except OSError as exc:
        raise ValueError(f"cannot read Dhan scrip master {path}: {exc}") from None
    except pl.exceptions.PolarsError as exc:
        raise ValueError(f"{path}: cannot parse as CSV: {exc}") from None
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a Dhan scrip master (missing columns {missing})")
    if use_kite and kite is None:
        kite = InstrumentMaster.bundled()
    index_by_name = (
        {(i.exchange, i.tradingsymbol): i for i in kite if i.is_index} if kite is not None else {}
    )
    out: list[Instrument] = []
    for r in df.fill_null("").iter_rows(named=True):
        pair = (r["SEM_EXM_EXCH_ID"], r["SEM_SEGMENT"])
        if pair not in _SEGMENTS:
            continue
        try:
            sid = int(r["SEM_SMST_SECURITY_ID"])
            token = instrument_token(_SEGMENTS[pair][0], sid)
            own = _own_row(r, token, sid)
        except ValueError as exc:
            raise ValueError(f"{path}: security id {r['SEM_SMST_SECURITY_ID']!r}: {exc}") from None
        known = None
        if kite is not None:
            if own.is_index:
                key = (own.exchange, r.get("SEM_CUSTOM_SYMBOL", "").upper())
                known = index_by_name.get(key)
            else:
                known = kite.get(token)
                if known is not None and known.exchange != own.exchange:
                    known = None
        if known is not None:
            own = dataclasses.replace(known, instrument_token=token, exchange_token=sid)
        out.append(own)
    return InstrumentMaster(out)
