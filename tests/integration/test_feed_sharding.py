"""Sharding against the loopback replay server: 9,000 tokens -> exactly 3 connections of 3,000;
9,001 tokens are refused at start-up naming the count."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest

from aion.app import ScanError, Scanner, ScanOptions
from aion.config import load_config
from aion.kite.encode import encode_frame
from aion.kite.wire import MODE_FULL, TICK_DTYPE
from aion.replay.server import ReplayServer
from aion.replay.session_file import SessionWriter, read_session

pytestmark = pytest.mark.integration

T0_NS = 1_668_138_300_000_000_000  # 2022-11-11 09:15:00 IST


def synthetic_master(path: Path, n: int) -> list[str]:
    """A Kite instruments CSV of ``n`` synthetic NSE equities; returns their symbols."""
    symbols = []
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["instrument_token", "exchange_token", "tradingsymbol", "name", "last_price",
                    "expiry", "strike", "tick_size", "lot_size", "instrument_type", "segment",
                    "exchange"])  # fmt: skip
        for i in range(n):
            tok = ((7_000_000 + i) << 8) | 1  # segment 1 = NSE
            w.writerow([tok, 7_000_000 + i, f"SYN{i:05d}", f"SYN{i}", 0, "", 0, 0.05, 1, "EQ",
                        "NSE", "NSE"])  # fmt: skip
            symbols.append(f"NSE:SYN{i:05d}")
    return symbols


def tiny_session(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.aion"
    with SessionWriter(path, {"date": "2022-11-11", "start_ns": T0_NS}) as w:
        for i in range(5):
            ticks = np.zeros(1, TICK_DTYPE)
            ticks["instrument_token"] = (7_000_000 << 8) | 1
            ticks["mode"] = MODE_FULL
            ticks["last_price"] = 100.0 + i
            ticks["volume_traded"] = 10 * i
            ticks["exchange_timestamp"] = T0_NS // 10**9 + i
            w.write(T0_NS + i * 10**9, encode_frame(ticks))
    return path


def test_9001_refused_9000_open_exactly_three_connections(
    tmp_path: Path, redis_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("AION_DATA_DIR", str(data_dir))
    cfg = load_config()
    csv_path = tmp_path / "synthetic.csv"
    symbols = synthetic_master(csv_path, 9001)
    session = read_session(tiny_session(tmp_path))
    with ReplayServer(session, speed=1.0, heartbeat_interval_s=0.2) as srv:
        opts = ScanOptions(ws_url=srv.url, symbols=symbols, instruments=[csv_path])
        with pytest.raises(ScanError) as exc:
            Scanner(cfg, opts)
        assert "9001 instruments" in str(exc.value) and "9000" in str(exc.value)
        assert srv.stats.connections == 0  # refused before any connection

        opts = ScanOptions(ws_url=srv.url, symbols=symbols[:9000], instruments=[csv_path],
                           duration_s=30)  # fmt: skip
        scanner = Scanner(cfg, opts)
        scanner.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                subs = srv.subscriptions()
                # subscribe, then mode: wait for both messages of every connection
                full = all(m == MODE_FULL for s in subs for m in s.values())
                if len(subs) == 3 and sum(len(s) for s in subs) == 9000 and full:
                    break
                time.sleep(0.05)
            subs = srv.subscriptions()
        finally:
            summary = scanner.stop()
    assert len(scanner.feeds) == 3 and srv.stats.connections == 3
    assert sorted(len(s) for s in subs) == [3000, 3000, 3000]
    all_tokens = set().union(*(s.keys() for s in subs))
    expected = {((7_000_000 + i) << 8) | 1 for i in range(9000)}
    assert all_tokens == expected  # each token on exactly one connection
    assert all(m == MODE_FULL for s in subs for m in s.values())  # kite.default_mode: full
    assert summary.values["feed_connections"] == 3 and summary.values["feed_tokens"] == 9000
