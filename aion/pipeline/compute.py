"""The compute step: frames -> ticks -> incremental volume -> bars -> indicators -> alerts.

:class:`ComputeEngine` runs on the compute thread. It takes a batch of raw
frames from the ``raw`` queue, decodes them into one columnar tick array
(:func:`aion.kite.protocol.decode_frame`), validates ticks, maps tokens to
instrument slots, turns cumulative volume into incremental volume
(:class:`~aion.volume.state.VolumeStateManager`), builds 1-minute bars
(:class:`~aion.bars.builder.BarBuilder`) and, for each closed regular bar,
updates the indicator core, runs the pattern engine, sizes signals with the
risk manager and filters them through the alert manager. Everything it wants
persisted goes to the store thread as one :class:`~aion.store.writer.StoreBatch`.

Time is exchange time only: ticks without an exchange timestamp (ltp and index
quote packets) take the latest exchange time seen on the feed; a tick before
any exchange time is known is counted as ``untimed`` and skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from aion.alerts.manager import Alert, AlertManager, Candidate
from aion.bars.builder import BarBuilder
from aion.config import AionConfig
from aion.feed.gaps import GapTracker
from aion.indicators.core import IndicatorCore
from aion.instruments.master import Instrument
from aion.kite.protocol import FRAME_HEARTBEAT, FRAME_STATUS_REASONS, MODE_LTP, decode_frames
from aion.market.time import (
    SEGMENT_NAMES,
    SEGMENT_REGULAR,
    minute_of_day_ist,
    session_dates,
)
from aion.options.chain import ChainTracker
from aion.options.symbols import underlying_symbol
from aion.patterns.registry import InstrumentView, PatternEngine
from aion.pipeline.book import BookTracker
from aion.risk.manager import RiskManager
from aion.store import keys
from aion.store.writer import AlertRecord, StoreBatch, encode_bars
from aion.volume.analytics import BarAnalytics, BarAnalyticsColumns, VolumeAnalytics
from aion.volume.state import VolumeStateManager

HISTORY_BARS = 64
"""Closed regular bars kept per instrument for detectors (ring buffer length)."""

# Exchange timestamps outside this range are rejected as absurd (2000-01-01 .. 2100-01-01 UTC).
_MIN_TS = 946_684_800
_MAX_TS = 4_102_444_800


MAX_CHUNK_PACKETS = 65_536
"""A batch of frames is decoded and processed in chunks of at most about this many packets
(one frame more at most): a 9,000-instrument feed queues frames of 3,000 packets, and one
512-frame batch decoded at once is a 500 MB tick array (336 bytes a row), which glibc then
keeps (see :mod:`aion.pipeline.allocator`). Chunking changes no result: every stage is
incremental in arrival order."""


def _chunks(
    frames: list[tuple[int, str, bytes]], max_packets: int
) -> list[list[tuple[int, str, bytes]]]:
    """Split raw-queue items in arrival order so each part holds at most ~``max_packets``
    packets (the u16 packet count heading each binary frame; a part holds at least one
    item; gap markers count 0)."""
    out: list[list[tuple[int, str, bytes]]] = []
    cur: list[tuple[int, str, bytes]] = []
    n = 0
    for f in frames:
        k = int.from_bytes(f[2][:2], "big") if isinstance(f[2], bytes) else 0  # gap marker: 0
        if cur and n + k > max_packets:
            out.append(cur)
            cur, n = [], 0
        cur.append(f)
        n += k
    out.append(cur)
    return out


@dataclass
class ComputeCounters:
    """Counts shown in the live view and the final summary."""

    frames: int = 0
    heartbeats: int = 0
    malformed_frames: int = 0
    ticks: int = 0
    invalid_ticks: int = 0
    untimed_ticks: int = 0
    unknown_tokens: int = 0
    bars: int = 0
    regular_bars: int = 0
    malformed_reasons: dict[str, int] = field(default_factory=dict)


class _History:
    """Ring buffer of the last ``HISTORY_BARS`` closed regular bars per slot (float64)."""

    FIELDS = ("open", "high", "low", "close", "volume")

    def __init__(self, capacity: int) -> None:
        self.data = np.zeros((capacity, len(self.FIELDS), HISTORY_BARS), np.float64)
        self.count = np.zeros(capacity, np.int64)
        self.date = np.zeros(capacity, np.int64)

    def view(self, slot: int, date: int) -> dict[str, np.ndarray]:
        """Bars of ``date`` before the current one, oldest first."""
        n = int(self.count[slot]) if self.date[slot] == date else 0
        m = min(n, HISTORY_BARS)
        idx = (np.arange(n - m, n)) % HISTORY_BARS
        return {f: self.data[slot, i, idx] for i, f in enumerate(self.FIELDS)}

    def append_many(self, slots: np.ndarray, dates: np.ndarray, bars: np.ndarray) -> None:
        """Append one closed bar per slot: slots int64 (n,) distinct, session dates int64
        YYYYMMDD (n,), ``BAR_DTYPE`` rows (n,)."""
        new_day = self.date[slots] != dates
        self.date[slots] = dates
        self.count[slots] = np.where(new_day, 0, self.count[slots])
        pos = self.count[slots] % HISTORY_BARS
        for i, f in enumerate(self.FIELDS):
            self.data[slots, i, pos] = bars[f]
        self.count[slots] += 1


class ComputeEngine:
    """Per-instrument state of the scan and the per-batch pipeline.

    Args:
        instruments: the subscribed universe (token -> instrument).
        config: validated ``aion.yaml``.
        patterns: the pattern engine built from ``patterns.yaml``.
        avg_volume: ``symbol -> average daily volume`` (shares, unadjusted scale).
        restored_volume: ``symbol -> persisted volume state`` to seed after a restart
            (used only when its ``session_date`` equals the tick's session).
        node: process name for cross-instrument keys.
        replaying: a replayed session (the alert manager's market-hours guard is off).
    """

    def __init__(
        self,
        instruments: dict[int, Instrument],
        config: AionConfig,
        patterns: PatternEngine,
        avg_volume: dict[str, float],
        restored_volume: dict[str, dict[str, int]] | None = None,
        node: str = "main",
        replaying: bool = False,
    ) -> None:
        self.config = config
        self.node = node
        self.patterns = patterns
        self.counters = ComputeCounters()
        self.instruments = instruments
        self._tokens = np.array(sorted(instruments), dtype=np.int64)
        self._slot_of_sorted = np.arange(self._tokens.shape[0], dtype=np.int64)
        self.slot_inst: list[Instrument] = [instruments[int(t)] for t in self._tokens]
        n = max(1, len(self.slot_inst))
        self.volume = VolumeStateManager(n)
        self.bars = BarBuilder(n)
        self.indicators = IndicatorCore(n, config.indicators.for_timeframe("1m"))
        self.history = _History(n)
        self.book = BookTracker(n)
        self._instrument_type = [
            "INDEX" if i.is_index else (i.instrument_type or "EQ") for i in self.slot_inst
        ]
        self._underlying = [
            underlying_symbol(i.name) if t in ("FUT", "CE", "PE") else ""
            for i, t in zip(self.slot_inst, self._instrument_type, strict=True)
        ]
        self.risk = RiskManager(config.risk)
        ac = config.alerts
        self.alert_manager = AlertManager(
            ac.min_confidence,
            ac.market_hours_only,
            ac.max_alerts_per_minute,
            ac.conflict_policy,
            config.calendar.market_calendar(),
            replaying=replaying,
        )
        # time-of-day baseline, RVOL, VIX regime, F&O adjustment, volume profile, roll-ups
        self.analytics = VolumeAnalytics(self.slot_inst, config, avg_volume)
        # option IV/Greeks (published with the option's tick) and per-underlying chains
        self.options = ChainTracker(
            self.slot_inst, config.calendar.market_calendar(), config.options
        )
        self._restored = restored_volume or {}
        self._seen = np.zeros(n, np.bool_)
        self.clock = 0  # latest exchange timestamp, epoch seconds
        self.recent_alerts: list[Alert] = []
        self.alerts: list[Alert] = []
        self._last_wall_frame_ns = 0
        self.gap_tracker = GapTracker(self._tokens)  # feed gaps: flag first ticks after them
        # latest tick per instrument, gathered over the chunks of one batch (see _latest_state)
        self._latest: list[tuple[np.ndarray, ...]] = []
        self._tick_keys = [keys.tick(i.symbol) for i in self.slot_inst]
        self._volume_keys = [keys.volume_state(i.symbol) for i in self.slot_inst]

    # -- decoding ----------------------------------------------------------------------------

    def _decode(self, frames: list[tuple[int, str, bytes]]) -> np.ndarray:
        frames = self.gap_tracker.frames(frames)
        c = self.counters
        c.frames += len(frames)
        if frames:
            self._last_wall_frame_ns = max(self._last_wall_frame_ns, max(f[0] for f in frames))
        decoded = decode_frames([f[2] for f in frames])
        status = decoded.status
        c.heartbeats += int(np.count_nonzero(status == FRAME_HEARTBEAT))
        bad = decoded.malformed()
        if bad.any():
            c.malformed_frames += int(bad.sum())
            codes, counts = np.unique(status[bad], return_counts=True)
            for code, n in zip(codes.tolist(), counts.tolist(), strict=True):
                reason = FRAME_STATUS_REASONS[code]
                c.malformed_reasons[reason] = c.malformed_reasons.get(reason, 0) + n
        return decoded.ticks

    def _timestamps(self, ticks: np.ndarray) -> np.ndarray:
        """Exchange time per tick; ticks without one take the running exchange clock."""
        ts = ticks["exchange_timestamp"].astype(np.int64)
        running = np.maximum.accumulate(np.concatenate(([self.clock], ts)))[1:]
        return np.where(ts > 0, ts, running)

    # -- the batch ---------------------------------------------------------------------------

    def process(self, frames: list[tuple[int, str, bytes]]) -> StoreBatch:
        """Run one batch of raw frames ``(recv_ns, connection, bytes)`` through the pipeline."""
        batch = StoreBatch()
        c = self.counters
        for chunk in _chunks(frames, MAX_CHUNK_PACKETS):  # bounded arrays, same results
            ticks = self._decode(chunk)
            if ticks.shape[0]:
                self._process_ticks(ticks, batch)
        self._write_latest(batch)
        for key, records in self.gap_tracker.store_writes(self.clock).items():
            batch.state.setdefault(key, {}).update(records)
        if self._last_wall_frame_ns:
            batch.state[keys.feed(self.node)] = {
                "last_frame_wall": f"{self._last_wall_frame_ns / 1e9:.3f}",
                "last_exchange_timestamp": str(self.clock),
                "frames": str(c.frames),
            }
        return batch

    def _process_ticks(self, ticks: np.ndarray, batch: StoreBatch) -> None:
        c = self.counters
        c.ticks += int(ticks.shape[0])
        ts = self._timestamps(ticks)
        untimed = ts <= 0
        bad_ts = (ts > 0) & ((ts < _MIN_TS) | (ts > _MAX_TS))
        price = ticks["last_price"]
        bad_val = ~np.isfinite(price) | (price <= 0) | (ticks["volume_traded"] < 0)
        pos = np.searchsorted(self._tokens, ticks["instrument_token"].astype(np.int64))
        pos_c = np.minimum(pos, max(0, self._tokens.shape[0] - 1))
        known = (self._tokens.shape[0] > 0) & (self._tokens[pos_c] == ticks["instrument_token"])
        keep = known & ~untimed & ~bad_ts & ~bad_val
        c.untimed_ticks += int(untimed.sum())
        c.invalid_ticks += int((~untimed & (bad_ts | bad_val)).sum())
        c.unknown_tokens += int((~known).sum())
        if not keep.all():  # price too: it feeds the bars and analytics below
            ticks, ts, pos_c, price = ticks[keep], ts[keep], pos_c[keep], price[keep]
        if ticks.shape[0] == 0:
            return
        slots = self._slot_of_sorted[pos_c]
        self.clock = max(self.clock, int(ts.max()))
        dates = session_dates(ts)
        self._restore_new(slots, dates)

        has_volume = (ticks["mode"] != MODE_LTP) & ticks["tradable"]
        incr = np.zeros(ticks.shape[0], np.int64)
        if has_volume.any():
            incr[has_volume] = self.volume.apply(
                slots[has_volume], dates[has_volume], ticks["volume_traded"][has_volume]
            )
        gap = self.gap_tracker.flag(slots)
        self.analytics.on_ticks(slots, ts, dates, price, incr)
        if self.options.has_options:
            updated = self.options.on_ticks(slots, ts, price, ticks["volume_traded"], ticks["oi"])
            batch.state.update(self.options.store_writes(updated))
        self.book.on_ticks(ticks, slots, ts)
        closed = self.bars.update(slots, ts, price, incr, ticks["oi"], gap)
        self._latest_state(ticks, slots, ts, has_volume)
        if closed.shape[0]:
            self._on_bars(closed, batch)

    def _restore_new(self, slots: np.ndarray, dates: np.ndarray) -> None:
        new = ~self._seen[slots]
        if not new.any():
            return
        for i in np.flatnonzero(new):
            s = int(slots[i])
            if self._seen[s]:
                continue
            self._seen[s] = True
            st = self._restored.get(self.slot_inst[s].symbol)
            if st and int(st["session_date"]) == int(dates[i]):
                # resume from the cumulative already inside persisted bars (see _volume_snapshot)
                self.volume.restore(
                    s,
                    int(st["session_date"]),
                    int(st["first_cumulative"]),
                    int(st.get("bar_cumulative", st["last_cumulative"])),
                    int(st.get("bad_ticks", 0)),
                )

    def _volume_snapshot(self, s: int) -> dict[str, int]:
        """Volume state of slot ``s`` plus ``bar_cumulative``: the cumulative volume whose
        increments are all inside bars already handed to the store (the last cumulative minus
        the forming bar's volume and late volume still waiting for a bar). The store writes it
        with the instrument's bars in one MULTI block, so a restart resumes from it: the volume
        of a forming bar lost in a crash is counted again in the first bar after the restart,
        never twice and never lost (sum of bar volumes == last - first cumulative)."""
        snap = self.volume.snapshot(s)
        b = self.bars
        unbarred = (int(b.b_vol[s]) if b.cur_start[s] != 0 else 0) + int(b.carry[s])
        snap["bar_cumulative"] = snap["last_cumulative"] - unbarred
        return snap

    _LATEST_FIELDS = (
        "last_price",
        "mode",
        "volume_traded",
        "last_traded_quantity",
        "average_traded_price",
        "oi",
    )

    def _latest_state(
        self,
        ticks: np.ndarray,
        slots: np.ndarray,
        ts: np.ndarray,
        has_volume: np.ndarray,
    ) -> None:
        """Keep the last tick per slot of this chunk (columns only, no per-tick objects);
        :meth:`_write_latest` turns them into tick-state writes once per batch."""
        rev = slots[::-1]
        uniq, idx_rev = np.unique(rev, return_index=True)
        last = slots.shape[0] - 1 - idx_rev
        cols = tuple(ticks[f][last] for f in self._LATEST_FIELDS)
        self._latest.append((uniq, ts[last], has_volume[last], *cols))

    def _write_latest(self, batch: StoreBatch) -> None:
        """The latest tick hash (and volume state) of every instrument that ticked in this
        batch: ``last_price``/``average_traded_price`` in rupees with 2 decimals, Kite's
        integer fields as text; the volume fields only for ticks that carry volume."""
        if not self._latest:
            return
        parts, self._latest = self._latest, []
        cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
        slots = cols[0]
        rev = slots[::-1]
        uniq, idx_rev = np.unique(rev, return_index=True)
        last = slots.shape[0] - 1 - idx_rev
        ts, has_vol, price, mode, vol, ltq, atp, oi = (c[last].tolist() for c in cols[1:])
        state = batch.state
        for j, s in enumerate(uniq.tolist()):
            tick = {
                "last_price": f"{price[j]:.2f}",
                "exchange_timestamp": str(ts[j]),
                "mode": str(mode[j]),
            }
            if has_vol[j]:
                tick["volume_traded"] = str(vol[j])
                tick["last_traded_quantity"] = str(ltq[j])
                tick["average_traded_price"] = f"{atp[j]:.2f}"
                tick["oi"] = str(oi[j])
                state[self._volume_keys[s]] = self._volume_snapshot(s)
            state[self._tick_keys[s]] = tick

    def _on_bars(self, closed: np.ndarray, batch: StoreBatch) -> None:
        c = self.counters
        c.bars += int(closed.shape[0])
        dates = session_dates(closed["start"])
        self.analytics.on_closed_bars(closed, self.volume.first_cumulative)
        per_key: dict[str, dict[str, str]] = {}
        texts = encode_bars(closed, SEGMENT_NAMES)  # columnar: no per-bar dict or json call
        minutes = minute_of_day_ist(closed["start"]).tolist()
        regular = (closed["segment"] == SEGMENT_REGULAR).tolist()
        for slot, d, m, reg_bar, text in zip(
            closed["slot"].tolist(), dates.tolist(), minutes, regular, texts, strict=True
        ):
            sym = self.slot_inst[slot].symbol
            k = keys.bars_1m(sym, d) if reg_bar else keys.bars_1m_ext(sym, d)
            per_key.setdefault(k, {})[f"{m // 60:02d}:{m % 60:02d}"] = text  # IST HH:MM
        batch.bars.extend(per_key.items())
        for s in np.unique(closed["slot"]).tolist():  # bars written -> their volume state too
            if self.volume.seen[s]:
                batch.state[keys.volume_state(self.slot_inst[s].symbol)] = self._volume_snapshot(s)
        # revisions re-send a bar with late volume for the store; indicators saw it already
        reg_mask = (closed["segment"] == SEGMENT_REGULAR) & (closed["revision"] == 0)
        reg = closed[reg_mask]
        if reg.shape[0] == 0:
            return
        c.regular_bars += int(reg.shape[0])
        reg_dates = dates[reg_mask]
        self.analytics.rollup(reg, batch)
        # Indicators and detectors advance minute by minute: a batch may close many minutes of
        # one instrument, and each bar must see the indicator values as of its own close.
        starts = reg["start"]
        bounds = np.flatnonzero(np.diff(starts)) + 1
        for lo, hi in zip(
            np.concatenate(([0], bounds)).tolist(),
            np.concatenate((bounds, [starts.shape[0]])).tolist(),
            strict=True,
        ):
            group = reg[lo:hi]
            dates_g = reg_dates[lo:hi]
            slots = group["slot"].astype(np.int64)
            self.indicators.update(
                slots,
                dates_g,
                group["open"],
                group["high"],
                group["low"],
                group["close"],
                group["volume"].astype(np.float64),
            )
            ind = self.indicators.values(slots)  # name -> float64 (n,)
            va = self.analytics.on_regular_bars(group, dates_g)
            self.analytics.record_bars(group, dates_g, va, batch)
            self._write_indicators(group, ind, batch)
            candidates = self._detect(group, dates_g, ind, va)
            self.history.append_many(slots, dates_g, group)
            # the alert policy (conflicts, rate limit) decides over the whole minute at once
            for alert in self.alert_manager.consider_many(int(starts[lo]), candidates):
                self.alerts.append(alert)
                self.recent_alerts = [*self.recent_alerts, alert][-10:]
                batch.alerts.append(AlertRecord(alert.date, alert.stream_id, alert.fields()))

    def _write_indicators(
        self, group: np.ndarray, ind: dict[str, np.ndarray], batch: StoreBatch
    ) -> None:
        """The indicator state hash of every instrument of a minute group (6 decimals, "nan")."""
        columns = {n: v.tolist() for n, v in ind.items()}
        slots, starts = group["slot"].tolist(), group["start"].tolist()
        for j, (s, start) in enumerate(zip(slots, starts, strict=True)):
            state = {
                k: ("nan" if math.isnan(col[j]) else f"{col[j]:.6f}") for k, col in columns.items()
            }
            state["bar_start"] = str(start)
            batch.state[keys.indicators(self.slot_inst[s].symbol)] = state

    def _detect(
        self,
        group: np.ndarray,
        dates: np.ndarray,
        ind: dict[str, np.ndarray],
        va: BarAnalyticsColumns,
    ) -> list[Candidate]:
        """Pattern engine and risk plan for the closed regular bars of one minute."""
        columns = {n: v.tolist() for n, v in ind.items()}
        out: list[Candidate] = []
        for j in range(group.shape[0]):
            view = self._view(group[j], int(dates[j]), {n: c[j] for n, c in columns.items()},
                              va.row(j))  # fmt: skip
            for sig in self.patterns.detect(view):
                act = self.patterns.settings(sig.pattern)
                plan = self.risk.plan(sig, view)
                out.append(Candidate(sig, view, plan, act.min_confidence, act.cooldown_s))
        return out

    def _view(
        self, bar: np.void, date: int, ind: dict[str, float], va: BarAnalytics
    ) -> InstrumentView:
        """What the detectors see of one closed regular bar (history before it)."""
        s = int(bar["slot"])
        inst = self.slot_inst[s]
        return InstrumentView(
            symbol=inst.symbol,
            bar_start=int(bar["start"]),
            open=float(bar["open"]),
            high=float(bar["high"]),
            low=float(bar["low"]),
            close=float(bar["close"]),
            volume=float(bar["volume"]),
            history=self.history.view(s, date),
            indicators=ind,
            expected_bar_volume=va.expected_bar_volume,
            minute_of_session=va.minute_of_session,
            rvol_cum=va.rvol_cum,
            rvol_bar=va.rvol_bar,
            threshold_multiplier=va.threshold_multiplier,
            regime=va.regime,
            profile=va.profile,
            lot_size=max(1, int(inst.lot_size)),
            tick_size=float(inst.tick_size) if inst.tick_size > 0 else 0.05,
            instrument_type=self._instrument_type[s],
            underlying=self._underlying[s],
            book=self.book.at_close(s, int(bar["start"]) + 60),
            option=self.options.option_view(s),
            chain=self.options.chain_view(s, int(bar["start"]) + 60)
            if self.options.has_chain(s)
            else {},
        )

    def finish(self) -> StoreBatch:
        """Close every forming bar (end of session or shutdown) and return what it produced."""
        batch = StoreBatch()
        closed = self.bars.close_all()
        if closed.shape[0]:
            self._on_bars(closed, batch)
        self.analytics.finish(batch)
        return batch
