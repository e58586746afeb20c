"""A Redis consumer group on a day's alert stream, and the notifier's delivery ledger.

The notifier (:mod:`aion.notify`) reads the alert stream :func:`aion.store.keys.alerts`
through its own consumer group (Redis streams, https://redis.io/docs/latest/develop/data-types/streams/):

- ``XREADGROUP GROUP <group> <consumer> ... STREAMS <key> >`` hands out entries not yet
  delivered to the group; each stays in the group's pending entries list (PEL) until
  ``XACK``;
- after a restart, the same consumer name reads its own PEL first (``XREADGROUP ... 0``),
  and ``XAUTOCLAIM`` takes over entries another consumer of the group left pending for
  longer than a minimum idle time. So an entry is acknowledged only once its deliveries are
  settled, and nothing read but unsettled is lost.

The ledger (:func:`aion.store.keys.notify`) records, per alert and destination, that the
delivery is settled (``sent``, ``failed:<reason>``, ``capped``), and per destination how many
messages it got that day; an alert handed out again (after a kill) skips the destinations
already settled. ``mark`` writes the outcome and the count in one ``MULTI``/``EXEC``, so the
two never disagree. This module is the only one of the notifier that talks to Redis.
"""

from __future__ import annotations

import redis

from aion.store import keys

Entry = tuple[str, dict[str, str]]
"""One stream entry: ``(stream_id, fields)``."""


class AlertGroup:
    """One consumer of a consumer group on the alert stream of trading ``date``.

    Args:
        client: a redis-py client with ``decode_responses=True``
            (:func:`aion.store.server.connect`).
        date: IST trading date YYYYMMDD (picks the stream key).
        group: the consumer group's name.
        consumer: this consumer's name in the group (keep it fixed across restarts: its
            pending entries are read back under it).
        ttl_s: TTL set on the stream and the ledger when this consumer creates them (seconds;
            the alerts TTL).

    Raises (every method): ``redis.RedisError`` when Redis is unreachable or refuses.
    """

    def __init__(
        self, client: redis.Redis, date: int, group: str, consumer: str, ttl_s: int
    ) -> None:
        self.client = client
        self.date = date
        self.stream = keys.alerts(date)
        self.ledger = keys.notify(date)
        self.group = group
        self.consumer = consumer
        self.ttl_s = ttl_s

    def ensure(self) -> None:
        """Create the group at the stream's start (``0``: every alert of the day) unless it
        exists; an absent stream is created empty with the alerts TTL (``MKSTREAM``; the
        scanner's writes keep that TTL)."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self.client.expire(self.stream, self.ttl_s, nx=True)

    def pending(self, count: int = 100) -> list[Entry]:
        """Entries delivered to this consumer and not yet acknowledged, oldest first (what
        a killed run left); entries trimmed from the stream meanwhile come back with empty
        fields and are acknowledged here."""
        return self._read("0", count, None)

    def claim(self, min_idle_ms: int, count: int = 100) -> list[Entry]:
        """Take over entries pending with any consumer of the group for at least
        ``min_idle_ms`` milliseconds (``XAUTOCLAIM``), oldest first."""
        out: list[Entry] = []
        start = "0-0"
        while True:
            reply = self.client.xautoclaim(
                self.stream, self.group, self.consumer, min_idle_ms, start, count=count
            )
            start, entries = reply[0], reply[1]
            out.extend((eid, fields) for eid, fields in entries if fields is not None)
            if start == "0-0" or not entries:
                return out

    def new(self, count: int = 100, block_ms: int | None = 1000) -> list[Entry]:
        """Entries never delivered to the group (``>``), waiting up to ``block_ms``
        milliseconds for one (None: do not wait)."""
        return self._read(">", count, block_ms)

    def _read(self, start: str, count: int, block_ms: int | None) -> list[Entry]:
        reply = self.client.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=count, block=block_ms
        )
        out: list[Entry] = []
        gone: list[str] = []
        for _key, entries in reply or []:
            for eid, fields in entries:
                if fields:
                    out.append((eid, fields))
                else:
                    gone.append(eid)
        if gone:
            self.client.xack(self.stream, self.group, *gone)
        return out

    def ack(self, stream_id: str) -> None:
        """Acknowledge ``stream_id``: its deliveries are settled."""
        self.client.xack(self.stream, self.group, stream_id)

    def outcomes(self, stream_id: str, destinations: list[str]) -> dict[str, str]:
        """The settled outcomes of ``stream_id`` per destination (absent: not settled)."""
        if not destinations:
            return {}
        values = self.client.hmget(self.ledger, [f"{stream_id}|{d}" for d in destinations])
        return {d: v for d, v in zip(destinations, values, strict=True) if v is not None}

    def sent_count(self, destination: str) -> int:
        """Messages sent to ``destination`` on this trading day."""
        return int(self.client.hget(self.ledger, f"count|{destination}") or 0)

    def mark(self, stream_id: str, destination: str, outcome: str) -> None:
        """Record ``outcome`` (``sent``, ``failed:<reason>``, ``capped``) of ``stream_id`` at
        ``destination``; ``sent`` also counts towards the day's cap. One MULTI/EXEC."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.ledger, f"{stream_id}|{destination}", outcome)
        if outcome == "sent":
            pipe.hincrby(self.ledger, f"count|{destination}", 1)
        pipe.expire(self.ledger, self.ttl_s)
        pipe.execute()

    def lag(self) -> dict[str, int]:
        """``pending`` (delivered, not acknowledged) and ``lag`` (not yet delivered) entries
        of the group (``XINFO GROUPS``; lag is None before Redis 7, reported as -1)."""
        for g in self.client.xinfo_groups(self.stream):
            if g["name"] == self.group:
                lag = g.get("lag")
                return {"pending": int(g["pending"]), "lag": -1 if lag is None else int(lag)}
        return {"pending": 0, "lag": -1}
