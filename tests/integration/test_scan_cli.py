"""`aion scan` as a user runs it: start-up errors, graceful stop on SIGTERM, `aion health`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aion.store import keys
from aion.store.server import connect


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "KITE_API_KEY", "KITE_ACCESS_TOKEN", "AION_CONFIG_DIR")
    }
    env.update(extra)
    return env


def test_scan_without_credentials_says_how_in_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "scan"],
        capture_output=True, text=True, env=_env(AION_DATA_DIR=str(tmp_path)), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1
    assert "KITE_API_KEY" in lines[0] and "--replay" in lines[0]


def test_sigterm_drains_flushes_and_exits_zero(
    session_2022_11_11: Path, redis_url: str, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aion", "scan", "--replay", str(session_2022_11_11),
         "--speed", "600", "--json", "--no-live"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(REDIS_URL=redis_url, AION_DATA_DIR=str(tmp_path)),
    )  # fmt: skip
    client = connect(redis_url)
    deadline = time.monotonic() + 120
    while not client.exists(keys.feed("main")):  # started: signal handlers are installed
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the scan wrote no feed progress in 120 s"
        time.sleep(0.2)
    client.close()
    time.sleep(2.0)  # some session time at 600x
    assert proc.poll() is None, proc.communicate()
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    waited = time.monotonic() - t0
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["stop_reason"] == "signal SIGTERM"
    assert summary["redis_flushed"] is True
    assert summary["queue_drops"] == 0
    assert summary["ticks"] > 0
    assert waited < 5.0, f"graceful stop took {waited:.1f} s"


def test_health_reports_redis_and_keys(
    session_2022_11_11: Path, redis_url: str, tmp_path: Path
) -> None:
    env = _env(REDIS_URL=redis_url, AION_DATA_DIR=str(tmp_path))
    subprocess.run(
        [sys.executable, "-m", "aion", "scan", "--replay", str(session_2022_11_11),
         "--symbols", "NSE:SBIN", "--json", "--no-live"],
        check=True, capture_output=True, env=env, timeout=300,
    )  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "health", "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, report
    assert report["status"] == "ok"
    assert report["redis"]["reachable"] is True
    assert report["keys_per_namespace"]["bars"] >= 1
    assert report["keys_per_namespace"]["alerts"] == 1
    assert report["keys_without_ttl"]["count"] == 0
    assert report["feeds"]["main"]["age_s"] is not None


def test_health_down_when_redis_unreachable(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "health", "--json"],
        capture_output=True, text=True, timeout=120,
        env=_env(REDIS_URL="redis://127.0.0.1:1/0", AION_DATA_DIR=str(tmp_path)),
    )  # fmt: skip
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["status"] == "down"


def test_relative_data_dir_works_from_any_folder(session_2022_11_11: Path, tmp_path: Path) -> None:
    env = _env(AION_DATA_DIR="var/data")  # relative, as `make demo` uses it
    scan = subprocess.run(
        [sys.executable, "-m", "aion", "scan", "--replay", str(session_2022_11_11),
         "--symbols", "NSE:SBIN", "--json", "--no-live"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert scan.returncode == 0, scan.stderr
    bars = subprocess.run(
        [sys.executable, "-m", "aion", "bars", "--symbol", "NSE:SBIN", "--format", "csv"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert bars.returncode == 0, bars.stderr
    assert len(bars.stdout.strip().splitlines()) == 1 + 375
    assert (tmp_path / "var" / "data" / "redis").is_dir()
