"""The composition root: builds and wires every component of a scan.

Threads (DESIGN.md, "The process"):

- ``feed-<conn>``: :class:`~aion.feed.client.FeedClient` puts raw frames on the
  bounded ``raw`` queue;
- ``compute``: :class:`~aion.pipeline.compute.ComputeEngine` decodes, computes
  and puts :class:`~aion.store.batch.StoreBatch` objects on the bounded ``out``
  queue;
- ``store``: :class:`~aion.store.writer.RedisStore`, the one Redis writer;
- the main thread runs the live view and waits for the end condition.

A scan ends when ``duration_s`` elapses, when a replayed session is complete
(the server's in-band end message arrived after the last frame), on Ctrl-C or
SIGTERM, or when the feed reports a fatal error. Shutdown stops the feed,
drains ``raw`` through the compute thread, closes forming bars, drains ``out``
and flushes Redis, then returns the summary.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from aion.archive.writer import ArchiveWriter, finish_archive, start_archive
from aion.config import AionConfig, ConfigError, load_patterns
from aion.feed.client import FeedClient, feed_summary
from aion.feed.sharding import ShardingError, shard_modes
from aion.instruments.kite_api import KiteApiError, cached_instruments, last_prices
from aion.instruments.master import Instrument, InstrumentMaster
from aion.instruments.universe import UniverseError, resolve_universe
from aion.kite.credentials import Credentials, CredentialsError, load_credentials
from aion.kite.wire import MODE_CODES
from aion.market.time import IST, parse_date, session_date, ymd
from aion.notify.notifier import MISSING_TOKEN, Notifier, load_bot_token, start_thread
from aion.patterns.registry import PatternEngine
from aion.pipeline.allocator import HeapTrimmer, tune_malloc
from aion.pipeline.compute import ComputeEngine
from aion.pipeline.outputs import Fanout, Sink
from aion.queues import BoundedQueue
from aion.replay.server import SESSION_COMPLETE_MESSAGE, ReplayServer
from aion.replay.session_file import Session, SessionFileError, open_session, read_header
from aion.store.batch import AlertRecord, StoreBatch
from aion.store.queries import check_reachable, read_restart_state
from aion.store.server import PrivateRedis, connect, redacted_url
from aion.store.status import status_path
from aion.store.writer import RedisStore, TtlSeconds
from aion.volume.averages import (
    bundled_adjustment_factors,
    bundled_daily_dir,
    daily_averages,
    read_adjustment_factors,
)

log = logging.getLogger(__name__)

_DAY_S = 86_400
_HANDSHAKE_WAIT_S = 5.0  # start() waits this long at most for each connection's first handshake


def _connection_name(i: int) -> str:
    """The name of the scan's ``i``-th feed connection, carried with each of its frames."""
    return f"conn{i}"


def _frame_bytes(item: object) -> int:
    """Bytes of a ``raw`` queue item: ``(recv_ns, conn, frame)`` -> ``len(frame)``; 0 for a
    gap marker ``(recv_ns, conn, Gap)`` or anything else."""
    if isinstance(item, tuple) and len(item) == 3:
        frame = item[2]
        if isinstance(frame, bytes | bytearray | memoryview):
            return len(frame)
    return 0


class _QueueSink:
    """The Redis store's side of the fan-out: batches onto the compute -> store queue (a full
    queue blocks, then drops and counts, :class:`~aion.queues.BoundedQueue`). A
    minute's alerts travel as a batch of their own, which the store writes ahead of pending
    state (XADD + PUBLISH)."""

    def __init__(self, queue: BoundedQueue) -> None:
        self.queue = queue

    def alerts(self, records: list[AlertRecord]) -> None:
        self.queue.put(StoreBatch(alerts=records))

    def writes(self, batch: StoreBatch) -> None:
        self.queue.put(batch)


class _ArchiveSink:
    """The Parquet archive's side of the fan-out (:meth:`ArchiveWriter.submit`)."""

    def __init__(self, archive: ArchiveWriter) -> None:
        self.archive = archive

    def alerts(self, records: list[AlertRecord]) -> None:
        self.archive.submit(StoreBatch(alerts=records))

    def writes(self, batch: StoreBatch) -> None:
        self.archive.submit(batch)


class ScanError(RuntimeError):
    """A scan cannot start; ``str()`` is one line saying what to fix."""


@dataclass
class ScanOptions:
    """What ``aion scan`` was asked to do.

    Attributes:
        replay: session file to replay through an in-process server on 127.0.0.1.
        ws_url: a server speaking Kite's protocol (a standalone replay server or Kite).
        speed: replay speed, session seconds per wall second; None = as fast as possible.
        duration_s: stop after this many wall seconds (None: until the session ends).
        symbols: restrict the universe (``NSE:HDFCBANK``...).
        instruments: extra instrument master CSVs or session files (for --ws-url).
        restore: seed volume state from Redis for the same session (restart semantics).
        node: process name used in cross-instrument keys.
        patterns: which ``patterns.yaml`` entries run (:func:`aion.config.select_patterns`:
            ``enabled``, ``all`` or names; None: ``$AION_PATTERNS``, else ``enabled``).
    """

    replay: Path | None = None
    ws_url: str | None = None
    speed: float | None = None
    duration_s: float | None = None
    symbols: list[str] = field(default_factory=list)
    instruments: list[Path] = field(default_factory=list)
    restore: bool | None = None
    node: str = "main"
    patterns: str | None = None


@dataclass
class ScanSummary:
    """The final report of a scan (also written to the day's run stream)."""

    values: dict[str, Any]


def resolve_credentials(opts: ScanOptions, secrets_file: str | None = None) -> Credentials:
    """Kite credentials (environment, else ``kite.secrets_file``); placeholders for replay.

    Raises:
        ScanError: live Kite requested without credentials, or an unsafe secrets file.
    """
    if opts.replay is not None:
        return Credentials("replay", "replay", "replay")
    try:
        creds = load_credentials(secrets_file)
    except CredentialsError as exc:
        raise ScanError(str(exc)) from None
    if opts.ws_url is not None:
        return creds or Credentials("replay", "replay", "replay")
    if creds is None:
        raise ScanError(
            "no Kite credentials: set KITE_API_KEY and KITE_ACCESS_TOKEN (or kite.secrets_file) "
            "for a live scan, or replay a recorded session with --replay FILE "
            "(see README: aion session build)"
        )
    return creds


class Scanner:
    """One scan: owns the threads, queues, Redis connection and optional replay server."""

    def __init__(self, config: AionConfig, opts: ScanOptions, config_dir: Path | None = None):
        self.config = config
        self.opts = opts
        self.patterns = PatternEngine(load_patterns(config_dir, opts.patterns))
        self.credentials = resolve_credentials(opts, config.kite.secrets_file)
        self._bot_token: str | None = None
        if config.notify.enabled and config.notify.in_scan and config.notify.telegram.enabled:
            try:  # a missing token stops the start-up, in one line
                self._bot_token = load_bot_token(config.kite.secrets_file)
            except CredentialsError as exc:
                raise ScanError(str(exc)) from None
            if not self._bot_token:
                raise ScanError(MISSING_TOKEN)
        self.api_key, self.access_token = self.credentials.api_key, self.credentials.access_token
        self.session: Session | None = open_session(opts.replay) if opts.replay else None
        self.master = self._master()
        self.modes: dict[int, int] = {}
        self.universe = self._universe()
        # the scan needs only its universe: drop the other ~40,000 bundled rows (their memory
        # is reused by the engine's allocations)
        self.master = self.master.subset(self.universe)
        try:
            self.shards = shard_modes(self.modes)
        except ShardingError as exc:
            raise ScanError(str(exc)) from None
        self.raw: BoundedQueue[tuple[int, str, bytes]] = BoundedQueue(
            "raw",
            config.queues.raw_maxsize,
            "block",
            config.queues.block_timeout_s,
            max_bytes=config.queues.raw_max_mb << 20,
            size_of=_frame_bytes,
        )
        self.out: BoundedQueue[StoreBatch] = BoundedQueue(
            "out",
            config.queues.out_maxsize,
            "block",
            config.queues.block_timeout_s,
            max_bytes=config.queues.out_max_mb << 20,
            size_of=StoreBatch.nbytes,
        )
        self._batch_bytes = config.queues.compute_batch_mb << 20  # frames per compute step
        self.session_complete = threading.Event()
        self._completes = 0  # replay end messages received (one per connection)
        self._complete_lock = threading.Lock()
        self.stop_requested = threading.Event()
        self.stop_reason = ""
        self.private_redis: PrivateRedis | None = None
        self.redis: redis.Redis | None = None
        self.redis_url = ""
        self.server: ReplayServer | None = None
        self.feeds: list[FeedClient] = []
        self.engine: ComputeEngine | None = None
        self.store: RedisStore | None = None
        self.archive: ArchiveWriter | None = None
        self.outputs: Fanout | None = None
        self.started_wall_ns = 0
        self._compute_thread: threading.Thread | None = None
        self._compute_stop = threading.Event()
        self.compute_error = ""
        """Set when the compute thread died of an exception (one line; the scan stops)."""
        self.notifier: Notifier | None = None
        self._notify_thread: threading.Thread | None = None
        self.started_monotonic = 0.0
        self.text_messages = 0
        self._switch_interval_s = sys.getswitchinterval()  # the process's, restored by stop()
        self._gc_thresholds = gc.get_threshold()  # the process's, restored by stop()

    # -- building ----------------------------------------------------------------------------

    def _live(self) -> bool:
        return self.opts.replay is None and self.opts.ws_url is None

    def _master(self) -> InstrumentMaster:
        master = InstrumentMaster.bundled()
        kc = self.config.kite
        try:
            if kc.instruments_csv:
                master = master.merge(InstrumentMaster.from_csv(list(kc.instruments_csv)))
            elif self._live():
                cache = Path(kc.instruments_cache_dir or self.config.data_dir() / "instruments")
                today = dt.datetime.now(IST).date()
                master = master.merge(
                    cached_instruments(kc.api_url, self.credentials, cache, today)
                )
        except (KiteApiError, ValueError) as exc:
            raise ScanError(str(exc)) from None
        if self.session is not None:
            master = master.merge(self.session.instruments())
        for p in self.opts.instruments:
            try:
                # the header only: the frames (tens of MB at 9,000 instruments) are not needed
                extra = InstrumentMaster.from_rows(read_header(p).get("instruments", []))
            except SessionFileError:
                extra = InstrumentMaster.from_csv([p])
            master = master.merge(extra)
        return master

    def _spot_price(self, symbol: str) -> float | None:
        """Kite's last price for options ATM (live scans only; None otherwise)."""
        if not self._live():
            return None
        try:
            return last_prices(self.config.kite.api_url, self.credentials, [symbol]).get(symbol)
        except KiteApiError as exc:
            raise ScanError(str(exc)) from None

    def _universe(self) -> dict[int, Instrument]:
        """Resolve the universe (aion/instruments/universe.py); sets ``self.modes``."""
        try:
            uni = resolve_universe(
                self.config.universe,
                self.master,
                self.config.kite.default_mode,
                self._scan_date(),
                self._spot_price,
                self.opts.symbols,
            )
        except UniverseError as exc:
            raise ScanError(str(exc)) from None
        if not uni and self.session is not None:
            mode = MODE_CODES[self.config.kite.default_mode]
            for r in self.session.header["instruments"]:
                uni.add(self.master.by_token(int(r["instrument_token"])), mode)
        if not uni:
            raise ScanError(
                "no instruments to scan: list symbols in config/aion.yaml universe "
                "or pass --symbols NSE:HDFCBANK,..."
            )
        self.modes = uni.modes
        return uni.instruments

    def _scan_date(self) -> dt.date:
        if self.session is not None:
            return parse_date(str(self.session.header["date"]))
        return dt.date.today()

    def averages(self) -> dict[str, float]:
        """``symbol -> average daily volume`` (shares) of the universe's NSE instruments,
        from the daily history before the scan's date (``volume.average_days`` sessions)."""
        vc = self.config.volume
        daily = Path(vc.daily_history_dir) if vc.daily_history_dir else bundled_daily_dir()
        fpath = (
            Path(vc.adjustment_factors) if vc.adjustment_factors else bundled_adjustment_factors()
        )
        factors = read_adjustment_factors(fpath)
        wanted = {i.tradingsymbol for i in self.universe.values() if i.exchange == "NSE"}
        avgs = daily_averages(daily, self._scan_date(), vc.average_days, factors, wanted)
        return {sym: a.avg_volume for sym, a in avgs.items()}

    def _connect_redis(self) -> redis.Redis:
        url = self.config.redis.url
        if url is None:
            self.private_redis = PrivateRedis(self.config.data_dir())
            url = self.private_redis.start()
        self.redis_url = url
        client = connect(url, self.config.redis.tls)
        try:
            check_reachable(client)
        except redis.RedisError as exc:
            raise ScanError(f"Redis at {redacted_url(url)} is unreachable: {exc}") from exc
        return client

    def _restored_volume(self, client: redis.Redis) -> dict[str, dict[str, Any]]:
        restore = self.opts.restore if self.opts.restore is not None else self.session is None
        if not restore:
            return {}
        return read_restart_state(client, [inst.symbol for inst in self.universe.values()])

    # -- running -----------------------------------------------------------------------------

    def _on_text(self, msg: dict) -> None:
        self.text_messages += 1
        if msg.get("type") == "message" and msg.get("data") == _COMPLETE_DATA:
            # each connection gets its own end message after its last frame: with 3
            # connections, stopping at the first one lost the others' last frames
            with self._complete_lock:
                self._completes += 1
                if self._completes >= len(self.feeds):
                    self.session_complete.set()

    def _compute_loop(self) -> None:
        """The compute thread. An exception here is a bug, not bad input (a malformed frame
        is counted and skipped inside the engine): it is logged with its traceback, and
        :meth:`should_stop` then ends the scan, instead of the feed filling the raw queue
        behind a dead thread."""
        assert self.engine is not None
        trimmer = HeapTrimmer(self.config.memory.trim_interval_s)
        try:
            while not self._compute_stop.is_set() or not self.raw.empty():
                frames = self.raw.get_many(512, timeout=0.05, max_bytes=self._batch_bytes)
                if frames:
                    self.engine.process(frames)
                trimmer.maybe_trim()
        except Exception as exc:
            self.compute_error = f"compute thread failed: {type(exc).__name__}: {exc}"
            log.exception("compute thread failed")

    def start(self) -> None:
        """Connect Redis, start the store, compute and feed threads (and the replay server).

        On any start-up error, whatever was already started is stopped again.
        """
        mc = self.config.memory
        tune_malloc(mc.mmap_threshold_mb << 20, mc.trim_threshold_mb << 20)
        # a thread back from a GIL-releasing call (numpy, Numba, a socket) waits up to the
        # switch interval per call while another runs Python (ThreadsConfig; restored by stop)
        sys.setswitchinterval(self.config.threads.gil_switch_interval_ms / 1000.0)
        gc.set_threshold(*mc.gc_thresholds)  # MemoryConfig: fewer passes in a minute close
        try:
            self._start()
        except BaseException:
            for f in self.feeds:
                f.stop()
            if self.server is not None:
                self.server.stop()
            if self.private_redis is not None:
                self.private_redis.stop()
            sys.setswitchinterval(self._switch_interval_s)
            gc.set_threshold(*self._gc_thresholds)
            raise

    def _start(self) -> None:
        self.redis = self._connect_redis()
        cfg = self.config
        day = _DAY_S
        ttl = TtlSeconds(
            bars=cfg.redis.ttl_days.bars * day,
            state=cfg.redis.ttl_days.state * day,
            alerts=cfg.redis.ttl_days.alerts * day,
            runs=cfg.redis.ttl_days.runs * day,
        )
        self.store = RedisStore(
            self.redis,
            self.out,
            ttl,
            cfg.redis.alerts_maxlen,
            cfg.redis.flush_interval_ms,
            cfg.redis.max_buffered_commands,
            status_file=status_path(cfg.data_dir(), self.opts.node),
            node=self.opts.node,
        )
        self.store.start()
        self._start_notifier()
        self.archive = start_archive(cfg, self.opts.node)
        sinks: dict[str, Sink] = {"redis": _QueueSink(self.out)}
        if self.archive is not None:
            sinks["archive"] = _ArchiveSink(self.archive)
        self.outputs = Fanout(sinks)  # the compute engine's one output port
        self.engine = ComputeEngine(
            self.universe,
            cfg,
            self.patterns,
            self.averages(),
            self._restored_volume(self.redis),
            node=self.opts.node,
            connections=[_connection_name(i) for i in range(len(self.shards))],
            outputs=self.outputs,
        )
        self.started_wall_ns = time.time_ns()
        self._compute_thread = threading.Thread(
            target=self._compute_loop, name="compute", daemon=True
        )
        self._compute_thread.start()
        url = self.opts.ws_url or cfg.kite.ws_url
        if self.session is not None:
            self.server = ReplayServer(
                self.session,
                speed=self.opts.speed,
                wait_for_client=True,
                start_clients=len(self.shards),  # every connection replays the whole session
            )
            self.server.start()
            url = self.server.url
        kc = cfg.kite
        calendar = cfg.calendar.market_calendar()

        def in_feed_hours() -> bool:  # the wall clock: is a lost connection worth retrying?
            return calendar.in_feed_hours(time.time())

        for i, modes in enumerate(self.shards):  # <= 3 connections of <= 3000 tokens
            self.feeds.append(
                FeedClient(
                    url,
                    self.api_key,
                    self.access_token,
                    modes,
                    self.raw,
                    name=_connection_name(i),
                    on_text=self._on_text,
                    max_backoff_s=kc.backoff_cap_s,
                    base_backoff_s=kc.backoff_initial_s,
                    stale_after_s=kc.watchdog_s,
                    ping_interval_s=kc.ping_interval_s,
                    max_attempts=kc.max_attempts_off_hours or None,
                    retry_forever=in_feed_hours,
                    gap_markers=True,
                )
            )
        self.started_monotonic = time.monotonic()
        for feed in self.feeds:
            feed.start()
        for feed in self.feeds:  # a refused token (HTTP 403) stops the start, in one line
            feed.wait_connected(_HANDSHAKE_WAIT_S)
            if feed.stats.fatal_error:
                raise ScanError(feed.stats.fatal_error)

    def _start_notifier(self) -> None:
        """``notify.in_scan``: the notifier on its own thread, Redis connection and HTTP
        client (:func:`aion.notify.notifier.start_thread`), on the scanned day's stream."""
        nc = self.config.notify
        if not (nc.enabled and nc.in_scan):
            return
        date = ymd(self._scan_date()) if self.session is not None else None
        self.notifier = Notifier(
            nc,
            connect(self.redis_url, self.config.redis.tls),
            self._bot_token,
            self.config.redis.ttl_days.alerts * _DAY_S,
            date,
        )
        self._notify_thread = start_thread(self.notifier)

    def _stop_notifier(self) -> None:
        """Stop the notifier thread (it finishes its request in flight, at most
        ``notify.timeout_s``); what it has not settled stays pending for the next run."""
        if self.notifier is None or self._notify_thread is None:
            return
        self.notifier.stop()
        self._notify_thread.join(self.config.notify.timeout_s + 2.0)
        self.notifier.client.close()

    def should_stop(self) -> bool:
        """True when the scan's end condition is met (sets ``stop_reason``)."""
        if self.compute_error:
            self.stop_reason = self.compute_error
            return True
        if self.stop_requested.is_set():
            self.stop_reason = self.stop_reason or "stopped by signal"
            return True
        if self.session_complete.is_set():
            self.stop_reason = "replayed session complete"
            return True
        d = self.opts.duration_s
        if d is not None and time.monotonic() - self.started_monotonic >= d:
            self.stop_reason = f"duration {d:g} s reached"
            return True
        for f in self.feeds:
            if f.stats.fatal_error:
                self.stop_reason = f.stats.fatal_error
                return True
        return False

    def stop(self) -> ScanSummary:
        """Drain and flush everything; returns the summary."""
        for f in self.feeds:
            f.stop()
        self._compute_stop.set()
        if self._compute_thread is not None:
            self._compute_thread.join()
        assert self.engine is not None and self.store is not None
        if self.compute_error:  # also when it failed while draining the raw queue
            self.stop_reason = self.compute_error
        else:  # after a failure the engine's state is not trusted
            self.engine.finish()
        summary = self.summary()
        date = int(summary.values.get("session_date") or 0)
        if date:
            flat = {
                k: json.dumps(v) if isinstance(v, dict | list) else str(v)
                for k, v in summary.values.items()
            }
            self.out.put(StoreBatch(runs=[(date, flat)]))
        flushed = self.store.stop()
        self._stop_notifier()
        if self.notifier is not None:
            summary.values["notify"] = self.notifier.stats.values()
        summary.values["redis_commands"] = self.store.stats.commands
        summary.values["redis_flushed"] = flushed
        summary.values["redis_dropped_commands"] = self.store.stats.dropped_commands
        summary.values["duplicate_alerts"] = self.store.stats.duplicate_alerts
        if self.archive is not None:
            gaps = {f.name: f.stats.gaps for f in self.feeds}
            summary.values.update(
                finish_archive(self.archive, summary.values, gaps, self.started_wall_ns)
            )
        if self.server is not None:
            self.server.stop()
        if self.redis is not None:
            self.redis.close()
        if self.private_redis is not None:
            self.private_redis.stop()
        sys.setswitchinterval(self._switch_interval_s)
        gc.set_threshold(*self._gc_thresholds)
        return summary

    def summary(self) -> ScanSummary:
        """Counters of every stage, JSON-able."""
        assert self.engine is not None and self.store is not None
        e = self.engine
        c = e.counters
        ac = e.alert_manager.counters
        clock = e.clock
        vals: dict[str, Any] = {
            "stop_reason": self.stop_reason,
            "elapsed_s": round(time.monotonic() - self.started_monotonic, 3),
            "session_date": session_date(clock) if clock else 0,
            "instruments": len(self.universe),
            "frames": c.frames,
            "heartbeats": c.heartbeats + sum(f.stats.heartbeats for f in self.feeds),
            "ticks": c.ticks,
            "malformed_frames": c.malformed_frames,
            "invalid_ticks": c.invalid_ticks,
            "untimed_ticks": c.untimed_ticks,
            "unknown_tokens": c.unknown_tokens,
            "bad_cumulative_ticks": e.volume.counters.bad_ticks,
            "late_ticks": e.bars.late_ticks,
            "merge_held_frames": e.merge.stats.held,
            "merge_close_wait_expiries": e.merge.stats.expired,
            "bars": c.bars,
            "regular_bars": c.regular_bars,
            "signals": e.alert_manager.counters.signals,
            "alerts": e.alert_manager.counters.published,
            "alerts_by_pattern": dict(sorted(ac.published_by_pattern.items())),
            "alerts_per_minute": round(ac.rate_per_minute(), 4),
            "alerts_per_minute_max": ac.max_per_minute,
            "alerts_suppressed": ac.suppressed(),
            "risk_refused_reasons": dict(sorted(ac.risk_refused_reasons.items())),
            "queue_drops": self.raw.stats.dropped + self.out.stats.dropped,
            "raw_queue_high_water": self.raw.stats.high_water,
            "out_queue_high_water": self.out.stats.high_water,
            "feed_reconnects": sum(f.stats.reconnects for f in self.feeds),
            "sink_errors": dict(self.outputs.errors) if self.outputs is not None else {},
            **feed_summary(self.feeds),
        }
        return ScanSummary(vals)


_COMPLETE_DATA = json.loads(SESSION_COMPLETE_MESSAGE)["data"]


def install_signal_handlers(scanner: Scanner) -> None:
    """SIGTERM and SIGINT request a graceful stop (drain, flush, summary)."""

    def handler(signum: int, _frame: object) -> None:
        scanner.stop_reason = f"signal {signal.Signals(signum).name}"
        scanner.stop_requested.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def config_error_line(exc: Exception) -> str:
    """The one line shown for a start-up error."""
    if isinstance(exc, ConfigError | ScanError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
