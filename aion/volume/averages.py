"""Daily average volume from Kite daily candles, on the scale of the traded session.

Reads a folder of Kite daily candles (``<SYMBOL>_day_*.csv[.gz]``, columns
``datetime,open,high,low,close,volume,oi``, as in ``aion/data/daily_kite``) and
computes, per symbol, the mean daily volume over the ``days`` sessions strictly
before the scanned date.

Kite's historical candles are back-adjusted for later corporate actions
(volumes multiplied by the split/bonus factor, see ``aion/data/PROVENANCE.md``
section 4). To compare with unadjusted intraday volume, the average is divided
by the symbol's factor from an adjustment-factor CSV (column
``daily_volume_over_intraday_volume``, e.g.
``derived_adjustment_factors_2022-11-11.csv``); symbols without a factor are
assumed unadjusted (factor 1).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import polars as pl


@dataclass(frozen=True)
class DailyAverage:
    """Average daily volume of one NSE equity before ``as_of``.

    Attributes:
        symbol: ``NSE:<TRADINGSYMBOL>``.
        avg_volume: mean daily volume, shares, on the unadjusted (as traded) scale.
        days: sessions averaged (== the requested window when ``ready``).
        adjustment_factor: Kite back-adjustment factor divided out (1.0 when none).
        last_session: the latest session used (strictly before ``as_of``).
    """

    symbol: str
    avg_volume: float
    days: int
    adjustment_factor: float
    last_session: dt.date
    ready: bool


def bundled_daily_dir() -> Path:
    """The bundled Kite daily candles (48 NIFTY-50 stocks, 2020-07-14 .. 2026-01-09)."""
    return Path(str(resources.files("aion") / "data" / "daily_kite"))


def bundled_adjustment_factors() -> Path:
    """The bundled derived adjustment factors for 2022-11-11 (PROVENANCE.md section 7)."""
    return Path(str(resources.files("aion") / "data" / "derived_adjustment_factors_2022-11-11.csv"))


def read_adjustment_factors(path: Path) -> dict[str, float]:
    """``symbol -> daily_volume_over_intraday_volume`` from an adjustment-factor CSV."""
    df = pl.read_csv(path)
    return {
        str(s): float(f)
        for s, f in zip(df["symbol"], df["daily_volume_over_intraday_volume"], strict=True)
    }


def daily_averages(
    daily_dir: Path,
    as_of: dt.date,
    days: int = 20,
    factors: dict[str, float] | None = None,
    symbols: set[str] | None = None,
) -> dict[str, DailyAverage]:
    """Average daily volume per symbol over the ``days`` sessions strictly before ``as_of``.

    Args:
        daily_dir: folder of ``<SYMBOL>_day_*.csv[.gz]`` Kite daily candles.
        as_of: the trading date being scanned (its own candle is never used).
        days: window length in sessions.
        factors: Kite adjustment factors per tradingsymbol (volume divided by it).
        symbols: restrict to these tradingsymbols (without exchange prefix).

    Returns:
        ``NSE:<SYMBOL> -> DailyAverage``; symbols with no session before ``as_of`` are absent.

    Raises:
        FileNotFoundError: ``daily_dir`` does not exist.
    """
    if not daily_dir.is_dir():
        raise FileNotFoundError(f"daily history folder not found: {daily_dir}")
    factors = factors or {}
    out: dict[str, DailyAverage] = {}
    for path in sorted(daily_dir.glob("*_day_*.csv*")):
        sym = path.name.split("_day_")[0]
        if symbols is not None and sym not in symbols:
            continue
        df = (
            pl.read_csv(path, columns=["datetime", "volume"])
            .with_columns(pl.col("datetime").str.slice(0, 10).str.to_date("%Y-%m-%d").alias("d"))
            .filter(pl.col("d") < as_of)
            .sort("d")
            .tail(days)
        )
        if df.height == 0:
            continue
        factor = factors.get(sym, 1.0)
        out[f"NSE:{sym}"] = DailyAverage(
            symbol=f"NSE:{sym}",
            avg_volume=float(df["volume"].mean()) / factor,  # type: ignore[arg-type]
            days=df.height,
            adjustment_factor=factor,
            last_session=df["d"][-1],
            ready=df.height == days,
        )
    return out
