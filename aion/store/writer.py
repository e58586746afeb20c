"""The store thread: the one writer to Redis, pipelined and coalesced per key per flush.

The compute thread puts :class:`StoreBatch` objects on the bounded ``out``
queue. The store thread merges what arrived since the last flush (latest value
per state key wins; bars accumulate per key; alerts keep their order) and, every
``flush_interval_ms`` writes it in one round trip of hand-packed RESP
(:class:`RespCommands`): per state key one HSET of only the fields whose value changed
since the last successful write (a per-key shadow of what Redis holds), EXPIRE only
when a key is first written and then every :data:`EXPIRE_REFRESH_S` (with a full
rewrite). Alerts do not wait for the cadence: as soon as one arrives (and Redis is
reachable) the pending alerts are written alone, one XADD each, in their own round trip
ahead of any pending state (:meth:`RedisStore.flush_alerts`). Keys come from
:mod:`aion.store.keys`.

Alerts are idempotent: their stream entry id is derived from exchange time
(``<bar end ms>-<seq>``), so re-publishing an alert (a replay into the same
Redis, a restart) is rejected by Redis and counted in ``duplicate_alerts``.
Each alert the stream accepted is then announced on the pub/sub channel
:func:`aion.store.keys.alerts_channel` (JSON of its fields plus ``stream_id``;
``alerts_announced`` counts them).

When a flush carries an instrument's bars, that instrument's writes (its bars hash
and its latest state, including the volume state: a row of the ``volume``
:class:`~aion.store.columnar.StateColumns` family) are sent as one ``MULTI``/``EXEC``
block: every key
of an instrument carries its hash tag, so the block stays in one cluster slot,
and a process killed mid-pipeline leaves each instrument's bars and volume state
either both written or both not (restart consistency, see
:mod:`aion.pipeline.compute`).

When Redis is unreachable, pending writes stay buffered (coalesced) and are
retried at the next flush; past ``max_buffered_commands`` the oldest bar writes
are dropped, whole keys at a time, and counted exactly in ``dropped_commands``
(never silently; state, alerts and run summaries are never dropped). With a
``status_path`` the store thread also keeps a small JSON status file (Redis
reachable or not, pending and dropped commands) that ``aion health`` reads when
Redis itself cannot be asked.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import redis
from numba import njit

try:  # the C reply parser redis[hiredis] installs; replies are read by redis-py without it
    import hiredis
except ImportError:  # pragma: no cover
    hiredis = None  # type: ignore[assignment]

from aion.queues import BoundedQueue
from aion.store import keys
from aion.store.columnar import BarColumns, ColumnFamily, Rendered, RvolColumns, StateColumns


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


_ENTRY_BYTES = 160
"""Rough size of one dict entry of a :class:`StoreBatch` (a key or field name, its value text,
the dict slot): the compute -> store queue bound is in MiB, not exact."""


@dataclass
class StoreBatch:
    """Writes produced by one compute step; all mappings are field -> str/number.

    ``bar_columns`` and ``rvol_columns`` are the step's closed bars and RVOL entries as
    numbers, for the archive (:mod:`aion.archive.writer`); the store writes their text
    (``bars``) and ignores them.
    """

    bars: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (key, {HH:MM: json})
    state: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> latest mapping
    alerts: list[AlertRecord] = field(default_factory=list)
    runs: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (date, summary)
    columns: list[StateColumns] = field(default_factory=list)  # state of whole key families
    bar_columns: list[BarColumns] = field(default_factory=list)
    rvol_columns: list[RvolColumns] = field(default_factory=list)

    def state_mappings(self) -> dict[str, dict[str, str]]:
        """Every state key's fields as the store writes them: ``state`` then ``columns`` merged
        in order (later writes win per field). For readers and tests; the store never builds
        it."""
        out = {k: dict(v) for k, v in self.state.items()}
        for cols in self.columns:
            for key, mapping in cols.mappings().items():
                out.setdefault(key, {}).update(mapping)
        return out

    def nbytes(self) -> int:
        """Approximate memory the batch holds, bytes: its arrays exactly, plus
        :data:`_ENTRY_BYTES` per dict entry (key, field or value text and the dict slot). Bounds
        the compute -> store queue (``queues.out_max_mb``); deterministic for one batch."""
        arrays = 0
        for cols in self.columns:
            c = cols.cells
            arrays += c.text.nbytes + c.start.nbytes + c.end.nbytes
            if cols.values is not None:
                arrays += cols.values.nbytes
        for b in self.bar_columns:
            arrays += b.bars.nbytes + b.dates.nbytes
        for r in self.rvol_columns:
            arrays += r.values.nbytes + r.slot.nbytes + r.dates.nbytes + r.start.nbytes
        entries = sum(1 + len(f) for _, f in self.bars) + sum(
            1 + len(f) for f in self.state.values()
        )
        entries += sum(1 + len(a.fields) for a in self.alerts) + sum(
            1 + len(f) for _, f in self.runs
        )
        return arrays + entries * _ENTRY_BYTES


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


RUNS_MAXLEN = 1000
"""Approximate MAXLEN of each day's run-summary stream (one entry per scan)."""

STATUS_STALE_S = 10.0
"""A store status file older than this (wall seconds) describes no running scanner."""


EXPIRE_REFRESH_S = 300.0
"""Wall seconds between two EXPIREs of one key by the store (TTLs are days). The refresh also
rewrites the key's full mapping, so a state key deleted behind aion's back heals within it."""


def _bulk(text: str) -> str:
    """One RESP bulk string (length in UTF-8 bytes)."""
    n = len(text) if text.isascii() else len(text.encode())
    return f"${n}\r\n{text}\r\n"


def _flat(mapping: dict[str, Any]) -> list[str]:
    """``{f: v}`` -> ``[f, str(v), ...]`` (the field/value arguments of HSET and XADD)."""
    out: list[str] = []
    for k, v in mapping.items():
        out += (k, v if type(v) is str else str(v))
    return out


def _command(*args: str) -> str:
    """One command as RESP text (an array of bulk strings)."""
    return f"*{len(args)}\r\n" + "".join(map(_bulk, args))


def _read_replies(sock: socket.socket, n_replies: int) -> list[Any]:
    """``n_replies`` RESP2/RESP3 replies read from ``sock`` by one hiredis reader (str values; error
    replies as ``redis.ResponseError`` objects). Per reply this is one C call instead of
    redis-py's few Python frames, which made reading the replies a third of a flush.

    Raises ``redis.TimeoutError`` (the socket's timeout) or ``redis.ConnectionError``.
    """
    assert hiredis is not None
    reader = hiredis.Reader(replyError=redis.ResponseError, encoding="utf-8")
    results: list[Any] = []
    buf = bytearray(1 << 16)
    try:
        while len(results) < n_replies:
            n = sock.recv_into(buf)
            if n == 0:
                raise redis.ConnectionError("Redis closed the connection")
            reader.feed(buf, 0, n)  # type: ignore[arg-type]  # any buffer works
            while (reply := reader.gets()) is not False:
                results.append(reply)
    except TimeoutError as exc:  # socket.timeout
        raise redis.TimeoutError(f"reading replies: {exc}") from exc
    except OSError as exc:
        raise redis.ConnectionError(f"reading replies: {exc}") from exc
    return results


@njit(nogil=True, cache=True)
def _scan_replies(
    buf: np.ndarray, size: int, pos: int, count: int, want: int, errs: np.ndarray, n_err: int
) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """Walk complete RESP2/RESP3 replies in ``buf[pos:size]`` (the protocol spec: a type byte,
    a line ending CRLF, bulk payloads of the stated length, aggregates of the stated count)
    until ``want`` replies are complete; record per reply holding an error (``-`` or ``!``,
    nested in an EXEC array too: the first one) its index and message range in ``errs``
    int64 (want, 3). Returns (replies complete, position after them, errors recorded); a
    reply cut by the end of the data is left for the next call."""
    while count < want:
        p = pos
        pending = 1
        err_s = -1
        err_e = -1
        while pending > 0:
            if p >= size:
                return count, pos, n_err
            t = buf[p]
            q = p + 1
            while q + 1 < size and not (buf[q] == 13 and buf[q + 1] == 10):
                q += 1
            if q + 1 >= size:
                return count, pos, n_err
            pending -= 1
            num = 0
            neg = False
            for k in range(p + 1, q):
                c = buf[k]
                if c == 45:
                    neg = True
                elif 48 <= c <= 57:
                    num = num * 10 + (c - 48)
            if neg:
                num = -num
            if t == 45 and err_s < 0:  # '-' simple error
                err_s = p + 1
                err_e = q
            if t == 36 or t == 61 or t == 33:  # '$' bulk, '=' verbatim, '!' bulk error
                if num < 0:
                    p = q + 2
                else:
                    if q + 2 + num + 2 > size:
                        return count, pos, n_err
                    if t == 33 and err_s < 0:
                        err_s = q + 2
                        err_e = q + 2 + num
                    p = q + 2 + num + 2
            elif t == 42 or t == 126 or t == 62:  # '*' array, '~' set, '>' push
                if num > 0:
                    pending += num
                p = q + 2
            elif t == 37 or t == 124:  # '%' map, '|' attributes
                if num > 0:
                    pending += 2 * num
                p = q + 2
            else:
                p = q + 2
        if err_s >= 0:
            errs[n_err, 0] = count
            errs[n_err, 1] = err_s
            errs[n_err, 2] = err_e
            n_err += 1
        count += 1
        pos = p
    return count, pos, n_err


def _read_errors(sock: socket.socket, n_replies: int) -> list[tuple[int, redis.ResponseError]]:
    """Read ``n_replies`` replies from ``sock`` and return only the error ones, as (reply
    index, ``redis.ResponseError``); an EXEC reply counts as one (its first queued error).
    The replies are walked by :func:`_scan_replies` over the raw bytes: no Python object per
    reply, which made a flush's replies a fifth of its time.

    Raises ``redis.TimeoutError`` (the socket's timeout) or ``redis.ConnectionError``.
    """
    buf = bytearray(max(1 << 16, 8 * n_replies))
    size = pos = count = n_err = 0
    errs = np.zeros((n_replies, 3), np.int64)
    try:
        while count < n_replies:
            if size == len(buf):
                buf.extend(bytes(len(buf)))
            view = memoryview(buf)[size:]
            n = sock.recv_into(view)
            view.release()
            if n == 0:
                raise redis.ConnectionError("Redis closed the connection")
            size += n
            count, pos, n_err = _scan_replies(
                np.frombuffer(buf, np.uint8), size, pos, count, n_replies, errs, n_err
            )
    except TimeoutError as exc:  # socket.timeout
        raise redis.TimeoutError(f"reading replies: {exc}") from exc
    except OSError as exc:
        raise redis.ConnectionError(f"reading replies: {exc}") from exc
    return [
        (int(i), redis.ResponseError(bytes(buf[s:e]).decode(errors="replace")))
        for i, s, e in errs[:n_err].tolist()
    ]


_FIELD_HEADS: dict[str, str] = {}
"""RESP bulk-string text of hash field names seen (a bounded set: aion's field names)."""
_MAX_FIELD_HEADS = 8192


def _field_head(name: str) -> str:
    """``$<len>\\r\\n<name>\\r\\n``, remembered in :data:`_FIELD_HEADS` while it has room."""
    head = f"${len(name)}\r\n{name}\r\n"
    if len(_FIELD_HEADS) < _MAX_FIELD_HEADS:
        _FIELD_HEADS[name] = head
    return head


#: Values longer than this many characters are remembered in the store's shadow by a 64-bit
#: fingerprint instead of their text (see :func:`hset_changed`).
FINGERPRINT_MIN_CHARS = 64

#: What the shadow keeps per field: the text of a short value, ``hash()`` of a long one.
Shadow = dict[str, str | int]


def hset_changed(key: str, mapping: dict[str, Any], old: Shadow | None) -> tuple[Shadow, str]:
    """``HSET key`` of the fields of ``mapping`` whose ``str()`` value differs from ``old``
    (all of them when ``old`` is None), packed as RESP (:class:`RespCommands`).

    Returns the shadow of the fields sent and the command text ("" when none differs). One
    pass per field: compare, convert and encode.

    The shadow (field -> what Redis holds) keeps a value of at most
    :data:`FINGERPRINT_MIN_CHARS` characters as its text and a longer one (a volume profile's
    bins grow to kilobytes per instrument) as ``hash(value)``: Python's 64-bit SipHash-1-3 of
    the string (PEP 456), salted per process, which is fine for a shadow that lives in one
    process. A changed value whose fingerprint equals the old one would skip that field's
    write: for distinct strings that happens with probability about 2**-64 (5.4e-20) per
    comparison, i.e. about 5e-10 over a day of 9,000 instruments x 5 long fields x 10 flushes
    per second x 22,500 s (1e10 comparisons); and the periodic full rewrite (every
    :data:`EXPIRE_REFRESH_S`) would heal it. Measured at 9,000 instruments over an hour, the
    text shadow grew from 47 to 72 MB with the profile bins; fingerprints keep it flat.
    """
    sent: Shadow = {}
    parts: list[str] = []
    heads = _FIELD_HEADS
    prev = old.get if old is not None else None
    long_ = FINGERPRINT_MIN_CHARS
    for k, v in mapping.items():
        if type(v) is not str:
            v = str(v)
        seen: str | int = v if len(v) <= long_ else hash(v)
        if prev is not None and seen == prev(k):
            continue
        sent[k] = seen
        head = heads.get(k)
        if head is None:
            head = _field_head(k)
        parts.append(head)
        parts.append(f"${len(v)}\r\n{v}\r\n")
    if not sent:
        return sent, ""
    # lengths as characters first; bytes differ only off ASCII
    chunk = f"*{2 + 2 * len(sent)}\r\n$4\r\nHSET\r\n${len(key)}\r\n{key}\r\n" + "".join(parts)
    if not chunk.isascii():
        chunk = f"*{2 + 2 * len(sent)}\r\n$4\r\nHSET\r\n{_bulk(key)}" + "".join(
            _bulk(k) + _bulk(str(mapping[k])) for k in sent
        )
    return sent, chunk


class RespCommands:
    """Redis commands packed into one RESP2 request buffer (the Redis protocol spec,
    https://redis.io/docs/latest/develop/reference/protocol-spec/: an array of bulk strings
    per command). Building text and encoding once is several times cheaper than redis-py's
    per-command packer; the server cannot tell the difference.

    Attributes:
        count: commands added (one reply each).
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._packed: list[bytes] = []  # parts already bytes, in order before _parts
        self.count = 0
        self.size = 0  # characters appended since the last take()

    def command(self, *args: str) -> None:
        """Append one command (``"EXPIRE", key, "3600"``)."""
        self.append(_command(*args))

    def hset(self, key: str, fields: dict[str, Any]) -> None:
        """Append ``HSET key f1 v1 ...`` (values ``str()``-ed; ``fields`` not empty)."""
        self.append(hset_changed(key, fields, None)[1])

    def append(self, chunk: str | bytes, commands: int = 1) -> None:
        """Append ``commands`` commands already packed (:func:`hset_changed`; bytes: RESP
        rendered by :mod:`aion.store.columnar`)."""
        if type(chunk) is bytes:
            if self._parts:
                self._packed.append("".join(self._parts).encode())
                self._parts = []
            self._packed.append(chunk)
        else:
            self._parts.append(chunk)  # type: ignore[arg-type]
        self.size += len(chunk)
        self.count += commands

    def packed(self) -> bytes:
        """The request buffer (UTF-8) of the commands appended since the last :meth:`take`."""
        if not self._packed:
            return "".join(self._parts).encode()
        return b"".join([*self._packed, "".join(self._parts).encode()])

    def take(self) -> bytes:
        """:meth:`packed`, then forget those commands' text (``count`` keeps counting)."""
        out = self.packed()
        self._parts = []
        self._packed = []
        self.size = 0
        return out


STREAM_CHARS = 1 << 18
"""A flush sends its packed commands every this many characters (about 256 KiB) while it packs
the rest: Redis, on the other core, executes the first commands meanwhile."""


class _Pipe:
    """One pooled connection a flush streams packed commands to, then reads the replies of."""

    def __init__(self, client: redis.Redis) -> None:
        self._pool = client.connection_pool
        self._conn: Any = None
        self.sent = 0  # bytes

    def send(self, packed: bytes) -> None:
        """Send packed commands (raises ``redis.ConnectionError``/``TimeoutError``)."""
        if not packed:
            return
        if self._conn is None:
            self._conn = self._pool.get_connection()
        self._conn.send_packed_command([packed], check_health=False)
        self.sent += len(packed)

    def errors(self, n_replies: int) -> list[tuple[int, Exception]]:
        """Read ``n_replies`` replies; only the error ones (reply index, error), an EXEC
        reply as one (its first queued error)."""
        conn = self._conn
        if n_replies == 0 or conn is None:
            return []
        sock = getattr(conn, "_sock", None)
        if sock is not None and str(conn.protocol) in ("2", "3"):
            return _read_errors(sock, n_replies)
        out: list[tuple[int, Exception]] = []
        for i, r in enumerate(self.replies(n_replies)):
            if isinstance(r, list):
                r = next((x for x in r if isinstance(x, Exception)), None)
            if isinstance(r, Exception):
                out.append((i, r))
        return out

    def replies(self, n_replies: int) -> list[Any]:
        """Read ``n_replies`` replies (error replies as ``redis.ResponseError`` objects)."""
        conn = self._conn
        if n_replies == 0 or conn is None:
            return []
        sock = getattr(conn, "_sock", None)
        if hiredis is not None and sock is not None and str(conn.protocol) in ("2", "3"):
            return _read_replies(sock, n_replies)
        results: list[Any] = []
        read = conn.read_response
        for _ in range(n_replies):
            try:
                results.append(read())
            except redis.ResponseError as exc:
                results.append(exc)
        return results

    def close(self, ok: bool) -> None:
        """Give the connection back to the pool (disconnected unless ``ok``)."""
        if self._conn is None:
            return
        if not ok:
            self._conn.disconnect()
        self._pool.release(self._conn)
        self._conn = None


_TAG_HEAD = f"{keys.PREFIX}:{{"


def _hash_tag(key: str) -> str | None:
    """The ``{...}`` hash tag of an instrument key (``aion:{NSE:SBIN}:tick`` -> ``NSE:SBIN``)."""
    if key.startswith(_TAG_HEAD):
        end = key.find("}")
        if end > 0:
            return key[len(_TAG_HEAD) : end]
    return None


def status_path(data_dir: Path, node: str) -> Path:
    """Where the store thread of process ``node`` keeps its status file (JSON)."""
    return Path(data_dir) / "run" / f"store-{node}.json"


def read_store_status(data_dir: Path) -> list[dict[str, Any]]:
    """Fresh store status files under ``data_dir`` (running scanners), one dict each.

    Each dict: ``node``, ``pid``, ``redis_reachable`` (bool), ``outage_since`` (epoch s or
    None), ``pending_commands``, ``dropped_commands``, ``errors``, ``updated`` (epoch s,
    wall clock). Files older than :data:`STATUS_STALE_S` or of a process that is gone are
    skipped.
    """
    out = []
    for f in sorted((Path(data_dir) / "run").glob("store-*.json")):
        try:
            st = json.loads(f.read_text())
            fresh = time.time() - float(st["updated"]) <= STATUS_STALE_S
            os.kill(int(st["pid"]), 0)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if fresh:
            out.append(st)
    return out


def merge_store_status(report: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """Add running scanners' store status to a health ``report`` (modified and returned).

    ``report["scanners"]`` lists :func:`read_store_status`. A scanner that cannot reach Redis
    but keeps scanning and buffering makes the status ``degraded`` (it was ``down`` when this
    process could not reach Redis either): writes are delayed, not lost, unless
    ``dropped_commands`` says otherwise.
    """
    scanners = read_store_status(data_dir)
    if not scanners:
        return report
    report["scanners"] = {str(st["node"]): st for st in scanners}
    if any(not st["redis_reachable"] or st["dropped_commands"] for st in scanners):
        report["status"] = "degraded"
    return report


class RedisStore:
    """Owns the Redis client and the store thread.

    Args:
        client: a redis-py client (``decode_responses=True``).
        queue: the bounded ``out`` queue filled by the compute thread.
        ttl: key TTLs.
        alerts_maxlen: approximate MAXLEN of each alert stream.
        flush_interval_ms: flush cadence (wall clock; the only wall-clock use in the data path).
        max_buffered_commands: buffer bound while Redis is unreachable.
        status_file: optional JSON status file (see :func:`read_store_status`), rewritten
            at most once per second by the store thread.
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

    # -- merging -----------------------------------------------------------------------------

    def merge(self, batch: StoreBatch) -> None:
        """Coalesce one batch into the pending writes (latest state per key wins)."""
        for key, fields in batch.bars:
            self._bars.setdefault(key, {}).update(fields)
        state = self._state
        for key, mapping in batch.state.items():
            cur = state.get(key)
            if cur is None:
                state[key] = dict(mapping)  # a copy: later batches update it
            else:
                cur.update(mapping)
        for cols in batch.columns:
            fam = self._families.get((cols.family, cols.fields))
            if fam is None:
                fam = ColumnFamily(cols.fields, _hash_tag)
                self._families[(cols.family, cols.fields)] = fam
            fam.merge(cols)
        self._alerts.extend(batch.alerts)
        self._runs.extend(batch.runs)
        self._bound()

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
        pipe = _Pipe(self.client)
        sent_ok = False
        rendered: list[tuple[ColumnFamily, Rendered]] = []
        try:
            owners, shadow_updates, expired = self._pack(now, cmds, pipe, families, rendered)
            pipe.send(cmds.take())
            errors = pipe.errors(cmds.count)
            sent_ok = True
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self._unreachable(exc)
            return False
        finally:
            pipe.close(sent_ok)
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
        self.stats.bytes += pipe.sent
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
            cmds.command("XADD", k, "MAXLEN", "~", maxlen, a.stream_id, *_flat(a.fields))
        streams = dict.fromkeys(keys.alerts(a.date) for a in self._alerts)
        expire = [k for k in streams if now >= self._expire_due.get(k, 0.0)]
        for k in expire:
            cmds.command("EXPIRE", k, str(self.ttl.alerts))
        packed = cmds.take()
        try:
            results = self.send_packed(packed, cmds.count)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self._unreachable(exc)
            return False
        self._reachable()
        alerts, self._alerts = self._alerts, []
        accepted = []
        for a, r in zip(alerts, results, strict=False):
            if isinstance(r, redis.ResponseError):
                if "equal or smaller" in str(r):
                    self.stats.duplicate_alerts += 1
                else:
                    self.stats.errors += 1
                    self.stats.last_error = str(r)
            else:
                self.stats.alerts_written += 1
                accepted.append(a)
        if accepted:
            self._announce(accepted)
        for k, r in zip(expire, results[len(alerts) :], strict=True):
            if isinstance(r, Exception):
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
        pipe: _Pipe,
        families: list[ColumnFamily],
        rendered: list[tuple[ColumnFamily, Rendered]],
    ) -> tuple[list[tuple[int, Any]], list[tuple[str, Shadow, bool]], list[str]]:
        """Pack the pending state, column families, bars and run summaries into ``cmds``,
        streaming full parts to ``pipe``; returns who owns each run of replies (``(n,
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
                blocks.setdefault(_hash_tag(key), []).append(
                    (key, hset + _command("EXPIRE", key, str(self.ttl.bars)), 2)
                )
                expired.append(key)
            else:
                blocks.setdefault(_hash_tag(key), []).append((key, hset, 1))
        shadow = self._shadow
        for key, mapping in self._state.items():
            # full when not written successfully yet or its EXPIRE is due (the periodic full
            # rewrite heals a key deleted behind aion's back); else the changed fields only
            old = shadow.get(key)
            due = now >= due_at.get(key, 0.0)
            full = old is None or due
            ttl = self.ttl.state if full and due else 0
            tag = _hash_tag(key) if blocks else None
            sent, hset = hset_changed(key, mapping, None if full else old)
            shadow_updates.append((key, sent, full))
            if ttl:
                expired.append(key)
            if tag is not None and tag in blocks:
                if hset or ttl:
                    expire = _command("EXPIRE", key, str(ttl)) if ttl else ""
                    blocks[tag].append((key, hset + expire, bool(hset) + bool(ttl)))
                continue
            if hset:
                cmds.append(hset)
                owners.append((1, (key,)))
            if ttl:
                cmds.command("EXPIRE", key, str(ttl))
                owners.append((1, (key,)))
            if cmds.size > STREAM_CHARS:
                pipe.send(cmds.take())
        for fam in families:
            done = fam.render(now, self.ttl.state, blocks)
            if done is None:
                continue
            rendered.append((fam, done))
            if done.main:
                cmds.append(done.main, int(done.main_rows.shape[0]))
                owners.append((int(done.main_rows.shape[0]), (fam, done.main_rows)))
            for key, chunk, n in done.block:
                blocks[_hash_tag(key)].append((key, chunk, n))
            if cmds.size > STREAM_CHARS:
                pipe.send(cmds.take())
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
                pipe.send(cmds.take())
        for date, summary in self._runs:
            cmds.command(
                "XADD", keys.runs(date), "MAXLEN", "~", str(RUNS_MAXLEN), "*", *_flat(summary)
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

    def send_packed(self, packed: bytes, n_replies: int) -> list[Any]:
        """Send packed commands on one pooled connection and read ``n_replies`` replies.

        Error replies come back as ``redis.ResponseError`` objects in the list (inside an
        EXEC reply too). Raises ``redis.ConnectionError``/``TimeoutError`` (the connection is
        then closed) when Redis is unreachable.
        """
        pipe = _Pipe(self.client)
        ok = False
        try:
            pipe.send(packed)
            results = pipe.replies(n_replies)
            ok = True
            return results
        finally:
            pipe.close(ok)

    def _announce(self, alerts: list[AlertRecord]) -> None:
        """PUBLISH each newly stored alert in one round trip of packed RESP (best effort: the
        stream already holds it; one send and one read, so a busy compute thread delays it by
        two GIL hand-overs, not one per reply)."""
        cmds = RespCommands()
        channel = keys.alerts_channel()
        for a in alerts:
            cmds.command("PUBLISH", channel, json.dumps({"stream_id": a.stream_id, **a.fields}))
        try:
            results = self.send_packed(cmds.take(), cmds.count)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            self.stats.errors += 1
            self.stats.last_error = f"publish: {type(exc).__name__}: {exc}"
            return
        failed = [r for r in results if isinstance(r, Exception)]
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
        st = {
            "node": self.node,
            "pid": os.getpid(),
            "redis_reachable": self._outage_since is None,
            "outage_since": self._outage_since_wall,
            "updated": now,
            **{k: v for k, v in asdict(self.stats).items() if k != "last_error"},
        }
        with contextlib.suppress(OSError):
            self.status_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.status_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(st))
            tmp.replace(self.status_file)

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


def encode_bar(bar: dict[str, Any]) -> str:
    """JSON text of one bar (compact, key order fixed)."""
    return json.dumps(bar, separators=(",", ":"), sort_keys=True)


def encode_bars(bars: np.ndarray, segment_names: dict[int, str]) -> list[str]:
    """:func:`encode_bar` of every row of a closed-bar array, built from columns.

    ``bars``: the bar builder's structured rows (fields ``start`` epoch s, ``open``/``high``/
    ``low``/``close`` rupees, ``volume`` shares, ``oi``, ``ticks``, ``segment`` code, ``gap``);
    prices are rounded to 4 decimals with Python's ``round`` and ``gap`` appears only when
    true, exactly as the compute thread's dict form. The text equals ``encode_bar`` of that
    dict byte for byte (float ``repr`` is what ``json`` writes for finite floats; rows with a
    non-finite price take ``encode_bar`` itself), at a fraction of the per-bar cost.
    """
    px = [[round(x, 4) for x in bars[f].tolist()] for f in ("open", "high", "low", "close")]
    finite = np.isfinite(bars["open"]) & np.isfinite(bars["high"])
    finite &= np.isfinite(bars["low"]) & np.isfinite(bars["close"])
    seg_json = {k: json.dumps(v) for k, v in segment_names.items()}
    out = []
    rows = zip(
        *px,
        bars["start"].tolist(),
        bars["volume"].tolist(),
        bars["oi"].tolist(),
        bars["ticks"].tolist(),
        bars["segment"].tolist(),
        bars["gap"].tolist(),
        finite.tolist(),
        strict=True,
    )
    for o, h, lo, c, start, vol, oi, ticks, seg, gap, ok in rows:
        if not ok:
            bar = {"start": start, "open": o, "high": h, "low": lo, "close": c, "volume": vol,
                   "oi": oi, "ticks": ticks, "segment": segment_names[seg]}  # fmt: skip
            out.append(encode_bar({**bar, "gap": True} if gap else bar))
            continue
        g = '"gap":true,' if gap else ""
        out.append(
            f'{{"close":{c!r},{g}"high":{h!r},"low":{lo!r},'
            f'"oi":{oi},"open":{o!r},"segment":{seg_json[seg]},"start":{start},'
            f'"ticks":{ticks},"volume":{vol}}}'
        )
    return out
