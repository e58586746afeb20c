"""Acceptance: the real 2022-11-11 session replayed into a real redis-server gives a run summary
with alerts per pattern, the alert rate and every suppression count; no instrument gets two
alerts of one pattern within its cooldown; each new alert is announced on pub/sub; and
``aion validate --date 2022-11-11`` writes the per-pattern table with baseline and 95% CIs."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import redis

from aion.config import load_patterns
from aion.store import keys
from aion.store.queries import read_alerts, read_bars
from aion.validation.forward import validate_alerts

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"
SUPPRESSIONS = {"below_confidence", "outside_hours", "risk_refused", "duplicate", "conflict",
                "cooldown", "rate_limited"}  # fmt: skip


def _env(redis_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AION_CONFIG_DIR")}
    env.update({"REDIS_URL": redis_url, "AION_DATA_DIR": str(data_dir)})
    return env


def test_scan_summary_cooldowns_pubsub_and_validate_report(
    session_2022_11_11: Path, redis_url: str, redis_client: redis.Redis, data_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    env = _env(redis_url, data_dir)
    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(keys.alerts_channel())
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "scan", "--replay", str(session_2022_11_11), "--speed",
         "max", "--json", "--no-live", "--config", str(REPO_CONFIG)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])

    # the run summary: alerts per pattern, rate per minute, every suppression reason
    alerts = read_alerts(redis_client, 20221111)
    assert summary["alerts"] == len(alerts) > 0
    per_pattern: dict[str, int] = {}
    for a in alerts:
        per_pattern[a["pattern"]] = per_pattern.get(a["pattern"], 0) + 1
    assert summary["alerts_by_pattern"] == per_pattern
    assert summary["alerts_per_minute"] == round(len(alerts) / 375, 4)  # 375 regular minutes
    per_minute: dict[str, int] = {}
    for a in alerts:
        per_minute[a["bar_time"]] = per_minute.get(a["bar_time"], 0) + 1
    assert summary["alerts_per_minute_max"] == max(per_minute.values())
    assert summary["alerts_per_minute_max"] <= 10  # alerts.max_alerts_per_minute
    sup = summary["alerts_suppressed"]
    assert set(sup) == SUPPRESSIONS
    assert summary["signals"] == summary["alerts"] + sum(sup.values())
    assert sup["outside_hours"] == 0  # every regular bar of a trading day is in market hours
    assert sum(summary["risk_refused_reasons"].values()) == sup["risk_refused"]
    # the run stream keeps the same summary, nested values as JSON
    (_, run), = redis_client.xrange(keys.runs(20221111))  # fmt: skip
    assert json.loads(run["alerts_suppressed"]) == sup

    # no instrument gets more than one alert per pattern per cooldown window
    cooldown = {p.name: p.cooldown_s for p in load_patterns(REPO_CONFIG)}
    last: dict[tuple[str, str], int] = {}
    for a in sorted(alerts, key=lambda a: a["bar_time"]):
        t = int(dt.datetime.strptime(a["bar_time"], "%Y-%m-%dT%H:%M:%S%z").timestamp())
        k = (a["symbol"], a["pattern"])
        assert k not in last or t - last[k] >= cooldown[a["pattern"]], (k, a["bar_time"])
        last[k] = t
        # risk outputs are direction-correct and whole lots
        entry, stop, target = float(a["entry"]), float(a["stop"]), float(a["target"])
        if a["direction"] == "long":
            assert stop < entry < target
        else:
            assert target < entry < stop
        assert int(a["quantity"]) == int(a["lots"]) * int(a["lot_size"]) > 0

    # every stored alert was announced once on pub/sub, in stream order
    msgs = []
    deadline = time.monotonic() + 10
    while len(msgs) < len(alerts) and time.monotonic() < deadline:
        m = sub.get_message(timeout=0.5)
        if m is not None:
            msgs.append(json.loads(m["data"]))
    sub.close()
    assert [m["stream_id"] for m in msgs] == [a["id"] for a in alerts]
    assert msgs[0]["alert_id"] == alerts[0]["alert_id"]

    # aion validate writes the per-pattern table with baseline and intervals
    out = tmp_path / "validation.md"
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "validate", "--date", "2022-11-11", "--out", str(out),
         "--config", str(REPO_CONFIG)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.startswith("# aion forward validation: 2022-11-11")
    assert f"{len(alerts)} alerts validated." in text
    for w in (1, 2, 5, 10, 30, 60):
        assert f"## Within {w} minute" in text
    assert "baseline hit rate [95% CI]" in text
    table30 = text.split("## Within 30 minutes")[1].split("## Within 60")[0]
    rows = [ln for ln in table30.splitlines() if ln.startswith("| `") or ln.startswith("| **")]
    assert len(rows) == len(per_pattern) + 1
    for pat in per_pattern:
        assert any(r.startswith(f"| `{pat}` |") for r in rows), pat
    cell = re.compile(r"-?\d+\.\d% \[\d+\.\d%, \d+\.\d%\]")
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert cell.fullmatch(cells[3]) and cell.fullmatch(cells[8]), r  # hit rate, baseline
        assert re.fullmatch(r"[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]", cells[9]), r
        # pattern - baseline with its interval (none for a pattern on one instrument: the
        # bootstrap resamples instruments), and the verdict that interval gives
        num = r"([+-]\d+\.\d\d)"
        diff = re.fullmatch(rf"{num}(?: \[{num}, {num}\])?", cells[10])
        assert diff is not None, r
        if diff[2] is None:
            assert cells[11] == "no evidence", r
        else:
            lo, hi = float(diff[2]), float(diff[3])
            want = "beats" if lo > 0 else "worse" if hi < 0 else "no evidence"
            assert cells[11] == want or 0.0 in (lo, hi), r  # a bound shown rounded to 0.00
    # the pooled row agrees with the API on the same Redis data
    symbols = {a["symbol"] for a in alerts}
    frame = validate_alerts(alerts, {s: read_bars(redis_client, s, 20221111) for s in symbols})
    f30 = frame.filter(frame["window_min"] == 30)
    n = f30.filter(f30["outcome"] != "no_data").height
    hits = f30.filter(f30["outcome"] == "target").height
    pooled = next(r for r in rows if r.startswith("| **(all)**"))
    cells = [c.strip() for c in pooled.strip("|").split("|")]
    assert cells[1] == str(len(alerts)) and cells[2] == str(n)
    assert cells[3].startswith(f"{100 * hits / n:.1f}%")
