"""The feed against a misbehaving loopback replay server (real sockets, real redis-server).

- the real 2022-11-11 session scanned while the server is restarted 20 times and goes silent
  (socket open, nothing sent) 5 times: the scan never exits, reconnects within the backoff
  bound, resubscribes, records every gap, and no share is lost or counted twice;
- garbage / truncated binary frames and bad text frames are counted and never stop the scan;
- "max tokens exceeded" is answered by resubscribing in smaller batches;
- a server dropping connections after N frames is reconnected to, every time.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import redis

from aion.app import Scanner, ScanOptions
from aion.config import load_config
from aion.feed.client import FeedClient
from aion.kite.decode import decode_frame
from aion.kite.encode import encode_frame
from aion.kite.wire import MODE_FULL, MODE_QUOTE, TICK_DTYPE
from aion.market.time import from_ist
from aion.queues import BoundedQueue
from aion.replay.server import GARBAGE_FRAME, ReplayServer
from aion.replay.session_file import Session, SessionWriter, read_session
from aion.store import keys
from aion.store.queries import read_bars

pytestmark = pytest.mark.integration

BASE_S, CAP_S, WATCHDOG_S = 0.05, 0.4, 0.6


def fast_config(redis_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("AION_DATA_DIR", str(data_dir))
    cfg = load_config()
    kite = dataclasses.replace(
        cfg.kite,
        watchdog_s=WATCHDOG_S,
        backoff_initial_s=BASE_S,
        backoff_cap_s=CAP_S,
        ping_interval_s=0.0,
    )
    return dataclasses.replace(cfg, kite=kite)


def final_cumulative(session: Session) -> dict[int, int]:
    """Last ``volume_traded`` per tradable token in the session (decoded independently)."""
    out: dict[int, int] = {}
    for frame in session.frames:
        ticks = decode_frame(frame)
        for t in ticks[ticks["tradable"]]:
            out[int(t["instrument_token"])] = int(t["volume_traded"])
    return out


def backoff_bound_s(attempts: int) -> float:
    """Longest total wait of ``attempts`` attempts under full jitter (each <= its ceiling)."""
    return sum(min(CAP_S, BASE_S * 2**j) for j in range(attempts))


def wait_for(cond, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def test_real_session_through_20_restarts_and_5_silences(
    session_2022_11_11: Path,
    redis_url: str,
    redis_client: redis.Redis,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = fast_config(redis_url, data_dir, monkeypatch)
    session = read_session(session_2022_11_11)
    rows = session.header["instruments"]
    symbols = [f"{r['exchange']}:{r['tradingsymbol']}" for r in rows]
    srv = ReplayServer(session, speed=800.0, wait_for_client=True, heartbeat_interval_s=0.1)
    srv.start()
    opts = ScanOptions(ws_url=srv.url, symbols=symbols, instruments=[session_2022_11_11])
    scanner = Scanner(cfg, opts)
    scanner.start()
    feed = scanner.feeds[0]
    exited_early: list[str] = []
    done = threading.Event()

    def watch_exit() -> None:  # the scan must not want to stop before the session completes
        while not done.is_set():
            if scanner.should_stop() and not scanner.session_complete.is_set():
                exited_early.append(scanner.stop_reason)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_exit, daemon=True)
    watcher.start()
    restarts = silences = 0
    last_fault_session_ns = 0
    try:
        assert wait_for(lambda: feed.stats.frames >= 20, 10)
        for i in range(25):
            time.sleep(0.3)  # normal flow between faults
            before = feed.stats.reconnects
            if i % 5 == 4:
                assert srv.go_silent(1.5) == 1
                silences += 1
            else:
                srv.restart(down_s=0.15)
                restarts += 1
            assert wait_for(lambda b=before: feed.stats.reconnects > b, 10), f"fault {i}"
            last_fault_session_ns = srv.session_time_ns() or 0
        assert wait_for(scanner.session_complete.is_set, 60)
        assert scanner.should_stop()  # the session's end, and nothing else, ends the scan
    finally:
        done.set()
        summary = scanner.stop()
        srv.stop()
    v = summary.values
    assert not exited_early, exited_early
    assert v["stop_reason"] == "replayed session complete"
    assert (restarts, silences, srv.stats.restarts) == (20, 5, 20)
    # faults happened during the regular session, before the last frames of the day
    assert last_fault_session_ns < from_ist(session.date, 15, 25) * 10**9
    gaps = feed.stats.gaps
    assert len(gaps) == feed.stats.reconnects == v["feed_reconnects"] >= 25
    assert feed.stats.watchdog_closes >= 5
    for g in gaps:
        assert g.reconnected_ns is not None and g.connection == "conn0"
        assert len(g.tokens) == len(symbols)
        # back within the outage (0.15 s down) plus the backoff ceilings, plus handshake slack
        assert g.duration_s is not None
        assert g.duration_s <= 0.15 + backoff_bound_s(g.attempts) + 0.5, g
    assert len(v["feed_gaps"]) == len(gaps)
    stored = redis_client.hgetall(keys.gaps(20221111))
    assert len(stored) == len(gaps)
    assert {json.loads(x)["start_ns"] for x in stored.values()} == {
        str(g.disconnected_ns) for g in gaps
    }
    assert redis_client.ttl(keys.gaps(20221111)) > 0
    # resubscribed after every reconnect with the same modes, and no share lost or doubled:
    # per instrument, the day's bar volumes add up to the session's final cumulative volume
    final = final_cumulative(session)
    flagged_total = 0
    for r in rows:
        sym = f"{r['exchange']}:{r['tradingsymbol']}"
        bars = read_bars(redis_client, sym, 20221111, extended=True)
        flagged = [b for b in bars if b.get("gap")]
        assert 1 <= len(flagged) <= len(gaps), sym
        flagged_total += len(flagged)
        tok = int(r["instrument_token"])
        if tok in final:
            state = redis_client.hgetall(keys.volume_state(sym))
            assert sum(b["volume"] for b in bars) == final[tok], (sym, state)
            assert state["first_cumulative"] == "0"  # the 09:00 snapshot was seen
    assert len(final) == 29  # 27 stocks + 2 futures carry volume; the 3 indices do not
    assert v["queue_drops"] == 0 and v["malformed_frames"] == 0


def synthetic_session(tmp_path: Path, tokens: list[int], n: int, step_ms: int) -> Session:
    t0 = 1_668_138_300_000_000_000  # 2022-11-11 09:15:00 IST
    path = tmp_path / "synthetic.aion"
    with SessionWriter(path, {"date": "2022-11-11", "start_ns": t0}) as w:
        for i in range(n):
            ts = t0 + i * step_ms * 1_000_000
            ticks = np.zeros(len(tokens), TICK_DTYPE)
            ticks["instrument_token"] = tokens
            ticks["mode"] = MODE_FULL
            ticks["last_price"] = 1000.0 + i / 100
            ticks["volume_traded"] = 100 * i
            ticks["exchange_timestamp"] = ts // 10**9
            w.write(ts, encode_frame(ticks))
    return read_session(path)


def test_garbage_truncated_and_bad_text_frames_are_counted_never_fatal(
    tmp_path: Path, redis_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = fast_config(redis_url, data_dir, monkeypatch)
    hdfc, infy = 341249, 408065
    session = synthetic_session(tmp_path, [hdfc, infy], n=300, step_ms=1000)
    with ReplayServer(session, speed=100.0, wait_for_client=True) as srv:
        opts = ScanOptions(ws_url=srv.url, symbols=["NSE:HDFCBANK", "NSE:INFY"])
        scanner = Scanner(cfg, opts)
        scanner.start()
        try:
            assert wait_for(lambda: scanner.feeds[0].stats.frames >= 10, 10)
            real = session.frames[5]
            junk: list[bytes | str] = [GARBAGE_FRAME] * 7
            junk += [real[: len(real) // 2], real[:3], real[:1] + b"\x05", real + b"\x00"]
            junk += [b"\x00\x01\x00\xb8" + real[6:40]]  # one full packet announced, 34 bytes
            junk += ["not json {", "[1, 2]", "\xff garbage"]
            junk += [json.dumps({"type": "error", "data": "something went wrong"})]
            junk += [json.dumps({"type": "order", "data": {"order_id": "1", "status": "OPEN"}})]
            assert srv.inject(junk) == 1
            assert wait_for(scanner.session_complete.is_set, 20)
            assert scanner.should_stop() and not scanner.feeds[0].stats.fatal_error
        finally:
            summary = scanner.stop()
    v = summary.values
    assert v["malformed_frames"] == 12
    assert v["bad_text_frames"] == 3 and v["text_errors"] == 1
    assert v["stop_reason"] == "replayed session complete"
    assert v["regular_bars"] >= 2 * 4  # 300 s of session: bars kept coming after the junk
    assert srv.stats.injected == len(junk)


def test_max_tokens_exceeded_resubscribes_in_smaller_batches(tmp_path: Path) -> None:
    tokens = [((5_000_000 + i) << 8) | 1 for i in range(1200)]
    session = synthetic_session(tmp_path, tokens[:2], n=50, step_ms=100)
    modes = {t: (MODE_FULL if i % 3 else MODE_QUOTE) for i, t in enumerate(tokens)}
    sink: BoundedQueue = BoundedQueue("raw", 10_000)
    with ReplayServer(session, speed=1.0, heartbeat_interval_s=0.2) as srv:
        srv.max_tokens_per_message = 500
        client = FeedClient(srv.url, "key1", "token1", modes, sink, base_backoff_s=0.05)
        client.start()
        try:
            assert wait_for(lambda: srv.subscriptions() == [modes], 10), "not all subscribed"
        finally:
            client.stop()
    assert client.stats.max_tokens_errors >= 1 and srv.stats.max_tokens_errors >= 1
    assert client.stats.subscribe_batch <= 500
    assert client.stats.reconnects == 0 and not client.stats.fatal_error


def test_server_dropping_after_n_frames_is_reconnected_every_time(tmp_path: Path) -> None:
    session = synthetic_session(tmp_path, [341249], n=400, step_ms=100)
    sink: BoundedQueue = BoundedQueue("raw", 10_000)
    with ReplayServer(session, speed=20.0) as srv:
        srv.drop_after_frames = 25
        client = FeedClient(
            srv.url,
            "key1",
            "token1",
            {341249: MODE_FULL},
            sink,
            base_backoff_s=0.05,
            max_backoff_s=0.2,
        )
        client.start()
        try:
            assert wait_for(lambda: client.stats.reconnects >= 4, 15)
        finally:
            client.stop()
    assert srv.stats.dropped >= 4
    assert len(client.stats.gaps) >= 4
    assert all(g.reconnected_ns is not None for g in client.stats.gaps[:4])
    assert client.stats.frames >= 4 * 25
