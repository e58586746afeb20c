"""Replay server + feed client over a real loopback WebSocket (no mocks)."""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import websocket

from aion.feed.client import FATAL_403, FeedClient
from aion.kite.decode import decode_frame
from aion.kite.encode import encode_frame
from aion.kite.wire import MODE_FULL, MODE_LTP, MODE_QUOTE, TICK_DTYPE
from aion.queues import BoundedQueue
from aion.replay.server import SESSION_COMPLETE_MESSAGE, ReplayServer
from aion.replay.session_file import Session, SessionWriter, read_session

pytestmark = pytest.mark.integration

RELIANCE, HDFCBANK, INFY, NIFTY = 738561, 341249, 408065, 256265  # NIFTY 50: segment 9 (index)
TOKENS = (RELIANCE, HDFCBANK, INFY, NIFTY)
T0_NS = 1_668_138_300_000_000_000  # 2022-11-11 09:15:00 IST
API_KEY, TOKEN = "testkey", "s3cret-token-value"


def build_session(tmp_path: Path, n: int, step_ms: int) -> Session:
    """``n`` frames ``step_ms`` apart, all tokens full; frame i has last_price 1000 + i/100."""
    header = {
        "date": "2022-11-11",
        "description": "test session",
        "modes": {str(t): "full" for t in TOKENS},
        "start_ns": T0_NS,
    }
    path = tmp_path / "session.aion"
    with SessionWriter(path, header) as w:
        for i in range(n):
            ts_ns = T0_NS + i * step_ms * 1_000_000
            ticks = np.zeros(len(TOKENS), TICK_DTYPE)
            ticks["instrument_token"] = TOKENS
            ticks["mode"] = MODE_FULL
            ticks["last_price"] = 1000.0 + i / 100
            ticks["close"] = 990.0
            ticks["volume_traded"] = 1000 + i
            ticks["exchange_timestamp"] = ts_ns // 1_000_000_000
            w.write(ts_ns, encode_frame(ticks))
    return read_session(path)


def frame_index(frame: bytes) -> int:
    """The session frame index a (filtered) frame came from (encoded in last_price)."""
    return round((float(decode_frame(frame)["last_price"][0]) - 1000.0) * 100)


def wait_for(cond, timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def drain(q: BoundedQueue) -> list:
    out = []
    while True:
        try:
            out.append(q.get(timeout=0))
        except queue.Empty:
            return out


@pytest.fixture(scope="module")
def short_session(tmp_path_factory) -> Session:
    return build_session(tmp_path_factory.mktemp("s"), n=2000, step_ms=100)


def test_subscribe_and_mode_filtering(short_session: Session) -> None:
    modes = {RELIANCE: MODE_LTP, HDFCBANK: MODE_QUOTE, NIFTY: MODE_FULL}  # INFY not subscribed
    expected_len = {RELIANCE: 8, HDFCBANK: 44, NIFTY: 32}  # index full packet is 32 bytes
    sink: BoundedQueue = BoundedQueue("raw", 10_000)
    done = threading.Event()
    with ReplayServer(short_session, speed=None) as srv:
        client = FeedClient(srv.url, API_KEY, TOKEN, modes, sink, on_text=lambda m: done.set())
        client.start()
        try:
            assert done.wait(10), "session did not complete"
        finally:
            client.stop()
    items = drain(sink)
    assert len(items) == len(short_session.frames)
    for recv_ns, conn, frame in items:
        assert conn == "conn0" and isinstance(recv_ns, int)
        ticks = decode_frame(frame)
        assert sorted(ticks["instrument_token"].tolist()) == sorted(modes)
        for t in ticks:
            tok = int(t["instrument_token"])
            assert int(t["packet_length"]) == expected_len[tok]
            assert int(t["mode"]) == modes[tok]


def test_bad_messages_get_error_frames(short_session: Session) -> None:
    with ReplayServer(short_session, speed=1.0, heartbeat_interval_s=5.0) as srv:
        ws = websocket.create_connection(f"{srv.url}/?api_key=k&access_token=t", timeout=5)
        try:
            for bad in (
                "not json",
                '{"a": "subscribe", "v": ["x"]}',
                '{"a": "mode", "v": ["deep", [1]]}',
            ):
                ws.send(bad)
                msg = json.loads(ws.recv())
                assert msg["type"] == "error" and msg["data"]
        finally:
            ws.close()
        assert srv.stats.errors_sent == 3


def test_heartbeats_when_idle(short_session: Session) -> None:
    sink: BoundedQueue = BoundedQueue("raw", 100)
    with ReplayServer(short_session, speed=1.0, heartbeat_interval_s=0.2) as srv:
        # subscribed to a token the session never carries: nothing but heartbeats
        client = FeedClient(srv.url, API_KEY, TOKEN, {12345: MODE_FULL}, sink)
        client.start()
        try:
            assert wait_for(lambda: client.stats.heartbeats >= 4, 5)
            assert client.stats.frames == 0 and sink.empty()
            assert client.stats.last_frame_monotonic is not None
            assert time.monotonic() - client.stats.last_frame_monotonic < 1.0
        finally:
            client.stop()
        assert srv.stats.heartbeats_sent >= 4


def test_max_speed_every_frame_in_order_then_complete(short_session: Session) -> None:
    n = len(short_session.frames)
    sink: BoundedQueue = BoundedQueue("raw", 10_000)
    texts: list[tuple[dict, int]] = []
    done = threading.Event()

    def on_text(msg: dict) -> None:
        texts.append((msg, sink.qsize()))
        done.set()

    modes = dict.fromkeys(TOKENS, MODE_FULL)
    with ReplayServer(short_session, speed=None) as srv:
        client = FeedClient(srv.url, API_KEY, TOKEN, modes, sink, on_text=on_text)
        client.start()
        try:
            assert done.wait(10)
            time.sleep(0.1)
        finally:
            client.stop()
        assert srv.stats.frames_sent == n
    frames = [f for _, _, f in drain(sink)]
    assert frames == short_session.frames  # full mode of everything: byte-identical, in order
    assert [frame_index(f) for f in frames[:3]] == [0, 1, 2]
    assert texts == [(json.loads(SESSION_COMPLETE_MESSAGE), n)]  # after the last frame, once
    assert client.stats.frames == n and client.stats.bad_text == 0


def test_late_client_starts_at_current_session_time(tmp_path: Path) -> None:
    session = build_session(tmp_path, n=1200, step_ms=100)  # 120 s of session, 6 s at 20x
    speed = 20.0
    sink: BoundedQueue = BoundedQueue("raw", 10_000)
    with ReplayServer(session, speed=speed) as srv:
        started = time.monotonic()
        time.sleep(1.0)  # session clock runs with nobody connected: ~20 s of session
        client = FeedClient(srv.url, API_KEY, TOKEN, {RELIANCE: MODE_LTP}, sink)
        client.start()
        try:
            first = sink.get(timeout=5)
            elapsed = time.monotonic() - started
        finally:
            client.stop()
    i = frame_index(first[2])
    lag_s = (int(session.ts_ns[i]) - T0_NS) / 1e9
    # connected after >= 1.0 s wall (20 s of session); allow ~0.5 s of wall slack below
    assert 0.5 * speed <= lag_s <= elapsed * speed + 1.0, (lag_s, elapsed)


def test_missing_credentials_403_is_fatal_and_not_retried(short_session: Session) -> None:
    sink: BoundedQueue = BoundedQueue("raw", 100)
    with ReplayServer(short_session, speed=1.0, expected_credentials=(API_KEY, TOKEN)) as srv:
        for key, token in (("", TOKEN), (API_KEY, ""), (API_KEY, "wrong-token")):
            client = FeedClient(
                srv.url, key, token, {RELIANCE: MODE_FULL}, sink, base_backoff_s=0.05
            )
            client.start()
            assert wait_for(lambda c=client: c.stats.fatal_error is not None, 5)
            time.sleep(0.3)  # would be several retries at this backoff
            assert client._thread is not None and not client._thread.is_alive()
            client.stop()
            assert client.stats.fatal_error == FATAL_403
            assert client.stats.connects == 0 and client.stats.connect_failures == 1
            assert not client.connected and not client.stats.gaps
            assert "wrong-token" not in repr(client)
        assert srv.stats.rejected == 3 and srv.stats.connections == 0


def test_server_restart_same_port_reconnects_and_records_gap(short_session: Session) -> None:
    sink: BoundedQueue = BoundedQueue("raw", 10_000)
    modes = {RELIANCE: MODE_QUOTE, NIFTY: MODE_LTP}
    srv = ReplayServer(short_session, speed=5.0)
    srv.start()
    port = srv.port
    client = FeedClient(srv.url, API_KEY, TOKEN, modes, sink, base_backoff_s=0.1, max_backoff_s=0.5)
    client.start()
    try:
        assert wait_for(lambda: client.stats.frames >= 5, 5)
        srv.stop()
        t_down = time.time_ns()
        assert wait_for(lambda: not client.connected, 5)
        time.sleep(0.5)  # a few refused attempts while the server is down
        srv2 = ReplayServer(short_session, port=port, speed=5.0)
        srv2.start()
        try:
            assert srv2.port == port
            assert wait_for(lambda: client.stats.reconnects == 1, 10)
            before = client.stats.frames
            assert wait_for(lambda: client.stats.frames >= before + 5, 5)  # resubscribed
            assert srv2.stats.frames_sent >= 5
        finally:
            client.stop()
            srv2.stop()
    finally:
        client.stop()
        srv.stop()
    (gap,) = client.stats.gaps
    assert gap.reconnected_ns is not None
    assert (
        gap.disconnected_ns <= t_down + 1_000_000_000 and gap.reconnected_ns > gap.disconnected_ns
    )
    assert (gap.reconnected_ns - gap.disconnected_ns) / 1e9 >= 0.4
    assert gap.reason and gap.attempts >= 2
    assert client.stats.connect_failures >= 1
    # every frame after the restart is still filtered to the resubscribed modes
    for _, _, frame in drain(sink):
        ticks = decode_frame(frame)
        assert (
            dict(zip(ticks["instrument_token"].tolist(), ticks["mode"].tolist(), strict=True))
            == modes
        )
