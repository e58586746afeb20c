"""Acceptance: `aion premarket refresh-averages` on the bundled Kite daily candles, real Redis."""

from __future__ import annotations

import csv
import gzip
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import redis

from aion.store import keys

DATA = Path(__file__).resolve().parents[2] / "aion" / "data"


def run(args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AION_CONFIG_DIR")}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "aion", "premarket", "refresh-averages", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def test_refresh_averages_for_2022_11_11(
    redis_url: str, redis_client: redis.Redis, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "avg.parquet"
    proc = run(
        ["--history", str(DATA / "daily_kite"), "--as-of", "2022-11-11", "--out", str(out)],
        {"REDIS_URL": redis_url, "AION_DATA_DIR": str(data_dir)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "48 instruments (48 ready with 55 sessions), 0 skipped" in proc.stdout
    df = pl.read_parquet(out)
    assert df.height == 48 and df["ready"].all()
    assert (df["last_session"].cast(pl.Utf8) == "2022-11-10").all()
    # HDFCBANK by hand: last 20 Kite volumes before 2022-11-11, divided by the 2.0003 factor
    with gzip.open(DATA / "daily_kite" / "HDFCBANK_day_2000d.csv.gz", "rt") as fh:
        rows = [r for r in csv.DictReader(fh) if r["datetime"][:10] < "2022-11-11"]
    by_hand = sum(int(r["volume"]) for r in rows[-20:]) / 20 / 2.0003
    h = redis_client.hgetall(keys.averages("NSE:HDFCBANK"))
    assert float(h["avg_volume_20"]) == by_hand
    assert h["for_date"] == "2022-11-11" and h["ready"] == "1"
    assert float(h["high_55"]) == max(float(r["high"]) for r in rows[-55:]) * 2.0
    assert df.filter(pl.col("symbol") == "NSE:HDFCBANK")["avg_volume_20"][0] == by_hand
    stored = list(redis_client.scan_iter(keys.averages("*").replace("{*}", "*")))
    assert len(stored) == 48
    assert all(redis_client.ttl(k) > 2 * 86_400 for k in stored)  # survives a weekend


def test_skipped_instruments_are_reported_with_a_reason(data_dir: Path, tmp_path: Path) -> None:
    proc = run(
        ["--as-of", "2020-08-03", "--no-redis", "--symbols", "HDFCBANK,NOPE",
         "--out", str(tmp_path / "a.parquet")],
        {"AION_DATA_DIR": str(data_dir)},
    )  # fmt: skip
    assert proc.returncode == 1
    assert "only 14 sessions before 2020-08-03 (need 20)" in proc.stdout
    assert "NSE:NOPE" in proc.stdout and "no daily candle file" in proc.stdout


def test_bad_config_stops_with_one_line(tmp_path: Path, data_dir: Path) -> None:
    (tmp_path / "aion.yaml").write_text(
        "vix_regimes:\n  regimes:\n    - {name: LOW, below: 12, multiplier: 0}\n"
        "    - {name: PANIC, below: null, multiplier: 1.5}\n"
    )
    proc = run(["--config", str(tmp_path), "--no-redis"], {"AION_DATA_DIR": str(data_dir)})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "vix_regimes.regimes[0].multiplier: must be > 0" in lines[0]
