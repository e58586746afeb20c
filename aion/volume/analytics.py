"""Per-instrument volume analytics of a scan, driven by the compute engine.

:class:`VolumeAnalytics` ties together the time-of-day baseline
(:mod:`aion.volume.baseline`), RVOL (:mod:`aion.volume.rvol`), the session and
INDIA VIX multipliers (:mod:`aion.volume.regime`), the F&O expiry adjustment
(:mod:`aion.volume.fno`) and the session volume profile (:mod:`aion.volume.profile`).
The compute engine
calls it with ticks (price + incremental volume), with every closed 1-minute bar,
and once per closed regular bar for the :class:`~aion.patterns.registry.InstrumentView`
fields; it writes its Redis keys into the engine's :class:`~aion.store.batch.StoreBatch`.

Determinism: each bar sees the profile of the ticks that arrived before the tick
that closed it and the VIX level as of its own close (exchange time), whatever the
batching of frames (:meth:`VolumeAnalytics.on_ticks`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from aion.bars.rollup import session_minute
from aion.config import AionConfig
from aion.instruments.master import Instrument
from aion.market.calendar import MarketCalendar
from aion.market.time import (
    IST_OFFSET_S,
    REGULAR_CLOSE_MINUTE,
    REGULAR_OPEN_MINUTE,
    SEGMENT_REGULAR,
    minute_of_day_ist,
)
from aion.store import keys
from aion.store.batch import RvolColumns, StateColumns, StoreBatch
from aion.store.encode import hstack_cells, render_bins, render_cells, text_cells
from aion.volume.baseline import SESSION_MINUTES, BaselineSet
from aion.volume.baseline_store import (
    baseline_folders,
    prepared_baselines_path,
    prepared_or_learnt,
)
from aion.volume.fno import instrument_multiplier
from aion.volume.profile import VolumeProfiles
from aion.volume.regime import RegimeClassifier, VixTracker
from aion.volume.rvol import RvolTracker

_NO_TS = 2**62  # 'no held tick' sentinel for the earliest arrival clock held (epoch s)


@lru_cache(maxsize=4)
def cached_baselines(
    intraday_dir: str, daily_dir: str, sessions: int, min_sessions: int, prepared: str | None
) -> BaselineSet:
    """:func:`~aion.volume.baseline_store.prepared_or_learnt`, memoised per arguments (so a
    missing prepared file is reported once per process)."""
    return prepared_or_learnt(
        Path(intraday_dir), Path(daily_dir), sessions, min_sessions,
        Path(prepared) if prepared else None,
    )  # fmt: skip


def baselines_for(config: AionConfig) -> BaselineSet:
    """The baseline set the config points at (bundled folders when unset): the file
    ``aion premarket refresh-averages`` prepared in the data dir when it matches, else
    learnt now (``as_of=None``: the latest sessions of the folders)."""
    bc = config.volume.baseline
    intraday, daily = baseline_folders(config)
    prepared = prepared_baselines_path(config.data_dir())
    return cached_baselines(str(intraday), str(daily), bc.sessions, bc.min_sessions, str(prepared))


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
            (rupees for prices, shares for volumes; names as in :class:`BarAnalytics`:
            :meth:`VolumeProfiles.stats <aion.volume.profile.VolumeProfiles.stats>`'s plus
            ``poc_prev``/``vah_prev``/``val_prev`` (the previous bar's, same session) and
            ``hvn``/``lvn``, the node nearest the bar's close, ties to the lower price).
    """

    minute_of_session: np.ndarray
    expected_bar_volume: np.ndarray
    rvol_cum: np.ndarray
    rvol_bar: np.ndarray
    threshold_multiplier: np.ndarray
    vix: np.ndarray
    regime: list[str]
    profile: dict[str, np.ndarray]
    _lists: tuple[list[list[Any]], list[tuple[str, list[float]]]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __len__(self) -> int:
        return int(self.minute_of_session.shape[0])

    def row(self, j: int) -> BarAnalytics:
        """Row ``j`` as :class:`BarAnalytics` (the profile holds only the row's finite values).

        The columns are turned into Python lists once, at the first call.
        """
        if self._lists is None:
            self._lists = (
                [
                    self.minute_of_session.tolist(),
                    self.expected_bar_volume.tolist(),
                    self.rvol_cum.tolist(),
                    self.rvol_bar.tolist(),
                    self.threshold_multiplier.tolist(),
                    self.regime,
                    self.vix.tolist(),
                ],
                [(k, v.tolist()) for k, v in self.profile.items()],
            )
        scalars, profile = self._lists
        m, e, rc, rb, tm, rg, vx = (c[j] for c in scalars)
        finite = {k: x for k, c in profile if (x := c[j]) == x}  # x == x: not NaN
        return BarAnalytics(m, e, rc, rb, tm, rg, vx, finite)


_RVOL_FIELDS = (  # the RVOL entry's keys in json.dumps(sort_keys=True) order; decimals (-1: int)
    ("cum_volume", -1), ("expected_bar", 6), ("expected_cum", 6), ("minute", -1),
    ("multiplier", 6), ("poc", 6), ("regime", 0), ("rvol_bar", 6), ("rvol_cum", 6),
    ("start", -1), ("vix", 6), ("volume", -1),
)  # fmt: skip
_PREV = ("poc", "vah", "val")


@njit(cache=True)
def _select_ticks(
    slots: np.ndarray, ts: np.ndarray, incr: np.ndarray, is_vix: np.ndarray, clock: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:  # pragma: no cover - compiled
    """Indices of the INDIA VIX ticks and of the regular-session ticks with volume (in
    arrival order), the exchange clock at each of the latter's arrival (running maximum of
    ``ts`` from ``clock``, the tick included; epoch s) and the clock after the last tick.
    slots int64 (n,), ts int64 epoch s (n,), incr int64 shares (n,), is_vix bool (slots,)."""
    n = slots.shape[0]
    vix = np.empty(n, np.int64)
    traded = np.empty(n, np.int64)
    arrival = np.empty(n, np.int64)
    nv = nt = 0
    for i in range(n):
        clock = max(clock, ts[i])
        if is_vix[slots[i]]:
            vix[nv] = i
            nv += 1
        if incr[i] > 0:
            minute = ((ts[i] + IST_OFFSET_S) % 86_400) // 60
            if REGULAR_OPEN_MINUTE <= minute < REGULAR_CLOSE_MINUTE:
                traded[nt] = i
                arrival[nt] = clock
                nt += 1
    return vix[:nv], traded[:nt], arrival[:nt], clock


def _nearest(levels: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Per row of float64 (n, k) ``levels`` (NaN: none), the one nearest float64 (n,) ``close``,
    ties to the lower level; NaN for a row without levels."""
    d = np.abs(levels - close[:, None])
    d = np.where(np.isnan(d), np.inf, d)
    best = d.min(axis=1)
    pick = np.where(d == best[:, None], levels, np.inf).min(axis=1)
    return np.where(np.isfinite(best), pick, math.nan)


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
        rows: dict[int, int] = {}  # id of a curve's array -> its row
        curve_of = np.array(
            [rows.setdefault(id(c.cum_share), len(rows)) for c in curves] or [0], np.int64
        )
        distinct = {id(c.cum_share): c.cum_share for c in curves}
        table = np.zeros((max(1, len(rows)), SESSION_MINUTES + 1), np.float64)
        for key, row in rows.items():
            table[row] = distinct[key]
        avg = np.array([avg_volume.get(i.symbol, math.nan) for i in instruments] or [math.nan])
        self.rvol = RvolTracker(avg, table, curve_of)
        self.regimes = RegimeClassifier(config.sessions, config.vix_regimes)
        self.vix = VixTracker()
        self._vix_slots = np.array(
            [s for s, i in enumerate(instruments) if i.symbol == config.vix_regimes.symbol],
            np.int64,
        )
        self._is_vix = np.zeros(n, np.bool_)
        self._is_vix[self._vix_slots] = True
        ticks = np.array([i.tick_size for i in instruments] or [0.0], np.float64)
        self.profiles = VolumeProfiles(ticks, config.volume.profile)
        self._calendar = calendar
        self._is_fno = np.array(
            [i.instrument_type in ("FUT", "CE", "PE") for i in instruments] or [False], np.bool_
        )
        self._fno_date = np.zeros(n, np.int64)
        self._prev_date = np.zeros(n, np.int64)  # session date of the _prev values
        self._prev = {k: np.full(n, math.nan) for k in _PREV}  # last bar's poc/vah/val
        # the profile as of its last bins write: session date, total volume, session minute
        self._bins_date = np.zeros(n, np.int64)
        self._bins_total = np.zeros(n, np.int64)
        self._bins_minute = np.zeros(n, np.int64)
        self._symbols = [i.symbol for i in instruments]
        self._profile_keys: list[tuple[int, str]] = [(0, "")] * n
        self._pending: list[tuple[np.ndarray, ...]] = []
        self._pending_min_clock = _NO_TS  # earliest arrival clock held in _pending (epoch s)
        self._clock = 0  # exchange clock: latest exchange time of the ticks seen (epoch s)
        self._day = 0  # session date (YYYYMMDD) of the latest ticks

    # -- ticks -------------------------------------------------------------------------------

    def on_ticks(
        self,
        slots: np.ndarray,
        ts: np.ndarray,
        dates: np.ndarray,
        price: np.ndarray,
        incr: np.ndarray,
    ) -> None:
        """Add regular-session ticks to the profiles and record VIX levels.

        slots int64 (n,), exchange time int64 epoch s (n,), session dates int64 YYYYMMDD,
        ``last_price`` float64 rupees, incremental volume int64 shares; every kept tick of
        the feed, arrival order.

        The profile a bar sees at its close holds exactly the ticks that arrived before the
        tick that closed it (the first whose exchange time reached the bar's end, as in
        :class:`~aion.bars.builder.BarBuilder`): a tick is held with the exchange clock at
        its arrival and applied before evaluating a bar ending after that clock. Ticks that
        arrived before the end of the minute forming when this call starts are applied now
        (every bar still to be evaluated ends after it), so at the live rate the minute close
        applies only the closing chunk's ticks. The result does not depend on batching.
        """
        if slots.shape[0] and int(dates[-1]) != self._day:
            # a new session date: F&O multipliers now, at the day's first tick, not inside
            # the first minute close (the XNSE calendar's first load takes about 0.4 s)
            self._day = int(dates[-1])
            fno = np.flatnonzero(self._is_fno)
            if fno.shape[0]:
                self._fno_multipliers(fno, np.full(fno.shape[0], self._day, np.int64))
        forming_end = (self._clock // 60 + 1) * 60 if self._clock > 0 else 0
        # one compiled pass, holding the GIL: a dozen numpy passes over a 65k-tick chunk
        # each released it and waited for the store and archive threads to hand it back
        vix, traded, arrival, self._clock = _select_ticks(
            slots, ts, incr, self._is_vix, self._clock
        )
        if vix.shape[0]:
            self.vix.observe(ts[vix], price[vix])
        # the profile is the regular session's (the 09:08 auction print would dominate the POC)
        if traded.shape[0]:
            self._pending.append((slots[traded], arrival, dates[traded], price[traded],
                                  incr[traded]))  # fmt: skip
            self._pending_min_clock = min(self._pending_min_clock, int(arrival[0]))
        self._apply_pending(forming_end)

    def _apply_pending(self, before: int | None) -> None:
        """Add held ticks that arrived while the exchange clock was < ``before`` (all when
        None) to the profiles, in arrival order."""
        if not self._pending or (before is not None and self._pending_min_clock >= before):
            return  # nothing due: skip the concatenation (called once per closed bar)
        s, c, d, p, q = (
            np.concatenate(col) if len(self._pending) > 1 else col[0]
            for col in zip(*self._pending, strict=True)
        )
        # arrival clocks are non-decreasing: the due ticks are a prefix
        k = c.shape[0] if before is None else int(np.searchsorted(c, before, side="left"))
        if k:
            self.profiles.update(s[:k], d[:k], p[:k], q[:k])
        self._pending = [(s[k:], c[k:], d[k:], p[k:], q[k:])] if k < c.shape[0] else []
        self._pending_min_clock = int(c[k]) if k < c.shape[0] else _NO_TS

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

    def on_regular_bars(self, bars: np.ndarray, dates: np.ndarray) -> BarAnalyticsColumns:
        """Analytics of the closed regular bars of one minute.

        Args:
            bars: ``BAR_DTYPE`` rows (n,), revision 0, distinct slots, one ``start``.
            dates: int64 (n,) session dates YYYYMMDD.

        Each bar sees the profile and the INDIA VIX level as of its close (exchange time):
        held ticks before ``start + 60`` are applied first.

        Raises:
            ValueError: when the bars do not share one start.
        """
        n = bars.shape[0]
        starts = bars["start"]
        start = int(starts[0]) if n else 0
        if n and bool((starts != start).any()):
            raise ValueError("on_regular_bars: the bars must share one start (one minute)")
        end = start + 60
        self._apply_pending(end)
        slots = bars["slot"].astype(np.int64)
        dates = dates.astype(np.int64)
        m = int(session_minute(np.array([start]))[0])
        rvol_cum, rvol_bar, exp_bar = self.rvol.update(
            slots, dates, m, bars["volume"].astype(np.int64), self._fno_multipliers(slots, dates)
        )
        vix = self.vix.level_before(end)
        regime, mult = self.regimes.classify(int(minute_of_day_ist(np.array([start]))[0]), vix)
        return BarAnalyticsColumns(
            np.full(n, m, np.int64),
            exp_bar,
            rvol_cum,
            rvol_bar,
            np.full(n, mult),
            np.full(n, vix),
            [regime] * n,
            self._profile_columns(slots, dates, bars["close"].astype(np.float64)),
        )

    def _profile_columns(
        self, slots: np.ndarray, dates: np.ndarray, close: np.ndarray
    ) -> dict[str, np.ndarray]:
        """:meth:`VolumeProfiles.stats` of ``slots`` plus the ``_prev`` values and the nodes
        nearest ``close``; NaN for a slot without volume in its bar's session ``dates``."""
        st = self.profiles.stats(slots)
        stale = self.profiles.date[slots] != dates
        if stale.any():
            for col in st.values():
                col[stale] = math.nan
        has = ~np.isnan(st["poc"])
        same = has & (self._prev_date[slots] == dates)
        for k in _PREV:
            st[f"{k}_prev"] = np.where(same, self._prev[k][slots], math.nan)
        done = slots[has]
        self._prev_date[done] = dates[has]
        for k in _PREV:
            self._prev[k][done] = st[k][has]
        nodes = self.config.volume.profile.max_nodes
        for node in ("hvn", "lvn"):
            levels = np.column_stack([st[f"{node}_{i}"] for i in range(1, nodes + 1)])
            st[node] = _nearest(levels, close)
        return st

    def _fno_multipliers(self, slots: np.ndarray, dates: np.ndarray) -> np.ndarray:
        """F&O multiplier float64 (n,) of ``slots`` on ``dates`` (1.0 for cash and indices),
        computed once per slot and session date."""
        need = self._is_fno[slots] & (self._fno_date[slots] != dates)
        if need.any():
            cal = self._calendar or self.config.calendar.market_calendar()
            self._calendar = cal
            for s, date in zip(slots[need].tolist(), dates[need].tolist(), strict=True):
                inst = self.instruments[s]
                self._fno_date[s] = date
                day = dt.date(date // 10_000, date // 100 % 100, date % 100)
                self.rvol.fno[s] = instrument_multiplier(
                    inst.instrument_type, day, inst.expiry, inst.strike, math.nan,
                    self.config.fno, cal,
                )  # fmt: skip
        return self.rvol.fno[slots]

    # -- persistence -------------------------------------------------------------------------

    def _key(
        self, cache: list[tuple[int, str]], s: int, date: int, make: Callable[[str, int], str]
    ) -> str:
        """``make(symbol, date)`` of slot ``s``, cached per slot for its latest date."""
        hit = cache[s]
        if hit[0] != date:
            hit = (date, make(self._symbols[s], date))
            cache[s] = hit
        return hit[1]

    def record_bars(
        self, bars: np.ndarray, dates: np.ndarray, va: BarAnalyticsColumns, batch: StoreBatch
    ) -> None:
        """Write the RVOL entries and the profiles of :meth:`on_regular_bars`' bars into ``batch``.

        The RVOL entries as numbers (:class:`~aion.store.batch.RvolColumns`, the quantities
        of :data:`_RVOL_FIELDS` with their decimals): the store writes them as JSON
        (:func:`aion.store.layout.rvol_hashes`), the archive as rows.
        ``keys.profile``: every statistic of ``va.profile`` as text (6 decimals, ``nan`` when
        absent), ``bar_start``, ``baseline`` and, when the profile changed since its last
        bins write and ``volume.profile.bins_interval_min`` minutes passed (or it is the first
        of its session), ``bins`` (JSON ``[[price, volume], ...]`` of the non-empty bins).
        """
        n = bars.shape[0]
        if n == 0:
            return
        slots = bars["slot"].astype(np.int64)
        start = int(bars["start"][0])
        poc = va.profile.get("poc", np.full(n, math.nan))
        cols = {
            "cum_volume": self.rvol.cum[slots],
            "expected_bar": va.expected_bar_volume,
            "expected_cum": self.rvol.last_expected_cum[slots],
            "minute": va.minute_of_session,
            "multiplier": va.threshold_multiplier,
            "poc": poc,
            "rvol_bar": va.rvol_bar,
            "rvol_cum": va.rvol_cum,
            "start": bars["start"],
            "vix": va.vix,
            "volume": bars["volume"],
        }
        names = [k for k, _ in _RVOL_FIELDS if k != "regime"]
        values = np.column_stack([cols[k].astype(np.float64) for k in names])
        decimals = [d for k, d in _RVOL_FIELDS if k != "regime"]
        starts = bars["start"].astype(np.int64)
        names_t, dec_t = tuple(names), tuple(decimals)
        batch.rvol_columns.append(
            RvolColumns(slots, dates, starts, names_t, values, dec_t, va.regime, self._symbols)
        )
        has = ~np.isnan(poc)
        if has.any():
            stats = {k: v[has] for k, v in va.profile.items()}
            minute = int(va.minute_of_session[0])
            self._write_profiles(slots[has], dates[has], stats, batch, start, minute)

    def _write_profiles(
        self,
        slots: np.ndarray,
        dates: np.ndarray,
        stats: dict[str, np.ndarray],
        batch: StoreBatch,
        bar_start: int | None,
        minute: int | None,
    ) -> None:
        """Profile hash fields of ``slots`` (with a profile) into ``batch``; bins when due
        (always when ``minute`` is None: session end). One
        :class:`~aion.store.batch.StateColumns` (family ``profile``; statistics missing
        from ``stats``, ``bar_start`` when None and ``bins`` when not due are left absent)."""
        fields = (*self.profiles.stat_names(), *(f"{k}_prev" for k in _PREV), "hvn", "lvn")
        unknown = set(stats) - set(fields)
        if unknown:
            raise ValueError(f"_write_profiles: unknown statistics {sorted(unknown)}")
        n = slots.shape[0]
        nan = np.full(n, math.nan)
        start = np.full(n, 0 if bar_start is None else bar_start, np.float64)
        values = np.column_stack([*(stats.get(k, nan) for k in fields), start])
        numbers = render_cells(values, [6] * len(fields) + [-1], "nan")  # one buffer, no dicts
        absent = np.zeros(numbers.shape, np.bool_)
        absent[:, [j for j, k in enumerate(fields) if k not in stats]] = True
        absent[:, -1] = bar_start is None
        p = self.profiles
        total = p.total[slots]
        changed = (total != self._bins_total[slots]) | (self._bins_date[slots] != dates)
        if minute is None:
            due = changed
        else:
            interval = self.config.volume.profile.bins_interval_min
            due = changed & ((self._bins_date[slots] != dates)
                             | (minute - self._bins_minute[slots] >= interval))  # fmt: skip
        bins: dict[int, str] = {}
        if due.any():
            ds = slots[due]
            texts = render_bins(ds, p.vol, p.lo, p.ticks_per_bin * p.tick)
            bins = dict(zip(ds.tolist(), texts, strict=True))
            self._bins_date[ds] = dates[due]
            self._bins_total[ds] = total[due]
            if minute is not None:
                self._bins_minute[ds] = minute
        slot_l = slots.tolist()
        source = self.baseline_source
        text = text_cells([[source[s] for s in slot_l], [bins.get(s) for s in slot_l]])
        row_keys = [
            self._key(self._profile_keys, s, d, keys.profile)
            for s, d in zip(slot_l, dates.tolist(), strict=True)
        ]
        cells = hstack_cells([numbers.absent(absent), text])
        fields_all = (*fields, "bar_start", "baseline", "bins")
        batch.columns.append(StateColumns("profile", fields_all, row_keys, cells))

    def finish(self, batch: StoreBatch) -> None:
        """Session end: apply held ticks and write every profile changed since its last bins
        write (statistics and bins)."""
        self._apply_pending(None)
        p = self.profiles
        live = np.flatnonzero(p.total > 0)
        if live.shape[0]:
            changed = (p.total[live] != self._bins_total[live]) | (
                self._bins_date[live] != p.date[live]
            )
            slots = live[changed]
            if slots.shape[0]:
                self._write_profiles(slots, p.date[slots], p.stats(slots), batch, None, None)
