"""A scan that joins mid-session (standalone replay server already running, like Kite at
10:00) never attributes the volume traded before its first tick to a bar."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from aion.replay.server import ReplayServer
from aion.replay.session_file import read_session
from aion.store import keys
from aion.store.queries import read_bars

HDFCBANK = (
    Path(__file__).resolve().parents[2] / "aion/data/intraday_1min_2022-11-11/HDFCBANK.txt.gz"
)


def vendor_volume_by_start() -> dict[str, int]:
    out = {}
    with gzip.open(HDFCBANK, "rt") as fh:
        for line in fh:
            f = line.strip().split(",")
            hh, mm = map(int, f[2].split(":"))
            start = hh * 60 + mm - 1
            out[f"{start // 60:02d}:{start % 60:02d}"] = int(f[7])
    return out


def test_mid_session_join_counts_only_volume_after_first_tick(
    session_2022_11_11: Path, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    session = read_session(session_2022_11_11)
    with ReplayServer(session, speed=300.0) as server:
        time.sleep(4.0)  # the session clock runs without clients: about 20 minutes pass
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AION_CONFIG_DIR")}
        env.update(REDIS_URL=redis_url, AION_DATA_DIR=str(tmp_path))
        proc = subprocess.run(
            [sys.executable, "-m", "aion", "scan", "--ws-url", server.url,
             "--instruments", str(session_2022_11_11), "--symbols", "NSE:HDFCBANK",
             "--duration", "10", "--json", "--no-live"],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    state = redis_client.hgetall(keys.volume_state("NSE:HDFCBANK"))
    first, last = int(state["first_cumulative"]), int(state["last_cumulative"])
    assert first > 0, "the scan should have joined after the open"
    bars = read_bars(redis_client, "NSE:HDFCBANK", 20221111, extended=True)
    assert bars
    assert sum(b["volume"] for b in bars) == last - first == int(state["incremental_total"])
    vendor = vendor_volume_by_start()
    # the first bar holds at most the volume of its own minute, never the day so far
    assert bars[0]["volume"] <= vendor[bars[0]["time"]] < first
    # every later complete bar is exact
    for b in bars[1:-1]:
        assert b["volume"] == vendor[b["time"]], b["time"]
