"""One output convention (issue 22): every data command, run with stdout a pipe, prints plain
lines that are never truncated or wrapped and carry no control sequences; under a
pseudo-terminal of 80 and 200 columns it renders a rich table; ``--json`` parses and holds the
keys the README documents (## Output). Data comes from a real scan of real bundled bars into
a real redis-server."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from aion.replay.builder import build_session

DATA = Path(__file__).resolve().parents[2] / "aion" / "data" / "intraday_1min_2022-11-11"
FILES = ["HDFCBANK", "RELIANCE", "SBIN", "NIFTY", "INDIAVIX"]
ESC = "\x1b"
ELLIPSIS = "\u2026"


@pytest.fixture(scope="module")
def scanned(redis_server, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A scan of 5 real instruments into a flushed redis-server; returns the environment for
    later commands and the scan's own piped output."""
    from aion.store.server import connect

    client = connect(redis_server.url)
    client.flushall()
    client.close()
    tmp = tmp_path_factory.mktemp("cli-output")
    session = tmp / "s.session.gz"
    build_session([DATA / f"{f}.txt.gz" for f in FILES], "2022-11-11", session)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AION_CONFIG_DIR")}
    env.update(REDIS_URL=redis_server.url, AION_DATA_DIR=str(tmp / "data"))
    env.pop("NO_COLOR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "scan", "--replay", str(session), "--speed", "max"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return {"env": env, "scan_stdout": proc.stdout, "tmp": tmp}


COMMANDS = {
    "bars": ["bars", "--symbol", "NSE:HDFCBANK", "--date", "2022-11-11"],
    "health": ["health"],
    "patterns": ["patterns"],
    "rvol": ["rvol", "--symbol", "NSE:HDFCBANK", "--date", "2022-11-11"],
    "audit": ["audit", "--date", "2022-11-11", "--no-health"],
}


def _piped(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aion", *args],
        capture_output=True, text=True, env=env, timeout=120, cwd=cwd,
    )  # fmt: skip


def _in_pty(args: list[str], env: dict, columns: int, cwd: Path) -> str:
    """stdout of the command run in a pseudo-terminal ``columns`` wide (stderr a pipe)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**env, "COLUMNS": str(columns), "TERM": "xterm-256color"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aion", *args],
        stdout=slave, stderr=subprocess.PIPE, env=env, cwd=cwd,
    )  # fmt: skip
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            proc.kill()
            raise AssertionError(f"{args} hung in a pty")
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    proc.wait(timeout=60)
    return out.decode("utf-8", "replace")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_piped_output_is_plain_and_complete(scanned: dict, name: str) -> None:
    proc = _piped(COMMANDS[name], scanned["env"], scanned["tmp"])
    assert proc.returncode in (0, 1), proc.stderr  # health may be degraded, audit may warn
    out = proc.stdout
    assert out.strip(), proc.stderr
    assert ESC not in out and ELLIPSIS not in out
    if name == "bars":  # 375 regular bars: a header, a title and one line per bar
        lines = out.splitlines()
        assert sum(line.lstrip().startswith(("09:", "1")) for line in lines) == 375
        assert any(line.rstrip().endswith("regular") for line in lines)  # full segment name
    if name == "patterns":  # names are whole, so grep finds them on one line
        lines = [line for line in out.splitlines() if "volume_spike" in line]
        assert lines and all("multiplier=" in line or "=" in line for line in lines)
    if name == "health":
        assert "redis.eviction_policy" in out or "redis.reachable" in out
        feed = [line for line in out.splitlines() if line.startswith("feed.")]
        assert feed and all(" s " in line or line.rstrip().endswith(" s") or " - " in line
                            for line in feed)  # fmt: skip


@pytest.mark.parametrize("name", ["bars", "health", "patterns"])
@pytest.mark.parametrize("columns", [80, 200])
def test_terminal_output_is_a_rich_table(scanned: dict, name: str, columns: int) -> None:
    out = _in_pty(COMMANDS[name], scanned["env"], columns, scanned["tmp"])
    assert "\u2503" in out or "\u2502" in out  # rich's box-drawing column separators
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out).replace("\r", "")
    assert max(len(line) for line in text.splitlines()) <= columns  # it fits the terminal


JSON_KEYS = {
    "bars": {"symbol", "date", "bars"},
    "health": {"status", "checks", "redis", "feeds"},
    "patterns": {"detectors"},
    "audit": {"date", "failed", "checks", "reports"},
}


@pytest.mark.parametrize("name", sorted(JSON_KEYS))
def test_json_parses_with_the_documented_keys(scanned: dict, name: str) -> None:
    proc = _piped([*COMMANDS[name], "--json"], scanned["env"], scanned["tmp"])
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    assert JSON_KEYS[name] <= set(doc)
    if name == "bars":
        assert len(doc["bars"]) == 375
        assert set(doc["bars"][0]) >= {"time", "open", "high", "low", "close", "volume"}
    if name == "patterns":
        assert {"name", "enabled", "parameters"} <= set(doc["detectors"][0])


def test_rvol_json_lines_parse(scanned: dict) -> None:
    proc = _piped([*COMMANDS["rvol"], "--json"], scanned["env"], scanned["tmp"])
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 375 and {"time", "rvol_cum", "rvol_bar"} <= set(rows[0])


def test_scan_summary_off_a_terminal_is_plain_lines(scanned: dict) -> None:
    out = scanned["scan_stdout"]
    assert ESC not in out and ELLIPSIS not in out
    lines = out.splitlines()
    assert lines[0] == "scan summary"
    assert any(line.startswith("alerts_by_pattern: {") for line in lines)  # one line, whole
    assert any(line.startswith("next: aion bars") for line in lines)
