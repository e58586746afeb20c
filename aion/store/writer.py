"""The store thread: the one writer to Redis, pipelined and coalesced per key per flush.

The compute thread puts :class:`StoreBatch` objects on the bounded ``out``
queue. The store thread merges what arrived since the last flush (latest value
per state key wins; bars accumulate per key; alerts keep their order) and, every
``flush_interval_ms``, writes it in one non-transactional pipeline: one HSET and
one EXPIRE per key, one XADD per alert. Keys come from :mod:`aion.store.keys`.

Alerts are idempotent: their stream entry id is derived from exchange time
(``<bar end ms>-<seq>``), so re-publishing an alert (a replay into the same
Redis, a restart) is rejected by Redis and counted in ``duplicate_alerts``.

When Redis is unreachable, pending writes stay buffered and are retried at the
next flush; past ``max_buffered_commands`` the oldest bar writes are dropped
and counted in ``dropped_commands`` (never silently).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from aion.pipeline.queues import BoundedQueue
from aion.store import keys


@dataclass
class AlertRecord:
    """One alert as written to the day's stream.

    Attributes:
        date: trading date YYYYMMDD (IST), picks the stream key.
        stream_id: ``"<ms>-<seq>"`` derived from the bar end's exchange time.
        fields: flat str -> str mapping (Kite/aion canonical names).
    """

    date: int
    stream_id: str
    fields: dict[str, str]


@dataclass
class StoreBatch:
    """Writes produced by one compute step; all mappings are field -> str/number."""

    bars: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (key, {HH:MM: json})
    state: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> latest mapping
    alerts: list[AlertRecord] = field(default_factory=list)
    runs: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (date, summary)


@dataclass
class StoreStats:
    """Counters of the store thread (live view and final summary)."""

    flushes: int = 0
    commands: int = 0
    bytes: int = 0
    alerts_written: int = 0
    duplicate_alerts: int = 0
    errors: int = 0
    outage_s: float = 0.0
    dropped_commands: int = 0
    pending_commands: int = 0
    last_error: str = ""


@dataclass(frozen=True)
class TtlSeconds:
    """TTL per key family, seconds."""

    bars: int
    state: int
    alerts: int
    runs: int


def _nbytes(mapping: dict[str, Any]) -> int:
    return sum(len(str(k)) + len(str(v)) for k, v in mapping.items())


class RedisStore:
    """Owns the Redis client and the store thread.

    Args:
        client: a redis-py client (``decode_responses=True``).
        queue: the bounded ``out`` queue filled by the compute thread.
        ttl: key TTLs.
        alerts_maxlen: approximate MAXLEN of each alert stream.
        flush_interval_ms: flush cadence (wall clock; the only wall-clock use in the data path).
        max_buffered_commands: buffer bound while Redis is unreachable.
    """

    def __init__(
        self,
        client: redis.Redis,
        queue: BoundedQueue[StoreBatch],
        ttl: TtlSeconds,
        alerts_maxlen: int = 100_000,
        flush_interval_ms: int = 200,
        max_buffered_commands: int = 500_000,
    ) -> None:
        self.client = client
        self.queue = queue
        self.ttl = ttl
        self.alerts_maxlen = alerts_maxlen
        self.flush_interval_s = flush_interval_ms / 1000.0
        self.max_buffered = max_buffered_commands
        self.stats = StoreStats()
        self._bars: dict[str, dict[str, str]] = {}
        self._state: dict[str, dict[str, Any]] = {}
        self._alerts: list[AlertRecord] = []
        self._runs: list[tuple[int, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage_since: float | None = None

    # -- merging -----------------------------------------------------------------------------

    def merge(self, batch: StoreBatch) -> None:
        """Coalesce one batch into the pending writes (latest state per key wins)."""
        for key, fields in batch.bars:
            self._bars.setdefault(key, {}).update(fields)
        for key, mapping in batch.state.items():
            self._state.setdefault(key, {}).update(mapping)
        self._alerts.extend(batch.alerts)
        self._runs.extend(batch.runs)
        self._bound()

    def _pending(self) -> int:
        return 2 * (len(self._bars) + len(self._state) + len(self._runs)) + len(self._alerts)

    def _bound(self) -> None:
        while self._pending() > self.max_buffered and self._bars:
            key = next(iter(self._bars))
            del self._bars[key]
            self.stats.dropped_commands += 2
        self.stats.pending_commands = self._pending()

    # -- flushing ----------------------------------------------------------------------------

    def flush(self) -> bool:
        """Write everything pending in one pipeline; returns False if Redis was unreachable."""
        if not (self._bars or self._state or self._alerts or self._runs):
            return True
        pipe = self.client.pipeline(transaction=False)
        n = 0
        nbytes = 0
        for key, fields in self._bars.items():
            pipe.hset(key, mapping=fields)
            pipe.expire(key, self.ttl.bars)
            n += 2
            nbytes += _nbytes(fields)
        for key, mapping in self._state.items():
            pipe.hset(key, mapping={k: str(v) for k, v in mapping.items()})
            pipe.expire(key, self.ttl.state)
            n += 2
            nbytes += _nbytes(mapping)
        alert_keys = set()
        for a in self._alerts:
            k = keys.alerts(a.date)
            pipe.xadd(k, a.fields, id=a.stream_id, maxlen=self.alerts_maxlen, approximate=True)
            alert_keys.add(k)
            n += 1
            nbytes += _nbytes(a.fields)
        for k in alert_keys:
            pipe.expire(k, self.ttl.alerts)
            n += 1
        for date, summary in self._runs:
            pipe.xadd(keys.runs(date), summary, maxlen=1000, approximate=True)
            pipe.expire(keys.runs(date), self.ttl.runs)
            n += 2
            nbytes += _nbytes(summary)
        try:
            results = pipe.execute(raise_on_error=False)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.stats.errors += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            if self._outage_since is None:
                self._outage_since = time.monotonic()
            return False
        if self._outage_since is not None:
            self.stats.outage_s += time.monotonic() - self._outage_since
            self._outage_since = None
        offset = 2 * (len(self._bars) + len(self._state))
        for i, _a in enumerate(self._alerts):
            r = results[offset + i]
            if isinstance(r, redis.ResponseError):
                if "equal or smaller" in str(r):
                    self.stats.duplicate_alerts += 1
                else:
                    self.stats.errors += 1
                    self.stats.last_error = str(r)
            else:
                self.stats.alerts_written += 1
        for r in results[:offset]:
            if isinstance(r, Exception):
                self.stats.errors += 1
                self.stats.last_error = str(r)
        self.stats.flushes += 1
        self.stats.commands += n
        self.stats.bytes += nbytes
        self._bars.clear()
        self._state.clear()
        self._alerts.clear()
        self._runs.clear()
        self.stats.pending_commands = 0
        return True

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_interval_s
        while not self._stop.is_set():
            timeout = max(0.0, next_flush - time.monotonic())
            for batch in self.queue.get_many(256, timeout=min(timeout, 0.05) or 0.001):
                self.merge(batch)
            if time.monotonic() >= next_flush:
                self.flush()
                next_flush = time.monotonic() + self.flush_interval_s

    def start(self) -> None:
        """Start the store thread (``store``)."""
        self._thread = threading.Thread(target=self._run, name="store", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop the thread, drain the queue and flush; True when everything reached Redis."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        while not self.queue.empty():
            for batch in self.queue.get_many(4096, timeout=0.0):
                self.merge(batch)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.flush():
                return True
            if time.monotonic() > deadline:
                self.stats.dropped_commands += self._pending()
                return False
            time.sleep(0.2)


def encode_bar(bar: dict[str, Any]) -> str:
    """JSON text of one bar (compact, key order fixed)."""
    return json.dumps(bar, separators=(",", ":"), sort_keys=True)
