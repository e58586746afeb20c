"""`aion scan` refused with HTTP 403 ends in one line with exit code 2 and leaks no secret;
`aion record` of a replay, replayed again, gives identical bars and alerts."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from aion.replay.server import ReplayServer
from aion.replay.session_file import read_session
from aion.store.queries import read_alerts, read_bars

pytestmark = pytest.mark.integration

API_KEY, TOKEN = "kk-apikey-7731", "at-SECRET-9f3e2d1c"
SYMBOLS = ["NSE:HDFCBANK", "NSE:SBIN", "NSE:NIFTY 50", "NFO:NIFTY22NOVFUT"]


def aion(args: list[str], env_extra: dict[str, str], timeout: float = 300) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KITE_", "REDIS_URL"))}
    env.update(env_extra)
    return subprocess.Popen(
        [sys.executable, "-m", "aion", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_403_ends_scan_within_2s_exit_2_one_line_no_secret(
    session_2022_11_11: Path, redis_url: str, redis_client: redis.Redis, data_dir: Path
) -> None:
    session = read_session(session_2022_11_11)
    with ReplayServer(session, speed=1.0, expected_credentials=(API_KEY, "the-right-token")) as srv:
        env = {"REDIS_URL": redis_url, "AION_DATA_DIR": str(data_dir),
               "KITE_API_KEY": API_KEY, "KITE_ACCESS_TOKEN": TOKEN}  # fmt: skip
        proc = aion(["scan", "--ws-url", srv.url, "--instruments", str(session_2022_11_11),
                     "--symbols", "NSE:HDFCBANK", "--no-live"], env)  # fmt: skip
        out, err = proc.communicate(timeout=120)
        exited = time.monotonic()
        assert srv.stats.last_rejected_monotonic is not None
        assert exited - srv.stats.last_rejected_monotonic < 2.0
        assert srv.stats.rejected == 1 and srv.stats.connections == 0  # never retried
    assert proc.returncode == 2, (out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert (
        "403" in lines[0] and "invalid or expired" in lines[0] and "KITE_ACCESS_TOKEN" in lines[0]
    )
    # no secret anywhere aion wrote: its output, Redis keys and values, its data folder
    written = [out, err]
    for k in redis_client.scan_iter("*"):
        written.append(k)
        t = redis_client.type(k)
        if t == "hash":
            written.extend(f"{a}={b}" for a, b in redis_client.hgetall(k).items())
        elif t == "stream":
            written.extend(str(e) for e in redis_client.xrange(k))
        elif t == "string":
            written.append(str(redis_client.get(k)))
    for p in data_dir.rglob("*") if data_dir.exists() else []:
        if p.is_file():
            written.append(p.read_bytes().decode("latin-1"))
    blob = "\n".join(written)
    assert TOKEN not in blob and API_KEY not in blob


def test_record_then_replay_gives_identical_bars_and_alerts(
    session_2022_11_11: Path, redis_url: str, redis_client: redis.Redis, data_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    env = {"REDIS_URL": redis_url, "AION_DATA_DIR": str(data_dir)}

    def scan(path: Path, *extra: str) -> tuple[dict, list]:
        redis_client.flushall()
        p = aion(["scan", "--replay", str(path), "--speed", "max", "--json", "--no-live",
                  *extra], env)  # fmt: skip
        _out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        bars = {s: read_bars(redis_client, s, 20221111, extended=True) for s in SYMBOLS}
        return bars, read_alerts(redis_client, 20221111)

    bars_a, alerts_a = scan(session_2022_11_11, "--symbols", ",".join(SYMBOLS))
    assert alerts_a and all(len(b) >= 375 for b in bars_a.values())

    rec = tmp_path / "recorded.session.gz"
    session = read_session(session_2022_11_11)
    with ReplayServer(session, speed=None, wait_for_client=True) as srv:
        result: dict = {}

        def run() -> None:
            p = aion(["record", "--duration", "120", "--out", str(rec), "--ws-url", srv.url,
                      "--instruments", str(session_2022_11_11), "--symbols", ",".join(SYMBOLS)],
                     env)  # fmt: skip
            result["out"], result["err"] = p.communicate(timeout=300)
            result["rc"] = p.returncode

        t = threading.Thread(target=run)
        t.start()
        t.join(300)
    assert result["rc"] == 0, result["err"]
    recorded = read_session(rec)
    assert recorded.complete and recorded.header["date"] == "2022-11-11"
    assert len(recorded.frames) == srv.stats.frames_sent > 1000
    assert sorted(recorded.modes.values()) == ["full"] * 4
    assert bool((recorded.ts_ns[1:] >= recorded.ts_ns[:-1]).all())  # receive times, in order

    bars_b, alerts_b = scan(rec)
    assert bars_b == bars_a
    assert alerts_b == alerts_a
