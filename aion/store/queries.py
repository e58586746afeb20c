"""Every read of aion's Redis data: restart state, bars, alerts, RVOL, the dashboard's views
and ``aion health``'s facts (keys from :mod:`aion.store.keys`, field names and value text from
:mod:`aion.store.layout`). Nothing outside :mod:`aion.store` asks Redis itself."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import redis

from aion.market.time import SEGMENT_REGULAR, segment_of
from aion.store import keys
from aion.store.layout import minute_field


def read_bars(client: redis.Redis, symbol: str, date: int, extended: bool = False) -> list[dict]:
    """1-minute bars of ``symbol`` on ``date`` (YYYYMMDD), sorted by start.

    Each bar: ``time`` (HH:MM IST start label), ``start`` (epoch s), ``open``,
    ``high``, ``low``, ``close`` (rupees), ``volume`` (shares/units), ``oi``,
    ``ticks``, ``segment``. ``extended`` adds pre-open and post-close bars.
    """
    ks = [keys.bars_1m(symbol, date)] + ([keys.bars_1m_ext(symbol, date)] if extended else [])
    bars = []
    for k in ks:
        for hhmm, text in client.hgetall(k).items():
            bar = json.loads(text)
            bar["time"] = hhmm
            bars.append(bar)
    bars.sort(key=lambda b: b["start"])
    return bars


def read_restart_state(client: redis.Redis, symbols: list[str]) -> dict[str, dict]:
    """What a restarted scan resumes from, per symbol with persisted volume state.

    Each value holds the volume state hash (:func:`aion.store.keys.volume_state`) as ints
    (``session_date``, ``first_cumulative``, ``last_cumulative``, ``bar_cumulative``,
    ``bar_start`` epoch s of the last bar handed to the store, ...) and under ``"bar"`` that
    bar as stored (dict with ``open``/``high``/``low``/``close`` rupees, ``volume``, ``oi``,
    ``ticks``, ``gap``; None when absent). The bar builder reopens that bar, so a late tick of
    its minute after the restart revises it instead of starting the minute again (which would
    overwrite the stored bar and lose its volume). Two pipelined round trips.
    """
    pipe = client.pipeline(transaction=False)
    for sym in symbols:
        pipe.hgetall(keys.volume_state(sym))
    states = {
        sym: {k: int(v) for k, v in h.items()}
        for sym, h in zip(symbols, pipe.execute(), strict=True)
        if h
    }
    want = [(sym, st) for sym, st in states.items() if st.get("bar_start", 0) > 0]
    pipe = client.pipeline(transaction=False)
    for sym, st in want:
        start = np.array([st["bar_start"]], np.int64)
        regular = int(segment_of(start)[0]) == SEGMENT_REGULAR
        key = (keys.bars_1m if regular else keys.bars_1m_ext)(sym, st["session_date"])
        pipe.hget(key, minute_field(st["bar_start"]))
    out: dict[str, dict] = {sym: dict(st, bar=None) for sym, st in states.items()}
    for (sym, _), text in zip(want, pipe.execute(), strict=True):
        if text:
            out[sym]["bar"] = json.loads(text)
    return out


def read_alerts(client: redis.Redis, date: int, count: int | None = None) -> list[dict]:
    """Alerts of ``date`` in stream order; each dict has ``id`` plus the alert fields."""
    entries = client.xrange(keys.alerts(date), count=count)
    return [{"id": eid, **fields} for eid, fields in entries]


def read_hash(client: redis.Redis, key: str) -> dict[str, str]:
    """All fields of one hash."""
    return dict(client.hgetall(key))


def known_dates(client: redis.Redis, symbol: str) -> list[int]:
    """Trading dates with regular bars stored for ``symbol``, ascending."""
    prefix = keys.bars_1m(symbol, 0)[:-1]
    dates = []
    for k in client.scan_iter(match=prefix + "*", count=1000):
        tail = k[len(prefix) :]
        if tail.isdigit():
            dates.append(int(tail))
    return sorted(dates)


# -- dashboard reads (aion dashboard, :mod:`aion.dashboard`) ------------------------------------
# Read-only: none of these writes. Dates are IST trading dates as YYYYMMDD ints.


def _dates_of(client: redis.Redis, template: str) -> set[int]:
    """Dates of the keys named ``template`` with ``0`` for the date (``aion:alerts:0``...)."""
    prefix = template[:-1]
    out = set()
    for k in client.scan_iter(match=prefix + "*", count=1000):
        tail = k[len(prefix) :]
        if tail.isdigit() and len(tail) == 8:
            out.add(int(tail))
    return out


def session_dates(client: redis.Redis) -> list[int]:
    """Trading dates with an alert stream or a run summary stream in Redis, ascending."""
    return sorted(_dates_of(client, keys.alerts(0)) | _dates_of(client, keys.runs(0)))


def read_alerts_after(
    client: redis.Redis, date: int, after_id: str | None = None, count: int | None = None
) -> list[dict]:
    """Alerts of ``date`` with a stream id strictly after ``after_id`` (all when None), in
    stream order; each dict has ``id`` plus the alert fields.

    Raises:
        redis.ResponseError: ``after_id`` is not a stream id (``<ms>-<seq>``).
    """
    start = "-" if after_id is None else f"({after_id}"
    entries = client.xrange(keys.alerts(date), min=start, count=count)
    return [{"id": eid, **fields} for eid, fields in entries]


def symbols_with_bars(client: redis.Redis, date: int) -> list[str]:
    """Symbols (``EXCHANGE:TRADINGSYMBOL``) with regular 1-minute bars on ``date``, sorted."""
    head, tail = keys.bars_1m("SYMBOL", date).split("{SYMBOL}")
    out = []
    for k in client.scan_iter(match=f"{head}{{*}}{tail}", count=1000):
        out.append(k[len(head) + 1 : -len(tail) - 1])
    return sorted(out)


def read_rollup_bars(client: redis.Redis, symbol: str, timeframe: str, date: int) -> list[dict]:
    """Stored rolled-up bars (``5m``, ``15m``, ``30m``, ``60m``) of ``symbol`` on ``date``,
    sorted by start; fields as :func:`read_bars` plus ``minutes`` (1-minute bars held)."""
    bars = []
    for hhmm, text in client.hgetall(keys.bars(symbol, timeframe, date)).items():
        bar = json.loads(text)
        bar["time"] = hhmm
        bars.append(bar)
    bars.sort(key=lambda b: b["start"])
    return bars


def read_latest_minute(client: redis.Redis, key: str) -> tuple[str, dict] | None:
    """The latest ``HH:MM`` field of a per-minute JSON hash (:func:`aion.store.keys.rvol`) and
    its decoded value, or None when the hash is empty."""
    fields = client.hgetall(key)
    if not fields:
        return None
    hhmm = max(fields)
    return hhmm, json.loads(fields[hhmm])


def read_runs(client: redis.Redis, date: int) -> list[dict]:
    """Run summaries of ``date`` in stream order; each dict has ``id`` plus the summary fields."""
    return [{"id": eid, **fields} for eid, fields in client.xrange(keys.runs(date))]


def read_gaps(client: redis.Redis, date: int) -> list[dict]:
    """Feed gaps of ``date`` (:func:`aion.store.keys.gaps`), decoded (fields of
    :meth:`aion.feed.client.Gap.record`, all str; ``start_ns`` wall ns), by start."""
    gaps = [json.loads(v) for v in client.hgetall(keys.gaps(date)).values()]
    return sorted(gaps, key=lambda g: int(g.get("start_ns") or 0))


def alert_announcements(client: redis.Redis) -> redis.client.PubSub:
    """A pub/sub connection subscribed to the alert announcements
    (:func:`aion.store.keys.alerts_channel`): ``get_message(timeout=s)`` returns each message
    (``data``: JSON of the alert's fields plus ``stream_id``) or None; ``close()`` it when done.

    Raises:
        redis.RedisError, OSError: Redis is unreachable (here or later from ``get_message``).
    """
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.alerts_channel())
    return pubsub


# -- health reads (aion health, :mod:`aion.ops.health`) -----------------------------------------


def check_reachable(client: redis.Redis) -> None:
    """PING the server (``aion scan`` before it starts).

    Raises:
        redis.RedisError: the server is unreachable or refused the connection.
    """
    client.ping()


def server_info(client: redis.Redis) -> dict[str, Any]:
    """The server's ``INFO`` (all default sections) as redis-py parses it: ``redis_version``,
    ``used_memory``/``maxmemory`` bytes, ``maxmemory_policy``, ``evicted_keys``,
    ``aof_enabled``, ``aof_last_write_status``, ``rdb_changes_since_last_save``...

    Raises:
        redis.RedisError: the server is unreachable.
    """
    return dict(client.info())


def key_facts(
    client: redis.Redis, batch_size: int = 1000
) -> tuple[dict[str, int], list[str], list[str]]:
    """Every ``aion:*`` key by ``SCAN``, with ``TTL`` and ``TYPE`` pipelined per ``batch_size``
    keys: (key count per namespace, :data:`aion.store.keys.NAMESPACES` first, each at least
    0; keys without a TTL, sorted; stream keys, sorted)."""
    counts = {ns: 0 for ns in keys.NAMESPACES}
    no_ttl: list[str] = []
    streams: list[str] = []
    batch: list[str] = []

    def drain() -> None:
        pipe = client.pipeline(transaction=False)
        for k in batch:
            pipe.ttl(k)
            pipe.type(k)
        res = pipe.execute()
        for i, k in enumerate(batch):
            if int(res[2 * i]) == -1:
                no_ttl.append(k)
            if res[2 * i + 1] == "stream":
                streams.append(k)
        batch.clear()

    for k in client.scan_iter(match=f"{keys.PREFIX}:*", count=1000):
        ns = keys.namespace_of(k)
        counts[ns] = counts.get(ns, 0) + 1
        batch.append(k)
        if len(batch) >= batch_size:
            drain()
    if batch:
        drain()
    return counts, sorted(no_ttl), sorted(streams)


def stream_length(client: redis.Redis, key: str) -> int:
    """``XLEN`` of the stream ``key`` (0 when absent)."""
    return int(client.xlen(key))


def read_feeds(client: redis.Redis) -> dict[str, dict[str, str]]:
    """Feed health of every process that wrote it (:func:`aion.store.keys.feed`), by node name
    in order: ``last_frame_wall`` (epoch s, wall clock), ``last_exchange_timestamp`` (epoch s),
    ``frames`` (all str)."""
    prefix = keys.feed("")
    return {
        k[len(prefix) :]: dict(client.hgetall(k))
        for k in sorted(client.scan_iter(match=keys.feed("*"), count=1000))
    }


def averages_dates(client: redis.Redis) -> list[str]:
    """The ``for_date`` (ISO date the daily averages were prepared for) of every instrument's
    averages hash (:func:`aion.store.keys.averages`); "" where the field is absent."""
    out = []
    for k in client.scan_iter(match=keys.averages("*"), count=1000):
        out.append(client.hget(k, "for_date") or "")
    return out
