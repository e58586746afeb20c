"""Instrument master: Kite's ``instruments`` CSV dump as an in-memory lookup.

Source format: the CSV served by Kite Connect's ``GET /instruments`` endpoint, columns (in this
order) ``instrument_token, exchange_token, tradingsymbol, name, last_price, expiry, strike,
tick_size, lot_size, instrument_type, segment, exchange``. Prices (``last_price``, ``strike``,
``tick_size``) are rupees; ``lot_size`` is units (shares / index units) per contract; ``expiry``
is an IST calendar date (empty for cash and index rows).

Accepted variations (both occur in the bundled dumps, see ``aion/data/PROVENANCE.md`` section 6):

* ``expiry`` written ``YYYY-MM-DD`` (official dump) or ``DD-MM-YYYY`` (a re-saved dump);
* numbers written ``0`` or ``0.0``;
* plain ``.csv`` or gzip-compressed ``.csv.gz`` (detected by the gzip magic, not the name).

Duplicates: when several files (or rows) carry the same ``instrument_token``, the later one wins.
The symbol index (``EXCHANGE:TRADINGSYMBOL``) is rebuilt from the surviving rows, so a token that
was renamed in a newer dump (e.g. ``884737`` TATAMOTORS in 2024 -> TMPV in 2025) answers only to
its new symbol.

Symbols are shown as ``EXCHANGE:TRADINGSYMBOL``: ``NSE:RELIANCE``, ``NSE:NIFTY 50``,
``NFO:NIFTY22NOVFUT``. Facts about futures/options (expiry, strike, lot size) come from the
master's columns, never from parsing the symbol string.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

__all__ = ["KITE_COLUMNS", "Instrument", "InstrumentMaster", "parse_expiry"]

KITE_COLUMNS: tuple[str, ...] = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)

_INT_COLUMNS = ("instrument_token", "exchange_token", "lot_size")
_FLOAT_COLUMNS = ("last_price", "strike", "tick_size")
_STR_COLUMNS = ("tradingsymbol", "name", "instrument_type", "segment", "exchange")


def parse_expiry(value: Any) -> dt.date | None:
    """Parse an expiry cell: ``YYYY-MM-DD``, ``DD-MM-YYYY``, a ``date``, or empty -> ``None``.

    Raises ``ValueError`` naming the bad value.
    """
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%d-%m-%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"bad expiry {text!r}: expected YYYY-MM-DD or DD-MM-YYYY")


def _num(value: Any, default: float = 0.0) -> float:
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    return float(text) if text else default


@dataclass(frozen=True, slots=True)
class Instrument:
    """One row of Kite's instrument master.

    ``last_price``, ``strike`` and ``tick_size`` are rupees; ``lot_size`` is units per contract
    (1 for cash equities, 0 for indices); ``expiry`` is the IST expiry date (``None`` for cash and
    index instruments).
    """

    instrument_token: int
    exchange_token: int
    tradingsymbol: str
    name: str
    last_price: float
    expiry: dt.date | None
    strike: float
    tick_size: float
    lot_size: int
    instrument_type: str
    segment: str
    exchange: str

    @property
    def symbol(self) -> str:
        """``EXCHANGE:TRADINGSYMBOL``, e.g. ``NSE:RELIANCE``, ``NFO:NIFTY22NOVFUT``."""
        return f"{self.exchange}:{self.tradingsymbol}"

    @property
    def is_index(self) -> bool:
        """True for index instruments (segment ``INDICES``), which never trade."""
        return self.segment == "INDICES"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Instrument:
        """Build from a dict keyed by Kite column names (strings or typed values)."""
        try:
            return cls(
                instrument_token=int(_num(row["instrument_token"])),
                exchange_token=int(_num(row.get("exchange_token"))),
                tradingsymbol=str(row["tradingsymbol"]),
                name=str(row.get("name") or ""),
                last_price=_num(row.get("last_price")),
                expiry=parse_expiry(row.get("expiry")),
                strike=_num(row.get("strike")),
                tick_size=_num(row.get("tick_size")),
                lot_size=int(_num(row.get("lot_size"))),
                instrument_type=str(row.get("instrument_type") or ""),
                segment=str(row.get("segment") or ""),
                exchange=str(row["exchange"]),
            )
        except KeyError as exc:
            raise ValueError(f"instrument row lacks column {exc.args[0]!r}: {row!r}") from None

    def to_row(self) -> dict[str, Any]:
        """Dict in Kite column order; ``expiry`` as ``YYYY-MM-DD`` or ``""``."""
        d = asdict(self)
        d["expiry"] = self.expiry.isoformat() if self.expiry else ""
        return {k: d[k] for k in KITE_COLUMNS}


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data


def _frame_to_instruments(df: pl.DataFrame, source: str) -> list[Instrument]:
    missing = [c for c in ("instrument_token", "tradingsymbol", "exchange") if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: not a Kite instruments CSV (missing columns {missing})")
    for col in KITE_COLUMNS:
        if col not in df.columns:
            df = df.with_columns(pl.lit("").alias(col))
    num = {
        c: pl.col(c).str.strip_chars().replace("", None).cast(pl.Float64).fill_null(0.0)
        for c in (*_INT_COLUMNS, *_FLOAT_COLUMNS)
    }
    try:
        df = df.with_columns(
            *[num[c].round(0).cast(pl.Int64).alias(c) for c in _INT_COLUMNS],
            *[num[c].alias(c) for c in _FLOAT_COLUMNS],
            *[pl.col(c).fill_null("").alias(c) for c in _STR_COLUMNS],
            pl.col("expiry").fill_null("").str.strip_chars().alias("expiry"),
        )
    except pl.exceptions.PolarsError as exc:
        raise ValueError(f"{source}: bad number in instruments CSV: {exc}") from None
    expiry_cache: dict[str, dt.date | None] = {}
    out: list[Instrument] = []
    cols = [df[c].to_list() for c in KITE_COLUMNS]
    # one object per distinct value of the repetitive columns (an option chain repeats its
    # name, type, segment, exchange, strikes and tick size thousands of times): about 10 MB
    # less for the ~40,000 bundled rows
    shared: dict[Any, Any] = {}
    one = shared.setdefault
    for tok, etok, ts, name, lp, exp, strike, tick, lot, itype, seg, exch in zip(
        *cols, strict=True
    ):
        if exp not in expiry_cache:
            try:
                expiry_cache[exp] = parse_expiry(exp)
            except ValueError as exc:
                raise ValueError(f"{source}: {exc}") from None
        out.append(
            Instrument(
                tok,
                etok,
                ts,
                one(name, name),
                one(lp, lp),
                expiry_cache[exp],
                one(strike, strike),
                one(tick, tick),
                lot,
                one(itype, itype),
                one(seg, seg),
                one(exch, exch),
            )
        )
    return out


class InstrumentMaster:
    """Token- and symbol-indexed set of :class:`Instrument` rows.

    Iteration order is the order in which tokens were first added.
    """

    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        self._by_token: dict[int, Instrument] = {}
        self._by_symbol: dict[str, Instrument] = {}
        self._add(instruments)

    def _add(self, instruments: Iterable[Instrument]) -> None:
        for inst in instruments:
            old = self._by_token.get(inst.instrument_token)
            if old is not None and self._by_symbol.get(old.symbol) is old:
                del self._by_symbol[old.symbol]
            self._by_token[inst.instrument_token] = inst
            self._by_symbol[inst.symbol] = inst

    # construction -----------------------------------------------------------------------------
    @classmethod
    def from_rows(cls, rows: Iterable[dict[str, Any]]) -> InstrumentMaster:
        """From dicts keyed by Kite column names (e.g. a session header's ``instruments``)."""
        return cls(Instrument.from_row(r) for r in rows)

    @classmethod
    def from_csv(cls, paths: str | Path | Iterable[str | Path]) -> InstrumentMaster:
        """Load one or more Kite instruments CSVs (plain or gzip); later files win per token."""
        if isinstance(paths, str | Path):
            paths = [paths]
        master = cls()
        for p in paths:
            path = Path(p)
            try:
                data = _read_bytes(path)
            except OSError as exc:
                raise ValueError(f"cannot read instruments CSV {path}: {exc}") from None
            try:
                df = pl.read_csv(io.BytesIO(data), infer_schema=False)
            except pl.exceptions.PolarsError as exc:
                raise ValueError(f"{path}: cannot parse as CSV: {exc}") from None
            master._add(_frame_to_instruments(df, str(path)))
        return master

    @classmethod
    def bundled(cls) -> InstrumentMaster:
        """The dumps shipped in ``aion/data/instruments/`` (see PROVENANCE.md section 6).

        Files are loaded oldest first so newer dumps win per token: the 2017 official mocks, then
        the 2024-04-06 NFO dump, then the 2025-10-24 NSE EQ + INDICES dump.
        """
        root = resources.files("aion").joinpath("data", "instruments")
        names = sorted(n.name for n in root.iterdir() if n.name.endswith((".csv", ".csv.gz")))
        # mocks (2017) first, then dated dumps by their date suffix
        names.sort(key=lambda n: (not n.startswith("kiteconnect-mocks"), n[-17:]))
        with resources.as_file(root) as folder:
            return cls.from_csv([Path(folder) / n for n in names])

    # lookup -----------------------------------------------------------------------------------
    def by_token(self, token: int) -> Instrument:
        """Instrument for a Kite ``instrument_token``; ``KeyError`` naming the token if absent."""
        try:
            return self._by_token[int(token)]
        except KeyError:
            raise KeyError(
                f"instrument_token {token} not in the instrument master ({len(self)} rows)"
            ) from None

    def by_symbol(self, symbol: str) -> Instrument:
        """Instrument for ``EXCHANGE:TRADINGSYMBOL`` (``NSE:HDFCBANK``); ``KeyError`` if absent."""
        try:
            return self._by_symbol[symbol]
        except KeyError:
            hint = "" if ":" in symbol else " (expected EXCHANGE:TRADINGSYMBOL, e.g. NSE:RELIANCE)"
            raise KeyError(f"symbol {symbol!r} not in the instrument master{hint}") from None

    def get(self, token: int) -> Instrument | None:
        """Instrument for a token, or ``None``."""
        return self._by_token.get(int(token))

    def find(self, symbol: str) -> Instrument | None:
        """Instrument for a symbol, or ``None``."""
        return self._by_symbol.get(symbol)

    def __contains__(self, token: object) -> bool:
        return token in self._by_token

    def __len__(self) -> int:
        return len(self._by_token)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_token.values())

    def merge(self, other: InstrumentMaster | Iterable[Instrument]) -> InstrumentMaster:
        """New master with ``other``'s rows added on top (``other`` wins per token)."""
        out = InstrumentMaster(self)
        out._add(other)
        return out

    def subset(self, tokens: Iterable[int]) -> InstrumentMaster:
        """New master with only the given tokens (``KeyError`` on an unknown token)."""
        return InstrumentMaster(self.by_token(t) for t in tokens)

    def to_rows(self) -> list[dict[str, Any]]:
        """All rows as dicts in Kite column order (``expiry`` ``YYYY-MM-DD`` or ``""``)."""
        return [i.to_row() for i in self]

    def __repr__(self) -> str:
        return f"InstrumentMaster({len(self)} instruments)"
