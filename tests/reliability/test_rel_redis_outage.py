"""Redis stopped mid-session and started again on the same port and AOF: the scanner keeps
scanning, buffers, reports degraded health, and after recovery every write is in Redis."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import redis
from rel_support import RedisProcess, aion_cmd, scan_env, vendor_day_volume

from aion.queues import BoundedQueue
from aion.replay.session_file import read_session
from aion.store import keys
from aion.store.batch import AlertRecord, StoreBatch
from aion.store.queries import read_alerts, read_bars
from aion.store.server import connect
from aion.store.writer import RedisStore, TtlSeconds

DATE = 20221111


def _outage_scan(session: Path, rp: RedisProcess, tmp: Path, outage_s: float, speed: float):
    env = scan_env(REDIS_URL=rp.url, AION_DATA_DIR=str(tmp))
    proc = subprocess.Popen(
        aion_cmd("scan", "--replay", str(session), "--speed", str(speed), "--json", "--no-live"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )  # fmt: skip
    client = connect(rp.url)
    deadline = time.monotonic() + 60
    while not client.exists(keys.feed("main")):  # the scan is up and writing
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    client.close()
    rp.stop()
    t_down = time.monotonic()
    health = []
    while time.monotonic() - t_down < outage_s:
        h = subprocess.run(aion_cmd("health", "--json"), capture_output=True, text=True,
                           env=env, timeout=60)  # fmt: skip
        health.append((h.returncode, json.loads(h.stdout)))
        time.sleep(max(0.0, min(1.0, outage_s - (time.monotonic() - t_down))))
    assert proc.poll() is None, "the scan must keep running through the outage"
    rp.start()
    outage = time.monotonic() - t_down
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), health, outage


def _check_all_written(client: redis.Redis, session_file: Path, summary: dict) -> None:
    session = read_session(session_file)
    vendor = vendor_day_volume()
    vendor_of = {int(t): v for t, v in session.header["vendor_symbols"].items()}
    for row in session.header["instruments"]:
        sym = f"{row['exchange']}:{row['tradingsymbol']}"
        bars = read_bars(client, sym, DATE, extended=True)
        regular = [b for b in bars if b["segment"] == "regular"]
        assert len(regular) == 375, (sym, len(regular))  # 09:15..15:29, nothing missing
        state = client.hgetall(keys.volume_state(sym))
        if state:
            total = sum(b["volume"] for b in bars)
            last, first = int(state["last_cumulative"]), int(state["first_cumulative"])
            assert total == last - first
            assert last == vendor[vendor_of[int(row["instrument_token"])]]
    # every alert the scan published reached the stream, once
    alerts = read_alerts(client, DATE)
    assert len(alerts) == summary["alerts"] > 0
    assert summary["redis_flushed"] is True
    assert summary["redis_dropped_commands"] == 0  # the default bound was not reached
    assert summary["queue_drops"] == 0


def _run(session: Path, tmp: Path, outage_s: float, speed: float) -> None:
    rp = RedisProcess(tmp / "redis")
    rp.start()
    try:
        summary, health, outage = _outage_scan(session, rp, tmp / "aion", outage_s, speed)
        assert outage >= outage_s
        assert health, "aion health never ran during the outage"
        for code, report in health:
            assert code == 1 and report["status"] == "degraded", report
            (scanner,) = report["scanners"].values()
            assert scanner["redis_reachable"] is False
            assert scanner["dropped_commands"] == 0
        assert max(r["scanners"]["main"]["pending_commands"] for _c, r in health) > 0
        client = connect(rp.url)
        _check_all_written(client, session, summary)
        client.close()
    finally:
        rp.stop()


@pytest.mark.integration
def test_short_redis_outage_loses_nothing(session_2022_11_11: Path, tmp_path: Path) -> None:
    _run(session_2022_11_11, tmp_path, outage_s=5.0, speed=1500.0)


@pytest.mark.integration
@pytest.mark.long
def test_30s_redis_outage_loses_nothing(session_2022_11_11: Path, tmp_path: Path) -> None:
    outage_s = float(os.environ.get("AION_TEST_OUTAGE_S", "30"))  # the spec's 30 s by default
    _run(session_2022_11_11, tmp_path, outage_s=outage_s, speed=32400 / (outage_s + 25.0))


@pytest.mark.integration
def test_buffer_bound_drops_oldest_bar_writes_and_counts_them_exactly(
    redis_proc: RedisProcess, redis_client_of: redis.Redis
) -> None:
    """Bound 10 commands during an outage: one state key (2 commands) and one alert (1) are
    never dropped, so at most 3 bar keys (2 commands each) fit; of 8 bar keys the 5 oldest are
    dropped, 10 commands counted exactly; after recovery exactly the newest 3, the state and
    the alert are in Redis. With a bound that is not reached, nothing is dropped."""
    bound = 10
    store = RedisStore(
        connect(redis_proc.url), BoundedQueue("out", 100, "block", 1.0),
        TtlSeconds(100, 100, 100, 100), max_buffered_commands=bound,
    )  # fmt: skip
    redis_proc.stop()
    alert = AlertRecord(DATE, "1668138000000-0", {"symbol": "NSE:SBIN", "pattern": "p"})
    store.merge(StoreBatch(state={keys.tick("NSE:SBIN"): {"last_price": 1}}, alerts=[alert]))
    for i in range(8):
        store.merge(StoreBatch(bars=[(keys.bars_1m(f"NSE:S{i}", DATE), {"09:15": str(i)})]))
        assert store.flush() is False
        kept = min(i + 1, (bound - 3) // 2)
        assert store.stats.dropped_commands == 2 * (i + 1 - kept)
    assert store.stats.outage_s == 0.0
    redis_proc.start()
    assert store.flush() is True
    assert store.stats.dropped_commands == 10
    assert store.stats.outage_s > 0
    present = [i for i in range(8) if redis_client_of.exists(keys.bars_1m(f"NSE:S{i}", DATE))]
    assert present == [5, 6, 7]
    assert redis_client_of.hget(keys.tick("NSE:SBIN"), "last_price") == "1"
    assert [e[0] for e in redis_client_of.xrange(keys.alerts(DATE))] == [alert.stream_id]

    roomy = RedisStore(
        connect(redis_proc.url), BoundedQueue("out", 100, "block", 1.0),
        TtlSeconds(100, 100, 100, 100), max_buffered_commands=1000,
    )  # fmt: skip
    redis_proc.stop()
    for i in range(8):
        roomy.merge(StoreBatch(bars=[(keys.bars_1m(f"NSE:T{i}", DATE), {"09:15": str(i)})]))
        assert roomy.flush() is False
    redis_proc.start()
    assert roomy.flush() is True
    assert roomy.stats.dropped_commands == 0
    assert all(redis_client_of.exists(keys.bars_1m(f"NSE:T{i}", DATE)) for i in range(8))
