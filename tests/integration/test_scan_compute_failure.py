"""A bug in the compute thread ends the scan with one line naming it, instead of a hang.

Bad input never reaches this path (the engine counts and skips a malformed frame); an
exception escaping :meth:`ComputeEngine.process` is injected here, into a real max-speed
replay of the bundled real session against the real redis-server.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from aion.app import Scanner, ScanOptions
from aion.config import load_config
from aion.pipeline.compute import ComputeEngine

pytestmark = pytest.mark.integration


def test_compute_failure_stops_the_scan_with_its_reason(
    session_2022_11_11: Path,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("AION_DATA_DIR", str(tmp_path / "data"))
    process = ComputeEngine.process
    calls = [0]

    def failing(self: ComputeEngine, frames: Any) -> Any:
        calls[0] += 1
        if calls[0] == 3:
            raise RuntimeError("injected fault")
        return process(self, frames)

    monkeypatch.setattr(ComputeEngine, "process", failing)
    scanner = Scanner(load_config(), ScanOptions(replay=session_2022_11_11, speed=None))
    scanner.start()
    deadline = time.monotonic() + 60
    with caplog.at_level(logging.ERROR, logger="aion.app"):
        while not scanner.should_stop() and time.monotonic() < deadline:
            time.sleep(0.02)
        stopped = time.monotonic()
        summary = scanner.stop().values
    assert time.monotonic() - stopped < 10  # stop() does not wait on the dead thread's queue
    assert calls[0] == 3
    assert summary["stop_reason"] == "compute thread failed: RuntimeError: injected fault"
    assert scanner.compute_error == summary["stop_reason"]
    failures = [r for r in caplog.records if r.getMessage() == "compute thread failed"]
    assert len(failures) == 1 and failures[0].exc_info is not None  # with its traceback
