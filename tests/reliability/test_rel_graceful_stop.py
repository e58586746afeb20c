"""SIGTERM and Ctrl-C (SIGINT) drain the queues, flush Redis, print the summary and exit 0
within 5 s; what was flushed is complete (bar volumes == cumulative volume seen)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
from rel_support import RedisProcess, aion_cmd, scan_env

from aion.replay.session_file import read_session
from aion.store import keys
from aion.store.queries import read_bars


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_gracefully_within_5s(
    sig: signal.Signals,
    session_2022_11_11: Path,
    redis_proc: RedisProcess,
    redis_client_of: redis.Redis,
    tmp_path: Path,
) -> None:
    proc = subprocess.Popen(
        aion_cmd("scan", "--replay", str(session_2022_11_11), "--speed", "1000", "--json",
                 "--no-live"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=scan_env(REDIS_URL=redis_proc.url, AION_DATA_DIR=str(tmp_path)),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not redis_client_of.exists(keys.feed("main")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(2.0)  # mid-session: ~30 minutes of session time at 1000x
    t0 = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    waited = time.monotonic() - t0
    assert proc.returncode == 0, err
    assert waited < 5.0, f"graceful stop took {waited:.1f} s"
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["stop_reason"] == f"signal {sig.name}"
    assert summary["redis_flushed"] is True
    assert summary["redis_dropped_commands"] == 0 and summary["queue_drops"] == 0
    assert summary["ticks"] > 0
    # the run summary reached its stream, and every share seen is inside a flushed bar
    assert redis_client_of.xlen(keys.runs(20221111)) == 1
    checked = 0
    for row in read_session(session_2022_11_11).header["instruments"]:
        sym = f"{row['exchange']}:{row['tradingsymbol']}"
        state = redis_client_of.hgetall(keys.volume_state(sym))
        if state:
            bars = read_bars(redis_client_of, sym, 20221111, extended=True)
            first, last = int(state["first_cumulative"]), int(state["last_cumulative"])
            assert sum(b["volume"] for b in bars) == last - first, sym
            checked += 1
    assert checked >= 25
