"""Live-scan gating by the XNSE calendar, special sessions from config, and the CLI line."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aion.config import ConfigError, load_config
from aion.market.calendar import MarketCalendar
from aion.market.time import from_ist
from aion.ops.schedule import live_scan_gate, wall_now_s

# 2022-11-08 (Tue): Guru Nanak Jayanti, an NSE holiday; 2022-11-11 (Fri): a trading day;
# 2023-11-12 (Sun): Diwali, NSE's Muhurat session 18:15-19:15 IST (NSE circular
# NSE/CMTR/59281), absent from the library calendar as a weekend day.
HOLIDAY = dt.date(2022, 11, 8)
TRADING = dt.date(2022, 11, 11)
MUHURAT = dt.date(2023, 11, 12)


def write_config(folder: Path, calendar_yaml: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "aion.yaml").write_text(calendar_yaml)
    (folder / "patterns.yaml").write_text("{}\n")
    return folder


def test_gate_on_holiday_weekend_and_hours() -> None:
    cal = MarketCalendar()
    line = live_scan_gate(cal, from_ist(HOLIDAY, 10, 0))
    assert line is not None and "closed on Tue 2022-11-08" in line and "\n" not in line
    assert "next session 2022-11-09 09:15 IST" in line
    assert "closed on Sat 2022-11-12" in str(live_scan_gate(cal, from_ist(TRADING, 10, 0) + 86_400))
    # on a trading day: from 15 minutes before the pre-open to the end of the closing session
    assert live_scan_gate(cal, from_ist(TRADING, 8, 44, 59)) is not None
    assert live_scan_gate(cal, from_ist(TRADING, 8, 45)) is None
    assert live_scan_gate(cal, from_ist(TRADING, 12, 0)) is None
    assert live_scan_gate(cal, from_ist(TRADING, 15, 39, 59)) is None
    late = live_scan_gate(cal, from_ist(TRADING, 15, 40))
    assert late is not None and "trading 09:15-15:30 IST" in late


def test_muhurat_session_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AION_CONFIG_DIR", raising=False)
    cfg_dir = write_config(
        tmp_path / "cfg",
        "calendar:\n  special_sessions:\n"
        '    - {date: "2023-11-12", open: "18:15", close: "19:15", name: "Muhurat trading"}\n',
    )
    cal = load_config(cfg_dir).calendar.market_calendar()
    assert cal.is_trading_day(MUHURAT)
    times = cal.session(MUHURAT)
    assert times is not None and times.name == "Muhurat trading"
    assert times.open == dt.datetime(2023, 11, 12, 18, 15, tzinfo=times.open.tzinfo)
    assert live_scan_gate(cal, from_ist(MUHURAT, 18, 30)) is None
    morning = live_scan_gate(cal, from_ist(MUHURAT, 10, 0))
    assert morning is not None and "Muhurat trading session" in morning
    assert "trading 18:15-19:15 IST" in morning
    # without the config entry the same evening is closed
    assert live_scan_gate(MarketCalendar(), from_ist(MUHURAT, 18, 30)) is not None


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ('{date: "2023-13-12", open: "18:15", close: "19:15"}', "special_sessions[0].date"),
        ('{date: "2023-11-12", open: "6pm", close: "19:15"}', "special_sessions[0].open"),
        ('{date: "2023-11-12", open: "19:15", close: "18:15"}', "special_sessions[0].close"),
        ('{date: "2023-11-12", open: "18:15"}', "special_sessions[0].close"),
    ],
)
def test_bad_special_session_names_the_key(tmp_path: Path, entry: str, key: str) -> None:
    cfg_dir = write_config(tmp_path / "cfg", f"calendar:\n  special_sessions:\n    - {entry}\n")
    with pytest.raises(ConfigError, match=re.escape(f"calendar.{key}")):
        load_config(cfg_dir)


def test_wall_now_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AION_NOW", "2022-11-08T10:00:00+05:30")
    assert wall_now_s() == from_ist(HOLIDAY, 10, 0)
    monkeypatch.setenv("AION_NOW", "1668141000")
    assert wall_now_s() == 1668141000.0
    monkeypatch.setenv("AION_NOW", "2022-11-08T10:00:00")
    with pytest.raises(ValueError, match="UTC offset"):
        wall_now_s()


def test_live_scan_on_holiday_exits_0_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KITE_", "REDIS_URL"))}
    env.update(AION_NOW="2022-11-08T10:00:00+05:30", AION_DATA_DIR=str(tmp_path / "data"))
    env.update(KITE_API_KEY="holiday-test-key", KITE_ACCESS_TOKEN="holiday-test-token")
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "scan", "--no-live"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [x for x in proc.stdout.splitlines() if x.strip()]
    assert len(lines) == 1 and "NSE is closed on Tue 2022-11-08" in lines[0], proc.stdout
    assert proc.stderr.strip() == ""
    assert "holiday-test-token" not in proc.stdout
