"""Acceptance: `aion scan` replays the real 2022-11-11 session through Kite's wire protocol
over a loopback WebSocket into a real redis-server; bars reproduce the vendor source and
alerts are deterministic."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from aion.store import keys
from aion.store.queries import read_alerts, read_bars

DATA = Path(__file__).resolve().parents[2] / "aion" / "data" / "intraday_1min_2022-11-11"
VENDOR_TO_SYMBOL = {
    "NIFTY": "NSE:NIFTY 50",
    "BANKNIFTY": "NSE:NIFTY BANK",
    "INDIAVIX": "NSE:INDIA VIX",
    "NIFTY_F1": "NFO:NIFTY22NOVFUT",
    "BANKNIFTY_F1": "NFO:BANKNIFTY22NOVFUT",
}


def vendor_regular_bars(path: Path) -> dict[str, tuple[float, float, float, float, int]]:
    """Start-labelled HH:MM -> (o, h, l, c, v) of the 375 regular rows (vendor END labels)."""
    out = {}
    with gzip.open(path, "rt") as fh:
        for line in fh:
            _sym, _d, hhmm, o, h, lo, c, v, _oi = line.strip().split(",")
            hh, mm = map(int, hhmm.split(":"))
            end = hh * 60 + mm
            if 9 * 60 + 16 <= end <= 15 * 60 + 30:
                start = end - 1
                out[f"{start // 60:02d}:{start % 60:02d}"] = (
                    float(o),
                    float(h),
                    float(lo),
                    float(c),
                    int(v),
                )
    return out


def run_scan(session: Path, env_extra: dict[str, str], *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AION_CONFIG_DIR")}
    env.update(env_extra)
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "scan", "--replay", str(session), "--speed", "max",
         "--json", "--no-live", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_scan_reproduces_every_vendor_bar_and_alerts(
    session_2022_11_11: Path, redis_url: str, redis_client: redis.Redis, data_dir: Path
) -> None:
    summary = run_scan(session_2022_11_11, {"REDIS_URL": redis_url, "AION_DATA_DIR": str(data_dir)})
    assert summary["malformed_frames"] == 0
    assert summary["queue_drops"] == 0
    assert summary["stop_reason"] == "replayed session complete"
    assert summary["redis_flushed"] is True
    files = sorted(DATA.glob("*.txt.gz"))
    assert len(files) == 32
    for f in files:
        vendor = f.name.removesuffix(".txt.gz")
        symbol = VENDOR_TO_SYMBOL.get(vendor, f"NSE:{vendor}")
        expected = vendor_regular_bars(f)
        got = {b["time"]: b for b in read_bars(redis_client, symbol, 20221111)}
        assert len(expected) == 375
        assert set(got) == set(expected), symbol
        for hhmm, (o, h, lo, c, v) in expected.items():
            b = got[hhmm]
            assert round(b["open"] * 100) == round(o * 100), (symbol, hhmm)
            assert round(b["high"] * 100) == round(h * 100), (symbol, hhmm)
            assert round(b["low"] * 100) == round(lo * 100), (symbol, hhmm)
            assert round(b["close"] * 100) == round(c * 100), (symbol, hhmm)
            assert b["volume"] == v, (symbol, hhmm)
            assert b["segment"] == "regular"
    # pre-open and post-close activity is kept apart from the regular bars
    ext = read_bars(redis_client, "NSE:HDFCBANK", 20221111, extended=True)
    times = [b["time"] for b in ext if b["segment"] != "regular"]
    assert "09:08" in times and all(t < "09:15" or t >= "15:30" for t in times)

    alerts = read_alerts(redis_client, 20221111)
    assert len(alerts) == summary["alerts"] > 0
    rally = [
        a for a in alerts
        if a["symbol"] == "NSE:HDFCBANK" and a["direction"] == "long"
        and "10:45" <= a["bar_time"][11:16] <= "12:30"
    ]  # fmt: skip
    assert rally, "HDFCBANK's volume-backed rally from about 10:50 IST raised no long alert"
    for a in rally:
        entry, stop, target = float(a["entry"]), float(a["stop"]), float(a["target"])
        assert stop < entry < target
        assert 0.0 <= float(a["confidence"]) <= 1.0
    # every key written has a TTL or is a bounded stream
    for k in redis_client.scan_iter("aion:*"):
        assert redis_client.ttl(k) > 0, k
    assert redis_client.xinfo_stream(keys.alerts(20221111))["length"] == len(alerts)


def test_replaying_twice_gives_identical_alert_streams(
    session_2022_11_11: Path, redis_url: str, redis_client: redis.Redis, data_dir: Path
) -> None:
    env = {"REDIS_URL": redis_url, "AION_DATA_DIR": str(data_dir)}
    run_scan(session_2022_11_11, env)
    first = read_alerts(redis_client, 20221111)
    redis_client.flushall()
    run_scan(session_2022_11_11, env)
    second = read_alerts(redis_client, 20221111)
    assert first and first == second
    # a third replay into the same Redis publishes nothing twice (idempotent ids)
    third = run_scan(session_2022_11_11, env)
    assert third["duplicate_alerts"] == third["alerts"]
    assert read_alerts(redis_client, 20221111) == first


def test_private_redis_keeps_bars_for_aion_bars(session_2022_11_11: Path, data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["AION_DATA_DIR"] = str(data_dir)
    summary = run_scan(session_2022_11_11, {"AION_DATA_DIR": str(data_dir)}, "--symbols",
                       "NSE:HDFCBANK,NSE:NIFTY 50")  # fmt: skip
    assert summary["instruments"] == 2
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "bars", "--symbol", "NSE:HDFCBANK", "--date",
         "2022-11-11", "--format", "csv"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.strip().splitlines()
    assert rows[0].startswith("date,time,open,high,low,close,volume")
    assert len(rows) == 1 + 375
    first = rows[1].split(",")
    assert first[1] == "09:15" and first[2] == "1549.0" and first[6] == "540451"
