"""Forward validation: what happened after each alert, from later 1-minute bars.

The rules (one trade per alert, prices in rupees, times in epoch seconds):

- **entry** at the alert's ``entry`` (the close of the bar that raised it) at that bar's
  end, ``t0 = bar_start + 60``; the trade is followed on the *later* bars of the same
  instrument, those starting at or after ``t0``;
- **window** W minutes: the bars starting in ``[t0, t0 + 60 W)``, W in 1, 2, 5, 10, 30, 60 by
  default (a bar starting at ``t0`` is the first minute after the alert);
- **exit**: the first bar whose range reaches the stop (long: ``low <= stop``; short:
  ``high >= stop``) or the target (long: ``high >= target``; short: ``low <= target``).
  **A bar that reaches both counts as a stop**: 1-minute bars do not say which came first,
  and the conservative reading is the loss. Fills are at the stop or target price exactly
  (no gap, slippage or costs);
- **outcome in R** (R = ``|entry - stop|``, the risk per unit): ``-1`` at the stop,
  ``+|target - entry| / R`` at the target; a trade still open when the window ends (or the
  instrument's data ends: ``truncated``) is marked at the last bar's close,
  ``(close - entry) / R`` for a long, ``(entry - close) / R`` for a short;
- **excursions**: MFE / MAE are the largest favourable / adverse moves from the entry over
  the bars from the first one to the exit bar (or window end), inclusive, floored at 0;
  in rupees per unit and in R;
- an alert with no later bar at all within a window has outcome ``no_data`` (R NaN) and is
  left out of the statistics.

The **random-entry baseline** (:func:`random_baseline`) applies the same stop/target rules
on the same instruments at the same times of day: for each alert, ``draws`` entries at the
close of a bar drawn uniformly among the instrument's bars starting from the alert's bar to
``jitter_min`` minutes after it, on a fair coin's side, with the alert's stop distance as a
fraction of its entry and its reward:risk ratio, the stop and target rounded to the tick
as the risk manager rounds them (:func:`aion.risk.manager.round_to_tick`: stop away from the
entry, target towards it, at least one tick from it). A seeded ``numpy.random.Generator``
visiting alerts in ``alert_id`` order makes it deterministic.

Why entries start at the alert's bar (the bias of drawing them around it): a detector fires
*after* a move (a breakout, a volume spike), so a random entry drawn *before* the alert's
bar has that move inside its window. With a reward:risk above 1, a large move of either sign
pays a coin flip on average (one side reaches +reward:risk, the other loses 1), so those
entries earned a look-ahead profit the alert itself could not have: on 2022-11-11 the draws
before the alert's bar averaged +0.09 R at 30 minutes against -0.01 R for the draws after
it. Drawn from the alert's bar on, the baseline sees only what the alert could still trade.
Unrounded stops and targets were a second, smaller bias: a stop between ticks triggers only
at the next tick beyond it, so the loss is larger than the -1 R booked.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

DEFAULT_WINDOWS_MIN: tuple[int, ...] = (1, 2, 5, 10, 30, 60)
"""Windows in minutes after the alert bar's close."""

SCHEMA: dict[str, Any] = {
    "alert_id": pl.Utf8,
    "symbol": pl.Utf8,
    "pattern": pl.Utf8,
    "direction": pl.Utf8,
    "confidence": pl.Float64,
    "bar_start": pl.Int64,
    "entry": pl.Float64,
    "stop": pl.Float64,
    "target": pl.Float64,
    "risk": pl.Float64,
    "window_min": pl.Int64,
    "bars": pl.Int64,
    "outcome": pl.Utf8,
    "exit_min": pl.Float64,
    "r": pl.Float64,
    "mfe": pl.Float64,
    "mae": pl.Float64,
    "mfe_r": pl.Float64,
    "mae_r": pl.Float64,
    "truncated": pl.Boolean,
}
"""Columns of :func:`validate_alerts` (``random_baseline`` adds ``draw``, Int64)."""


@dataclass(frozen=True)
class AlertTrade:
    """The trade an alert describes (parsed from an :class:`aion.alerts.manager.Alert` or
    its Redis stream fields).

    Attributes:
        bar_start: start of the alert's bar, epoch seconds.
        long: True for a long (BUY), False for a short (SELL).
        entry, stop, target: rupees.
    """

    alert_id: str
    symbol: str
    pattern: str
    direction: str
    confidence: float
    bar_start: int
    entry: float
    stop: float
    target: float

    @property
    def long(self) -> bool:
        return self.direction == "long"

    @classmethod
    def parse(cls, alert: Any) -> AlertTrade:
        """From an ``Alert`` (anything with ``fields()``) or a mapping of stream fields.

        The mapping needs ``alert_id``, ``symbol``, ``pattern``, ``direction``,
        ``confidence``, ``entry``, ``stop``, ``target`` and either ``bar_start`` (epoch s)
        or ``bar_time`` (ISO 8601 with offset, e.g. ``2022-11-11T10:45:00+0530``).

        Raises:
            ValueError: a missing field, a bad direction, or stop/target on the wrong side.
        """
        f: Mapping[str, Any] = alert.fields() if hasattr(alert, "fields") else alert
        try:
            if "bar_start" in f:
                start = int(f["bar_start"])
            else:
                start = int(
                    dt.datetime.strptime(str(f["bar_time"]), "%Y-%m-%dT%H:%M:%S%z").timestamp()
                )
            t = cls(
                alert_id=str(f["alert_id"]),
                symbol=str(f["symbol"]),
                pattern=str(f["pattern"]),
                direction=str(f["direction"]),
                confidence=float(f["confidence"]),
                bar_start=start,
                entry=float(f["entry"]),
                stop=float(f["stop"]),
                target=float(f["target"]),
            )
        except KeyError as exc:
            raise ValueError(f"alert is missing field {exc.args[0]!r}") from exc
        if t.direction not in ("long", "short"):
            raise ValueError(f"{t.alert_id}: direction {t.direction!r} is not long or short")
        sign = 1.0 if t.long else -1.0
        if not (sign * (t.entry - t.stop) > 0 and sign * (t.target - t.entry) > 0):
            raise ValueError(
                f"{t.alert_id}: stop {t.stop} / target {t.target} on the wrong side of "
                f"entry {t.entry} for a {t.direction}"
            )
        return t


@dataclass(frozen=True)
class Bars:
    """One instrument's 1-minute bars, ascending by start; float64/int64 arrays of shape (n,).

    Attributes:
        start: bar start, epoch seconds (int64).
        high, low, close: rupees (float64).
    """

    start: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    @classmethod
    def of(cls, bars: pl.DataFrame | Sequence[Mapping[str, Any]]) -> Bars:
        """From a polars frame or a list of bar dicts (``aion.store.queries.read_bars``),
        each with ``start``, ``high``, ``low``, ``close``; sorted here by ``start``."""
        if isinstance(bars, pl.DataFrame):
            start = bars["start"].to_numpy().astype(np.int64)
            hi, lo, cl = (bars[c].to_numpy().astype(np.float64) for c in ("high", "low", "close"))
        else:
            start = np.array([int(b["start"]) for b in bars], np.int64)
            hi = np.array([float(b["high"]) for b in bars], np.float64)
            lo = np.array([float(b["low"]) for b in bars], np.float64)
            cl = np.array([float(b["close"]) for b in bars], np.float64)
        order = np.argsort(start, kind="stable")
        return cls(start[order], hi[order], lo[order], cl[order])


def _follow(
    bars: Bars,
    t0: int,
    entry: float,
    stop: float,
    target: float,
    long: bool,
    windows: Sequence[int],
) -> list[dict[str, Any]]:
    """Outcome of one trade entered at ``t0`` for each window (rules in the module docstring)."""
    risk = abs(entry - stop)
    reward_r = abs(target - entry) / risk
    wmax = max(windows)
    i0 = int(np.searchsorted(bars.start, t0, "left"))
    i1 = int(np.searchsorted(bars.start, t0 + 60 * wmax, "left"))
    st, hi, lo, cl = bars.start[i0:i1], bars.high[i0:i1], bars.low[i0:i1], bars.close[i0:i1]
    if long:
        hit_stop, hit_target = lo <= stop, hi >= target
        fav, adv = hi - entry, entry - lo
    else:
        hit_stop, hit_target = hi >= stop, lo <= target
        fav, adv = entry - lo, hi - entry
    hits = np.flatnonzero(hit_stop | hit_target)
    first = int(hits[0]) if hits.shape[0] else -1
    mfe_run = np.maximum.accumulate(np.maximum(fav, 0.0)) if st.shape[0] else fav
    mae_run = np.maximum.accumulate(np.maximum(adv, 0.0)) if st.shape[0] else adv
    last_start = int(bars.start[-1]) if bars.start.shape[0] else -1
    out = []
    for w in windows:
        n = int(np.searchsorted(st, t0 + 60 * w, "left"))
        row: dict[str, Any] = {"window_min": int(w), "bars": n, "truncated": False}
        if 0 <= first < n:
            exit_i = first
            stopped = bool(hit_stop[first])  # both touched -> stop (conservative)
            row["outcome"] = "stop" if stopped else "target"
            row["r"] = -1.0 if stopped else reward_r
        elif n == 0:
            row.update(outcome="no_data", r=math.nan, exit_min=math.nan, mfe=math.nan,
                       mae=math.nan, mfe_r=math.nan, mae_r=math.nan)  # fmt: skip
            row["truncated"] = last_start < t0 + 60 * (w - 1)
            out.append(row)
            continue
        else:
            exit_i = n - 1
            row["outcome"] = "open"
            row["r"] = (cl[exit_i] - entry if long else entry - cl[exit_i]) / risk
            row["truncated"] = last_start < t0 + 60 * (w - 1)
        row["exit_min"] = (
            (int(st[exit_i]) + 60 - t0) / 60.0 if row["outcome"] != "open" else math.nan
        )
        mfe, mae = float(mfe_run[exit_i]), float(mae_run[exit_i])
        row.update(mfe=mfe, mae=mae, mfe_r=mfe / risk, mae_r=mae / risk)
        out.append(row)
    return out


def _as_bars(bars_by_symbol: Mapping[str, Any]) -> dict[str, Bars]:
    return {s: b if isinstance(b, Bars) else Bars.of(b) for s, b in bars_by_symbol.items()}


_EMPTY = Bars(np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty(0))


def _trade_rows(
    t: AlertTrade, bars: Bars, windows: Sequence[int], entry: float, stop: float,
    target: float, long: bool, start: int,
) -> list[dict[str, Any]]:  # fmt: skip
    base = {
        "alert_id": t.alert_id,
        "symbol": t.symbol,
        "pattern": t.pattern,
        "direction": "long" if long else "short",
        "confidence": t.confidence,
        "bar_start": start,
        "entry": entry,
        "stop": stop,
        "target": target,
        "risk": abs(entry - stop),
    }
    return [base | r for r in _follow(bars, start + 60, entry, stop, target, long, windows)]


def validate_alerts(
    alerts: Iterable[Any],
    bars_by_symbol: Mapping[str, Any],
    windows: Sequence[int] = DEFAULT_WINDOWS_MIN,
) -> pl.DataFrame:
    """Forward outcome of every alert in every window: one row per alert x window.

    Args:
        alerts: :class:`aion.alerts.manager.Alert` objects or mappings of their stream fields
            (see :meth:`AlertTrade.parse`).
        bars_by_symbol: symbol -> that instrument's regular 1-minute bars (a polars frame, a
            list of bar dicts as returned by ``aion.store.queries.read_bars``, or
            :class:`Bars`). A symbol without bars gives ``no_data`` rows.
        windows: window lengths in minutes (each >= 1).

    Returns:
        A frame with the columns of :data:`SCHEMA`, ordered by alert (input order) then window.

    Raises:
        ValueError: a malformed alert or a window < 1.
    """
    wins = _check_windows(windows)
    by_sym = _as_bars(bars_by_symbol)
    rows: list[dict[str, Any]] = []
    for a in alerts:
        t = AlertTrade.parse(a)
        bars = by_sym.get(t.symbol, _EMPTY)
        rows += _trade_rows(t, bars, wins, t.entry, t.stop, t.target, t.long, t.bar_start)
    return pl.DataFrame(rows, schema=SCHEMA, orient="row") if rows else pl.DataFrame(schema=SCHEMA)


def random_baseline(
    alerts: Iterable[Any],
    bars_by_symbol: Mapping[str, Any],
    windows: Sequence[int] = DEFAULT_WINDOWS_MIN,
    draws: int = 10,
    jitter_min: int = 30,
    seed: int = 20221111,
    tick_size: float | Mapping[str, float] = 0.05,
) -> pl.DataFrame:
    """Random-entry trades mirroring each alert (rules in the module docstring).

    Args:
        alerts, bars_by_symbol, windows: as for :func:`validate_alerts`.
        draws: random entries per alert (>= 1).
        jitter_min: entry bars are drawn among those starting from the alert's bar to this
            many minutes after it (>= 0; 0 means the alert's own bar, with only the side
            random).
        seed: seed of ``numpy.random.default_rng``.
        tick_size: rupees, one value or ``symbol -> tick`` (missing symbols: 0.05, NSE's
            equity and F&O tick); stop and target are rounded to it.

    Returns:
        :data:`SCHEMA` columns plus ``draw`` (Int64); ``alert_id`` and ``pattern`` are those
        of the mirrored alert; ``direction``, ``entry``, ``stop``, ``target`` the random
        trade's. Alerts whose instrument has no bar in the range give no rows.

    Raises:
        ValueError: a malformed alert, a window < 1, ``draws < 1``, ``jitter_min < 0`` or a
            tick size <= 0.
    """
    from aion.risk.manager import round_to_tick

    wins = _check_windows(windows)
    if draws < 1 or jitter_min < 0:
        raise ValueError("draws must be >= 1 and jitter_min >= 0")
    by_sym = _as_bars(bars_by_symbol)
    trades = sorted((AlertTrade.parse(a) for a in alerts), key=lambda t: t.alert_id)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for t in trades:
        tick = tick_size if isinstance(tick_size, float | int) else tick_size.get(t.symbol, 0.05)
        if not tick > 0:
            raise ValueError(f"{t.symbol}: tick size must be > 0, got {tick}")
        bars = by_sym.get(t.symbol, _EMPTY)
        lo = int(np.searchsorted(bars.start, t.bar_start, "left"))
        hi = int(np.searchsorted(bars.start, t.bar_start + 60 * jitter_min, "right"))
        if hi <= lo:
            continue
        stop_frac = abs(t.entry - t.stop) / t.entry
        rr = abs(t.target - t.entry) / abs(t.entry - t.stop)
        picks = rng.integers(lo, hi, size=draws)
        sides = rng.random(draws) < 0.5
        for d in range(draws):
            i, long = int(picks[d]), bool(sides[d])
            entry = float(bars.close[i])
            dist = stop_frac * entry
            sign = 1.0 if long else -1.0
            # the risk manager's rounding: stop away from the entry, target towards it
            stop = round_to_tick(entry - sign * dist, tick, up=not long)
            target = round_to_tick(entry + sign * rr * dist, tick, up=not long)
            if sign * (target - entry) < tick - 1e-9:
                target = round(entry + sign * tick, 4)
            start = int(bars.start[i])
            for r in _trade_rows(t, bars, wins, entry, stop, target, long, start):
                r["draw"] = d
                rows.append(r)
    schema = SCHEMA | {"draw": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def _check_windows(windows: Sequence[int]) -> tuple[int, ...]:
    wins = tuple(int(w) for w in windows)
    if not wins or min(wins) < 1:
        raise ValueError(f"windows must be >= 1 minute, got {list(windows)!r}")
    return wins
