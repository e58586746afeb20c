"""SIGKILL the scanner at random (seeded) moments of a replayed real session, restart it on
the same live session with --restore, and check that nothing was counted twice or lost.

The replay runs on its own clock (its 09:00-17:59 IST frames last 32,340 / speed wall seconds)
while the scans die and restart, and a restart costs 2-5 s on a loaded 2-core machine: the
kills and restarts must fit well inside the session, or the last scan joins after its end
and the volume its killed predecessor held in forming bars is never barred (CI once failed
so at 8 kills in a 54 s session: ASIANPAINT 777,156 of 809,771 shares in bars)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
from rel_support import RedisProcess, aion_cmd, scan_env, vendor_day_volume

from aion.replay.server import ReplayServer
from aion.replay.session_file import read_session
from aion.store import keys
from aion.store.queries import read_alerts, read_bars
from aion.store.server import connect

DATE = 20221111


def _wait_for_writes(client: redis.Redis, proc: subprocess.Popen[bytes]) -> None:
    """Until the scanner ``proc`` has flushed frames it received (its feed hash changes)."""
    before = client.hget(keys.feed("main"), "frames")
    deadline = time.monotonic() + 60
    while client.hget(keys.feed("main"), "frames") in (before, None):
        assert proc.poll() is None, ("the scan ended before writing", proc.communicate())
        assert time.monotonic() < deadline, "the scanner wrote nothing within 60 s"
        time.sleep(0.05)


def _crash_and_restart(
    session_file: Path, redis_url: str, data_dir: Path, kills: int, speed: float, seed: int
) -> tuple[int, dict]:
    """Run scans against one live replay, SIGKILL ``kills`` of them; returns (kills, summary)."""
    session = read_session(session_file)
    symbols = ",".join(r["tradingsymbol"] and f"{r['exchange']}:{r['tradingsymbol']}"
                       for r in session.header["instruments"])  # fmt: skip
    cmd = aion_cmd("scan", "--ws-url", "", "--instruments", str(session_file),
                   "--symbols", symbols, "--restore", "--json", "--no-live")  # fmt: skip
    env = scan_env(REDIS_URL=redis_url, AION_DATA_DIR=str(data_dir))
    rng = random.Random(seed)
    client = connect(redis_url)
    done = 0
    with ReplayServer(session, speed=speed, wait_for_client=True) as server:
        cmd[cmd.index("--ws-url") + 1] = server.url
        while True:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            if done < kills:
                # kill at a random moment after this process has started writing to Redis
                _wait_for_writes(client, proc)
                time.sleep(rng.uniform(0.0, 2.5))
                assert proc.poll() is None, proc.communicate()
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
                done += 1
                continue
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err.decode()
            summary = json.loads(out.decode().strip().splitlines()[-1])
            # the check below needs the last scan to see the session's tail: one that joined
            # after the replay's end (restarts slower than the session at this speed) never
            # gets the ticks that would bar the volume its killed predecessor left forming
            assert summary["frames"] > 0, "the last scan joined after the session ended"
            return done, summary


def _check_nothing_lost(client: redis.Redis, session_file: Path, summary: dict) -> None:
    session = read_session(session_file)
    vendor = vendor_day_volume()
    vendor_of = {int(t): v for t, v in session.header["vendor_symbols"].items()}
    checked = 0
    for row in session.header["instruments"]:
        sym = f"{row['exchange']}:{row['tradingsymbol']}"
        state = client.hgetall(keys.volume_state(sym))
        if not state:  # indices carry no volume
            assert row["segment"] == "INDICES", sym
            continue
        first, last = int(state["first_cumulative"]), int(state["last_cumulative"])
        bars = read_bars(client, sym, DATE, extended=True)
        total = sum(b["volume"] for b in bars)
        # the scan joined before the open (the 09:00 snapshot, or at latest the 09:08 pre-open
        # auction tick) and ran to the session end: the final cumulative is the vendor's day total
        assert 0 <= first < last, sym
        assert last == vendor[vendor_of[int(row["instrument_token"])]], sym
        # every share is in exactly one bar: nothing double counted across the kills, nothing lost
        assert total == last - first, (sym, total, last - first)
        assert len({b["time"] for b in bars}) == len(bars)
        checked += 1
    assert checked >= 25
    alerts = read_alerts(client, DATE)
    ids = [a["id"] for a in alerts]
    assert len(ids) == len(set(ids))
    same_signal = [(a["symbol"], a["pattern"], a["bar_time"]) for a in alerts]
    assert len(same_signal) == len(set(same_signal)), "an alert was published twice"
    assert summary["stop_reason"] == "replayed session complete"
    assert summary["redis_flushed"] is True and summary["redis_dropped_commands"] == 0


@pytest.mark.integration
def test_sigkill_restart_counts_every_share_once(
    session_2022_11_11: Path, redis_proc: RedisProcess, redis_client_of: redis.Redis, tmp_path: Path
) -> None:
    kills, summary = _crash_and_restart(
        session_2022_11_11, redis_proc.url, tmp_path, kills=3, speed=600.0, seed=9
    )
    assert kills == 3
    _check_nothing_lost(redis_client_of, session_2022_11_11, summary)


@pytest.mark.integration
@pytest.mark.long
def test_sigkill_restart_many_kills(
    session_2022_11_11: Path, redis_proc: RedisProcess, redis_client_of: redis.Redis, tmp_path: Path
) -> None:
    kills, summary = _crash_and_restart(
        session_2022_11_11, redis_proc.url, tmp_path, kills=8, speed=250.0, seed=2022
    )
    assert kills == 8
    _check_nothing_lost(redis_client_of, session_2022_11_11, summary)
