"""The archive thread: appends the scan's bars, alerts, volume state, gaps and runs to Parquet.

The compute thread hands every :class:`~aion.store.batch.StoreBatch` to the
bounded ``archive`` queue right after the ``out`` queue (the same objects, read
only; the Redis writer stays the one Redis writer). The ``archive`` thread
turns the batches into rows, keeps the latest version of each bar and volume
state, and writes one part per table and date whenever rows are pending and
``flush_interval_s`` has passed since the previous write (so a live session
writes about one part per bar close, a fast replay one every couple of seconds).

Rows are built column-wise from numbers, never from the Redis text: the closed bars'
structured array (:class:`~aion.store.batch.BarColumns`), the RVOL entries' columns
(:class:`~aion.store.batch.RvolColumns`) and the volume state's int64 columns
(:class:`~aion.store.batch.VolumeRows`), each step's rows one polars frame. The values
are those the Redis text parses back to (prices rounded as :func:`aion.store.layout.
encode_bars` does, RVOL numbers as :mod:`aion.store.encode` renders them), so the tables
equal what reading the JSON back gave, without a ``json.loads`` or a dict per bar.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import polars as pl

from aion.archive.config import archive_root
from aion.archive.store import Archive
from aion.config import AionConfig
from aion.market.time import SEGMENT_NAMES, minute_of_day_ist, parse_date
from aion.ops.logging import log_event
from aion.queues import BoundedQueue
from aion.store.batch import AlertRecord, BarColumns, RvolColumns, StoreBatch, VolumeRows
from aion.store.layout import minute_labels

log = logging.getLogger(__name__)

_VOLUME_FIELDS = ("first_cumulative", "last_cumulative", "incremental_total", "bad_ticks")
"""The ``volume_state`` table's numbers, read from the ``volume`` family by field name."""
_RVOL_FIELDS = ("volume", "cum_volume", "expected_bar", "expected_cum", "rvol_bar", "rvol_cum",
                "vix", "multiplier")  # fmt: skip
"""The ``rvol_1m`` table's numbers, read from :class:`RvolColumns` by name."""
_HHMM = pl.Series("time", minute_labels())
"""``HH:MM`` of each IST minute of the day (the hash field of a bar or RVOL entry)."""
_SEGMENTS = pl.Series("segment", [SEGMENT_NAMES[k] for k in range(max(SEGMENT_NAMES) + 1)], pl.Utf8)
_EXTRA = pl.Series("extra", ["{}", '{"gap": true}'], pl.Utf8)
"""``extra`` of a bar without / with the gap flag (``json.dumps`` of the bar's fields beyond
the table's columns, sorted: ``gap``, true only after a feed gap, is the only one)."""
_KEY = ["date", "symbol", "start"]


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


def _round_like_python(x: np.ndarray, digits: int) -> np.ndarray:
    """float64 (n,) ``round(v, digits)`` of each value as Python computes it (the correctly
    rounded decimal, which :func:`aion.store.layout.encode_bars` writes), vectorised.

    ``numpy.round`` (``rint(v * 10**digits) / 10**digits``) is used where it leaves a value
    unchanged and ``|v| < 2**38``: then ``v`` is the double nearest a ``digits``-decimal
    number, which Python's round also returns. The rest (NaN and infinities included) take
    Python's ``round`` one by one; tick prices (paise) never do.
    """
    out = np.round(x, digits)
    odd = np.flatnonzero((out != x) | ~(np.abs(x) < 2.0**38))
    if odd.shape[0]:
        out[odd] = [round(v, digits) for v in x[odd].tolist()]
    return out


def _as_rendered(x: np.ndarray, decimals: int) -> pl.Series:
    """The numbers :mod:`aion.store.encode` writes for float64 (n,) ``x`` with ``decimals``,
    as parsing that text gives them back: ``decimals >= 0``: ``rint(x * 10**d) / 10**d``
    (``numpy.round``; +0.0 for a negative zero; whole units past ``9e15 / 10**d``) as
    Float64; ``-1``: ``rint(x)`` as Int64 (capped at ``±9e18`` as the text is); non-finite
    values are null (JSON ``null``)."""
    finite = np.isfinite(x)
    if decimals < 0:
        r = np.clip(np.rint(x), -9.0e18, 9.0e18)
        return pl.Series(np.where(finite, r, np.nan), nan_to_null=True).cast(pl.Int64)
    q = np.rint(x * 10.0**decimals)
    whole = np.abs(q) >= 9.0e15
    v = np.where(whole, np.clip(np.rint(x), -9.0e18, 9.0e18), q / 10.0**decimals) + 0.0
    return pl.Series(np.where(finite, v, np.nan), nan_to_null=True)


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


def _yyyymmdd(d: dt.date) -> int:
    return d.year * 10_000 + d.month * 100 + d.day


def _latest(frames: list[pl.DataFrame], key: list[str]) -> pl.DataFrame:
    """``frames`` (oldest first) as one frame holding the latest row of each ``key``."""
    df = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical_relaxed")
    return df.unique(subset=key, keep="last", maintain_order=True)


class _VolumeRows:
    """The latest volume state row of each instrument not archived yet, in int64 arrays
    indexed by instrument (no dict per row). Rows of another session than the pending row of
    their key are kept apart (a multi-day replay archives both).

    Attributes:
        n_rows: pending rows.
    """

    _COLUMNS = ("session_date", *_VOLUME_FIELDS)

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._symbols: list[str] = []
        self._values = np.zeros((0, len(self._COLUMNS)), np.int64)
        self._pending = np.zeros(0, np.bool_)
        self._n_pending = 0
        self._frames: list[pl.DataFrame] = []  # earlier rows set apart, oldest first
        self._columns_of: dict[tuple[str, ...], list[int]] = {}

    @property
    def n_rows(self) -> int:
        return self._n_pending + sum(f.height for f in self._frames)

    def _rows_of(self, symbols: list[str]) -> np.ndarray:
        index = self._index
        rows = [index.get(k, -1) for k in symbols]
        if -1 in rows:
            for i, k in enumerate(symbols):
                if rows[i] < 0:
                    r = index.setdefault(k, len(self._symbols))
                    if r == len(self._symbols):
                        self._symbols.append(k)
                    rows[i] = r
            n = len(self._symbols)
            if n > self._pending.shape[0]:
                cap = max(n, 2 * self._pending.shape[0], 64)
                values = np.zeros((cap, len(self._COLUMNS)), np.int64)
                values[: self._values.shape[0]] = self._values
                pending = np.zeros(cap, np.bool_)
                pending[: self._pending.shape[0]] = self._pending
                self._values, self._pending = values, pending
        return np.asarray(rows, np.int64)

    def merge(self, rec: VolumeRows) -> None:
        """Take the rows of a volume state record (``rec.values`` int64 (n, m)); rows without
        a session (``session_date`` 0) are skipped."""
        j = self._columns_of.get(rec.names)
        if j is None:
            j = self._columns_of[rec.names] = [rec.names.index(c) for c in self._COLUMNS]
        values = rec.values[:, j]
        rows = self._rows_of([rec.symbols[s] for s in rec.slot.tolist()])
        keep = values[:, 0] != 0
        if not keep.all():
            rows, values = rows[keep], values[keep]
        other = self._pending[rows] & (self._values[rows, 0] != values[:, 0])
        if other.any():  # another session of a pending row: set the pending rows apart
            frame = self._frame()
            if frame is not None:
                self._frames.append(frame)
        self._n_pending += int(np.count_nonzero(~self._pending[rows]))
        self._values[rows] = values
        self._pending[rows] = True

    def _frame(self) -> pl.DataFrame | None:
        rows = np.flatnonzero(self._pending)
        if rows.shape[0] == 0:
            return None
        values = self._values[rows]
        data: dict[str, Any] = {
            "date": values[:, 0],
            "symbol": pl.Series("symbol", self._symbols, pl.Utf8).gather(rows),
        }
        for j, c in enumerate(_VOLUME_FIELDS, start=1):
            data[c] = values[:, j]
        self._pending[:] = False
        self._n_pending = 0
        return pl.DataFrame(data)

    def take(self) -> pl.DataFrame | None:
        """The pending rows (the latest per (date, symbol)) as a frame with an int ``date``
        column; None when nothing is pending. Clears them."""
        frame = self._frame()
        frames = [*self._frames, *([frame] if frame is not None else [])]
        self._frames = []
        return _latest(frames, ["date", "symbol"]) if frames else None

    def requeue(self, frame: pl.DataFrame) -> None:
        """Rows that could not be written: pending again, behind every row that arrived
        since."""
        self._frames.insert(0, frame)


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
            instruments merges about 20,000 rows a second).
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
        # bars_1m / rvol_1m: one frame per batch part (with an int ``date`` column), oldest
        # first; the latest row per (date, symbol, start) wins when they are written
        self._frames: dict[str, list[pl.DataFrame]] = {"bars_1m": [], "rvol_1m": []}
        self._framed_rows = 0
        self._volume = _VolumeRows()
        self._symbol_series: dict[int, tuple[Sequence[str], pl.Series]] = {}
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
        if not (batch.bar_columns or batch.rvol_columns or batch.alerts or any(
            isinstance(r, VolumeRows) for r in batch.records
        )):  # fmt: skip
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

    def _pending_rows(self) -> int:
        return self._framed_rows + self._volume.n_rows

    def _merge(self, batch: StoreBatch) -> None:
        """Turn one batch into pending rows (caller holds ``_lock``); writes them early, in the
        middle of a batch too, whenever ``max_pending_rows`` are pending (one batch of a fast
        replay can carry several minutes of 9,000 instruments). The Redis text of the batch
        (``batch.bars``, ``batch.state``, ``batch.columns``) is not read."""
        parts: list[BarColumns | RvolColumns] = [*batch.bar_columns, *batch.rvol_columns]
        for cols in parts:
            if self._pending_rows() >= self.max_pending_rows:
                self.flush()
            if isinstance(cols, BarColumns):
                df, table = self._bar_frame(cols), "bars_1m"
            else:
                df, table = self._rvol_frame(cols), "rvol_1m"
            self._frames[table].append(df)
            self._framed_rows += df.height
        for rec in batch.records:
            if isinstance(rec, VolumeRows):
                if self._pending_rows() >= self.max_pending_rows:
                    self.flush()
                self._volume.merge(rec)
        for a in batch.alerts:
            self._alerts.append((_ymd(a.date), self._alert_row(a)))
            self._alert_dates.add(_ymd(a.date))

    def _symbols(self, symbols: Sequence[str]) -> pl.Series:
        """``symbols`` (a producer's slot -> symbol table, shared and read only) as a Series,
        built once per table object."""
        hit = self._symbol_series.get(id(symbols))
        if hit is None or hit[0] is not symbols or hit[1].len() != len(symbols):
            if len(self._symbol_series) >= 8:
                self._symbol_series.clear()
            hit = (symbols, pl.Series("symbol", list(symbols), pl.Utf8))
            self._symbol_series[id(symbols)] = hit
        return hit[1]

    def _bar_frame(self, cols: BarColumns) -> pl.DataFrame:
        """The ``bars_1m`` rows (plus ``date`` YYYYMMDD) of one step's closed bars, column by
        column: what ``json.loads`` of each bar's text (:func:`aion.store.layout.encode_bars`)
        gives: prices rounded to 4 decimals as Python's ``round``, ``extra`` the gap flag."""
        b = cols.bars
        start = np.ascontiguousarray(b["start"], np.int64)
        data: dict[str, Any] = {
            "date": np.ascontiguousarray(cols.dates, np.int64),
            "symbol": self._symbols(cols.symbols).gather(np.ascontiguousarray(b["slot"])),
            "time": _HHMM.gather(minute_of_day_ist(start)),
            "start": start,
        }
        for f in ("open", "high", "low", "close"):
            data[f] = _round_like_python(np.ascontiguousarray(b[f], np.float64), 4)
        for f in ("volume", "oi", "ticks"):
            data[f] = np.ascontiguousarray(b[f], np.int64)
        data["segment"] = _SEGMENTS.gather(np.ascontiguousarray(b["segment"], np.int64))
        data["extra"] = _EXTRA.gather(np.ascontiguousarray(b["gap"], np.int64))
        return pl.DataFrame(data)

    def _rvol_frame(self, cols: RvolColumns) -> pl.DataFrame:
        """The ``rvol_1m`` rows (plus ``date`` YYYYMMDD) of one minute's RVOL entries: each
        number as its JSON text (:mod:`aion.store.encode`) parses back (:func:`_as_rendered`)."""
        start = np.ascontiguousarray(cols.start, np.int64)
        data: dict[str, Any] = {
            "date": np.ascontiguousarray(cols.dates, np.int64),
            "symbol": self._symbols(cols.symbols).gather(np.ascontiguousarray(cols.slot)),
            "time": _HHMM.gather(minute_of_day_ist(start)),
            "start": start,
        }
        for name in _RVOL_FIELDS:
            j = cols.names.index(name)
            data[name] = _as_rendered(np.ascontiguousarray(cols.values[:, j]), cols.decimals[j])
        data["regime"] = pl.Series("regime", list(cols.regime), pl.Utf8)
        return pl.DataFrame(data)

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

    def _take(self) -> dict[str, dict[dt.date, pl.DataFrame]]:
        """The pending rows, one frame per table and date (cleared)."""
        out: dict[str, dict[dt.date, pl.DataFrame]] = {}
        with self._lock:
            frames = {t: _latest(fs, _KEY) for t, fs in self._frames.items() if fs}
            volume = self._volume.take()
            if volume is not None:
                frames["volume_state"] = volume
            for table, df in frames.items():
                for (d,), part in df.partition_by("date", as_dict=True).items():
                    out.setdefault(table, {})[_ymd(int(d))] = part.drop("date")
            for table, rows in (("alerts", self._alerts), ("gaps", self._gaps),
                                ("runs", self._runs)):  # fmt: skip
                by_date: dict[dt.date, list[dict[str, Any]]] = {}
                for d, row in rows:
                    by_date.setdefault(d, []).append(row)
                for d, rs in by_date.items():
                    out.setdefault(table, {})[d] = pl.DataFrame(rs, infer_schema_length=None)
            self._frames = {t: [] for t in self._frames}
            self._framed_rows = 0
            self._alerts, self._gaps, self._runs = [], [], []
        return out

    def flush(self) -> bool:
        """Write every pending row (one part per table and date); False after a disk error.

        Rows that could not be written are kept for the next attempt (rows of the same key
        that arrive meanwhile win over them).
        """
        pending = self._take()
        ok = True
        for table, by_date in pending.items():
            for d, df in by_date.items():
                try:
                    self.archive.append(table, d, df)
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
                    self._requeue(table, d, df)
                    continue
                self.stats.parts_written += 1
                self.stats.rows_written[table] = self.stats.rows_written.get(table, 0) + df.height
                self._touched.add((table, d))
        return ok

    def _requeue(self, table: str, d: dt.date, df: pl.DataFrame) -> None:
        """Rows of ``table`` on ``d`` that could not be written: pending again."""
        with self._lock:
            if table in ("alerts", "gaps", "runs"):
                target = {"alerts": self._alerts, "gaps": self._gaps, "runs": self._runs}[table]
                target.extend((d, r) for r in df.to_dicts())
                return
            dated = df.select(pl.lit(_yyyymmdd(d), pl.Int64).alias("date"), pl.all())
            if table == "volume_state":
                self._volume.requeue(dated)
            else:  # ahead of the rows that arrived meanwhile: those win
                self._frames[table].insert(0, dated)
                self._framed_rows += dated.height

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
