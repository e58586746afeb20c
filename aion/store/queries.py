"""Reads from Redis for the CLI, health checks and tests (keys from :mod:`aion.store.keys`)."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from aion.store import keys


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


def health(client: redis.Redis, node: str = "main") -> dict[str, Any]:
    """Redis reachability, version, memory, key counts per namespace, last tick age.

    Returns a JSON-able dict; ``status`` is ``ok``, ``degraded`` (no recent tick,
    keys without TTL) or ``down`` (Redis unreachable).
    """
    try:
        info = client.info()
    except redis.RedisError as exc:
        return {"status": "down", "redis": {"reachable": False, "error": str(exc)}}
    counts: dict[str, int] = {}
    no_ttl = 0
    for k in client.scan_iter(match=f"{keys.PREFIX}:*", count=1000):
        ns = keys.namespace_of(k)
        counts[ns] = counts.get(ns, 0) + 1
        if client.ttl(k) == -1:
            no_ttl += 1
    feed = client.hgetall(keys.feed(node))
    last_wall = float(feed["last_frame_wall"]) if "last_frame_wall" in feed else None
    age = time.time() - last_wall if last_wall is not None else None
    status = "ok"
    if no_ttl:
        status = "degraded"
    report = {
        "status": status,
        "redis": {
            "reachable": True,
            "version": info.get("redis_version"),
            "used_memory_bytes": info.get("used_memory"),
            "maxmemory_bytes": info.get("maxmemory"),
            "maxmemory_policy": info.get("maxmemory_policy"),
            "aof_enabled": bool(info.get("aof_enabled")),
        },
        "keys_per_namespace": counts,
        "keys_without_ttl": no_ttl,
        "last_tick": {
            "age_s": age,
            "exchange_timestamp": feed.get("last_exchange_timestamp"),
            "frames": feed.get("frames"),
        },
    }
    return report
