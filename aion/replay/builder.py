"""Build a replayable session file from real vendor 1-minute bars (``aion session build``).

The stages, one module each: :mod:`aion.replay.vendor_bars` (reading the vendor files),
:mod:`aion.replay.resolve` (vendor names -> instruments), :mod:`aion.replay.derived_chain`
(the derived option chain) and :mod:`aion.replay.tick_paths` (bars -> ticks); this module
runs them and writes the session file. The rules below are the whole specification.

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
7. **Vendor name -> instrument** (:mod:`aion.replay.resolve`):
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

import datetime as dt
import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aion.instruments.master import Instrument, InstrumentMaster
from aion.market.calendar import MarketCalendar
from aion.market.time import from_ist, parse_date
from aion.options.config import OptionsConfig
from aion.replay.derived_chain import derive_option_chain
from aion.replay.resolve import Resolver, resolve
from aion.replay.session_file import SessionWriter
from aion.replay.tick_paths import (
    MAX_TICKS_PER_MINUTE,
    MIN_TICKS_PER_MINUTE,
    SNAPSHOT_HHMM,
    TICK_OFFSETS_S,
    instrument_path,
    ticks_array,
)
from aion.replay.vendor_bars import (
    PREV_CLOSE_LAST_STAMP,
    VendorBar,
    expand_paths,
    read_nifty_1s,
    read_vendor_bars,
)

__all__ = ["BuildResult", "build_session"]


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
    dividend yield, year basis; default :class:`~aion.options.config.OptionsConfig`). The header's
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
    files = expand_paths(bars)
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

    res = Resolver(master)
    chosen: dict[int, tuple[Instrument, str]] = {}
    synthesised: list[str] = []
    arrays: list[np.ndarray] = []
    for sym in sorted(today):
        rows = sorted(today[sym], key=lambda r: r.stamp)
        stamps = [r.stamp for r in rows]
        if len(set(stamps)) != len(stamps):
            raise ValueError(f"{origin[sym]}: duplicate minute rows for {sym} on {day}")
        inst, synth = resolve(res, sym, day)
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
        path = instrument_path(rows, day, inst.is_index, ps, ticks_per_minute)
        arrays.append(ticks_array(path, inst, prev_close.get(sym, 0.0), TICK_DTYPE, MODE_FULL))

    derived_meta: dict[str, Any] | None = None
    if option_chain > 0:
        oc = options or OptionsConfig()
        derived, derived_meta = derive_option_chain(
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
            path = instrument_path(rows, day, False, None, ticks_per_minute)
            arrays.append(ticks_array(path, inst, 0.0, TICK_DTYPE, MODE_FULL))

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
