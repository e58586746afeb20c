"""Structured logging: one line per event, text or JSON, rotation, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from aion.ops.logging import log_event, redact, setup_logging

TOKEN = "s3cr3tAccessTok3nValue"
API_KEY = "kiteapikey123456"


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITE_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("KITE_API_KEY", API_KEY)
    monkeypatch.setenv("REDIS_URL", "redis://aion:hunter2hunter2@10.0.0.5:6379/0")


@pytest.fixture(autouse=True)
def _restore_aion_logger() -> Iterator[None]:
    """Each test's setup_logging is undone afterwards (handlers, level, propagation), so the
    redacting handlers do not reach later tests' log records."""
    logger = logging.getLogger("aion")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    for h in list(logger.handlers):
        if h not in saved[0]:
            logger.removeHandler(h)
            h.close()
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def _log(json_format: bool, tmp_path: Path) -> tuple[io.StringIO, Path, logging.Logger]:
    stream = io.StringIO()
    path = tmp_path / "logs" / "aion.log"
    setup_logging(
        level="INFO", json_format=json_format, file=path, stderr=stream, stderr_level="INFO"
    )
    return stream, path, logging.getLogger("aion.test")


def test_json_lines_carry_fields_and_one_object_per_event(tmp_path: Path) -> None:
    stream, path, log = _log(True, tmp_path)
    log_event(log, "scan finished", frames=1511, stop_reason="replayed session complete")
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        log.exception("store failed")
    lines = path.read_text().splitlines()
    assert len(lines) == 2  # the traceback stays on its event's line
    first, second = (json.loads(x) for x in lines)
    assert first["event"] == "scan finished" and first["level"] == "INFO"
    assert first["logger"] == "aion.test"
    assert first["frames"] == 1511 and first["stop_reason"] == "replayed session complete"
    assert first["ts"].endswith("Z")
    assert second["level"] == "ERROR" and "RuntimeError: boom" in second["exc"]
    assert stream.getvalue().splitlines() == lines  # console and file agree


def test_text_format_is_one_readable_line(tmp_path: Path) -> None:
    _stream, path, log = _log(False, tmp_path)
    log_event(log, "archive flushed", parts=4, root="/tmp/a b")
    log.warning("multi\nline")
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert ' INFO aion.test: archive flushed parts=4 root="/tmp/a b"' in lines[0]
    assert lines[1].endswith("WARNING aion.test: multi\\nline")


def test_secrets_never_reach_a_handler(tmp_path: Path) -> None:
    stream, path, log = _log(True, tmp_path)
    log.info("connecting to wss://ws.kite.trade?api_key=%s&access_token=%s", API_KEY, TOKEN)
    log.info("header Authorization: token %s:%s", API_KEY, TOKEN)
    log_event(log, "redis", url="redis://aion:hunter2hunter2@10.0.0.5:6379/0", token=TOKEN)
    try:
        raise ValueError(f"handshake rejected for {TOKEN}")
    except ValueError:
        log.exception("feed error")
    text = path.read_text() + stream.getvalue()
    assert TOKEN not in text and API_KEY not in text and "hunter2hunter2" not in text
    assert text.count("***") >= 6
    assert "redis://aion:***@10.0.0.5:6379/0" in text


def test_redact_patterns_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("KITE_ACCESS_TOKEN", "KITE_API_KEY", "REDIS_URL"):
        monkeypatch.delenv(k)
    assert redact("x?access_token=abc123&y=1") == "x?access_token=***&y=1"
    assert redact("password: hunter22") == "password: ***"
    assert redact("rediss://:pw9999@host:6380") == "rediss://:***@host:6380"
    assert redact("token abcd1234:efgh5678") == "token ***"
    assert redact("unknown token NSE:HDFCBANK") == "unknown token NSE:HDFCBANK"
    assert redact("nothing secret here") == "nothing secret here"


def test_log_file_rotates(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "aion.log"
    setup_logging(file=path, max_bytes=2_000, backup_count=2, stderr=io.StringIO())
    log = logging.getLogger("aion.rot")
    for i in range(200):
        log.info("event number %d with some padding to fill the file", i)
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["aion.log", "aion.log.1", "aion.log.2"]
    assert all(p.stat().st_size <= 2_000 for p in path.parent.iterdir())
    assert "event number 199" in path.read_text()
