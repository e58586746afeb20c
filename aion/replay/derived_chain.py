"""The **derived** (not market data) NIFTY/BANKNIFTY option chain of ``aion session build
--option-chain N`` (rule 10 of :mod:`aion.replay.builder`): Black-Scholes-Merton premiums from
the real index bars at the real INDIA VIX, volume and OI synthesised deterministically."""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any

import numpy as np

from aion.instruments.master import Instrument
from aion.market.calendar import MarketCalendar
from aion.market.time import from_ist
from aion.options.expiry import time_to_expiry
from aion.options.greeks import greeks_batch
from aion.replay.resolve import (
    MONTHS,
    SYNTH_LOT_SIZES,
    VENDOR_INDEX_SYMBOLS,
    Resolver,
    add_month,
    synthetic_token,
)
from aion.replay.vendor_bars import VendorBar

__all__ = ["DERIVED_VOLATILITY", "OPTION_STRIKE_STEPS", "derive_option_chain"]

OPTION_STRIKE_STEPS: dict[str, int] = {"NIFTY": 50, "BANKNIFTY": 100}
"""Strike interval (index points) of the derived chains; NSE's NIFTY/BANKNIFTY intervals, 2022."""

DERIVED_VOLATILITY = "INDIAVIX"
_DERIVED_BASE_LOTS = 400  # lots per minute at the money before the deterministic jitter
_DERIVED_BASE_OI_LOTS = 20_000  # open interest at the money at the open, lots


def _tick_price(x: float) -> float:
    """Round a premium to NSE's 0.05 tick; at least one tick."""
    return max(5, 5 * round(x * 20)) / 100.0


def derive_option_chain(
    today: dict[str, list[VendorBar]],
    day: dt.date,
    res: Resolver,
    width: int,
    rate: float,
    dividend_yield: float,
    trading_days_per_year: float,
    cal: MarketCalendar,
) -> tuple[list[tuple[Instrument, list[VendorBar]]], dict[str, Any]]:
    """Near-month NIFTY/BANKNIFTY options priced from the index bars of ``today`` (vendor
    name -> that day's rows; rule 10 of :mod:`aion.replay.builder`): CE and PE at ``width``
    strikes each side of the opening ATM, as (instrument, derived vendor rows) pairs, and the
    header's ``derived`` description. ValueError without INDIA VIX bars or index bars."""
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
            expiry, _ = res.expiry(name, *add_month(day.year, day.month, 1))
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
                tsym = f"{name}{expiry.year % 100:02d}{MONTHS[expiry.month - 1]}{strike}{kind}"
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
