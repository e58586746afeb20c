"""`aion audit` on the archive of a replayed real session: clean day passes, a day with an
injected 3-minute feed gap fails and shows the gap; the HTML report's chart data is checked
against independent sources (Redis, the vendor files, the validation rows)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
import redis

from aion.archive.store import Archive
from aion.market.time import from_ist
from aion.ops.audit import AuditResult, Check, write_reports
from aion.replay.session_file import SessionWriter, read_session
from aion.store.queries import read_alerts

DAY = dt.date(2022, 11, 11)
DATA = Path(__file__).resolve().parents[2] / "aion" / "data" / "intraday_1min_2022-11-11"
GAP_FROM = from_ist(DAY, 10, 0)  # frames stamped 10:00:00 .. 10:02:59 IST are removed
GAP_TO = from_ist(DAY, 10, 3)


def aion(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AION_CONFIG_DIR")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "aion", *args], capture_output=True, text=True, env=full, timeout=300
    )


def scan(env: dict[str, str], session: Path) -> dict:
    proc = aion(env, "scan", "--replay", str(session), "--speed", "max", "--json", "--no-live")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


class _Charts(HTMLParser):
    """Collects <script type="application/json" id="chart-..."> blocks and SVG shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, object] = {}
        self.shapes: dict[str, dict[str, int]] = {}
        self._script: str | None = None
        self._svg: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("type") == "application/json":
            self._script = str(a["id"]).removeprefix("chart-")
        if tag == "svg":
            self._svg = a.get("data-chart")
            self.shapes[str(self._svg)] = {}
        if tag == "rect" and self._svg and a.get("class"):
            d = self.shapes[self._svg]
            d[str(a["class"])] = d.get(str(a["class"]), 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg = None
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script:
            self.data[self._script] = json.loads(data)


def vendor_hour_volume(symbol_file: str, hour: int) -> int:
    """Volume of the vendor's regular bars starting in IST ``hour`` (vendor labels are ends)."""
    total = 0
    with gzip.open(DATA / symbol_file, "rt") as fh:
        for line in fh:
            _s, _d, hhmm, _o, _h, _l, _c, v, _oi = line.strip().split(",")
            hh, mm = map(int, hhmm.split(":"))
            start = hh * 60 + mm - 1
            if 9 * 60 + 15 <= start < 15 * 60 + 30 and start // 60 == hour:
                total += int(v)
    return total


def test_clean_day_passes_and_html_charts_carry_checked_data(
    session_2022_11_11: Path, redis_url: str, redis_client: redis.Redis, data_dir: Path
) -> None:
    env = {"REDIS_URL": redis_url, "AION_DATA_DIR": str(data_dir)}
    summary = scan(env, session_2022_11_11)
    proc = aion(env, "audit", "--date", "2022-11-11")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    md = (data_dir / "reports" / "audit-2022-11-11.md").read_text()
    assert "# aion audit 2022-11-11: passed" in md
    assert "| missing_minutes | pass | 0 missing minutes over 32 instruments" in md
    assert "| volume_reconciliation | pass | 0 of 32 instruments disagree" in md
    assert "| feed_gaps | pass | 0 gaps" in md

    page = (data_dir / "reports" / "audit-2022-11-11.html").read_text()
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # no network
    assert "<script src" not in page
    charts = _Charts()
    charts.feed(page)
    assert set(charts.data) == {"alerts_per_pattern", "hit_rate", "rvol_heatmap", "gap_timeline"}

    # alerts per pattern == the alert stream in Redis
    by_pattern: dict[str, int] = {}
    for a in read_alerts(redis_client, 20221111):
        by_pattern[a["pattern"]] = by_pattern.get(a["pattern"], 0) + 1
    app = charts.data["alerts_per_pattern"]
    assert dict(zip(app["patterns"], app["counts"], strict=True)) == by_pattern
    assert sum(by_pattern.values()) == summary["alerts"]
    assert charts.shapes["alerts_per_pattern"]["bar"] == len(by_pattern)

    # hit rate per pattern and window == targets / decided outcomes in the validation rows
    vals = Archive(data_dir / "archive").read("validations", [DAY])
    hr = charts.data["hit_rate"]
    assert hr["windows"] == sorted(set(vals["window_min"].to_list()))
    for i, pat in enumerate(hr["patterns"]):
        for j, w in enumerate(hr["windows"]):
            v = vals.filter((pl.col("window_min") == w) & (pl.col("outcome") != "no_data"))
            if pat != "(all)":
                v = v.filter(pl.col("pattern") == pat)
            hits = v.filter(pl.col("outcome") == "target").height
            assert hr["n"][i][j] == v.height
            assert hr["hit_rate"][i][j] == pytest.approx(hits / v.height)
    assert charts.shapes["hit_rate"]["cell"] == len(hr["patterns"]) * len(hr["windows"])

    # RVOL heat map: HDFCBANK 11:00-11:59 volume from the vendor file / its expected volume
    rv = charts.data["rvol_heatmap"]
    assert rv["hours"] == [9, 10, 11, 12, 13, 14, 15]
    i = rv["instruments"].index("NSE:HDFCBANK")
    rvol = Archive(data_dir / "archive").read("rvol_1m", [DAY])
    hour11 = rvol.filter(
        (pl.col("symbol") == "NSE:HDFCBANK") & pl.col("time").str.starts_with("11:")
    )
    assert hour11.height == 60
    expected = float(hour11["expected_bar"].sum())
    assert rv["rvol"][i][2] == pytest.approx(
        vendor_hour_volume("HDFCBANK.txt.gz", 11) / expected, rel=1e-4
    )
    assert rv["rvol"][i][2] > 1.5  # the 2022-11-11 HDFCBANK rally traded far above normal
    assert charts.shapes["rvol_heatmap"]["cell"] == len(rv["instruments"]) * 7

    gt = charts.data["gap_timeline"]
    assert gt == {"session": [from_ist(DAY, 9, 15), from_ist(DAY, 15, 30)], "gaps": []}


def _session_without_minutes(src: Path, out: Path) -> Path:
    s = read_session(src)
    with SessionWriter(out, s.header) as w:
        for ts, frame in zip(s.ts_ns.tolist(), s.frames, strict=True):
            if not GAP_FROM <= ts // 1_000_000_000 < GAP_TO:
                w.write(ts, frame)
    return out


def test_injected_three_minute_gap_is_reported_and_fails(
    session_2022_11_11: Path, redis_url: str, data_dir: Path, tmp_path: Path
) -> None:
    gapped = _session_without_minutes(session_2022_11_11, tmp_path / "gap.session.gz")
    env = {"REDIS_URL": redis_url, "AION_DATA_DIR": str(data_dir)}
    scan(env, gapped)
    proc = aion(env, "audit", "--date", "2022-11-11", "--no-health")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    md = (data_dir / "reports" / "audit-2022-11-11.md").read_text()
    assert "# aion audit 2022-11-11: FAILED" in md
    # every instrument misses 10:00, 10:01, 10:02; the gap's volume lands in 10:03
    assert "| missing_minutes | fail | 96 missing minutes over 32 instruments" in md
    assert "| NSE:HDFCBANK | 372 | 3 | 10:00-10:02 |" in md
    assert re.search(r"\| feed_gaps \| fail \| 1 gaps \(1 silent, 0 reconnects\), 180 s", md)
    assert "| silent | 10:00 | 10:03 | 180 |" in md
    assert "| volume_reconciliation | pass |" in md  # no share lost or double counted
    charts = _Charts()
    charts.feed((data_dir / "reports" / "audit-2022-11-11.html").read_text())
    assert charts.data["gap_timeline"]["gaps"] == [
        {"kind": "silent", "start": GAP_FROM, "end": GAP_TO}
    ]
    assert charts.shapes["gap_timeline"]["gap"] == 1


def test_reports_keep_the_newest_n_dates(tmp_path: Path) -> None:
    for day in (DAY, DAY + dt.timedelta(days=3), DAY + dt.timedelta(days=4)):
        result = AuditResult(day, [Check("archive", "pass", "ok")], _no_charts())
        write_reports(result, tmp_path, keep_last=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit-2022-11-14.html", "audit-2022-11-14.md",
        "audit-2022-11-15.html", "audit-2022-11-15.md",
    ]  # fmt: skip


def _no_charts() -> dict[str, dict]:
    return {
        "alerts_per_pattern": {"patterns": [], "counts": []},
        "hit_rate": {"patterns": [], "windows": [], "hit_rate": [], "n": []},
        "rvol_heatmap": {},
        "gap_timeline": {"session": [], "gaps": []},
    }
