"""``aion evaluate`` in its small form (3 bundled sessions): the in-process replay gives the
very alerts ``aion scan --replay`` stores in a real redis-server for the same session; the
Parquet file holds every alert x window; sessions, roles, not-applicable counts, the alert
flow and the reports (Markdown, self-contained HTML with one chart per pattern) agree with
one another. The full form is ``make evaluate`` (every bundled session, minutes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import redis

from aion.config import load_config
from aion.store.queries import read_alerts
from aion.validation.stats import VERDICTS

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"
DATES = ("2022-11-10", "2022-11-11", "2022-11-14")


def test_evaluate_small_form_matches_a_scan_and_its_own_files(
    session_2022_11_11: Path, redis_url: str, redis_client: redis.Redis, data_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AION_CONFIG_DIR")}
    env.update({"REDIS_URL": redis_url, "AION_DATA_DIR": str(data_dir)})
    out = tmp_path / "evaluation"
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "evaluate", "--dates", ",".join(DATES), "--out-dir",
         str(out), "--boot", "300", "--json", "--config", str(REPO_CONFIG)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    sessions = {s["date"]: s for s in doc["sessions"]}
    assert list(sessions) == list(DATES)
    assert sessions["2022-11-11"]["role"] == "development"
    assert sessions["2022-11-10"]["role"] == sessions["2022-11-14"]["role"] == "held out"
    assert sessions["2022-11-11"]["instruments"] == 32
    assert sessions["2022-11-10"]["instruments"] == 2  # NIFTY 50 and NIFTY BANK

    # the same alerts as a scan of the same session through Redis
    scan = subprocess.run(
        [sys.executable, "-m", "aion", "scan", "--replay", str(session_2022_11_11), "--speed",
         "max", "--json", "--no-live", "--config", str(REPO_CONFIG)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert scan.returncode == 0, scan.stderr
    stored = read_alerts(redis_client, 20221111)
    trades = pl.read_parquet(out / "evaluation-trades.parquet")
    wins = load_config(REPO_CONFIG).validation.windows_min
    day = trades.filter(pl.col("session") == "2022-11-11")
    assert sorted(day["alert_id"].unique().to_list()) == sorted(a["alert_id"] for a in stored)
    assert sessions["2022-11-11"]["alerts"] == len(stored) > 0
    one = day.filter(pl.col("window_min") == wins[0])
    for a in stored:  # the trade of each alert as stored
        row = one.filter(pl.col("alert_id") == a["alert_id"]).row(0, named=True)
        assert (f"{row['entry']:.2f}", f"{row['stop']:.2f}", f"{row['target']:.2f}") == (
            a["entry"], a["stop"], a["target"])  # fmt: skip

    # every alert x window, with the session and its baseline's mean R
    assert trades.height == sum(s["alerts"] for s in sessions.values()) * len(wins)
    assert set(trades["window_min"]) == set(wins)
    counts = trades.filter(pl.col("window_min") == wins[0]).group_by("session").len()
    assert {r["session"]: r["len"] for r in counts.iter_rows(named=True)} == {
        d: s["alerts"] for d, s in sessions.items() if s["alerts"]}  # fmt: skip
    assert trades["base_r"].null_count() < trades.height

    # the alert flow and the suppression reasons add up
    flow = doc["flow"]
    assert flow["alerts"] == sum(s["alerts"] for s in sessions.values())
    assert flow["alerts_per_minute_max"] == max(s["max_per_minute"] for s in sessions.values())
    assert flow["alerts_per_minute_max"] <= 10  # alerts.max_alerts_per_minute
    first = trades.filter(pl.col("window_min") == wins[0])
    per_minute = first.group_by("session", "bar_start").len()
    assert flow["minutes_over_5_alerts"] == per_minute.filter(pl.col("len") > 5).height
    for s in sessions.values():
        rules = {k: v for k, v in s.items() if k in flow["suppressed"]}
        assert s["signals"] == s["alerts"] + sum(rules.values())

    # verdicts: 3 sessions are too few for an interval (5 needed), so no evidence anywhere
    rows = doc["rows"]
    assert {r["verdict"] for r in rows} <= set(VERDICTS)
    assert all(r["verdict"] == "no evidence" for r in rows)
    allrows = [r for r in rows if r["scope"] == "all"]
    patterns = set(trades["pattern"])
    assert {(r["pattern"], r["window_min"]) for r in allrows} == {
        (p, w) for p in [*patterns, "(all)"] for w in wins}  # fmt: skip
    for r in allrows:
        # the second reading resamples instrument-days: at least as many clusters
        assert r["iday_clusters"] >= r["clusters"] and r["iday_verdict"] in VERDICTS
        assert r["sessions_applicable"] + r["sessions_not_applicable"] == 3
        if r["pattern"] == "volume_spike":  # no volume on the index-only days: cannot fire
            assert r["sessions_not_applicable"] == 2 and r["clusters"] == 1

    md = (out / "evaluation.md").read_text()
    for d in DATES:
        assert f"| {d} |" in md
    assert "## Verdicts, all sessions" in md and "## Verdicts, held out sessions" in md
    page = (out / "evaluation.html").read_text()
    assert page.count("<svg") == len(patterns) + 1  # one chart per pattern and the pooled one
    assert "<script" not in page and "src=" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")  # fmt: skip


def test_evaluate_bad_input_is_one_line(tmp_path: Path) -> None:
    for args, says in (
        (["--dates", "2021-01-04"], "no bars for 2021-01-04"),
        (["--boot", "5"], "--boot must be >= 100"),
        ([str(tmp_path / "missing")], f"bars path {tmp_path / 'missing'} does not exist"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "aion", "evaluate", *args, "--out-dir", str(tmp_path / "o"),
             "--config", str(REPO_CONFIG)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 2, (args, proc.stderr)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and says in lines[0], (args, proc.stderr)
        assert not (tmp_path / "o").exists()
