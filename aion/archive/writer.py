"""The archive thread: appends the scan's bars, alerts, volume state, gaps and runs to Parquet.

The compute thread hands every :class:`~aion.store.writer.StoreBatch` to the
bounded ``archive`` queue right after the ``out`` queue (the same objects, read
only; the Redis writer stays the one Redis writer). The ``archive`` thread
turns the batches into rows, keeps the latest version of each bar and volume
state, and writes one part per table and date whenever rows are pending and
``flush_interval_s`` has passed since the previous write (so a live session
writes about one part per bar close, a fast replay one every couple of seconds).

At shutdown (:meth:`ArchiveWriter.stop`) the queue is drained, pending rows,
run summaries and gaps are written, every partition touched is compacted to one
file, validations are archived for the dates that got alerts, and partitions
older than the retention are pruned.

Crash-loss bound: a crash (SIGKILL, power loss) loses the rows that had not
been written yet, i.e. those received in the last ``flush_interval_s`` (2 s by
default) plus the batches still in the ``archive`` queue; for a live scan that
is at most the bars of the minute that closed in that window. A part on disk
is never half-written (temporary name + rename).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

from aion.archive import archive_root
from aion.archive.store import Archive
from aion.config import AionConfig
from aion.market.time import parse_date
from aion.ops.logging import log_event
from aion.pipeline.queues import BoundedQueue
from aion.store import keys
from aion.store.writer import AlertRecord, StoreBatch

log = logging.getLogger(__name__)

_BAR_FIELDS = ("start", "open", "high", "low", "close", "volume", "oi", "ticks", "segment")
_RVOL_FIELDS = (
    "volume",
    "cum_volume",
    "expected_bar",
    "expected_cum",
    "rvol_bar",
    "rvol_cum",
    "vix",
    "regime",
    "multiplier",
)
_PER_MINUTE = (("bars_1m", keys.bars_1m), ("bars_1m", keys.bars_1m_ext), ("rvol_1m", keys.rvol))


class GapLike(Protocol):
    """A feed gap as recorded by :class:`aion.feed.client.Gap` (wall-clock epoch ns)."""

    @property
    def disconnected_ns(self) -> int: ...
    @property
    def reconnected_ns(self) -> int | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def attempts(self) -> int: ...


@dataclass
class ArchiveStats:
    """Counters of the archive thread (summary: ``archive_*``)."""

    parts_written: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    last_error: str = ""
    compacted: int = 0
    validated_dates: int = 0


def _symbol_of(key: str) -> str:
    """The instrument in a key's hash tag (``aion:{NSE:SBIN}:...`` -> ``NSE:SBIN``), or ''."""
    lo, hi = key.find("{"), key.find("}")
    return key[lo + 1 : hi] if 0 <= lo < hi else ""


def _classify(key: str) -> tuple[str, str, int] | None:
    """(table, symbol, YYYYMMDD) of a per-minute hash key that is archived, else None."""
    sym = _symbol_of(key)
    tail = key.rsplit(":", 1)[-1]
    if not sym or not tail.isdigit():
        return None
    for table, key_of in _PER_MINUTE:
        if key == key_of(sym, int(tail)):
            return table, sym, int(tail)
    return None


def _ymd(date: int) -> dt.date:
    return parse_date(str(date))


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except ValueError:
        return None


def _int(v: str | None) -> int | None:
    f = _float(v)
    return int(f) if f is not None else None


class ArchiveWriter:
    """Owns the ``archive`` thread and its pending rows.

    Args:
        archive: the archive folder.
        queue: bounded queue of StoreBatch objects (filled by :meth:`submit`).
        flush_interval_s: minimum wall seconds between two writes (crash-loss bound).
        retention_days: passed to :meth:`Archive.prune` at shutdown.
        node: process name recorded with runs and gaps.
        max_pending_rows: pending bar/RVOL/volume-state rows that trigger a write before
            ``flush_interval_s`` has passed (bounds memory: a max-speed replay of 9,000
            instruments merges about 20,000 rows a second, each a dict of about 1 KiB).
    """

    def __init__(
        self,
        archive: Archive,
        queue: BoundedQueue[StoreBatch],
        flush_interval_s: float = 2.0,
        retention_days: int = 400,
        node: str = "main",
        max_pending_rows: int = 10_000,
    ) -> None:
        self.archive = archive
        self.max_pending_rows = max_pending_rows
        self.queue = queue
        self.flush_interval_s = flush_interval_s
        self.retention_days = retention_days
        self.node = node
        self.stats = ArchiveStats()
        self._lock = threading.RLock()  # re-entered: _merge writes early (flush) while holding it
        self._rows: dict[tuple[str, dt.date, str, int], dict[str, Any]] = {}  # per minute
        self._volume: dict[tuple[dt.date, str], dict[str, Any]] = {}
        self._alerts: list[tuple[dt.date, dict[str, Any]]] = []
        self._gaps: list[tuple[dt.date, dict[str, Any]]] = []
        self._runs: list[tuple[dt.date, dict[str, Any]]] = []
        self._touched: set[tuple[str, dt.date]] = set()
        self._alert_dates: set[dt.date] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- producers ---------------------------------------------------------------------------

    def submit(self, batch: StoreBatch) -> bool:
        """Queue one batch (called by the compute thread); False when dropped (counted)."""
        if not (batch.bars or batch.alerts or batch.state):
            return True
        return self.queue.put(batch)

    def record_run(self, date: int, started_ns: int, ended_ns: int, summary: dict) -> None:
        """Add one run summary (``date`` YYYYMMDD) to be written at the next flush."""
        row = {
            "node": self.node,
            "started_ns": started_ns,
            "ended_ns": ended_ns,
            "stop_reason": str(summary.get("stop_reason", "")),
            "summary": json.dumps(summary, default=str, sort_keys=True),
        }
        with self._lock:
            self._runs.append((_ymd(date), row))

    def record_gaps(self, date: int, connection: str, gaps: Iterable[GapLike]) -> None:
        """Add the feed gaps of one connection (``date`` YYYYMMDD: the scan's session)."""
        rows = []
        for g in gaps:
            end = g.reconnected_ns
            rows.append(
                {
                    "node": self.node,
                    "connection": connection,
                    "disconnected_ns": int(g.disconnected_ns),
                    "reconnected_ns": None if end is None else int(end),
                    "duration_s": None if end is None else (end - g.disconnected_ns) / 1e9,
                    "reason": g.reason,
                    "attempts": int(g.attempts),
                }
            )
        with self._lock:
            self._gaps.extend((_ymd(date), r) for r in rows)

    # -- batches -> rows ---------------------------------------------------------------------

    def _merge(self, batch: StoreBatch) -> None:
        """Turn one batch into pending rows (caller holds ``_lock``); writes them early, in the
        middle of a batch too, whenever ``max_pending_rows`` are pending (one batch of a fast
        replay can carry several minutes of 9,000 instruments)."""
        for key, fields in batch.bars:
            if len(self._rows) + len(self._volume) >= self.max_pending_rows:
                self.flush()
            kind = _classify(key)
            if kind is None:  # roll-ups and other hashes are not archived
                continue
            table, sym, ymd = kind
            d = _ymd(ymd)
            for hhmm, text in fields.items():
                rec = json.loads(text)
                start = int(rec["start"])
                if table == "bars_1m":
                    row = {k: rec.get(k) for k in _BAR_FIELDS}
                    extra = {k: v for k, v in rec.items() if k not in _BAR_FIELDS}
                    row["extra"] = json.dumps(extra, sort_keys=True)
                else:
                    row = {k: rec.get(k) for k in _RVOL_FIELDS}
                row.update(symbol=sym, time=hhmm, start=start)
                self._rows[(table, d, sym, start)] = row
        for key, mapping in batch.state.items():
            sym = _symbol_of(key)
            if not sym or key != keys.volume_state(sym):
                continue
            row = {k: int(v) for k, v in mapping.items()}
            sdate = row.pop("session_date", 0)
            if sdate:
                self._volume[(_ymd(sdate), sym)] = {"symbol": sym, **row}
        for a in batch.alerts:
            self._alerts.append((_ymd(a.date), self._alert_row(a)))
            self._alert_dates.add(_ymd(a.date))

    @staticmethod
    def _alert_row(a: AlertRecord) -> dict[str, Any]:
        f = a.fields
        bar_time = f.get("bar_time", "")
        try:
            bar_start = int(dt.datetime.fromisoformat(bar_time).timestamp()) if bar_time else None
        except ValueError:
            bar_start = None
        return {
            "stream_id": a.stream_id,
            "alert_id": f.get("alert_id", a.stream_id),
            "symbol": f.get("symbol"),
            "pattern": f.get("pattern"),
            "direction": f.get("direction"),
            "bar_time": bar_time,
            "bar_start": bar_start,
            "confidence": _float(f.get("confidence")),
            "entry": _float(f.get("entry")),
            "stop": _float(f.get("stop")),
            "target": _float(f.get("target")),
            "quantity": _int(f.get("quantity")),
            "risk_reward": _float(f.get("risk_reward")),
            "fields": json.dumps(f, sort_keys=True),
        }

    # -- writing -----------------------------------------------------------------------------

    def _take(self) -> dict[str, dict[dt.date, list[dict[str, Any]]]]:
        out: dict[str, dict[dt.date, list[dict[str, Any]]]] = {}

        def add(table: str, d: dt.date, row: dict[str, Any]) -> None:
            out.setdefault(table, {}).setdefault(d, []).append(row)

        with self._lock:
            for (table, d, _s, _t), row in self._rows.items():
                add(table, d, row)
            for (d, _s), row in self._volume.items():
                add("volume_state", d, row)
            for table, rows in (
                ("alerts", self._alerts),
                ("gaps", self._gaps),
                ("runs", self._runs),
            ):
                for d, row in rows:
                    add(table, d, row)
            self._rows, self._volume = {}, {}
            self._alerts, self._gaps, self._runs = [], [], []
        return out

    def flush(self) -> bool:
        """Write every pending row (one part per table and date); False after a disk error.

        Rows that could not be written are kept for the next attempt.
        """
        pending = self._take()
        ok = True
        for table, by_date in pending.items():
            for d, rows in by_date.items():
                try:
                    self.archive.append(table, d, pl.DataFrame(rows, infer_schema_length=None))
                except OSError as exc:
                    ok = False
                    self.stats.errors += 1
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    log_event(
                        log,
                        "archive write failed",
                        logging.ERROR,
                        table=table,
                        date=d.isoformat(),
                        error=self.stats.last_error,
                    )
                    self._requeue(table, d, rows)
                    continue
                self.stats.parts_written += 1
                self.stats.rows_written[table] = self.stats.rows_written.get(table, 0) + len(rows)
                self._touched.add((table, d))
        return ok

    def _requeue(self, table: str, d: dt.date, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            if table in ("bars_1m", "rvol_1m"):
                for r in rows:
                    self._rows.setdefault((table, d, r["symbol"], int(r["start"])), r)
            elif table == "volume_state":
                for r in rows:
                    self._volume.setdefault((d, r["symbol"]), r)
            else:
                target = {"alerts": self._alerts, "gaps": self._gaps, "runs": self._runs}[table]
                target.extend((d, r) for r in rows)

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            batches = self.queue.get_many(256, timeout=0.05)
            with self._lock:
                for b in batches:
                    self._merge(b)
            if time.monotonic() - last >= self.flush_interval_s:
                self.flush()
                last = time.monotonic()

    def start(self) -> None:
        """Start the ``archive`` thread."""
        self._thread = threading.Thread(target=self._run, name="archive", daemon=True)
        self._thread.start()

    def stop(self) -> ArchiveStats:
        """Stop the thread, drain the queue, write, compact, validate, prune; returns stats."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        while not self.queue.empty():
            with self._lock:
                for b in self.queue.get_many(4096, timeout=0.0):
                    self._merge(b)
        self.flush()
        for table, d in sorted(self._touched):
            try:
                self.archive.compact(table, d)
                self.stats.compacted += 1
            except OSError as exc:
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
        from aion.archive.validations import archive_validations

        for d in sorted(self._alert_dates):
            if archive_validations(self.archive, d) is not None:
                self.stats.validated_dates += 1
        self.archive.prune(self.retention_days)
        log_event(
            log,
            "archive flushed",
            parts=self.stats.parts_written,
            rows=sum(self.stats.rows_written.values()),
            errors=self.stats.errors,
            root=str(self.archive.root),
        )
        return self.stats


def start_archive(config: AionConfig, node: str) -> ArchiveWriter | None:
    """Build and start the archive thread for a scan (None when ``archive.enabled`` is false)."""
    ac = config.archive
    if not ac.enabled:
        return None
    queue: BoundedQueue[StoreBatch] = BoundedQueue(
        "archive", ac.queue_maxsize, "block", config.queues.block_timeout_s
    )
    writer = ArchiveWriter(
        Archive(archive_root(config)),
        queue,
        ac.flush_interval_s,
        ac.retention_days,
        node,
        ac.max_pending_rows,
    )
    writer.start()
    return writer


def finish_archive(
    writer: ArchiveWriter,
    summary: dict[str, Any],
    gaps_by_connection: Mapping[str, Iterable[GapLike]],
    started_ns: int,
) -> dict[str, Any]:
    """Record the run and its feed gaps, stop the thread; returns ``archive_*`` summary fields."""
    date = int(summary.get("session_date") or 0)
    if date:
        for conn, gaps in gaps_by_connection.items():
            writer.record_gaps(date, conn, gaps)
        writer.record_run(date, started_ns, time.time_ns(), summary)
    st = writer.stop()
    return {
        "archive_parts": st.parts_written,
        "archive_rows": sum(st.rows_written.values()),
        "archive_errors": st.errors,
        "archive_dropped_batches": writer.queue.stats.dropped,
    }
