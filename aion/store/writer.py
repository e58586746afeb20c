"""The store thread: the one writer to Redis, pipelined and coalesced per key per flush.

The compute thread puts :class:`~aion.store.batch.StoreBatch` objects on the bounded ``out``
queue. The store thread merges what arrived since the last flush (latest value
per state key wins; bars accumulate per key; alerts keep their order) and, every
``flush_interval_ms`` writes it in one round trip of hand-packed RESP
(:class:`~aion.store.resp.RespCommands`, on the store's own
:class:`~aion.store.resp.RespConnection`): per state key one HSET of only the fields whose
value changed since the last successful write (a per-key shadow of what Redis holds,
:mod:`aion.store.shadow`), EXPIRE only when a key is first written and then every
:data:`~aion.store.shadow.EXPIRE_REFRESH_S` (with a full rewrite). Alerts do not wait for
the cadence: as soon as one arrives (and Redis is reachable) the pending alerts are written
alone, one XADD each, in their own round trip ahead of any pending state
(:meth:`RedisStore.flush_alerts`). Keys come from :mod:`aion.store.keys`, field names and
value text from :mod:`aion.store.layout`.

Alerts are idempotent: their stream entry id is derived from exchange time
(``<bar end ms>-<seq>``), so re-publishing an alert (a replay into the same
Redis, a restart) is rejected by Redis and counted in ``duplicate_alerts``.
Each alert the stream accepted is then announced on the pub/sub channel
:func:`aion.store.keys.alerts_channel` (JSON of its fields plus ``stream_id``;
``alerts_announced`` counts them).

When a flush carries an instrument's bars, that instrument's writes (its bars hash
and its latest state, including the volume state: a row of the ``volume``
:class:`~aion.store.batch.StateColumns` family) are sent as one ``MULTI``/``EXEC``
block: every key
of an instrument carries its hash tag, so the block stays in one cluster slot,
and a process killed mid-pipeline leaves each instrument's bars and volume state
either both written or both not (restart consistency, see
:mod:`aion.pipeline.compute`).

When Redis is unreachable, pending writes stay buffered (coalesced) and are
retried at the next flush; past ``max_buffered_commands`` the oldest bar writes
are dropped, whole keys at a time, and counted exactly in ``dropped_commands``
(never silently; state, alerts and run summaries are never dropped). With a
``status_file`` the store thread also keeps a small JSON status file (Redis
reachable or not, pending and dropped commands, :mod:`aion.store.status`) that
``aion health`` reads when Redis itself cannot be asked.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import redis

from aion.queues import BoundedQueue
from aion.store import keys, layout
from aion.store.batch import AlertRecord, StateColumns, StoreBatch
from aion.store.columnar import ColumnFamily, Rendered
from aion.store.keys import RUNS_MAXLEN
from aion.store.resp import STREAM_CHARS, RespCommands, RespConnection, flat, pack_command
from aion.store.shadow import EXPIRE_REFRESH_S, Shadow, hset_changed
from aion.store.status import write_status


@dataclass
class StoreStats:
    """Counters of the store thread (live view and final summary)."""

    flushes: int = 0
    commands: int = 0
    bytes: int = 0
    alerts_written: int = 0
    alerts_announced: int = 0
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


class RedisStore:
    """Owns the Redis client and the store thread.

    Args:
        client: a redis-py client (``decode_responses=True``).
        queue: the bounded ``out`` queue filled by the compute thread.
        ttl: key TTLs.
        alerts_maxlen: approximate MAXLEN of each alert stream.
        flush_interval_ms: flush cadence (wall clock; the only wall-clock use in the data path).
        max_buffered_commands: buffer bound while Redis is unreachable.
        status_file: optional JSON status file (see
            :func:`aion.store.status.read_store_status`), rewritten at most once per second
            by the store thread.
        node: process name written into the status file.
    """

    def __init__(
        self,
        client: redis.Redis,
        queue: BoundedQueue[StoreBatch],
        ttl: TtlSeconds,
        alerts_maxlen: int = 100_000,
        flush_interval_ms: int = 200,
        max_buffered_commands: int = 500_000,
        status_file: Path | None = None,
        node: str = "main",
    ) -> None:
        self._conn: RespConnection | None = None
        self.client = client  # and the store thread's own socket to its server
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
        self._shadow: dict[str, Shadow] = {}  # state key -> fields last written
        # StateColumns families: (name, fields) -> their pending rows and columnar shadow
        self._families: dict[tuple[str, tuple[str, ...]], ColumnFamily] = {}
        self._expire_due: dict[str, float] = {}  # key -> monotonic time its EXPIRE is due
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage_since: float | None = None
        self._outage_since_wall: float | None = None
        self.status_file = status_file
        self.node = node
        self._status_written = 0.0

    @property
    def client(self) -> redis.Redis:
        """The redis-py client whose server the store writes to (its connection settings name
        the server; the writes go over the store's own :class:`~aion.store.resp.RespConnection`
        to it). Setting it closes the current connection; the next flush connects to the new
        client's server."""
        return self._client

    @client.setter
    def client(self, client: redis.Redis) -> None:
        if self._conn is not None:
            self._connection().close()
        self._client = client
        self._conn = RespConnection(client)

    # -- merging -----------------------------------------------------------------------------

    def merge(self, batch: StoreBatch) -> None:
        """Coalesce one batch into the pending writes (latest state per key wins); its typed
        records are mapped to keys, fields and text here (:mod:`aion.store.layout`)."""
        pending_bars = self._bars
        for rv in batch.rvol_columns:
            for key, fields in layout.rvol_hashes(rv):
                pending_bars.setdefault(key, {}).update(fields)
        for closed in batch.bar_columns:
            for key, fields in layout.bar_hashes(closed):
                pending_bars.setdefault(key, {}).update(fields)
        for ru in batch.rollup_columns:
            for key, fields in layout.rollup_hashes(ru):
                pending_bars.setdefault(key, {}).update(fields)
        for key, fields in batch.bars:
            pending_bars.setdefault(key, {}).update(fields)
        for key, mapping in batch.state.items():
            self._merge_state(key, mapping)
        for cols in batch.columns:
            self._merge_columns(cols)
        for rec in batch.records:
            w = layout.state_writes(rec)
            if isinstance(w, StateColumns):
                self._merge_columns(w)
            else:
                for key, mapping in w.items():
                    self._merge_state(key, mapping)
        self._alerts.extend(batch.alerts)
        self._runs.extend(batch.runs)
        self._bound()

    def _merge_state(self, key: str, mapping: dict[str, Any]) -> None:
        cur = self._state.get(key)
        if cur is None:
            self._state[key] = dict(mapping)  # a copy: later batches update it
        else:
            cur.update(mapping)

    def _merge_columns(self, cols: StateColumns) -> None:
        fam = self._families.get((cols.family, cols.fields))
        if fam is None:
            fam = ColumnFamily(cols.fields, keys.hash_tag)
            self._families[(cols.family, cols.fields)] = fam
        fam.merge(cols)

    def _pending(self) -> int:
        keys_ = len(self._bars) + len(self._state) + len(self._runs)
        keys_ += sum(f.n_pending for f in self._families.values())
        return 2 * keys_ + len(self._alerts)

    def _bound(self) -> None:
        while self._pending() > self.max_buffered and self._bars:
            key = next(iter(self._bars))
            del self._bars[key]
            self.stats.dropped_commands += 2
        self.stats.pending_commands = self._pending()

    # -- flushing ----------------------------------------------------------------------------

    def flush(self) -> bool:
        """Write everything pending; returns False if Redis was unreachable.

        Pending alerts go first in their own round trip (:meth:`flush_alerts`), then the
        state, bars and run summaries in one more. The commands are packed as RESP by
        :class:`RespCommands` and streamed on one connection every :data:`STREAM_CHARS`
        while the rest is packed; the replies are read back at the end by one hiredis
        reader. Per state key only the fields whose value differs from the last successful
        write are sent, and EXPIRE only when due (see :data:`EXPIRE_REFRESH_S`); a failed
        flush forgets what was written, so the next one rewrites every pending key in full
        with its EXPIRE.
        """
        if self._alerts and not self.flush_alerts():
            return False
        families = [f for f in self._families.values() if f.n_pending]
        if not (self._bars or self._state or self._runs or families):
            return True
        now = time.monotonic()
        due_at = self._expire_due
        cmds = RespCommands()
        conn = self._connection()
        sent_before = conn.sent
        sent_ok = False
        rendered: list[tuple[ColumnFamily, Rendered]] = []
        try:
            owners, shadow_updates, expired = self._pack(now, cmds, conn, families, rendered)
            conn.send(cmds.take())
            errors = conn.errors(cmds.count)
            sent_ok = True
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self._unreachable(exc)
            return False
        finally:
            if not sent_ok:  # replies may be left unread on the socket
                conn.close()
        self._reachable()
        shadow = self._shadow
        for key, sent, full in shadow_updates:
            if full:
                shadow[key] = sent
            elif sent:
                shadow[key].update(sent)
        next_due = now + EXPIRE_REFRESH_S
        for key in expired:
            due_at[key] = next_due
        for fam, done in rendered:
            fam.commit(done, next_due)
        self._check_replies(errors, owners)
        self.stats.flushes += 1
        self.stats.commands += cmds.count
        self.stats.bytes += conn.sent - sent_before
        self._bars.clear()
        self._state.clear()
        self._runs.clear()
        self.stats.pending_commands = 0
        self.write_status()
        return True

    def flush_alerts(self) -> bool:
        """Write the pending alerts in their own round trip, then announce the accepted ones;
        returns False if Redis was unreachable (they stay pending, in order).

        One XADD per alert (its exchange-time stream id: a duplicate is rejected by Redis and
        counted in ``duplicate_alerts``) and the EXPIRE of each day's stream when due. The
        store thread calls it as soon as alerts arrive, so an alert never waits behind a
        large state flush (issue 8: frame-to-alert latency).
        """
        if not self._alerts:
            return True
        now = time.monotonic()
        cmds = RespCommands()
        maxlen = str(self.alerts_maxlen)
        for a in self._alerts:
            k = keys.alerts(a.date)
            cmds.command("XADD", k, "MAXLEN", "~", maxlen, a.stream_id, *flat(a.fields))
        streams = dict.fromkeys(keys.alerts(a.date) for a in self._alerts)
        expire = [k for k in streams if now >= self._expire_due.get(k, 0.0)]
        for k in expire:
            cmds.command("EXPIRE", k, str(self.ttl.alerts))
        packed = cmds.take()
        try:
            errors = dict(self.send_packed(packed, cmds.count))
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self._unreachable(exc)
            return False
        self._reachable()
        alerts, self._alerts = self._alerts, []
        accepted = []
        for i, a in enumerate(alerts):
            r = errors.get(i)
            if r is None:
                self.stats.alerts_written += 1
                accepted.append(a)
            elif "equal or smaller" in str(r):
                self.stats.duplicate_alerts += 1
            else:
                self.stats.errors += 1
                self.stats.last_error = str(r)
        if accepted:
            self._announce(accepted)
        for i, k in enumerate(expire, len(alerts)):
            r = errors.get(i)
            if r is not None:
                self.stats.errors += 1
                self.stats.last_error = str(r)
            else:
                self._expire_due[k] = now + EXPIRE_REFRESH_S
        self.stats.flushes += 1
        self.stats.commands += cmds.count
        self.stats.bytes += len(packed)
        self.stats.pending_commands = self._pending()
        return True

    def _unreachable(self, exc: Exception) -> None:
        """A round trip failed: count it, start the outage (status file at once) and forget
        what Redis holds, so the next successful flush rewrites every key in full."""
        self.stats.errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        went_down = self._outage_since is None
        if went_down:
            self._outage_since = time.monotonic()
            self._outage_since_wall = time.time()
        self._shadow.clear()  # unknown what reached Redis: rewrite everything in full
        self._expire_due.clear()
        for fam in self._families.values():
            fam.forget()
        self.write_status(force=went_down)  # health must see an outage at once

    def _reachable(self) -> None:
        """A round trip succeeded: end an outage in progress (counted in ``outage_s``)."""
        if self._outage_since is not None:
            self.stats.outage_s += time.monotonic() - self._outage_since
            self._outage_since = None
            self._outage_since_wall = None
            self.write_status(force=True)

    def _pack(
        self,
        now: float,
        cmds: RespCommands,
        conn: RespConnection,
        families: list[ColumnFamily],
        rendered: list[tuple[ColumnFamily, Rendered]],
    ) -> tuple[list[tuple[int, Any]], list[tuple[str, Shadow, bool]], list[str]]:
        """Pack the pending state, column families, bars and run summaries into ``cmds``,
        streaming full parts to ``conn``; returns who owns each run of replies (``(n,
        keys)``: an error there invalidates those keys; ``(n, (family, rows))``: reply i
        belongs to family row ``rows[i]``), the shadow updates and the keys whose EXPIRE is
        refreshed. The families' renderings are appended to ``rendered``."""
        due_at = self._expire_due
        owners: list[tuple[int, Any]] = []
        shadow_updates: list[tuple[str, Shadow, bool]] = []  # (key, sent, full write)
        expired: list[str] = []  # keys whose EXPIRE this flush refreshes
        # (key, packed HSET and/or EXPIRE, commands) per instrument whose bars this flush carries
        blocks: dict[str | None, list[tuple[str, str | bytes, int]]] = {}
        for key, fields in self._bars.items():
            hset = hset_changed(key, fields, None)[1]
            if now >= due_at.get(key, 0.0):
                blocks.setdefault(keys.hash_tag(key), []).append(
                    (key, hset + pack_command("EXPIRE", key, str(self.ttl.bars)), 2)
                )
                expired.append(key)
            else:
                blocks.setdefault(keys.hash_tag(key), []).append((key, hset, 1))
        shadow = self._shadow
        for key, mapping in self._state.items():
            # full when not written successfully yet or its EXPIRE is due (the periodic full
            # rewrite heals a key deleted behind aion's back); else the changed fields only
            old = shadow.get(key)
            due = now >= due_at.get(key, 0.0)
            full = old is None or due
            ttl = self.ttl.state if full and due else 0
            tag = keys.hash_tag(key) if blocks else None
            sent, hset = hset_changed(key, mapping, None if full else old)
            shadow_updates.append((key, sent, full))
            if ttl:
                expired.append(key)
            if tag is not None and tag in blocks:
                if hset or ttl:
                    expire = pack_command("EXPIRE", key, str(ttl)) if ttl else ""
                    blocks[tag].append((key, hset + expire, bool(hset) + bool(ttl)))
                continue
            if hset:
                cmds.append(hset)
                owners.append((1, (key,)))
            if ttl:
                cmds.command("EXPIRE", key, str(ttl))
                owners.append((1, (key,)))
            if cmds.size > STREAM_CHARS:
                conn.send(cmds.take())
        for fam in families:
            done = fam.render(now, self.ttl.state, blocks)
            if done is None:
                continue
            rendered.append((fam, done))
            if done.main:
                cmds.append(done.main, int(done.main_rows.shape[0]))
                owners.append((int(done.main_rows.shape[0]), (fam, done.main_rows)))
            for key, chunk, n in done.block:
                blocks[keys.hash_tag(key)].append((key, chunk, n))
            if cmds.size > STREAM_CHARS:
                conn.send(cmds.take())
        for tag, block in blocks.items():
            writes = sum(n for _, _, n in block)
            # the instrument's bars and its volume state: both written or neither
            atomic = tag is not None and writes > 1
            if atomic:
                cmds.command("MULTI")
            for _, part, n in block:
                if n:
                    cmds.append(part, n)
            if atomic:
                cmds.command("EXEC")
            owners.append((writes + 2 * atomic, tuple(k for k, _, _ in block)))
            if cmds.size > STREAM_CHARS:
                conn.send(cmds.take())
        for date, summary in self._runs:
            cmds.command(
                "XADD", keys.runs(date), "MAXLEN", "~", str(RUNS_MAXLEN), "*", *flat(summary)
            )
            cmds.command("EXPIRE", keys.runs(date), str(self.ttl.runs))
            owners.append((2, ()))
        return owners, shadow_updates, expired

    def _check_replies(
        self, errors: list[tuple[int, Exception]], owners: list[tuple[int, Any]]
    ) -> None:
        """Count the error replies (reply index, error) and forget the shadow and EXPIRE
        schedule of the keys whose write failed."""
        if not errors:
            return
        first = 0
        spans = []
        for n, owner in owners:
            spans.append((first, first + n, owner))
            first += n
        for i, r in errors:
            self.stats.errors += 1
            self.stats.last_error = str(r)
            lo, _hi, owner = next(sp for sp in spans if sp[0] <= i < sp[1])
            if owner and isinstance(owner[0], ColumnFamily):
                owner[0].forget(owner[1][i - lo : i - lo + 1])
                continue
            for key in owner:  # what Redis holds for these keys is unknown now
                self._forget_key(key)

    def _forget_key(self, key: str) -> None:
        """What Redis holds for ``key`` is unknown: its next write is full, with its EXPIRE."""
        self._shadow.pop(key, None)
        self._expire_due.pop(key, None)
        for fam in self._families.values():
            with contextlib.suppress(KeyError):
                fam.forget(np.array([fam.row(key)], np.int64))

    def send_packed(self, packed: bytes, n_replies: int) -> list[tuple[int, redis.ResponseError]]:
        """Send packed commands on the store's connection and read their ``n_replies`` replies.

        Returns the error replies only, as (reply index, ``redis.ResponseError``); an EXEC
        reply counts as one. Raises ``redis.ConnectionError``/``TimeoutError`` (the
        connection is then closed) when Redis is unreachable.
        """
        conn = self._connection()
        ok = False
        try:
            conn.send(packed)
            errors = conn.errors(n_replies)
            ok = True
            return errors
        finally:
            if not ok:
                conn.close()

    def _connection(self) -> RespConnection:
        assert self._conn is not None  # set with the client
        return self._conn

    def _announce(self, alerts: list[AlertRecord]) -> None:
        """PUBLISH each newly stored alert in one round trip of packed RESP (best effort: the
        stream already holds it; one send and one read, so a busy compute thread delays it by
        two GIL hand-overs, not one per reply)."""
        cmds = RespCommands()
        channel = keys.alerts_channel()
        for a in alerts:
            cmds.command("PUBLISH", channel, json.dumps({"stream_id": a.stream_id, **a.fields}))
        try:
            failed = [r for _, r in self.send_packed(cmds.take(), cmds.count)]
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self.stats.errors += 1
            self.stats.last_error = f"publish: {type(exc).__name__}: {exc}"
            return
        if failed:
            self.stats.errors += len(failed)
            self.stats.last_error = f"publish: {failed[-1]}"
        self.stats.alerts_announced += len(alerts) - len(failed)

    def write_status(self, force: bool = False) -> None:
        """Rewrite the status file (atomically, at most once per wall second unless ``force``)."""
        if self.status_file is None:
            return
        now = time.time()
        if not force and now - self._status_written < 1.0:
            return
        self._status_written = now
        write_status(
            self.status_file,
            {
                "node": self.node,
                "pid": os.getpid(),
                "redis_reachable": self._outage_since is None,
                "outage_since": self._outage_since_wall,
                "updated": now,
                **{k: v for k, v in asdict(self.stats).items() if k != "last_error"},
            },
        )

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_interval_s
        while not self._stop.is_set():
            timeout = max(0.0, next_flush - time.monotonic())
            for batch in self.queue.get_many(256, timeout=min(timeout, 0.05) or 0.001):
                self.merge(batch)
            # new alerts go out at once, alone (latency); state waits for the cadence
            if self._alerts and self._outage_since is None:
                self.flush_alerts()
            if time.monotonic() >= next_flush:
                self.flush()
                self.write_status()
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
        try:
            while True:
                if self.flush():
                    return True
                if time.monotonic() > deadline:
                    self.stats.dropped_commands += self._pending()
                    return False
                time.sleep(0.2)
        finally:
            if self.status_file is not None:
                with contextlib.suppress(OSError):
                    self.status_file.unlink()
            self._connection().close()
