"""Alerts first (issue 8, frame-to-alert latency): the store writes pending alerts in their
own round trip, announced at once, without the pending state; duplicates and an unreachable
Redis keep their accounting."""

from __future__ import annotations

import json
import socket
import time

import pytest
import redis

from aion.queues import BoundedQueue
from aion.store import keys
from aion.store.batch import AlertRecord, StoreBatch
from aion.store.server import connect
from aion.store.writer import RedisStore, TtlSeconds

TTL = TtlSeconds(bars=800, state=200, alerts=800, runs=3000)
DATE = 20221111
TICK = keys.tick("NSE:SBIN")
BARS = keys.bars_1m("NSE:SBIN", DATE)


def _store(client: redis.Redis, flush_interval_ms: int = 200) -> RedisStore:
    return RedisStore(client, BoundedQueue("out", 100, "block", 1.0), TTL,
                      flush_interval_ms=flush_interval_ms)  # fmt: skip


def _alert(ms: int, seq: int = 0) -> AlertRecord:
    return AlertRecord(DATE, f"{ms}-{seq}", {"symbol": "NSE:SBIN", "pattern": "p", "n": str(seq)})


@pytest.mark.integration
def test_flush_alerts_writes_and_announces_only_the_alerts(redis_client: redis.Redis) -> None:
    ps = redis_client.pubsub(ignore_subscribe_messages=True)
    ps.subscribe(keys.alerts_channel())
    store = _store(redis_client)
    a, b = _alert(1668138360000, 0), _alert(1668138360000, 1)
    store.merge(StoreBatch(state={TICK: {"mode": "3"}}, bars=[(BARS, {"09:15": "{}"})],
                           alerts=[a, b]))  # fmt: skip
    assert store.flush_alerts() is True
    assert [e[0] for e in redis_client.xrange(keys.alerts(DATE))] == [a.stream_id, b.stream_id]
    assert 0 < redis_client.ttl(keys.alerts(DATE)) <= TTL.alerts
    assert not redis_client.exists(TICK) and not redis_client.exists(BARS)  # still pending
    assert store.stats.pending_commands == 4  # HSET + EXPIRE each for the tick and the bars
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        msg = ps.get_message(timeout=0.1)
        if msg is not None:
            got.append(json.loads(msg["data"]))
    assert got == [{"stream_id": r.stream_id, **r.fields} for r in (a, b)]  # stream order
    assert store.stats.alerts_written == store.stats.alerts_announced == 2
    assert store.stats.commands == 3  # two XADDs and the stream's first EXPIRE
    assert store.flush() is True  # then the rest; no alert written twice
    assert redis_client.hgetall(TICK) == {"mode": "3"}
    assert redis_client.xlen(keys.alerts(DATE)) == 2 and store.stats.duplicate_alerts == 0
    ps.close()


@pytest.mark.integration
def test_a_republished_alert_is_counted_as_duplicate_and_not_announced(
    redis_client: redis.Redis,
) -> None:
    first = _store(redis_client)
    first.merge(StoreBatch(alerts=[_alert(1668138360000)]))
    assert first.flush_alerts() is True
    again = _store(redis_client)  # a replay into the same Redis: same stream ids
    again.merge(StoreBatch(alerts=[_alert(1668138360000), _alert(1668138420000)]))
    assert again.flush() is True
    assert again.stats.duplicate_alerts == 1 and again.stats.alerts_written == 1
    assert again.stats.alerts_announced == 1
    assert redis_client.xlen(keys.alerts(DATE)) == 2


@pytest.mark.integration
def test_alerts_stay_pending_while_redis_is_unreachable(redis_url: str) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    down = connect(f"redis://127.0.0.1:{dead}/0")
    store = _store(down)
    store.merge(StoreBatch(state={TICK: {"mode": "3"}}, alerts=[_alert(1668138360000)]))
    assert store.flush_alerts() is False
    assert store.flush() is False
    assert store.stats.errors == 2 and store.stats.alerts_written == 0
    assert store.stats.pending_commands == 3  # the alert and the tick's HSET + EXPIRE
    store.client = connect(redis_url)  # Redis is back
    assert store.flush() is True
    up = connect(redis_url)
    assert up.xlen(keys.alerts(DATE)) == 1 and up.hgetall(TICK) == {"mode": "3"}
    assert store.stats.alerts_written == 1 and store.stats.outage_s > 0


@pytest.mark.integration
def test_the_store_thread_writes_an_alert_ahead_of_pending_state(
    redis_client: redis.Redis,
) -> None:
    store = _store(redis_client, flush_interval_ms=3_000)
    store.start()
    try:
        t0 = time.monotonic()
        store.queue.put(StoreBatch(state={TICK: {"mode": "3"}}, alerts=[_alert(1668138360000)]))
        while not redis_client.exists(keys.alerts(DATE)) and time.monotonic() - t0 < 2.5:
            time.sleep(0.01)
        assert redis_client.xlen(keys.alerts(DATE)) == 1
        assert not redis_client.exists(TICK)  # the state waits for its 3 s cadence
    finally:
        store.stop()
    assert redis_client.hgetall(TICK) == {"mode": "3"}  # stop() flushed it
