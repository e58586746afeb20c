"""Vendor input of ``aion session build``: the 1-minute "IEOD" files and NSE's NIFTY 50
per-second series (rules 1 and 9 of :mod:`aion.replay.builder`; formats in
``aion/data/PROVENANCE.md`` sections 1-3)."""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aion.market.time import from_ist

__all__ = [
    "PREV_CLOSE_LAST_STAMP",
    "REGULAR_FIRST_STAMP",
    "REGULAR_LAST_STAMP",
    "VendorBar",
    "expand_paths",
    "read_nifty_1s",
    "read_vendor_bars",
]

REGULAR_FIRST_STAMP = 9 * 60 + 16  # end-labelled: 09:16 covers 09:15
REGULAR_LAST_STAMP = 15 * 60 + 30
PREV_CLOSE_LAST_STAMP = 15 * 60 + 33
"""Row stamps (end-label minute of day, IST): the regular bars 09:16..15:30, and the last row
that can carry the previous session's close (the closing session ends 15:33)."""


@dataclass(frozen=True, slots=True)
class VendorBar:
    """One vendor row: ``stamp`` = end-label minute of day (IST), prices rupees, volume/oi units."""

    symbol: str
    date: dt.date
    stamp: int
    open: float
    high: float
    low: float
    close: float
    volume: int
    oi: int

    @property
    def regular(self) -> bool:
        """True for the 375 regular bars (stamps 09:16..15:30)."""
        return REGULAR_FIRST_STAMP <= self.stamp <= REGULAR_LAST_STAMP


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The files of ``paths`` (a directory gives its files, sorted, hidden ones skipped);
    ValueError for a missing path or an empty directory."""
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files = sorted(f for f in path.iterdir() if f.is_file() and not f.name.startswith("."))
            if not files:
                raise ValueError(f"bars directory {path} is empty")
            out.extend(files)
        elif path.is_file():
            out.append(path)
        else:
            raise ValueError(f"bars path {path} does not exist")
    return out


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8-sig")


def read_vendor_bars(path: Path) -> list[VendorBar]:
    """Parse one vendor 1-minute file (``.txt`` or gzip); ``ValueError`` naming file:line."""
    out: list[VendorBar] = []
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(",")
        try:
            if len(parts) != 9:
                raise ValueError(f"expected 9 fields, got {len(parts)}")
            sym, ymd, hhmm, o, h, lo, c, v, oi = parts
            hh, mm = hhmm.split(":")
            bar = VendorBar(
                sym.strip(),
                dt.datetime.strptime(ymd, "%Y%m%d").date(),
                int(hh) * 60 + int(mm),
                float(o),
                float(h),
                float(lo),
                float(c),
                int(float(v)),
                int(float(oi)),
            )
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: bad vendor row {line!r}: {exc}") from None
        if not (bar.low <= min(bar.open, bar.close) and max(bar.open, bar.close) <= bar.high):
            raise ValueError(
                f"{path}:{lineno}: inconsistent OHLC (low <= open,close <= high): {line!r}"
            )
        if bar.volume < 0:
            raise ValueError(f"{path}:{lineno}: negative volume: {line!r}")
        out.append(bar)
    return out


def read_nifty_1s(path: Path, date: dt.date) -> dict[int, float]:
    """Per-second NIFTY 50 values of ``date``: epoch second -> value (rupees/index points).

    Only 09:15:00..15:29:59 IST; the last value of a second wins.
    """
    lo, hi = from_ist(date, 9, 15), from_ist(date, 15, 30)
    prefix = date.isoformat()
    out: dict[int, float] = {}
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        line = line.strip()
        if not line.startswith(prefix):
            continue
        try:
            stamp, value = line.split(",")
            t = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
            sec = from_ist(date, t.hour, t.minute, t.second)
            val = float(value)
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: bad per-second row {line!r}: {exc}") from None
        if lo <= sec < hi:
            out[sec] = val
    if not out:
        raise ValueError(f"{path}: no per-second values in session hours of {date}")
    return out
