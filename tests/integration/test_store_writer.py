"""The Redis writer's fast path against a real redis-server: hand-packed RESP, only changed
fields, EXPIRE when due, full rewrite after an outage, alerts flushed at once."""

from __future__ import annotations

import socket
import time

import pytest
import redis

from aion.queues import BoundedQueue
from aion.store import keys, writer
from aion.store.batch import AlertRecord, StoreBatch
from aion.store.resp import RespCommands
from aion.store.server import connect
from aion.store.shadow import hset_changed
from aion.store.writer import RedisStore, TtlSeconds

TTL = TtlSeconds(bars=800, state=200, alerts=800, runs=3000)
DATE = 20221111
TICK = keys.tick("NSE:SBIN")


def _store(client: redis.Redis, flush_interval_ms: int = 200) -> RedisStore:
    return RedisStore(client, BoundedQueue("out", 100, "block", 1.0), TTL,
                      flush_interval_ms=flush_interval_ms)  # fmt: skip


def test_packed_commands_equal_redis_py_packer_byte_for_byte() -> None:
    """redis-py's own packer is the reference (non-ASCII values counted in UTF-8 bytes)."""
    cmds = RespCommands()
    cmds.append(
        hset_changed("aion:{NSE:SBIN}:tick", {"last_price": "593.45", "note": "ĝé₹"}, None)[1]
    )
    cmds.command("EXPIRE", "aion:{NSE:SBIN}:tick", "200")
    cmds.command("XADD", "s", "MAXLEN", "~", "10", "1-0", "f", "v")
    conn = redis.Connection()
    expected = b"".join(
        b"".join(conn.pack_command(*args))
        for args in (
            ("HSET", "aion:{NSE:SBIN}:tick", "last_price", "593.45", "note", "ĝé₹"),
            ("EXPIRE", "aion:{NSE:SBIN}:tick", "200"),
            ("XADD", "s", "MAXLEN", "~", "10", "1-0", "f", "v"),
        )
    )
    assert cmds.packed() == expected
    assert cmds.count == 3


@pytest.mark.integration
def test_only_changed_fields_are_sent_and_expire_once(redis_client: redis.Redis) -> None:
    store = _store(redis_client)
    state = {"last_price": "593.45", "mode": "3", "volume_traded": 100}
    store.merge(StoreBatch(state={TICK: state}))
    assert store.flush() is True
    assert store.stats.commands == 2  # HSET + EXPIRE
    assert 0 < redis_client.ttl(TICK) <= TTL.state
    store.merge(StoreBatch(state={TICK: {**state, "last_price": "593.50"}}))
    assert store.flush() is True
    assert store.stats.commands == 3  # one HSET of one field, no EXPIRE
    store.merge(StoreBatch(state={TICK: dict(state, last_price="593.50")}))
    assert store.flush() is True
    assert store.stats.commands == 3  # nothing changed: nothing sent
    assert redis_client.hgetall(TICK) == {
        "last_price": "593.50", "mode": "3", "volume_traded": "100"
    }  # fmt: skip


@pytest.mark.integration
def test_refresh_rewrites_a_key_deleted_behind_the_writers_back(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "EXPIRE_REFRESH_S", 0.0)  # every flush is a refresh
    store = _store(redis_client)
    store.merge(StoreBatch(state={TICK: {"last_price": "1.00", "mode": "3"}}))
    assert store.flush() is True
    redis_client.delete(TICK)
    store.merge(StoreBatch(state={TICK: {"last_price": "1.00", "mode": "3"}}))
    assert store.flush() is True
    assert redis_client.hgetall(TICK) == {"last_price": "1.00", "mode": "3"}
    assert 0 < redis_client.ttl(TICK) <= TTL.state


@pytest.mark.integration
def test_after_an_outage_every_pending_key_is_rewritten_in_full(
    redis_client: redis.Redis, redis_url: str
) -> None:
    store = _store(redis_client)
    store.merge(StoreBatch(state={TICK: {"last_price": "1.00", "mode": "3"}}))
    assert store.flush() is True
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    store.client = connect(f"redis://127.0.0.1:{dead_port}/0")
    store.merge(StoreBatch(state={TICK: {"last_price": "1.05", "mode": "3"}}))
    assert store.flush() is False
    redis_client.delete(TICK)  # e.g. Redis restarted without persistence
    store.client = connect(redis_url)
    assert store.flush() is True  # "mode" did not change, yet it is written again
    assert redis_client.hgetall(TICK) == {"last_price": "1.05", "mode": "3"}
    assert 0 < redis_client.ttl(TICK) <= TTL.state


@pytest.mark.integration
def test_bars_with_state_and_alerts_and_duplicate_accounting(redis_client: redis.Redis) -> None:
    bars_key = keys.bars_1m("NSE:SBIN", DATE)
    vol_key = keys.volume_state("NSE:SBIN")
    alert = AlertRecord(DATE, "1668138360000-0", {"symbol": "NSE:SBIN", "pattern": "p"})
    batch = StoreBatch(
        bars=[(bars_key, {"09:15": '{"close":593.45}'})],
        state={vol_key: {"last_cumulative": 10, "bar_cumulative": 7}, TICK: {"mode": "3"}},
        alerts=[alert],
    )
    first = _store(redis_client)
    first.merge(batch)
    assert first.flush() is True
    assert redis_client.hgetall(bars_key) == {"09:15": '{"close":593.45}'}
    assert redis_client.hgetall(vol_key) == {"last_cumulative": "10", "bar_cumulative": "7"}
    assert [e[0] for e in redis_client.xrange(keys.alerts(DATE))] == [alert.stream_id]
    assert first.stats.alerts_written == 1 and first.stats.errors == 0
    again = _store(redis_client)  # a replay into the same Redis
    again.merge(StoreBatch(alerts=[alert]))
    assert again.flush() is True
    assert again.stats.duplicate_alerts == 1 and again.stats.alerts_written == 0
    assert redis_client.xlen(keys.alerts(DATE)) == 1


@pytest.mark.integration
def test_the_store_thread_flushes_alerts_at_once_and_state_at_its_cadence(
    redis_client: redis.Redis,
) -> None:
    store = _store(redis_client, flush_interval_ms=3_000)
    store.start()
    try:
        t0 = time.monotonic()
        store.queue.put(StoreBatch(state={TICK: {"mode": "3"}}))
        time.sleep(0.3)
        assert not redis_client.exists(TICK)  # state waits for the 3 s cadence
        alert = AlertRecord(DATE, "1668138360000-0", {"symbol": "NSE:SBIN", "pattern": "p"})
        store.queue.put(StoreBatch(alerts=[alert]))
        while not redis_client.exists(keys.alerts(DATE)) and time.monotonic() - t0 < 2.5:
            time.sleep(0.01)
        assert time.monotonic() - t0 < 2.5
        assert redis_client.xlen(keys.alerts(DATE)) == 1
    finally:
        store.stop()
