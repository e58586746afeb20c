"""Build a replayable session file from real vendor 1-minute bars (``aion session build``).

Input
-----
Vendor "IEOD" text files, no header, one row per instrument-minute (see
``aion/data/PROVENANCE.md`` sections 1-2)::

    SYMBOL,YYYYMMDD,HH:MM,open,high,low,close,volume,oi

prices in rupees, ``volume`` in shares/units traded in that minute, ``oi`` in units (futures only).
``.txt`` or ``.txt.gz``; a path may be a directory (every file in it); a file may hold many days
(``--date`` picks one) and several symbols. Optional ``--nifty-1s``: NSE's per-second NIFTY 50
series (``YYYY-MM-DD HH:MM:SS,value``, section 3).

Rules (all times IST; the output is deterministic: same inputs -> byte-identical file)
-------------------------------------------------------------------------------------
1. **Bars are end-labelled.** Row ``09:16`` covers 09:15:00-09:15:59; ``15:30`` covers
   15:29:00-15:29:59. Rows stamped 09:16..15:30 are the 375 *regular* bars.
2. **Regular bar -> 4 ticks** inside the covered minute ``m``:

   ========  ======================================================================
   ``m+1 s``  open
   ``m+15 s`` nearer extreme: whichever of high/low is closer to the open (tie -> high)
   ``m+30 s`` the other extreme
   ``m+50 s`` close
   ========  ======================================================================

   The bar's volume ``v`` is split with integer arithmetic: ``q, r = divmod(v, 4)``; tick ``i``
   (0..3) gets ``q + (1 if i < r else 0)``, so the 4 increments sum exactly to ``v``. Decoding the
   minute's ticks therefore gives back the vendor bar exactly: first price = open, max = high,
   min = low, last = close, volume increase = volume.

   **Kite's density** (``ticks_per_minute`` K > 4, e.g. 60 or 120 for Kite's 1-2 ticks per
   second in full mode): tick ``i`` (0..K-1) at second ``i * 60 // K`` of the minute (several
   ticks share a second when K > 60); the price path visits open (tick 0), nearer extreme (tick
   ``K // 3``), other extreme (tick ``2K // 3``) and close (tick K-1) and is linear in paise
   between them (rounded to the paisa), so it never leaves [low, high]; the volume split is
   ``divmod(v, K)`` as above. The decoded bar is again the vendor bar exactly.
3. **Non-regular rows** (``09:08`` pre-open auction, ``15:31``-``15:33`` closing session, ``15:41``
   post-close trades, ``16:56``/``17:58`` housekeeping, any row outside 09:16..15:30) -> **one tick
   at the row's stamp** (HH:MM:00) at the row's close with the row's volume as its increment. So the
   pre-open row becomes one tick at 09:08:00 carrying the pre-open matched volume; closing-session
   rows land after 15:30:00, i.e. never inside a regular minute.
4. **Pre-open snapshot**: one frame at 09:00:00 with every instrument at ``volume_traded`` 0,
   ``last_price`` = the open of its first row of the day, ``oi`` = its first row's oi, day
   OHLC 0. A scanner subscribed before the open sees every token before any trade, so all of the
   day's volume arrives as increments and is counted exactly once.
5. **Tick fields** (units as in Kite: rupees, shares, epoch seconds):

   * ``volume_traded``: cumulative day volume (running sum of the increments, starts at 0);
   * ``last_traded_quantity``: this tick's increment, or the previous one when the increment is 0;
   * ``average_traded_price``: running day VWAP of the ticks = turnover / volume, rounded to paise
     (0 before the first traded share);
   * ``open/high/low`` (day): from the first *traded* tick (regular ticks and non-regular rows with
     volume > 0; for indices regular ticks only), 0 before it;
   * ``close``: previous session's close when the bars hold the previous trading day for that
     symbol (its last row stamped <= 15:33, i.e. the official/closing-session value when present),
     else 0.0; ``change`` = (last_price - close) / close * 100 (0 when close is 0);
   * ``last_trade_time`` = tick time for traded ticks (kept from the previous trade otherwise);
     ``exchange_timestamp`` = tick time;
   * ``oi`` from the bar (futures; OI updates ~every 3 min in the source); ``oi_day_high/low``
     running over non-zero OI;
   * market depth (5 levels) and ``total_buy/sell_quantity``: 0 - the vendor data has no order book.
6. **Frames**: all ticks with the same timestamp form one Kite binary frame (packets sorted by
   token); frames are in time order; record ``ts_ns`` = tick time in epoch ns. Every instrument is
   recorded in ``full`` mode: equities and futures as 184-byte full packets, indices (NIFTY 50,
   NIFTY BANK, INDIA VIX; ``token & 0xff == 9``) as 32-byte index full packets.
7. **Vendor name -> instrument** (:data:`VENDOR_INDEX_SYMBOLS`, :func:`resolve_vendor_symbol`):
   ``NIFTY`` -> ``NSE:NIFTY 50``, ``BANKNIFTY`` -> ``NSE:NIFTY BANK``, ``INDIAVIX`` ->
   ``NSE:INDIA VIX`` (also FINNIFTY, MIDCPNIFTY); ``<NAME>_F1`` / ``<NAME>_F2`` -> the near / next
   month future of ``NAME`` on that date, tradingsymbol ``<NAME><YY><MON>FUT`` (e.g.
   ``NFO:NIFTY22NOVFUT``). Monthly expiry = the master's contract for that month when the master
   has it, else the last Thursday of the month moved earlier over NSE holidays (XNSE calendar of
   pandas-market-calendars); the near month rolls the day after expiry. Any other name -> NSE
   equity ``NSE:<NAME>``.
8. **Tokens** come from the instrument master (bundled Kite dumps plus ``--instruments`` CSVs;
   equity and index tokens are stable). A contract missing from the master (the 2022 futures; an
   equity renamed since, e.g. TATAMOTORS, whose token 884737 is TMPV in the 2025 dump) gets the
   deterministic token ``(zlib.crc32(symbol.encode()) & 0xFFFFFF) << 8 | segment`` (segment NFO 2,
   NSE 1; ``symbol`` = ``EXCHANGE:TRADINGSYMBOL``) and a synthesised master row (instrument_type
   FUT/EQ, expiry, lot size from :data:`SYNTH_LOT_SIZES` or the master's latest contract of that
   name, tick_size 0.05, segment NFO-FUT / NSE). The session header embeds the master rows of every
   session instrument.
9. **NIFTY per-second** (``nifty_1s``): NIFTY 50's regular-session ticks come from the per-second
   values (seconds 09:15:00..15:29:59 of that date, last value per second) instead of the 4-tick
   path; a minute without any per-second value falls back to the 4-tick path; non-regular rows
   still come from the bars. Minute bars rebuilt from these ticks may differ slightly from the
   vendor bars (the per-second poll can miss the minute's extreme).
10. **Derived option chain** (``option_chain`` N > 0; DERIVED, NOT MARKET DATA): for NIFTY and
   BANKNIFTY (when their index bars are given) CE and PE contracts at the opening ATM strike
   (first regular open rounded to :data:`OPTION_STRIKE_STEPS`) +/- N strikes, near-month expiry
   (rule 7's monthly expiry; 2022-11-24 for November 2022), tradingsymbol
   ``<NAME><YY><MON><STRIKE><CE|PE>``, synthetic tokens as in rule 8, segment NFO-OPT. Each
   regular minute's premium OHLC is the Black-Scholes-Merton price at the index bar's open,
   high, low and close (max/min for high/low), volatility = INDIA VIX close of the minute / 100,
   time = trading time to 15:30 IST on expiry (:mod:`aion.options.expiry`), rounded to 0.05.
   Volume (lots x lot size) and OI are synthesised deterministically (Gaussian weight in distance
   from spot x a crc32 jitter). The header's ``derived`` entry says all this.
"""

from __future__ import annotations

import calendar
import datetime as dt
import gzip
import hashlib
import itertools
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aion.config import OptionsConfig
from aion.instruments.master import Instrument, InstrumentMaster
from aion.market.calendar import MarketCalendar
from aion.market.time import from_ist, parse_date
from aion.options.expiry import infer_monthly_expiry, time_to_expiry
from aion.options.greeks import greeks_batch
from aion.options.symbols import INDEX_UNDERLYINGS
from aion.replay.session_file import SessionWriter

__all__ = [
    "MAX_TICKS_PER_MINUTE",
    "MIN_TICKS_PER_MINUTE",
    "SYNTH_LOT_SIZES",
    "TICK_OFFSETS_S",
    "VENDOR_INDEX_SYMBOLS",
    "BuildResult",
    "VendorBar",
    "build_session",
    "monthly_expiry",
    "read_nifty_1s",
    "read_vendor_bars",
    "resolve_vendor_symbol",
    "synthetic_token",
]

VENDOR_INDEX_SYMBOLS: dict[str, str] = {**INDEX_UNDERLYINGS, "INDIAVIX": "NSE:INDIA VIX"}
"""Vendor index names -> ``EXCHANGE:TRADINGSYMBOL`` of the Kite index instrument."""

SYNTH_LOT_SIZES: dict[str, int] = {"NIFTY": 50, "BANKNIFTY": 25}
"""Lot sizes (units) for synthesised index futures; NSE values in force in Nov 2022."""

TICK_OFFSETS_S: tuple[int, int, int, int] = (1, 15, 30, 50)
"""Second offsets inside the covered minute: open, nearer extreme, other extreme, close."""

SNAPSHOT_HHMM = (9, 0)
REGULAR_FIRST_STAMP = 9 * 60 + 16  # end-labelled: 09:16 covers 09:15
REGULAR_LAST_STAMP = 15 * 60 + 30
PREV_CLOSE_LAST_STAMP = 15 * 60 + 33
_FUT_RE = re.compile(r"^(?P<name>.+)_F(?P<k>[12])$")
_SEGMENT_ID = {"NSE": 1, "NFO": 2}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_INDEX_PACKET, _FULL_PACKET = 32, 184


# ----------------------------------------------------------------------------------------------
# input
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


def _expand(paths: Iterable[str | Path]) -> list[Path]:
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


# ----------------------------------------------------------------------------------------------
# vendor name -> instrument
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


def _add_month(y: int, m: int, k: int) -> tuple[int, int]:
    i = y * 12 + (m - 1) + k
    return i // 12, i % 12 + 1


class _Resolver:
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
            y, m = _add_month(y, m, 1)
        y, m = _add_month(y, m, k - 1)
        exp, inst = self.expiry(name, y, m)
        if inst is not None:
            return inst, False
        tsym = f"{name}{y % 100:02d}{_MONTHS[m - 1]}FUT"
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
    return _resolve(_Resolver(master), vendor, date)


def _resolve(res: _Resolver, vendor: str, date: dt.date) -> tuple[Instrument, bool]:
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


# ----------------------------------------------------------------------------------------------
# derived option chain (``--option-chain N``)
OPTION_STRIKE_STEPS: dict[str, int] = {"NIFTY": 50, "BANKNIFTY": 100}
"""Strike interval (index points) of the derived chains; NSE's NIFTY/BANKNIFTY intervals, 2022."""

DERIVED_VOLATILITY = "INDIAVIX"
_DERIVED_BASE_LOTS = 400  # lots per minute at the money before the deterministic jitter
_DERIVED_BASE_OI_LOTS = 20_000  # open interest at the money at the open, lots


def _tick_price(x: float) -> float:
    """Round a premium to NSE's 0.05 tick; at least one tick."""
    return max(5, 5 * round(x * 20)) / 100.0


def _derive_option_chain(
    today: dict[str, list[VendorBar]],
    day: dt.date,
    res: _Resolver,
    width: int,
    rate: float,
    dividend_yield: float,
    trading_days_per_year: float,
    cal: MarketCalendar,
) -> tuple[list[tuple[Instrument, list[VendorBar]]], dict[str, Any]]:
    """Near-month NIFTY/BANKNIFTY options priced from the index bars (see ``build_session``)."""
    vix = {b.stamp: b.close for b in today.get(DERIVED_VOLATILITY, []) if b.regular}
    if not vix:
        raise ValueError(f"--option-chain needs {DERIVED_VOLATILITY} bars of {day} (volatility)")
    out: list[tuple[Instrument, list[VendorBar]]] = []
    meta: dict[str, Any] = {}
    for name, step in OPTION_STRIKE_STEPS.items():
        rows = sorted((b for b in today.get(name, []) if b.regular), key=lambda b: b.stamp)
        if not rows:
            continue
        expiry, _ = res.expiry(name, day.year, day.month)
        if day > expiry:
            expiry, _ = res.expiry(name, *_add_month(day.year, day.month, 1))
        atm = round(rows[0].open / step) * step
        strikes = [atm + i * step for i in range(-width, width + 1)]
        lot = SYNTH_LOT_SIZES[name]
        ends = [from_ist(day, b.stamp // 60, b.stamp % 60) for b in rows]
        t = np.array(
            [time_to_expiry(e, expiry, cal, trading_days_per_year).dte_years for e in ends]
        )
        last_vix = next(iter(vix.values()))
        sigma = np.empty(len(rows))
        for i, b in enumerate(rows):
            last_vix = vix.get(b.stamp, last_vix)
            sigma[i] = last_vix / 100.0
        # underlying O, H, L, C per minute -> premium at each (a premium is monotone in spot)
        spot = np.array([[b.open, b.high, b.low, b.close] for b in rows]).T  # (4, m)
        for strike in strikes:
            for kind in ("CE", "PE"):
                tsym = f"{name}{expiry.year % 100:02d}{_MONTHS[expiry.month - 1]}{strike}{kind}"
                token = synthetic_token(f"NFO:{tsym}", "NFO")
                inst = Instrument(
                    token,
                    token >> 8,
                    tsym,
                    name,
                    0.0,
                    expiry,
                    float(strike),
                    0.05,
                    lot,
                    kind,
                    "NFO-OPT",
                    "NFO",
                )
                prem = np.vstack(
                    [
                        greeks_batch(
                            spot[j],
                            float(strike),
                            t,
                            sigma,
                            kind == "CE",
                            rate=rate,
                            dividend_yield=dividend_yield,
                        )[0]
                        for j in range(4)
                    ]
                )
                weight = np.exp(-0.5 * ((spot[3] - strike) / (2.0 * step)) ** 2)
                oi = lot * round(_DERIVED_BASE_OI_LOTS * float(weight[0]) + 10)
                bars: list[VendorBar] = []
                for i, b in enumerate(rows):
                    o, h, lo, c = (_tick_price(float(x)) for x in prem[:, i])
                    jitter = 0.5 + (zlib.crc32(f"{tsym}:{b.stamp}".encode()) % 1000) / 1000.0
                    lots = 1 + int(_DERIVED_BASE_LOTS * float(weight[i]) * jitter)
                    oi += lot * (lots // 4 if (zlib.crc32(tsym.encode()) + b.stamp) % 3 else 0)
                    bars.append(
                        VendorBar(
                            f"derived:{tsym}",
                            day,
                            b.stamp,
                            o,
                            max(o, h, lo, c),
                            min(o, h, lo, c),
                            c,
                            lots * lot,
                            oi,
                        )
                    )
                out.append((inst, bars))
        meta[name] = {
            "underlying": VENDOR_INDEX_SYMBOLS[name],
            "expiry": expiry.isoformat(),
            "strikes": strikes,
            "lot_size": lot,
        }
    if not meta:
        raise ValueError(f"--option-chain needs NIFTY or BANKNIFTY index bars of {day}")
    return out, {
        "kind": "derived",
        "description": (
            "DERIVED, NOT MARKET DATA: European NIFTY/BANKNIFTY options priced each minute with "
            "Black-Scholes-Merton (aion.options.greeks) from the real index bars (premium at the "
            "minute's open, high, low and close), INDIA VIX close of the minute / 100 as "
            "volatility, time to expiry in trading time to 15:30 IST on expiry "
            "(aion.options.expiry); premiums rounded to 0.05 rupees. Volume and open interest are "
            "synthesised deterministically (Gaussian in distance from spot x a crc32 jitter)."
        ),
        "rate": rate,
        "dividend_yield": dividend_yield,
        "trading_days_per_year": trading_days_per_year,
        "volatility": VENDOR_INDEX_SYMBOLS[DERIVED_VOLATILITY],
        "strikes_each_side": width,
        "chains": meta,
    }


# ----------------------------------------------------------------------------------------------
# tick paths
@dataclass
class _Path:
    """Tick path of one instrument: parallel lists, time order."""

    t: list[int] = field(default_factory=list)  # epoch s
    px: list[int] = field(default_factory=list)  # paise
    inc: list[int] = field(default_factory=list)  # shares
    oi: list[int] = field(default_factory=list)
    traded: list[bool] = field(default_factory=list)

    def add(self, t: int, px: int, inc: int, oi: int, traded: bool) -> None:
        self.t.append(t)
        self.px.append(px)
        self.inc.append(inc)
        self.oi.append(oi)
        self.traded.append(traded)


def _paise(x: float) -> int:
    return round(x * 100)


MIN_TICKS_PER_MINUTE = len(TICK_OFFSETS_S)
MAX_TICKS_PER_MINUTE = 600
"""Bounds of ``ticks_per_minute`` (rule 2): the 4-tick path up to 10 ticks per second."""


def _bar_ticks(bar: VendorBar, start: int, path: _Path, per_minute: int) -> None:
    o, h, lo, c = (_paise(x) for x in (bar.open, bar.high, bar.low, bar.close))
    near, far = (h, lo) if abs(h - o) <= abs(o - lo) else (lo, h)
    q, r = divmod(bar.volume, per_minute)
    if per_minute == MIN_TICKS_PER_MINUTE:
        offsets: list[int] = list(TICK_OFFSETS_S)
        prices = [o, near, far, c]
    else:  # Kite's density: a linear path through the 4 anchors (rule 2)
        k = per_minute
        anchors = [0, k // 3, 2 * k // 3, k - 1]
        path_px = np.interp(np.arange(k), anchors, [o, near, far, c])
        prices = np.rint(path_px).astype(np.int64).tolist()
        offsets = [i * 60 // k for i in range(k)]
    for i, (off, px) in enumerate(zip(offsets, prices, strict=True)):
        path.add(start + off, px, q + (1 if i < r else 0), bar.oi, True)


def _instrument_path(
    bars: Sequence[VendorBar],
    date: dt.date,
    is_index: bool,
    per_second: dict[int, float] | None,
    per_minute: int = MIN_TICKS_PER_MINUTE,
) -> _Path:
    path = _Path()
    first = bars[0]
    path.add(from_ist(date, *SNAPSHOT_HHMM), _paise(first.open), 0, first.oi, False)
    by_minute: dict[int, list[int]] = {}
    if per_second:
        for sec in sorted(per_second):
            by_minute.setdefault(sec - sec % 60, []).append(sec)
    for bar in bars:
        stamp = from_ist(date, bar.stamp // 60, bar.stamp % 60)
        if bar.regular:
            start = stamp - 60
            secs = by_minute.get(start)
            if secs:
                for s in secs:
                    assert per_second is not None
                    path.add(s, _paise(per_second[s]), 0, bar.oi, True)
            else:
                _bar_ticks(bar, start, path, per_minute)
        else:
            traded = bar.volume > 0 and not is_index
            path.add(stamp, _paise(bar.close), bar.volume, bar.oi, traded)
    return path


def _running_max(x: np.ndarray, mask: np.ndarray, fill: int) -> np.ndarray:
    v = np.where(mask, x, fill)
    return np.maximum.accumulate(v)


def _ticks_array(
    path: _Path, inst: Instrument, prev_close: float, dtype: np.dtype, mode: int
) -> np.ndarray:
    n = len(path.t)
    t = np.asarray(path.t, dtype=np.int64)
    px = np.asarray(path.px, dtype=np.int64)
    inc = np.asarray(path.inc, dtype=np.int64)
    oi = np.asarray(path.oi, dtype=np.int64)
    traded = np.asarray(path.traded, dtype=bool)
    cum = np.cumsum(inc)
    turnover = np.cumsum(px * inc)
    with np.errstate(divide="ignore", invalid="ignore"):
        atp_paise = np.where(cum > 0, np.rint(turnover / np.maximum(cum, 1)), 0)
    idx = np.where(inc > 0, np.arange(n), -1)
    idx = np.maximum.accumulate(idx)
    ltq = np.where(idx >= 0, inc[np.maximum(idx, 0)], 0)
    seen = np.logical_or.accumulate(traded)
    first = int(np.argmax(traded)) if traded.any() else -1
    big = np.iinfo(np.int64).max
    high = _running_max(px, traded, 0)
    low = -_running_max(-px, traded, -big)
    opn = np.where(seen, px[first] if first >= 0 else 0, 0)
    high = np.where(seen, high, 0)
    low = np.where(seen, low, 0)
    tidx = np.maximum.accumulate(np.where(traded, np.arange(n), -1))
    ltt = np.where(tidx >= 0, t[np.maximum(tidx, 0)], 0)
    has_oi = oi > 0
    oi_hi = np.where(np.logical_or.accumulate(has_oi), _running_max(oi, has_oi, 0), 0)
    oi_lo = np.where(np.logical_or.accumulate(has_oi), -_running_max(-oi, has_oi, -big), 0)

    a = np.zeros(n, dtype=dtype)
    a["instrument_token"] = inst.instrument_token
    a["mode"] = mode
    a["packet_length"] = _INDEX_PACKET if inst.is_index else _FULL_PACKET
    a["tradable"] = not inst.is_index
    last = px / 100.0
    a["last_price"] = last
    a["open"] = opn / 100.0
    a["high"] = high / 100.0
    a["low"] = low / 100.0
    a["close"] = prev_close
    a["change"] = (last - prev_close) / prev_close * 100.0 if prev_close else 0.0
    a["exchange_timestamp"] = t
    if not inst.is_index:
        a["last_traded_quantity"] = ltq
        a["average_traded_price"] = atp_paise / 100.0
        a["volume_traded"] = cum
        a["last_trade_time"] = ltt
        a["oi"] = oi
        a["oi_day_high"] = oi_hi
        a["oi_day_low"] = oi_lo
    return a


# ----------------------------------------------------------------------------------------------
# build
@dataclass
class BuildResult:
    """Summary of a build: counts, times (epoch ns), output size (bytes)."""

    path: Path
    date: dt.date
    instruments: list[Instrument]
    vendor_symbols: dict[int, str]
    synthesised: list[str]
    prev_close: dict[str, float]
    frames: int
    ticks: int
    first_ns: int
    last_ns: int
    bytes: int


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_session(
    bars: Sequence[str | Path],
    date: dt.date | str,
    out: str | Path,
    *,
    nifty_1s: str | Path | None = None,
    instruments: Sequence[str | Path] = (),
    master: InstrumentMaster | None = None,
    compress: bool | None = None,
    description: str | None = None,
    option_chain: int = 0,
    options: OptionsConfig | None = None,
    ticks_per_minute: int = MIN_TICKS_PER_MINUTE,
) -> BuildResult:
    """Build the session of ``date`` (IST trading date) from vendor bar files into ``out``.

    ``bars``: files or directories of vendor 1-minute files. ``instruments``: extra Kite instrument
    CSVs merged over the master (default master: :meth:`InstrumentMaster.bundled`). ``compress``
    defaults to ``out`` ending in ``.gz``. See the module docstring for the rules.

    ``option_chain`` N > 0 adds a **derived** option chain (rule 10 of the module docstring):
    CE and PE at the N strikes each side of the opening ATM strike of NIFTY and BANKNIFTY (those
    whose index bars are given) for the near-month expiry, priced with ``options`` (rate,
    dividend yield, year basis; default :class:`~aion.config.OptionsConfig`). The header's
    ``derived`` entry describes it. ValueError when INDIA VIX bars are missing.

    ``ticks_per_minute`` K: ticks per regular bar (rule 2), from 4 (default) to
    :data:`MAX_TICKS_PER_MINUTE`; 60-120 is Kite's full-mode density (1-2 ticks per second).
    """
    if not MIN_TICKS_PER_MINUTE <= ticks_per_minute <= MAX_TICKS_PER_MINUTE:
        raise ValueError(
            f"ticks_per_minute must be {MIN_TICKS_PER_MINUTE}..{MAX_TICKS_PER_MINUTE}, "
            f"got {ticks_per_minute}"
        )
    if option_chain < 0:
        raise ValueError(f"option_chain must be >= 0 strikes each side, got {option_chain}")
    from aion.kite.encode import encode_frame
    from aion.kite.wire import MODE_FULL, TICK_DTYPE

    day = parse_date(date) if isinstance(date, str) else date
    files = _expand(bars)
    if master is None:
        master = InstrumentMaster.bundled()
    if instruments:
        master = master.merge(InstrumentMaster.from_csv(list(instruments)))

    today: dict[str, list[VendorBar]] = {}
    prev: dict[str, list[VendorBar]] = {}
    origin: dict[str, Path] = {}
    for f in files:
        rows = read_vendor_bars(f)
        syms = {r.symbol for r in rows if r.date == day}
        for s in syms:
            if s in origin:
                raise ValueError(f"vendor symbol {s!r} on {day} occurs in both {origin[s]} and {f}")
            origin[s] = f
        for r in rows:
            if r.date == day:
                today.setdefault(r.symbol, []).append(r)
            elif r.date < day:
                prev.setdefault(r.symbol, []).append(r)
    if not today:
        raise ValueError(f"no vendor bars dated {day} in {len(files)} file(s)")

    prev_close: dict[str, float] = {}
    for sym, rows in prev.items():
        pday = max(r.date for r in rows)
        closing = [r for r in rows if r.date == pday and r.stamp <= PREV_CLOSE_LAST_STAMP]
        if closing:
            prev_close[sym] = max(closing, key=lambda r: r.stamp).close

    per_second = read_nifty_1s(Path(nifty_1s), day) if nifty_1s is not None else None

    res = _Resolver(master)
    chosen: dict[int, tuple[Instrument, str]] = {}
    synthesised: list[str] = []
    arrays: list[np.ndarray] = []
    for sym in sorted(today):
        rows = sorted(today[sym], key=lambda r: r.stamp)
        stamps = [r.stamp for r in rows]
        if len(set(stamps)) != len(stamps):
            raise ValueError(f"{origin[sym]}: duplicate minute rows for {sym} on {day}")
        inst, synth = _resolve(res, sym, day)
        if inst.instrument_token in chosen:
            raise ValueError(
                f"vendor symbols {chosen[inst.instrument_token][1]!r} and {sym!r} both map to "
                f"{inst.symbol} (token {inst.instrument_token})"
            )
        if synth:
            clash = master.get(inst.instrument_token)
            if clash is not None:
                raise ValueError(
                    f"synthetic token {inst.instrument_token} for {inst.symbol} collides with "
                    f"{clash.symbol} in the master"
                )
            synthesised.append(inst.symbol)
        chosen[inst.instrument_token] = (inst, sym)
        ps = per_second if inst.symbol == "NSE:NIFTY 50" else None
        path = _instrument_path(rows, day, inst.is_index, ps, ticks_per_minute)
        arrays.append(_ticks_array(path, inst, prev_close.get(sym, 0.0), TICK_DTYPE, MODE_FULL))

    derived_meta: dict[str, Any] | None = None
    if option_chain > 0:
        oc = options or OptionsConfig()
        derived, derived_meta = _derive_option_chain(
            today,
            day,
            res,
            option_chain,
            oc.rate,
            oc.dividend_yield,
            oc.trading_days_per_year,
            MarketCalendar(),
        )
        for inst, rows in derived:
            clash = (
                master.get(inst.instrument_token) or chosen.get(inst.instrument_token, (None,))[0]
            )
            if clash is not None:
                raise ValueError(
                    f"synthetic token {inst.instrument_token} for {inst.symbol} collides with "
                    f"{clash.symbol}"
                )
            synthesised.append(inst.symbol)
            chosen[inst.instrument_token] = (inst, rows[0].symbol)
            path = _instrument_path(rows, day, False, None, ticks_per_minute)
            arrays.append(_ticks_array(path, inst, 0.0, TICK_DTYPE, MODE_FULL))

    ticks = np.concatenate(arrays)
    order = np.lexsort((ticks["instrument_token"], ticks["exchange_timestamp"]))
    ticks = ticks[order]
    ts = ticks["exchange_timestamp"].astype(np.int64)
    cuts = np.flatnonzero(np.diff(ts)) + 1
    bounds = [0, *cuts.tolist(), len(ticks)]

    insts = [chosen[t][0] for t in sorted(chosen)]
    start_ns = from_ist(day, *SNAPSHOT_HHMM) * 1_000_000_000
    header: dict[str, Any] = {
        "date": day.isoformat(),
        "description": description
        or (
            f"NSE session {day.isoformat()} built by `aion session build` from real vendor "
            "1-minute bars (see aion/data/PROVENANCE.md). Per-minute OHLCV equals the vendor "
            "bars exactly; the tick path inside each minute is synthesised "
            "(rules: aion.replay.builder)."
        ),
        "instruments": [i.to_row() for i in insts],
        "modes": {str(i.instrument_token): "full" for i in insts},
        "start_ns": start_ns,
        "tick_timing": (
            "synthesised: pre-open snapshot at 09:00:00 IST (volume 0); each regular bar "
            + (
                f"(end-labelled) -> ticks at +{TICK_OFFSETS_S} s of its covered minute (open, "
                "nearer extreme, other extreme, close)"
                if ticks_per_minute == MIN_TICKS_PER_MINUTE
                else f"(end-labelled) -> {ticks_per_minute} ticks spread over its covered minute "
                "on a linear path open -> nearer extreme -> other extreme -> close"
            )
            + "; non-regular rows -> one tick at the row stamp; "
            "exchange_timestamp = last_trade_time = record ts"
            + ("; NIFTY 50 regular ticks from the per-second NSE series" if per_second else "")
        ),
        "vendor_symbols": {str(t): chosen[t][1] for t in sorted(chosen)},
        "synthesised_instruments": synthesised,
        "prev_close": {
            chosen[t][0].symbol: prev_close.get(chosen[t][1], 0.0) for t in sorted(chosen)
        },
        "source_files": [
            {"name": f.name, "sha256": _sha256(f)}
            for f in sorted({*origin.values(), *([Path(nifty_1s)] if nifty_1s else [])})
        ],
        "depth": "not in the source data: depth and total buy/sell quantities are 0",
    }
    if derived_meta is not None:
        header["derived"] = {"option_chain": derived_meta}
        header["description"] += (
            " Includes a DERIVED option chain (Black-Scholes prices, synthesised volume/OI): "
            "see header['derived']."
        )
    outp = Path(out)
    with SessionWriter(outp, header, compress=compress) as w:
        for a, b in itertools.pairwise(bounds):
            w.write(int(ts[a]) * 1_000_000_000, encode_frame(ticks[a:b]))
    return BuildResult(
        path=outp,
        date=day,
        instruments=insts,
        vendor_symbols={t: chosen[t][1] for t in sorted(chosen)},
        synthesised=synthesised,
        prev_close={s: c for s, c in prev_close.items() if s in today},
        frames=len(bounds) - 1,
        ticks=len(ticks),
        first_ns=int(ts[0]) * 1_000_000_000,
        last_ns=int(ts[-1]) * 1_000_000_000,
        bytes=outp.stat().st_size,
    )
