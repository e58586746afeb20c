"""Time-of-day volume baseline: the expected share of a day's volume by minute of the session.

NSE volume follows an intraday U-shape (heavy open, quiet midday, heavy close), so a
flat ``daily average / 375`` expectation makes every opening minute look like a spike.
This module learns, per instrument, the cumulative share ``C(m)`` of the *daily*
volume traded in the first ``m`` minutes of the regular session (09:15-15:29 IST,
``m = 0..375``) and gives

* expected cumulative volume after ``m`` minutes = average daily volume x ``C(m)``;
* expected volume of session minute ``m`` (the bar starting 09:15 + m) =
  average daily volume x (``C(m+1) - C(m)``).

Shares are of the daily volume, which also holds the pre-open call auction and the
closing session, so ``C(375)`` is the regular session's mean fraction of the day
(about 0.97 for the bundled stocks) rather than 1.

Learning (from Kite intraday candles, ``<SYMBOL>_<interval>_*.csv[.gz]`` with Kite's
interval names ``minute``, ``3minute``, ``5minute``, ``10minute``, ``15minute``,
``30minute``, ``60minute``; start-labelled like ``aion/data/hourly_kite``):

1. a session is *complete* when it has a bar at every interval start of the regular
   session (09:15, 10:15, ... 15:15 for 60 minutes) and a daily candle (``daily_kite``)
   for the same date; special sessions (Muhurat) are thereby excluded;
2. per complete session and bucket: share = bucket volume / that day's daily volume
   (both from the same Kite series, so corporate-action adjustments cancel);
3. the latest ``sessions`` complete sessions strictly before ``as_of`` are used; when
   fewer than ``min_sessions`` exist before ``as_of`` (replaying 2022 with 2024-2026
   history), the latest ``sessions`` of the whole file are used and the baseline is
   marked ``after_as_of`` (only the *shape* is borrowed, never a volume level);
4. bucket shares are averaged over the sessions (arithmetic mean); their running sum
   gives ``C`` at the bucket edges, and minutes inside a bucket come from the monotone
   cubic (PCHIP, Fritsch & Carlson 1980) interpolation of ``C`` through those edges,
   which preserves every bucket's total exactly and never makes a minute's share
   negative. With 1-minute candles every minute is an edge and ``C`` is exact.

Fallback for an instrument without intraday history (or with fewer than
``min_sessions`` complete sessions): the market curve, the mean of ``C`` over every
instrument learned from the same folder; without any, a uniform curve ``C(m) = m/375``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl

from aion.market.time import REGULAR_CLOSE_MINUTE, REGULAR_OPEN_MINUTE
from aion.volume.averages import daily_files, read_daily

SESSION_MINUTES = REGULAR_CLOSE_MINUTE - REGULAR_OPEN_MINUTE
"""Regular-session minutes (375: 09:15-15:29 IST)."""

_INTERVAL_MINUTES = {
    "minute": 1,
    "3minute": 3,
    "5minute": 5,
    "10minute": 10,
    "15minute": 15,
    "30minute": 30,
    "60minute": 60,
}
_FILE_RE = re.compile(r"^(?P<sym>.+?)_(?P<iv>\d*minute)_.*\.csv(\.gz)?$")


def bundled_intraday_dir() -> Path:
    """The bundled Kite 60-minute candles (48 stocks, 2024-12-05 .. 2026-01-09)."""
    return Path(str(resources.files("aion") / "data" / "hourly_kite"))


@dataclass(frozen=True)
class VolumeBaseline:
    """The time-of-day curve of one instrument.

    Attributes:
        symbol: ``EXCHANGE:TRADINGSYMBOL`` (``""`` for the market/uniform curves).
        cum_share: float64 (376,), ``cum_share[m]`` = expected share of the daily volume
            traded in the first ``m`` regular minutes; non-decreasing, ``cum_share[0] = 0``.
        sessions: complete sessions learned from (0 for fallbacks).
        source: ``intraday`` (own history), ``market`` (mean curve of the folder) or
            ``uniform``.
        after_as_of: True when the sessions used lie after the prepared date.
    """

    symbol: str
    cum_share: np.ndarray
    sessions: int
    source: str
    after_as_of: bool = False

    def minute_share(self) -> np.ndarray:
        """float64 (375,): expected share of the daily volume in each session minute."""
        return np.diff(self.cum_share)

    def expected_cumulative(self, avg_daily_volume: float, minutes: int) -> float:
        """Expected volume (shares) of the first ``minutes`` regular minutes (0..375)."""
        return avg_daily_volume * float(self.cum_share[minutes])

    def expected_bar(self, avg_daily_volume: float, minute: int) -> float:
        """Expected volume (shares) of session minute ``minute`` (0 = the 09:15 bar)."""
        return avg_daily_volume * float(self.cum_share[minute + 1] - self.cum_share[minute])


def uniform_baseline(symbol: str = "") -> VolumeBaseline:
    """``C(m) = m / 375``: every minute expects 1/375 of the daily volume."""
    return VolumeBaseline(
        symbol, np.arange(SESSION_MINUTES + 1, dtype=np.float64) / SESSION_MINUTES, 0, "uniform"
    )


def cum_share_from_buckets(edges: np.ndarray, bucket_share: np.ndarray) -> np.ndarray:
    """Per-minute cumulative share from bucket shares (step 4 of the module docstring).

    Args:
        edges: int (k+1,) ascending bucket edges in session minutes, ``edges[0] = 0``,
            ``edges[-1] = 375``.
        bucket_share: float (k,) mean share of the daily volume per bucket (>= 0).

    Returns:
        float64 (376,) ``C(m)``, equal to the running bucket sum at every edge.

    Raises:
        ValueError: edges not strictly ascending from 0 to 375, or a negative share.
    """
    e = np.asarray(edges, dtype=np.float64)
    s = np.asarray(bucket_share, dtype=np.float64)
    if e.shape[0] != s.shape[0] + 1 or e[0] != 0 or e[-1] != SESSION_MINUTES:
        raise ValueError("edges must run from 0 to 375 with one more entry than bucket_share")
    if np.any(np.diff(e) <= 0) or np.any(s < 0):
        raise ValueError("edges must be strictly ascending and shares >= 0")
    # imported here: scipy.interpolate costs ~40 MB of RSS, and a scan whose baselines come
    # from the cache (aion.volume.analytics) never interpolates
    from scipy.interpolate import PchipInterpolator

    knots = np.concatenate(([0.0], np.cumsum(s)))
    curve = PchipInterpolator(e, knots)(np.arange(SESSION_MINUTES + 1, dtype=np.float64))
    curve[edges.astype(np.int64)] = knots  # exact at the edges
    return np.maximum.accumulate(np.maximum(curve, 0.0))


def _read_intraday(path: Path, interval: int) -> pl.DataFrame:
    """``d`` (date) and session-minute ``m`` (start) with ``volume`` of regular-session bars.

    Raises:
        ValueError: the file lacks a Kite candle column or holds an unparseable time.
    """
    try:
        df = pl.read_csv(path, columns=["datetime", "volume"])
        df = df.with_columns(
            pl.col("datetime").str.slice(0, 10).str.to_date("%Y-%m-%d").alias("d"),
            (
                pl.col("datetime").str.slice(11, 2).cast(pl.Int64) * 60
                + pl.col("datetime").str.slice(14, 2).cast(pl.Int64)
                - REGULAR_OPEN_MINUTE
            ).alias("m"),
            pl.col("volume").cast(pl.Float64),
        )
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ValueError(
            f"{path.name}: not a Kite intraday candle CSV ({exc})".splitlines()[0]
        ) from exc
    return df.filter((pl.col("m") >= 0) & (pl.col("m") < SESSION_MINUTES)).select(
        "d", "m", "volume"
    )


def session_bucket_shares(
    intraday: pl.DataFrame, daily: pl.DataFrame, interval: int
) -> tuple[np.ndarray, list[dt.date], np.ndarray]:
    """Per complete session, each bucket's share of the day's volume (steps 1-2).

    Args:
        intraday: columns ``d``, ``m`` (bar start, session minutes), ``volume``.
        daily: columns ``d``, ``volume`` (same Kite series).
        interval: bar length in minutes.

    Returns:
        ``(edges, dates, shares)``: int64 edges (k+1,), the complete sessions (ascending)
        and float64 shares (n_sessions, k).
    """
    starts = np.arange(0, SESSION_MINUTES, interval, dtype=np.int64)
    edges = np.concatenate((starts, [SESSION_MINUTES]))
    pos = {int(m): i for i, m in enumerate(starts)}
    day_vol = dict(zip(daily["d"].to_list(), daily["volume"].to_list(), strict=True))
    dates: list[dt.date] = []
    rows: list[np.ndarray] = []
    for (d,), grp in intraday.sort("d", "m").group_by(["d"], maintain_order=True):
        ms = grp["m"].to_list()
        dv = day_vol.get(d)
        if ms != list(pos) or dv is None or not dv > 0:
            continue
        dates.append(d)
        rows.append(grp["volume"].to_numpy() / dv)
    shares = np.array(rows, dtype=np.float64).reshape(len(rows), starts.shape[0])
    return edges, dates, shares


def learn_baseline(
    symbol: str,
    intraday_path: Path,
    daily_path: Path,
    as_of: dt.date | None,
    sessions: int,
    min_sessions: int,
) -> VolumeBaseline | None:
    """One instrument's curve (steps 1-4); None with fewer than ``min_sessions`` sessions.

    Raises:
        ValueError: the file name carries no Kite interval, or a CSV is malformed.
    """
    m = _FILE_RE.match(intraday_path.name)
    if m is None or m.group("iv") not in _INTERVAL_MINUTES:
        raise ValueError(f"{intraday_path.name}: no Kite interval (minute, 60minute...) in name")
    interval = _INTERVAL_MINUTES[m.group("iv")]
    daily = read_daily(daily_path, dt.date.max)
    edges, dates, shares = session_bucket_shares(
        _read_intraday(intraday_path, interval), daily, interval
    )
    n_before = sum(d < as_of for d in dates) if as_of is not None else len(dates)
    after = n_before < min_sessions
    upto = len(dates) if after else n_before
    used = shares[max(0, upto - sessions) : upto]
    if used.shape[0] < min_sessions:
        return None
    curve = cum_share_from_buckets(edges, used.mean(axis=0))
    return VolumeBaseline(symbol, curve, used.shape[0], "intraday", after and as_of is not None)


def intraday_files(intraday_dir: Path) -> list[Path]:
    """The Kite intraday candle files (``*minute_*.csv[.gz]``) of a folder, sorted by name.

    Raises:
        FileNotFoundError: ``intraday_dir`` does not exist.
    """
    if not intraday_dir.is_dir():
        raise FileNotFoundError(f"intraday history folder not found: {intraday_dir}")
    return sorted(intraday_dir.glob("*minute_*.csv*"))


@dataclass(frozen=True)
class BaselineSet:
    """Curves per instrument plus the fallback used for everything else."""

    curves: dict[str, VolumeBaseline]
    fallback: VolumeBaseline

    def get(self, symbol: str) -> VolumeBaseline:
        """The instrument's own curve, else the fallback (market or uniform)."""
        return self.curves.get(symbol, self.fallback)


def learn_baselines(
    intraday_dir: Path,
    daily_dir: Path,
    as_of: dt.date | None = None,
    sessions: int = 60,
    min_sessions: int = 20,
    symbols: set[str] | None = None,
    on_file: Callable[[str], None] | None = None,
) -> BaselineSet:
    """Curves of every NSE equity with intraday and daily candles in the two folders.

    Args:
        intraday_dir: folder of Kite intraday candles ``<SYMBOL>_<interval>_*.csv[.gz]``.
        daily_dir: folder of Kite daily candles ``<SYMBOL>_day_*.csv[.gz]``.
        as_of: the trading date being prepared (None: the latest sessions available).
        sessions, min_sessions: see the module docstring (step 3).
        symbols: restrict to these ``NSE:<SYMBOL>`` (the market curve still uses all).
        on_file: called with the tradingsymbol of every intraday file after it is read
            (progress; :func:`intraday_files` lists the files).

    Returns:
        A :class:`BaselineSet`; keys are ``NSE:<SYMBOL>``.

    Raises:
        FileNotFoundError: a folder does not exist.
    """
    files = intraday_files(intraday_dir)
    dailies = daily_files(daily_dir)
    curves: dict[str, VolumeBaseline] = {}
    for path in files:
        m = _FILE_RE.match(path.name)
        name = m.group("sym") if m is not None else path.name
        sym = f"NSE:{name}"
        if m is not None and name in dailies and sym not in curves:
            b = learn_baseline(sym, path, dailies[name], as_of, sessions, min_sessions)
            if b is not None:
                curves[sym] = b
        if on_file is not None:
            on_file(name)
    if curves:
        mean = np.mean([c.cum_share for c in curves.values()], axis=0)
        fallback = VolumeBaseline(
            "", mean, 0, "market", any(c.after_as_of for c in curves.values())
        )
    else:
        fallback = uniform_baseline()
    if symbols is not None:
        curves = {s: c for s, c in curves.items() if s in symbols}
    return BaselineSet(curves, fallback)
