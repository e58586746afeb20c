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
assumed unadjusted (factor 1). Prices are put on the traded scale with the
price factor of the same CSV (mean of ``intraday_high_over_daily_high`` and
``intraday_low_over_daily_low``): unadjusted price = Kite price x factor.

:func:`premarket_averages` is what ``aion premarket refresh-averages`` computes
per instrument: 20- and 55-day average volume and average close, the 55-day
high and low (the Turtle system's 55-day breakout levels, Faith, *Way of the
Turtle*, 2007) and a readiness flag, plus the reason for every file skipped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
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


@dataclass(frozen=True)
class AdjustmentFactor:
    """Kite back-adjustment of one symbol (PROVENANCE.md section 7).

    Attributes:
        volume: Kite daily volume / traded volume (divide Kite volumes by it).
        price: traded price / Kite price (multiply Kite prices by it).
    """

    volume: float = 1.0
    price: float = 1.0


def read_factors(path: Path) -> dict[str, AdjustmentFactor]:
    """``tradingsymbol -> AdjustmentFactor`` from an adjustment-factor CSV.

    Columns used: ``symbol``, ``daily_volume_over_intraday_volume`` and, when present,
    ``intraday_high_over_daily_high`` / ``intraday_low_over_daily_low`` (price factor =
    their mean; 1.0 when absent).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a required column is missing or a factor is not a positive number.
    """
    df = pl.read_csv(path)
    for col in ("symbol", "daily_volume_over_intraday_volume"):
        if col not in df.columns:
            raise ValueError(f"{path}: adjustment-factor CSV lacks column {col!r}")
    vol = df["daily_volume_over_intraday_volume"].cast(pl.Float64).to_list()
    if {"intraday_high_over_daily_high", "intraday_low_over_daily_low"} <= set(df.columns):
        hi = df["intraday_high_over_daily_high"].cast(pl.Float64).to_list()
        lo = df["intraday_low_over_daily_low"].cast(pl.Float64).to_list()
        price = [(h + low) / 2.0 for h, low in zip(hi, lo, strict=True)]
    else:
        price = [1.0] * len(vol)
    out = {}
    for sym, v, p in zip(df["symbol"].to_list(), vol, price, strict=True):
        if not (v > 0 and p > 0):
            raise ValueError(f"{path}: factor of {sym} must be a positive number")
        out[str(sym)] = AdjustmentFactor(float(v), float(p))
    return out


def read_adjustment_factors(path: Path) -> dict[str, float]:
    """``symbol -> daily_volume_over_intraday_volume`` from an adjustment-factor CSV."""
    return {sym: f.volume for sym, f in read_factors(path).items()}


def daily_files(daily_dir: Path) -> dict[str, Path]:
    """``tradingsymbol -> file`` of the Kite daily candles in ``daily_dir`` (sorted by name).

    Raises:
        FileNotFoundError: ``daily_dir`` does not exist.
    """
    if not daily_dir.is_dir():
        raise FileNotFoundError(f"daily history folder not found: {daily_dir}")
    return {p.name.split("_day_")[0]: p for p in sorted(daily_dir.glob("*_day_*.csv*"))}


def read_daily(path: Path, before: dt.date) -> pl.DataFrame:
    """Daily candles of one file strictly before ``before``, oldest first.

    Returns columns ``d`` (date, IST), ``open``, ``high``, ``low``, ``close`` (rupees, Kite
    scale) and ``volume`` (shares, Kite scale, float64); duplicate dates keep the last row.

    Raises:
        ValueError: the file lacks a Kite candle column or holds an unparseable date.
    """
    cols = ["datetime", "open", "high", "low", "close", "volume"]
    try:
        df = pl.read_csv(path, columns=cols)
        df = df.with_columns(
            pl.col("datetime").str.slice(0, 10).str.to_date("%Y-%m-%d").alias("d"),
            *[pl.col(c).cast(pl.Float64) for c in cols[1:]],
        )
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ValueError(
            f"{path.name}: not a Kite daily candle CSV ({exc})".splitlines()[0]
        ) from exc
    return df.filter(pl.col("d") < before).unique("d", keep="last").sort("d").select("d", *cols[1:])


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
    factors = factors or {}
    out: dict[str, DailyAverage] = {}
    for sym, path in daily_files(daily_dir).items():
        if symbols is not None and sym not in symbols:
            continue
        df = read_daily(path, as_of).tail(days)
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


@dataclass(frozen=True)
class PremarketAverages:
    """What the pre-market refresh prepares for one NSE equity and one trading date.

    Volumes are shares and prices rupees, both on the traded (unadjusted) scale: Kite
    volumes divided by ``volume_factor``, Kite prices multiplied by ``price_factor``.

    Attributes:
        symbol: ``NSE:<TRADINGSYMBOL>``.
        for_date: the trading date prepared (its own candle is never used).
        last_session: latest session used (strictly before ``for_date``).
        sessions: sessions used by the long window (<= ``long_days``).
        avg_volume_20, avg_volume_55: mean daily volume over the last ``short_days``
            / ``long_days`` sessions (NaN for the long one when fewer sessions exist).
        avg_price_20, avg_price_55: mean daily close over the same windows.
        high_55, low_55: highest high / lowest low of the last ``long_days`` sessions.
        volume_factor, price_factor: the Kite adjustment divided out / multiplied in.
        ready: both windows are full (``sessions == long_days``).
    """

    symbol: str
    for_date: dt.date
    last_session: dt.date
    sessions: int
    avg_volume_20: float
    avg_volume_55: float
    avg_price_20: float
    avg_price_55: float
    high_55: float
    low_55: float
    volume_factor: float
    price_factor: float
    ready: bool

    def fields(self) -> dict[str, str]:
        """Flat string fields (the Redis hash ``aion:{SYM}:averages``)."""
        out = {}
        for k, v in asdict(self).items():
            if isinstance(v, dt.date):
                out[k] = v.isoformat()
            elif isinstance(v, bool):
                out[k] = "1" if v else "0"
            elif isinstance(v, float):
                out[k] = repr(v)
            else:
                out[k] = str(v)
        return out


def premarket_averages(
    daily_dir: Path,
    for_date: dt.date,
    factors: dict[str, AdjustmentFactor] | None = None,
    short_days: int = 20,
    long_days: int = 55,
    symbols: set[str] | None = None,
    on_file: Callable[[str], None] | None = None,
) -> tuple[dict[str, PremarketAverages], dict[str, str]]:
    """Averages and breakout levels per symbol from the sessions strictly before ``for_date``.

    Args:
        daily_dir: folder of ``<SYMBOL>_day_*.csv[.gz]`` Kite daily candles.
        for_date: the trading date being prepared.
        factors: adjustment factors per tradingsymbol (absent: 1.0, unadjusted).
        short_days, long_days: window lengths in sessions (20 and 55 by default).
        symbols: restrict to these tradingsymbols (without exchange prefix).
        on_file: called with each tradingsymbol after its file is processed (progress).

    Returns:
        ``(averages, skipped)``: ``NSE:<SYMBOL> -> PremarketAverages`` and
        ``NSE:<SYMBOL> -> reason`` for files that could not give a ``short_days`` average.

    Raises:
        FileNotFoundError: ``daily_dir`` does not exist.
    """
    factors = factors or {}
    out: dict[str, PremarketAverages] = {}
    skipped: dict[str, str] = {}
    for sym, path in daily_files(daily_dir).items():
        if symbols is not None and sym not in symbols:
            continue
        name = f"NSE:{sym}"
        try:
            df = read_daily(path, for_date).tail(long_days)
        except ValueError as exc:
            skipped[name] = str(exc)
        else:
            if df.height < short_days:
                skipped[name] = f"only {df.height} sessions before {for_date} (need {short_days})"
            else:
                f = factors.get(sym, AdjustmentFactor())
                short = df.tail(short_days)
                full = df.height == long_days
                nan = float("nan")
                out[name] = PremarketAverages(
                    symbol=name,
                    for_date=for_date,
                    last_session=df["d"][-1],
                    sessions=df.height,
                    avg_volume_20=float(short["volume"].mean()) / f.volume,  # type: ignore[arg-type]
                    avg_volume_55=float(df["volume"].mean()) / f.volume if full else nan,  # type: ignore[arg-type]
                    avg_price_20=float(short["close"].mean()) * f.price,  # type: ignore[arg-type]
                    avg_price_55=float(df["close"].mean()) * f.price if full else nan,  # type: ignore[arg-type]
                    high_55=float(df["high"].max()) * f.price if full else nan,  # type: ignore[arg-type]
                    low_55=float(df["low"].min()) * f.price if full else nan,  # type: ignore[arg-type]
                    volume_factor=f.volume,
                    price_factor=f.price,
                    ready=full,
                )
        if on_file is not None:
            on_file(sym)
    return out, skipped
