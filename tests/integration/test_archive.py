"""The Parquet archive: a replayed real session round-trips through polars and duckdb to
exactly the bars `aion bars` prints; revisions, compaction, retention and the flush cadence."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import redis

from aion.archive.store import Archive
from aion.archive.writer import ArchiveWriter
from aion.bars.builder import BAR_DTYPE
from aion.market.time import SEGMENT_REGULAR
from aion.queues import BoundedQueue
from aion.store import keys
from aion.store.batch import BarColumns, StoreBatch
from aion.store.layout import encode_bar
from aion.store.queries import read_alerts, read_bars

DAY = dt.date(2022, 11, 11)
COLS = ["time", "open", "high", "low", "close", "volume", "oi", "ticks", "segment"]


def aion(env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AION_CONFIG_DIR")}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "aion", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_archive_round_trips_to_aion_bars(
    session_2022_11_11: Path, redis_url: str, redis_client: redis.Redis, data_dir: Path
) -> None:
    env = {"REDIS_URL": redis_url, "AION_DATA_DIR": str(data_dir)}
    proc = aion(env, "scan", "--replay", str(session_2022_11_11), "--speed", "max", "--json",
                "--no-live")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["archive_errors"] == 0 and summary["archive_dropped_batches"] == 0
    root = data_dir / "archive"
    part_dir = root / "bars_1m" / "date=2022-11-11"
    # a clean shutdown leaves one compacted part per partition
    assert len(list(part_dir.glob("*.parquet"))) == 1

    glob = str(root / "bars_1m" / "*" / "*.parquet")
    by_polars = pl.scan_parquet(glob, hive_partitioning=True).collect()
    rel = duckdb.sql(
        f"select * from read_parquet('{glob}', hive_partitioning = true) order by symbol, start"
    )
    by_duck = pl.DataFrame(rel.fetchall(), schema=rel.columns, orient="row")  # no pyarrow needed
    assert by_polars["date"].unique().to_list() == [DAY]
    assert str(by_duck["date"].dtype) == "Date" and by_duck["date"].unique().to_list() == [DAY]
    assert by_polars.height == by_duck.height == summary["bars"]
    # no duplicate (symbol, start) after compaction, in either reader
    assert by_polars.select("symbol", "start").n_unique() == by_polars.height

    symbols = sorted(by_polars["symbol"].unique().to_list())
    assert len(symbols) == 32
    for sym in symbols:  # every instrument against Redis, which `aion bars` prints from
        expect = [{c: b[c] for c in COLS} for b in read_bars(redis_client, sym, 20221111)]
        assert len(expect) == 375
        for frame in (by_polars, by_duck):
            got = (
                frame.filter((pl.col("symbol") == sym) & (pl.col("segment") == "regular"))
                .sort("start")
                .select(COLS)
                .to_dicts()
            )
            assert got == expect, sym

    # and the CLI itself, compared as CSV text
    for sym in ("NSE:HDFCBANK",):
        out = aion(env, "bars", "--symbol", sym, "--date", "2022-11-11", "--format", "csv")
        assert out.returncode == 0, out.stderr
        printed = list(csv.DictReader(io.StringIO(out.stdout)))
        rows = by_duck.filter((pl.col("symbol") == sym) & (pl.col("segment") == "regular")).sort(
            "start"
        )
        assert len(printed) == rows.height == 375
        for p, r in zip(printed, rows.iter_rows(named=True), strict=True):
            assert p["date"] == "20221111"
            for c in COLS:
                want = r[c]
                assert (float(p[c]) == want) if isinstance(want, float) else (p[c] == str(want))

    # alerts and the volume state were archived as well
    alerts = Archive(root).read("alerts", [DAY])
    assert sorted(alerts["alert_id"].to_list()) == sorted(
        a["alert_id"] for a in read_alerts(redis_client, 20221111)
    )
    state = Archive(root).read("volume_state", [DAY])
    h = redis_client.hgetall(keys.volume_state("NSE:HDFCBANK"))
    row = state.filter(pl.col("symbol") == "NSE:HDFCBANK").row(0, named=True)
    assert row["last_cumulative"] == int(h["last_cumulative"]) > 0
    runs = Archive(root).read("runs", [DAY])
    assert runs.height == 1 and json.loads(runs["summary"][0])["bars"] == summary["bars"]


def _bar_batch(symbol: str, start: int, volume: int, close: float) -> StoreBatch:
    """One closed regular bar as the compute thread hands it over: its text for Redis and
    the bar builder's row for the archive."""
    hhmm = time.strftime("%H:%M", time.gmtime(start + 19_800))
    bar = {"start": start, "open": 100.0, "high": 101.0, "low": 99.0, "close": close,
           "volume": volume, "oi": 0, "ticks": 4, "segment": "regular"}  # fmt: skip
    row = np.zeros(1, BAR_DTYPE)
    row[0] = (0, start, 100.0, 101.0, 99.0, close, volume, 0, 4, SEGMENT_REGULAR, 0, False)
    return StoreBatch(
        bars=[(keys.bars_1m(symbol, 20221111), {hhmm: encode_bar(bar)})],
        bar_columns=[BarColumns(row, np.array([20221111]), [symbol])],
    )


T0 = 1_668_138_300  # 2022-11-11 09:15 IST


def test_revised_bar_supersedes_and_compaction_keeps_latest(tmp_path: Path) -> None:
    q: BoundedQueue[StoreBatch] = BoundedQueue("archive", 100)
    w = ArchiveWriter(Archive(tmp_path), q, flush_interval_s=0.05)
    w.start()
    w.submit(_bar_batch("NSE:SBIN", T0, 1000, 100.5))
    w.submit(_bar_batch("NSE:SBIN", T0 + 60, 500, 100.7))
    deadline = time.monotonic() + 10
    while not Archive(tmp_path).parts("bars_1m", DAY) and time.monotonic() < deadline:
        time.sleep(0.02)
    # written while the scan runs, before any shutdown: the crash-loss bound
    first_parts = Archive(tmp_path).parts("bars_1m", DAY)
    assert first_parts
    w.submit(_bar_batch("NSE:SBIN", T0, 1200, 100.5))  # a late tick revised 09:15
    time.sleep(0.3)
    assert len(Archive(tmp_path).parts("bars_1m", DAY)) == 2
    got = Archive(tmp_path).read("bars_1m", [DAY])
    assert got.select("time", "volume").rows() == [("09:15", 1200), ("09:16", 500)]
    w.stop()
    parts = Archive(tmp_path).parts("bars_1m", DAY)
    assert len(parts) == 1
    raw = pl.read_parquet(parts[0])
    assert raw.sort("start")["volume"].to_list() == [1200, 500]


def test_prune_keeps_retention_relative_to_newest(tmp_path: Path) -> None:
    a = Archive(tmp_path)
    row = pl.DataFrame({"node": ["main"], "started_ns": [1], "ended_ns": [2],
                        "stop_reason": ["x"], "summary": ["{}"]})  # fmt: skip
    for d in (dt.date(2022, 1, 3), dt.date(2022, 11, 10), dt.date(2022, 11, 11)):
        a.append("runs", d, row)
    gone = a.prune(retention_days=30)
    assert [p.name for p in gone] == ["date=2022-01-03"]
    assert a.dates("runs") == [dt.date(2022, 11, 10), dt.date(2022, 11, 11)]
