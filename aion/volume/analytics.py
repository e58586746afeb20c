"""Per-instrument volume analytics of a scan, driven by the compute engine.

:class:`VolumeAnalytics` ties together the time-of-day baseline
(:mod:`aion.volume.baseline`), RVOL (:mod:`aion.volume.rvol`), the session and
INDIA VIX multipliers (:mod:`aion.volume.regime`), the F&O expiry adjustment
(:mod:`aion.volume.fno`), the session volume profile (:mod:`aion.volume.profile`)
and the 5/15/30/60-minute roll-ups (:mod:`aion.bars.rollup`). The compute engine
calls it with ticks (price + incremental volume), with every closed 1-minute bar,
and once per closed regular bar for the :class:`~aion.patterns.registry.InstrumentView`
fields; it writes its Redis keys into the engine's :class:`~aion.store.writer.StoreBatch`.

Determinism: ticks are held back until the bars that close after them are
evaluated, so each bar sees the profile and the VIX level as of its own close
(exchange time), whatever the batching of frames.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from aion.bars.rollup import RollupBuilder, session_minute
from aion.config import AionConfig
from aion.instruments.master import Instrument
from aion.market.calendar import MarketCalendar
from aion.market.time import SEGMENT_REGULAR, segment_of, to_ist, ymd
from aion.store import keys
from aion.store.writer import StoreBatch, encode_bar
from aion.volume.averages import bundled_daily_dir
from aion.volume.baseline import SESSION_MINUTES, BaselineSet, bundled_intraday_dir, learn_baselines
from aion.volume.fno import instrument_multiplier
from aion.volume.profile import VolumeProfiles
from aion.volume.regime import RegimeClassifier, VixTracker
from aion.volume.rvol import RvolTracker

_NO_TS = 2**62  # 'no held tick' sentinel for the earliest pending exchange time


@lru_cache(maxsize=4)
def cached_baselines(
    intraday_dir: str, daily_dir: str, sessions: int, min_sessions: int
) -> BaselineSet:
    """:func:`learn_baselines` with ``as_of=None`` (latest sessions), memoised per folders."""
    return learn_baselines(Path(intraday_dir), Path(daily_dir), None, sessions, min_sessions)


def baselines_for(config: AionConfig) -> BaselineSet:
    """The baseline set the config points at (bundled folders when unset)."""
    vc = config.volume
    intraday = vc.baseline.intraday_history_dir or str(bundled_intraday_dir())
    daily = vc.daily_history_dir or str(bundled_daily_dir())
    return cached_baselines(intraday, daily, vc.baseline.sessions, vc.baseline.min_sessions)


@dataclass
class BarAnalytics:
    """What one closed regular bar gets (the InstrumentView fields of the same names)."""

    minute_of_session: int
    expected_bar_volume: float
    rvol_cum: float
    rvol_bar: float
    threshold_multiplier: float
    regime: str
    vix: float
    profile: dict[str, float] = field(default_factory=dict)


@dataclass
class BarAnalyticsColumns:
    """:class:`BarAnalytics` of the n closed regular bars of one minute, as columns.

    Attributes:
        minute_of_session: int64 (n,).
        expected_bar_volume, rvol_cum, rvol_bar, threshold_multiplier, vix: float64 (n,)
            (shares, ratios, INDIA VIX points; NaN when unknown).
        regime: (n,) regime names ("" when unknown).
        profile: profile statistic name -> float64 (n,), NaN where a row lacks it
            (rupees for prices, shares for volumes; names as in :class:`BarAnalytics`).
    """

    minute_of_session: np.ndarray
    expected_bar_volume: np.ndarray
    rvol_cum: np.ndarray
    rvol_bar: np.ndarray
    threshold_multiplier: np.ndarray
    vix: np.ndarray
    regime: list[str]
    profile: dict[str, np.ndarray]

    @classmethod
    def from_rows(cls, rows: list[BarAnalytics]) -> BarAnalyticsColumns:
        """Columns of per-bar :class:`BarAnalytics`."""
        names = sorted({k for r in rows for k in r.profile})
        return cls(
            np.array([r.minute_of_session for r in rows], np.int64),
            np.array([r.expected_bar_volume for r in rows], np.float64),
            np.array([r.rvol_cum for r in rows], np.float64),
            np.array([r.rvol_bar for r in rows], np.float64),
            np.array([r.threshold_multiplier for r in rows], np.float64),
            np.array([r.vix for r in rows], np.float64),
            [r.regime for r in rows],
            {k: np.array([r.profile.get(k, math.nan) for r in rows], np.float64) for k in names},
        )

    def __len__(self) -> int:
        return int(self.minute_of_session.shape[0])

    def row(self, j: int) -> BarAnalytics:
        """Row ``j`` as :class:`BarAnalytics` (the profile holds only the row's finite values)."""
        prof = {k: float(v[j]) for k, v in self.profile.items() if math.isfinite(v[j])}
        return BarAnalytics(
            int(self.minute_of_session[j]),
            float(self.expected_bar_volume[j]),
            float(self.rvol_cum[j]),
            float(self.rvol_bar[j]),
            float(self.threshold_multiplier[j]),
            self.regime[j],
            float(self.vix[j]),
            prof,
        )


def _num(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


class VolumeAnalytics:
    """Volume statistics of every instrument slot of one scan.

    Args:
        instruments: the slots' instruments, in slot order.
        config: validated ``aion.yaml``.
        avg_volume: ``symbol -> 20-day average daily volume`` (shares, traded scale).
        baselines: time-of-day curves (default: :func:`baselines_for` ``config``).
        calendar: XNSE calendar for days to expiry (default: ``config.calendar``'s).
    """

    def __init__(
        self,
        instruments: list[Instrument],
        config: AionConfig,
        avg_volume: dict[str, float],
        baselines: BaselineSet | None = None,
        calendar: MarketCalendar | None = None,
    ) -> None:
        self.instruments = instruments
        self.config = config
        n = max(1, len(instruments))
        bs = baselines if baselines is not None else baselines_for(config)
        curves = [bs.get(i.symbol) for i in instruments]
        self.baseline_source = [c.source for c in curves]
        cum_share = np.zeros((n, SESSION_MINUTES + 1), np.float64)
        for s, c in enumerate(curves):
            cum_share[s] = c.cum_share
        avg = np.array([avg_volume.get(i.symbol, math.nan) for i in instruments] or [math.nan])
        self.rvol = RvolTracker(avg, cum_share)
        self.regimes = RegimeClassifier(config.sessions, config.vix_regimes)
        self.vix = VixTracker()
        self._vix_slots = np.array(
            [s for s, i in enumerate(instruments) if i.symbol == config.vix_regimes.symbol],
            np.int64,
        )
        ticks = np.array([i.tick_size for i in instruments] or [0.0], np.float64)
        self.profiles = VolumeProfiles(ticks, config.volume.profile)
        self.rollups = RollupBuilder(n)
        self._calendar = calendar
        self._fno_date = np.zeros(n, np.int64)
        self._prev_profile: list[dict[str, float]] = [{} for _ in range(n)]
        self._pending: list[tuple[np.ndarray, ...]] = []
        self._pending_min_ts = _NO_TS  # earliest exchange time held in _pending (epoch s)

    # -- ticks -------------------------------------------------------------------------------

    def on_ticks(
        self,
        slots: np.ndarray,
        ts: np.ndarray,
        dates: np.ndarray,
        price: np.ndarray,
        incr: np.ndarray,
    ) -> None:
        """Hold regular-session ticks for the profile and record VIX levels.

        slots int64 (n,), exchange time int64 epoch s (n,), session dates int64 YYYYMMDD,
        ``last_price`` float64 rupees, incremental volume int64 shares; arrival order.
        """
        if self._vix_slots.shape[0]:
            is_vix = np.isin(slots, self._vix_slots)
            if is_vix.any():
                self.vix.observe(ts[is_vix], price[is_vix])
        # the profile is the regular session's (the 09:08 auction print would dominate the POC)
        traded = (incr > 0) & (segment_of(ts) == SEGMENT_REGULAR)
        if traded.any():
            self._pending.append((slots[traded], ts[traded], dates[traded], price[traded],
                                  incr[traded]))  # fmt: skip
            self._pending_min_ts = min(self._pending_min_ts, int(ts[traded].min()))

    def _apply_pending(self, before: int | None) -> None:
        """Add held ticks with exchange time < ``before`` (all when None) to the profiles."""
        if not self._pending or (before is not None and self._pending_min_ts >= before):
            return  # nothing due: skip the concatenation (called once per closed bar)
        s, t, d, p, q = (np.concatenate(c) for c in zip(*self._pending, strict=True))
        take = np.ones(t.shape[0], np.bool_) if before is None else t < before
        if take.any():
            self.profiles.update(s[take], d[take], p[take], q[take])
        rest = ~take
        self._pending = [(s[rest], t[rest], d[rest], p[rest], q[rest])] if rest.any() else []
        self._pending_min_ts = int(t[rest].min()) if rest.any() else _NO_TS

    # -- bars --------------------------------------------------------------------------------

    def on_closed_bars(self, closed: np.ndarray, first_cumulative: np.ndarray) -> None:
        """See every closed 1-minute bar (all segments, before the regular ones are evaluated).

        ``first_cumulative`` int64 (slots,): Kite ``volume_traded`` at first sight
        (:class:`~aion.volume.state.VolumeStateManager`), seeds the cumulative of
        an instrument first seen during the regular session.
        """
        first = closed[closed["revision"] == 0]
        if first.shape[0]:
            self.rvol.on_first_bars(
                first["slot"].astype(np.int64),
                first["start"].astype(np.int64),
                first["segment"] == SEGMENT_REGULAR,
                first_cumulative,
            )

    def on_regular_bar(self, bar: np.void, date: int) -> BarAnalytics:
        """Analytics of one closed regular bar (``BAR_DTYPE`` row, revision 0)."""
        s = int(bar["slot"])
        start = int(bar["start"])
        end = start + 60
        self._apply_pending(end)
        m = int(session_minute(np.array([start]))[0])
        fno = self._fno_multiplier(s, date)
        rvol_cum, rvol_bar, exp_bar = self.rvol.update(s, date, m, int(bar["volume"]), fno)
        vix = self.vix.level_before(end)
        ist = to_ist(start)
        regime, mult = self.regimes.classify(ist.hour * 60 + ist.minute, vix)
        prof = self.profiles.stats(s)
        if prof:
            prev = self._prev_profile[s]
            if prev.get("date") == date:
                for k in ("poc", "vah", "val"):
                    prof[f"{k}_prev"] = prev[k]
            close = float(bar["close"])
            for node in ("hvn", "lvn"):
                levels = [v for k, v in prof.items() if k.startswith(f"{node}_")
                          and k[4:].isdigit()]  # fmt: skip
                if levels:
                    prof[node] = min(levels, key=lambda x: (abs(x - close), x))
            self._prev_profile[s] = {"date": date, **{k: prof[k] for k in ("poc", "vah", "val")}}
        return BarAnalytics(m, exp_bar, rvol_cum, rvol_bar, mult, regime, vix, prof)

    def on_regular_bars(self, bars: np.ndarray, dates: np.ndarray) -> BarAnalyticsColumns:
        """Analytics of the closed regular bars of one minute: ``BAR_DTYPE`` rows (n,)
        (revision 0, distinct slots), session dates int64 YYYYMMDD (n,)."""
        return BarAnalyticsColumns.from_rows(
            [self.on_regular_bar(b, d) for b, d in zip(bars, dates.tolist(), strict=True)]
        )

    def _fno_multiplier(self, s: int, date: int) -> float:
        inst = self.instruments[s] if s < len(self.instruments) else None
        if inst is None or inst.instrument_type not in ("FUT", "CE", "PE"):
            return 1.0
        if self._fno_date[s] != date:
            self._fno_date[s] = date
            cal = self._calendar or self.config.calendar.market_calendar()
            self._calendar = cal
            day = dt.date(date // 10_000, date // 100 % 100, date % 100)
            self.rvol.fno[s] = instrument_multiplier(
                inst.instrument_type, day, inst.expiry, inst.strike, math.nan,
                self.config.fno, cal,
            )  # fmt: skip
        return float(self.rvol.fno[s])

    # -- persistence -------------------------------------------------------------------------

    def record(
        self, symbol: str, bar: np.void, date: int, a: BarAnalytics, batch: StoreBatch
    ) -> None:
        """Write the bar's RVOL entry and the slot's profile into ``batch``."""
        s = int(bar["slot"])
        hhmm = to_ist(int(bar["start"])).strftime("%H:%M")
        entry = {
            "start": int(bar["start"]),
            "minute": a.minute_of_session,
            "volume": int(bar["volume"]),
            "cum_volume": int(self.rvol.cum[s]),
            "expected_bar": _num(a.expected_bar_volume),
            "expected_cum": _num(self.rvol.last_expected_cum[s]),
            "rvol_bar": _num(a.rvol_bar),
            "rvol_cum": _num(a.rvol_cum),
            "vix": _num(a.vix),
            "regime": a.regime,
            "multiplier": _num(a.threshold_multiplier),
            "poc": a.profile.get("poc"),
        }
        batch.bars.append((keys.rvol(symbol, date), {hhmm: json.dumps(entry, sort_keys=True)}))
        if a.profile:
            prices, vols = self.profiles.arrays(s)
            state: dict[str, str] = {k: repr(v) for k, v in a.profile.items()}
            state["bar_start"] = str(int(bar["start"]))
            state["baseline"] = self.baseline_source[s]
            state["bins"] = json.dumps(
                [[float(p), int(v)] for p, v in zip(prices, vols, strict=True) if v]
            )
            batch.state[keys.profile(symbol, date)] = state

    def record_bars(
        self, bars: np.ndarray, dates: np.ndarray, va: BarAnalyticsColumns, batch: StoreBatch
    ) -> None:
        """:meth:`record` for the bars of :meth:`on_regular_bars`."""
        for j, (b, d) in enumerate(zip(bars, dates.tolist(), strict=True)):
            self.record(self.instruments[int(b["slot"])].symbol, b, d, va.row(j), batch)

    def rollup(self, regular: np.ndarray, batch: StoreBatch) -> None:
        """Roll up closed regular 1-minute bars (revision 0) and write completed bars."""
        self._write_rollups(self.rollups.update(regular), batch)

    def finish(self, batch: StoreBatch) -> None:
        """Session end: apply held ticks and write the forming roll-ups."""
        self._apply_pending(None)
        self._write_rollups(self.rollups.finish(), batch)

    def _write_rollups(self, out: np.ndarray, batch: StoreBatch) -> None:
        for r in out:
            start = int(r["start"])
            ist = to_ist(start)
            date = ymd(ist.date())
            sym = self.instruments[int(r["slot"])].symbol
            bar = {
                "start": start,
                "open": round(float(r["open"]), 4),
                "high": round(float(r["high"]), 4),
                "low": round(float(r["low"]), 4),
                "close": round(float(r["close"]), 4),
                "volume": int(r["volume"]),
                "oi": int(r["oi"]),
                "ticks": int(r["ticks"]),
                "minutes": int(r["minutes"]),
            }
            key = keys.bars(sym, f"{int(r['timeframe'])}m", date)
            batch.bars.append((key, {ist.strftime("%H:%M"): encode_bar(bar)}))
