"""Reads from Redis for the CLI and tests (keys from :mod:`aion.store.keys`)."""

from __future__ import annotations

import json

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
