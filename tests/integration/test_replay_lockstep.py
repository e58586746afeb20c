"""Max-speed replay over several connections in lockstep (``ReplayServer(lockstep_s=60)``).

The scanner closes every instrument's minute on the global exchange clock, so a tick of
minute m processed after a tick of minute m+1 from another connection is late and changes
bars and alerts. These tests use a real loopback server, real feed clients, and (for the
scan) the real scanner and redis-server; the reference is the same session on one
connection, where no cross-connection interleaving exists.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from aion.app import Scanner, ScanOptions
from aion.config import load_config
from aion.feed.client import FeedClient
from aion.feed.sharding import shard_modes
from aion.kite.decode import decode_frame
from aion.kite.encode import encode_frame
from aion.kite.wire import MODE_FULL, TICK_DTYPE
from aion.replay.server import ReplayServer
from aion.replay.session_file import Session, SessionWriter, read_session
from aion.store import keys

pytestmark = pytest.mark.integration

T0_NS = 1_668_138_300_000_000_000  # 2022-11-11 09:15:00 IST
TOKENS = (738561, 341249, 408065, 2953217, 1270529, 779521)  # 2 per connection below
SHARDS = [dict.fromkeys(TOKENS[i : i + 2], MODE_FULL) for i in (0, 2, 4)]


def minute_session(tmp_path: Path, minutes: int, step_s: int) -> Session:
    """Every token ticks every ``step_s`` seconds for ``minutes`` minutes (full mode,
    ``exchange_timestamp`` = the frame's time), one frame per timestamp."""
    path = tmp_path / "minutes.session"
    with SessionWriter(path, {"date": "2022-11-11", "start_ns": T0_NS}) as w:
        for i in range(minutes * 60 // step_s):
            ts_ns = T0_NS + i * step_s * 1_000_000_000
            ticks = np.zeros(len(TOKENS), TICK_DTYPE)
            ticks["instrument_token"] = TOKENS
            ticks["mode"] = MODE_FULL
            ticks["last_price"] = 100.0 + i / 100
            ticks["volume_traded"] = 10 * i
            ticks["exchange_timestamp"] = ts_ns // 1_000_000_000
            w.write(ts_ns, encode_frame(ticks))
    return read_session(path)


class OrderSink:
    """What the feed threads hand on, in the order they hand it on (like the scanner's raw
    queue); frames of ``slow`` are handed on ``delay_s`` late (a slow reader)."""

    def __init__(self, slow: str = "", delay_s: float = 0.0) -> None:
        self.items: list[tuple[str, int]] = []  # (connection, exchange minute of the frame)
        self._lock = threading.Lock()
        self.slow, self.delay_s = slow, delay_s

    def put(self, item: tuple[int, str, Any]) -> bool:
        _recv_ns, conn, frame = item
        if conn == self.slow:
            time.sleep(self.delay_s)
        minute = int(decode_frame(frame)["exchange_timestamp"].max()) // 60
        with self._lock:
            self.items.append((conn, minute))
        return True


def run_clients(
    server: ReplayServer, sink: OrderSink, shards: list[dict[int, int]], **kw: Any
) -> tuple[list[FeedClient], threading.Event]:
    """Start one feed client per shard on ``server``; the event is set when every client got
    the session's end message."""
    done = threading.Event()
    ends: list[str] = []

    def on_text(msg: dict) -> None:
        if "session complete" in str(msg.get("data")):
            ends.append("x")
            if len(ends) >= len(shards):
                done.set()

    clients = [
        FeedClient(server.url, "k", "t", m, sink, name=f"conn{i}", on_text=on_text, **kw)  # type: ignore[arg-type]
        for i, m in enumerate(shards)
    ]
    for c in clients:
        c.start()
    return clients, done


def test_slow_connection_holds_the_others_to_its_minute(tmp_path: Path) -> None:
    session = minute_session(tmp_path, minutes=10, step_s=2)  # 300 frames, 10 minutes
    sink = OrderSink(slow="conn0", delay_s=0.004)
    with ReplayServer(session, speed=None, wait_for_client=True, start_clients=3) as srv:
        clients, done = run_clients(srv, sink, SHARDS)
        try:
            assert done.wait(30), "session did not complete on every connection"
        finally:
            for c in clients:
                c.stop()
    minutes = [m for _c, m in sink.items]
    assert len(minutes) == 3 * len(session.frames)  # every frame on every connection
    # the order the frames were handed on never goes back a minute across connections
    backwards = sum(1 for a, b in itertools.pairwise(minutes) if b < a)
    assert backwards == 0
    for conn in ("conn0", "conn1", "conn2"):
        own = [m for c, m in sink.items if c == conn]
        assert own == sorted(own) and len(own) == len(session.frames)


def test_a_stuck_client_holds_the_others_until_it_disconnects(tmp_path: Path) -> None:
    session = minute_session(tmp_path, minutes=10, step_s=2)
    first_minute = T0_NS // 1_000_000_000 // 60
    release = threading.Event()

    class Stuck(OrderSink):  # a reader that stops at its first frame
        def put(self, item: tuple[int, str, Any]) -> bool:
            release.wait(10)
            return super().put(item)

    sink = OrderSink()
    with ReplayServer(session, speed=None, wait_for_client=True, start_clients=3) as srv:
        stuck = FeedClient(srv.url, "k", "t", SHARDS[0], Stuck(), name="stuck", reconnect=False)
        stuck.start()
        others, done = run_clients(srv, sink, SHARDS[1:])
        try:
            time.sleep(1.0)
            # held to the first minute: the stuck client confirmed nothing after it
            assert {m for _c, m in sink.items} == {first_minute}
            assert not done.is_set()
            stuck.stop(timeout=0.5)  # its connection closes: it holds nobody any more
            release.set()
            assert done.wait(30), "a disconnected client still holds the others"
        finally:
            release.set()
            for c in others:
                c.stop()
    minutes = [m for _c, m in sink.items]
    assert len(minutes) == 2 * len(session.frames)
    assert all(b >= a for a, b in itertools.pairwise(minutes))


def test_silence_drops_and_an_idle_subscription_do_not_deadlock(tmp_path: Path) -> None:
    session = minute_session(tmp_path, minutes=10, step_s=2)
    idle = {12345: MODE_FULL}  # a token the session never carries: never sent a frame
    with ReplayServer(session, speed=None, wait_for_client=True, start_clients=4) as srv:
        sink = OrderSink(slow="conn0", delay_s=0.002)
        clients, done = run_clients(srv, sink, [*SHARDS, idle])
        try:
            time.sleep(0.2)
            assert srv.go_silent(0.3) == 4  # everything stops a while, then resumes
            assert done.wait(30), "did not complete after a silence"
        finally:
            for c in clients:
                c.stop()
        assert len(sink.items) == 3 * len(session.frames)
    with ReplayServer(session, speed=None, wait_for_client=True, start_clients=3) as srv:
        srv.drop_after_frames = 70  # each connection dropped, reconnects at the head
        clients, done = run_clients(srv, OrderSink(), SHARDS, base_backoff_s=0.05)
        try:
            assert done.wait(30), "did not complete with dropped connections"
        finally:
            for c in clients:
                c.stop()
        assert srv.stats.dropped >= 3


def _scan(session: Path, per_connection: int | None) -> tuple[dict, Scanner]:
    scanner = Scanner(load_config(), ScanOptions(replay=session, speed=None))
    if per_connection is not None:
        scanner.shards = shard_modes(scanner.modes, per_connection=per_connection)
    scanner.start()
    deadline = time.monotonic() + 120
    while not scanner.should_stop() and time.monotonic() < deadline:
        time.sleep(0.02)
    return scanner.stop().values, scanner


def _results(client: redis.Redis) -> tuple[list, dict]:
    alerts = [(eid, fields) for eid, fields in client.xrange(keys.alerts(20221111))]
    bars = {
        k: client.hgetall(k)
        for k in client.scan_iter(match="*:bars:1m*", count=1000)
        if client.type(k) == "hash"
    }
    return alerts, bars


def test_max_speed_scan_on_three_connections_equals_one_connection(
    session_2022_11_11: Path,
    redis_url: str,
    redis_client: redis.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    runs = []
    # the reference: one connection (32 instruments); then 3 connections of <= 11, twice
    for k, per_connection in enumerate((None, 11, 11)):
        redis_client.flushall()
        monkeypatch.setenv("AION_DATA_DIR", str(tmp_path / f"run{k}"))
        summary, scanner = _scan(session_2022_11_11, per_connection)
        assert summary["stop_reason"] == "replayed session complete"
        assert len(scanner.feeds) == (1 if per_connection is None else 3)
        runs.append((summary, *_results(redis_client)))
    (ref, ref_alerts, ref_bars), *multi = runs
    assert ref["late_ticks"] == 0 and ref_alerts and len(ref_bars) == 64  # 32 regular + ext
    for summary, alerts, bars in multi:
        assert summary["ticks"] == ref["ticks"] and summary["queue_drops"] == 0
        assert summary["late_ticks"] == 0
        assert summary["bars"] == ref["bars"]
        assert [eid for eid, _f in alerts] == [eid for eid, _f in ref_alerts]
        assert alerts == ref_alerts
        assert bars == ref_bars
