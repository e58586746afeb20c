"""The compute step: frames -> ticks -> incremental volume -> bars -> indicators -> alerts.

:class:`ComputeEngine` runs on the compute thread. It takes a batch of raw
frames from the ``raw`` queue, decodes them into one columnar tick array
(:func:`aion.kite.decode.decode_frame`), validates ticks, maps tokens to
instrument slots, turns cumulative volume into incremental volume
(:class:`~aion.volume.state.VolumeStateManager`), builds 1-minute bars
(:class:`~aion.bars.builder.BarBuilder`) and, for each closed regular bar,
updates the indicator core, runs the pattern engine, sizes signals with the
risk manager and filters them through the alert manager. Everything it produces leaves
through one :class:`~aion.pipeline.outputs.Outputs` port: each minute's alerts the moment
they are decided, and the step's writes as :class:`~aion.store.batch.StoreBatch` objects of typed
records (closed bars, ticks, volume state, indicators, options, gaps: the store names their
keys and renders their text, :mod:`aion.store.layout`).

Time is exchange time only: ticks without an exchange timestamp (ltp and index
quote packets) take the latest exchange time seen on the feed; a tick before
any exchange time is known is counted as ``untimed`` and skipped. With several
connections, frames reach the tick path through :class:`~aion.pipeline.merge.FeedMerge`:
a minute closes when every active connection's exchange clock has passed it
(``feed.close_wait_ms``), the same rule for a live feed and a replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aion.alerts.manager import Alert, AlertManager, Candidate
from aion.bars.builder import BarBuilder
from aion.bars.rollup import RollupBuilder
from aion.config import AionConfig
from aion.feed.gaps import GapTracker
from aion.indicators.core import IndicatorCore
from aion.instruments.master import Instrument
from aion.kite.decode import (
    FRAME_HEARTBEAT,
    FRAME_OK,
    FRAME_STATUS_REASONS,
    JoinedFrames,
    join_frames,
)
from aion.market.time import (
    SEGMENT_REGULAR,
    session_dates,
)
from aion.options.chain import ChainTracker
from aion.options.symbols import underlying_symbol
from aion.patterns.frame import HISTORY_FIELDS, MinuteFrame
from aion.patterns.registry import InstrumentView, PatternEngine
from aion.pipeline.book import BOOK_FIELDS, BookTracker
from aion.pipeline.merge import FeedMerge
from aion.pipeline.outputs import CollectedOutputs, Outputs
from aion.pipeline.ticks import TickPath
from aion.risk.manager import RiskManager
from aion.store.batch import (
    AlertRecord,
    BarColumns,
    FeedProgress,
    IndicatorRows,
    RollupColumns,
    StoreBatch,
    TickRows,
    VolumeRows,
)
from aion.volume.analytics import BarAnalyticsColumns, VolumeAnalytics
from aion.volume.state import VolumeStateManager

_TICK_FIELDS = ("last_price", "exchange_timestamp", "mode", "volume_traded",
                "last_traded_quantity", "average_traded_price", "oi")  # fmt: skip
"""The quantities of a latest tick (:class:`~aion.store.batch.TickRows`), Kite's names."""

_VOLUME_FIELDS = (*VolumeStateManager.SNAPSHOT_FIELDS, "bar_cumulative", "bar_start")
"""The quantities of the persisted volume state (:class:`~aion.store.batch.VolumeRows`), see
:meth:`ComputeEngine._volume_rows`."""

HISTORY_BARS = 64
"""Closed regular bars kept per instrument for detectors (ring buffer length)."""


MAX_CHUNK_PACKETS = 65_536
"""A batch of frames is decoded and processed in chunks of at most about this many packets
(one frame more at most): a 9,000-instrument feed queues frames of 3,000 packets, and the tick
pass (:mod:`aion.pipeline.ticks`) works in about 300 bytes of buffers per packet (reused from
chunk to chunk). Chunking changes no result: every stage is incremental in arrival order."""


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

    FIELDS = HISTORY_FIELDS  # the order MinuteFrame.history uses

    def __init__(self, capacity: int) -> None:
        self.data = np.zeros((capacity, len(self.FIELDS), HISTORY_BARS), np.float64)
        self.count = np.zeros(capacity, np.int64)
        self.date = np.zeros(capacity, np.int64)

    def window(self, slots: np.ndarray, dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The bars of ``dates`` kept for ``slots`` (int64 (n,) each), for a minute frame:
        float64 (5, n, m) in ``FIELDS`` order, oldest first, right-aligned and NaN-padded
        on the left (m = the longest of them), and their counts int64 (n,)."""
        count = self.count[slots]
        lens = np.where(self.date[slots] == dates, np.minimum(count, HISTORY_BARS), 0)
        m = int(lens.max()) if lens.shape[0] else 0
        pos = (count[:, None] - m + np.arange(m)) % HISTORY_BARS  # (n, m) ring positions
        nf = len(self.FIELDS)
        flat = (slots[None, :, None] * nf + np.arange(nf)[:, None, None]) * HISTORY_BARS
        out = self.data.ravel()[flat + pos[None]]
        out[:, np.arange(m)[None, :] < (m - lens)[:, None]] = np.nan
        return out, lens

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
            (:func:`aion.store.queries.read_restart_state`: the volume state hash and the last
            stored bar; used only when its ``session_date`` equals the tick's session).
        node: process name for cross-instrument keys.
        connections: the names of the scan's feed connections (:class:`FeedMerge`).
        outputs: where alerts and writes go (:class:`~aion.pipeline.outputs.Outputs`); by
            default a :class:`~aion.pipeline.outputs.CollectedOutputs` kept in
            :attr:`outputs`.
    """

    def __init__(
        self,
        instruments: dict[int, Instrument],
        config: AionConfig,
        patterns: PatternEngine,
        avg_volume: dict[str, float],
        restored_volume: dict[str, dict[str, Any]] | None = None,
        node: str = "main",
        connections: Sequence[str] = (),
        outputs: Outputs | None = None,
    ) -> None:
        self.outputs: Outputs = outputs if outputs is not None else CollectedOutputs()
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
        self.rollups = RollupBuilder(n)  # 5/15/30/60-minute bars of the closed regular bars
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
        )
        # time-of-day baseline, RVOL, VIX regime, F&O adjustment, volume profile
        self.analytics = VolumeAnalytics(self.slot_inst, config, avg_volume)
        # option IV/Greeks (published with the option's tick) and per-underlying chains
        self.options = ChainTracker(
            self.slot_inst, config.calendar.market_calendar(), config.options
        )
        self._restored = restored_volume or {}
        self._seen = np.zeros(n, np.bool_)
        # frames of several connections in exchange-minute order (minute closes, see merge.py)
        self.merge = FeedMerge(config.feed.close_wait_ms, connections)
        self.clock = 0  # latest exchange timestamp, epoch seconds
        self.recent_alerts: list[Alert] = []
        self.alerts: list[Alert] = []
        self._last_wall_frame_ns = 0
        self.gap_tracker = GapTracker(self._tokens)  # feed gaps: flag first ticks after them
        # frames -> volume, bars, book, latest tick per instrument (see _write_latest)
        restorable = np.array([i.symbol in self._restored for i in self.slot_inst], np.bool_)
        self.tick_path = TickPath(self._tokens, restorable)
        self._join_buffer = np.empty(0, np.uint8)  # the frames of a chunk, end to end
        self._symbols = [i.symbol for i in self.slot_inst]

    # -- decoding ----------------------------------------------------------------------------

    def _decode(self, frames: list[tuple[int, str, bytes]]) -> JoinedFrames:
        frames = self.gap_tracker.frames(frames)
        c = self.counters
        c.frames += len(frames)
        if frames:
            self._last_wall_frame_ns = max(self._last_wall_frame_ns, max(f[0] for f in frames))
        raw = [f[2] for f in frames]
        size = sum(len(b) for b in raw if isinstance(b, bytes))
        if self._join_buffer.shape[0] < size:  # one buffer for every chunk, grown when short
            self._join_buffer = np.empty(size + size // 4, np.uint8)
        return join_frames(raw, into=self._join_buffer)

    def _count_frames(self, status: np.ndarray) -> None:
        """Heartbeats and malformed frames (by reason) of a scanned chunk."""
        c = self.counters
        c.heartbeats += int(np.count_nonzero(status == FRAME_HEARTBEAT))
        bad = (status != FRAME_OK) & (status != FRAME_HEARTBEAT)
        if bad.any():
            c.malformed_frames += int(bad.sum())
            codes, counts = np.unique(status[bad], return_counts=True)
            for code, n in zip(codes.tolist(), counts.tolist(), strict=True):
                reason = FRAME_STATUS_REASONS[code]
                c.malformed_reasons[reason] = c.malformed_reasons.get(reason, 0) + n

    # -- the batch ---------------------------------------------------------------------------

    def process(self, frames: list[tuple[int, str, bytes]]) -> None:
        """Run one batch of raw frames ``(recv_ns, connection, bytes)`` through the pipeline
        (frames of a connection ahead of the others wait in :attr:`merge` until they may go on).

        Alerts go to :meth:`Outputs.alerts` as each minute decides them; the writes go to
        :meth:`Outputs.writes` after each chunk (:data:`MAX_CHUNK_PACKETS`) that closed bars
        when more chunks follow, and the rest at the end. A fast replay of a sparse feed takes
        several exchange minutes off the raw queue in one step (5 minutes of 9,000
        instruments at 4 ticks per minute, about 120 MiB of writes); cut, a batch holds the
        minute closes of one chunk at most, so no step allocates one block of that size. The
        writes are the same however the step is cut.
        """
        self._run(self.merge.admit(frames))

    def _run(self, frames: list[tuple[int, str, bytes]]) -> None:
        """:meth:`process` of the frames the merge handed on."""
        if not frames:
            return
        batch = StoreBatch()
        parts = _chunks(frames, MAX_CHUNK_PACKETS)  # bounded arrays, same results
        for i, chunk in enumerate(parts):
            closed = self._process_ticks(self._decode(chunk), batch)
            if closed and i + 1 < len(parts):
                self.outputs.writes(self._seal(batch))
                batch = StoreBatch()
        self.outputs.writes(self._seal(batch))

    def _seal(self, batch: StoreBatch) -> StoreBatch:
        """Adds the latest ticks, gap records and feed progress to ``batch``."""
        c = self.counters
        self._write_latest(batch)
        batch.records.extend(self.gap_tracker.gap_rows(self.clock))
        if self._last_wall_frame_ns:
            batch.records.append(
                FeedProgress(self.node, self._last_wall_frame_ns, self.clock, c.frames)
            )
        return batch

    def _process_ticks(self, frames: JoinedFrames, batch: StoreBatch) -> bool:
        """Runs one chunk; True when it closed bars."""
        c = self.counters
        # scan, decode, exchange time, validation, token -> slot, volume, gap flags, bars, book
        # and the latest tick per instrument: one compiled pass (aion/pipeline/ticks.py)
        cols, n, closed = self.tick_path.run(
            frames, self.clock, self._seen, self.volume, self.bars, self.book,
            self.gap_tracker.pending, self._restore_new,
        )  # fmt: skip
        self._count_frames(frames.status)
        c.ticks += n.packets
        c.untimed_ticks += n.untimed
        c.invalid_ticks += n.invalid
        c.unknown_tokens += n.unknown
        if n.kept == 0:
            return False
        self.clock = max(self.clock, n.max_ts)
        slots, ts, price = cols.slot, cols.ts, cols.price
        self.analytics.on_ticks(slots, ts, cols.date, price, cols.incremental)
        if self.options.has_options:
            updated = self.options.on_ticks(
                slots, ts, cols.date, price, cols.volume_traded, cols.incremental, cols.oi
            )
            if updated.shape[0]:
                batch.records.append(self.options.option_rows(updated))
        if closed.shape[0]:
            self._on_bars(closed, batch)
            return True
        return False

    def _restore_new(self, s: int, date: int) -> None:
        """Slot ``s`` with persisted volume state ticks first (session date ``date``)."""
        st = self._restored.get(self.slot_inst[s].symbol)
        if st and int(st["session_date"]) == date:
            # resume from the cumulative already inside persisted bars (see _volume_columns)
            self.volume.restore(
                s,
                int(st["session_date"]),
                int(st["first_cumulative"]),
                int(st.get("bar_cumulative", st["last_cumulative"])),
                int(st.get("bad_ticks", 0)),
            )
            bar = st.get("bar")
            if bar:  # the last stored bar: late ticks of its minute revise it, never replace it
                self.bars.restore(
                    s,
                    int(st["bar_start"]),
                    (bar["open"], bar["high"], bar["low"], bar["close"]),
                    int(bar["volume"]),
                    int(bar.get("oi", 0)),
                    int(bar.get("ticks", 0)),
                    bool(bar.get("gap", False)),
                )

    def _volume_rows(self, slots: np.ndarray) -> VolumeRows:
        """The volume state of ``slots`` (int64 (k,) distinct) as int64 columns (no dict per
        instrument): the manager's snapshot plus
        ``bar_cumulative``, the cumulative volume whose increments are all inside bars already
        handed to the store (the last cumulative minus the forming bar's volume and late
        volume still waiting for a bar). The store writes it with the instrument's bars in one
        MULTI block, so a restart resumes from it: the volume of a forming bar lost in a crash
        is counted again in the first bar after the restart, never twice and never lost (sum
        of bar volumes == last - first cumulative). ``bar_start`` is the start (epoch s) of the
        instrument's last bar handed to the store, which a restart reopens
        (:meth:`aion.bars.builder.BarBuilder.restore`)."""
        values = np.empty((slots.shape[0], len(_VOLUME_FIELDS)), np.int64)
        values[:, :-2] = self.volume.snapshot_columns(slots)
        last = _VOLUME_FIELDS.index("last_cumulative")
        values[:, -2] = values[:, last] - self.bars.unbarred(slots)
        values[:, -1] = self.bars.last_closed[slots]
        return VolumeRows(slots.copy(), _VOLUME_FIELDS, values, self._symbols)

    def _write_latest(self, batch: StoreBatch) -> None:
        """The latest tick (and volume state) of every instrument that ticked in this batch
        (:class:`~aion.store.batch.TickRows`: prices in rupees, Kite's integer fields; the
        volume fields are written only for ticks that carry volume)."""
        lt = self.tick_path.latest
        slots = lt.take()
        if slots.shape[0] == 0:
            return
        has_vol = lt.has_volume[slots]
        vslots = slots[has_vol]
        if vslots.shape[0]:
            batch.records.append(self._volume_rows(vslots))
        cols = [lt.last_price, lt.ts, lt.mode, lt.volume_traded, lt.last_traded_quantity,
                lt.average_traded_price, lt.oi]  # fmt: skip
        values = np.column_stack([a[slots] for a in cols]).astype(np.float64)
        batch.records.append(TickRows(slots, _TICK_FIELDS, values, self._symbols, has_vol))

    def _on_bars(self, closed: np.ndarray, batch: StoreBatch) -> None:
        """Closed bars of one chunk: alerts first, then the store writes.

        Per minute group (a chunk may close several minutes) the alert path runs first:
        indicators, analytics columns, detectors, risk, the alert manager; the alerts go to
        :meth:`Outputs.alerts` at once. Only then the group's RVOL/profile and indicator
        hashes; after every group the bar texts, volume states and the roll-ups
        (:class:`~aion.bars.rollup.RollupBuilder`) the regular bars completed. Each stage sees
        the same state as in any other order (the analytics' records read what the group's own
        update left), so alerts and writes are unchanged.
        """
        c = self.counters
        c.bars += int(closed.shape[0])
        dates = session_dates(closed["start"])
        self.analytics.on_closed_bars(closed, self.volume.first_cumulative)
        # revisions re-send a bar with late volume for the store; indicators saw it already
        reg_mask = (closed["segment"] == SEGMENT_REGULAR) & (closed["revision"] == 0)
        reg = closed[reg_mask]
        if reg.shape[0]:
            c.regular_bars += int(reg.shape[0])
            self._on_regular_bars(reg, dates[reg_mask], batch)
        self._write_bars(closed, dates, batch)
        if reg.shape[0]:
            self._write_rollups(self.rollups.update(reg), batch)

    def _on_regular_bars(self, reg: np.ndarray, reg_dates: np.ndarray, batch: StoreBatch) -> None:
        """Indicators, detectors and alerts of closed regular bars (revision 0), minute by
        minute: a batch may close many minutes of one instrument, and each bar must see the
        indicator values as of its own close."""
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
            candidates = self._detect(group, dates_g, ind, va)
            self.history.append_many(slots, dates_g, group)
            # the alert policy (conflicts, rate limit) decides over the whole minute at once
            records = []
            for alert in self.alert_manager.consider_many(int(starts[lo]), candidates):
                self.alerts.append(alert)
                self.recent_alerts = [*self.recent_alerts, alert][-10:]
                records.append(AlertRecord(alert.date, alert.stream_id, alert.fields()))
            if records:
                self.outputs.alerts(records)
            self.analytics.record_bars(group, dates_g, va, batch)
            self._write_indicators(group, ind, batch)

    def _write_bars(self, closed: np.ndarray, dates: np.ndarray, batch: StoreBatch) -> None:
        """Every closed bar (:class:`~aion.store.batch.BarColumns`: the store writes its hash
        field, the archive its row) and the volume state of their instruments (written with
        the bars, see :meth:`_volume_rows`)."""
        batch.bar_columns.append(BarColumns(closed.copy(), dates, self._symbols))
        slots = np.unique(closed["slot"]).astype(np.int64)
        slots = slots[self.volume.seen[slots]]  # bars written -> their volume state too
        if slots.shape[0]:
            batch.records.append(self._volume_rows(slots))

    def _write_rollups(self, rolled: np.ndarray, batch: StoreBatch) -> None:
        """Rolled-up bars (``ROLLUP_DTYPE`` (k,)) for the store
        (:class:`~aion.store.batch.RollupColumns`)."""
        if rolled.shape[0] == 0:
            return
        batch.rollup_columns.append(RollupColumns(rolled.copy(), self._symbols))

    def _write_indicators(
        self, group: np.ndarray, ind: dict[str, np.ndarray], batch: StoreBatch
    ) -> None:
        """The indicator values of every instrument of a minute group after its bar closed
        (:class:`~aion.store.batch.IndicatorRows`: one float64 block, no dict per
        instrument)."""
        if group.shape[0] == 0:
            return
        names = tuple(ind)
        values = np.column_stack([ind[k] for k in names])
        slots = group["slot"].astype(np.int64)  # copies: the bar buffer is reused
        starts = group["start"].astype(np.int64)
        batch.records.append(IndicatorRows(slots, names, values, self._symbols, starts))

    def _detect(
        self,
        group: np.ndarray,
        dates: np.ndarray,
        ind: dict[str, np.ndarray],
        va: BarAnalyticsColumns,
    ) -> list[Candidate]:
        """Pattern engine and risk plan for the closed regular bars of one minute: one
        :class:`MinuteFrame`, the detectors' gates over it, views only where a gate passed."""
        slots = group["slot"].astype(np.int64)
        ends = group["start"].astype(np.int64) + 60
        hist, lens = self.history.window(slots, dates.astype(np.int64))
        chains: dict[int, dict[str, np.ndarray]] = {}
        if self.options.has_options:  # every underlying's bar advances its straddle VWAP
            for j, s in enumerate(slots.tolist()):
                if self.options.has_chain(s):
                    self.options.advance_straddle_vwap(s, int(ends[j]))
                    chain = self.options.chain_view(s, int(ends[j]))
                    if chain:
                        chains[j] = chain
        frame = MinuteFrame.of_minute(
            group, ind, va, hist, lens, self.book.at_close_many(slots, ends), chains
        )
        out: list[Candidate] = []
        for view, sig in self.patterns.detect_minute(frame, lambda j: self._view(frame, j, va)):
            act = self.patterns.settings(sig.pattern)
            plan = self.risk.plan(sig, view)
            out.append(Candidate(sig, view, plan, act.min_confidence, act.cooldown_s))
        return out

    def _view(self, frame: MinuteFrame, j: int, columns: BarAnalyticsColumns) -> InstrumentView:
        """What the detectors see of row ``j`` of a minute's frame (history before it)."""
        f = frame
        s = int(f.slot[j])
        inst = self.slot_inst[s]
        va = columns.row(j)
        m, n = f.width, int(f.history_len[j])
        hist = f.history[:, j, m - n :].copy()  # (5, n): no reference to the whole frame
        book = f.book[j]
        return InstrumentView(
            symbol=inst.symbol,
            bar_start=int(f.bar_start[j]),
            open=float(f.open[j]),
            high=float(f.high[j]),
            low=float(f.low[j]),
            close=float(f.close[j]),
            volume=float(f.volume[j]),
            history=dict(zip(_History.FIELDS, hist, strict=True)),
            indicators={k: float(v[j]) for k, v in f.indicators.items()},
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
            book={} if np.isnan(book[0]) else dict(zip(BOOK_FIELDS, book.tolist(), strict=True)),
            option=self.options.option_view(s, int(f.bar_start[j]) + 60),
            chain=f.chains.get(j, {}),
            mean_range=float(f.mean_range[j]),
        )

    def finish(self) -> None:
        """Close every forming bar (end of session or shutdown); what it produced goes to the
        outputs like a step's. Frames still held back by the merge go through first."""
        self._run(self.merge.drain())
        batch = StoreBatch()
        closed = self.bars.close_all()
        if closed.shape[0]:
            self._on_bars(closed, batch)
        self.analytics.finish(batch)
        self._write_rollups(self.rollups.finish(), batch)
        self.outputs.writes(batch)
