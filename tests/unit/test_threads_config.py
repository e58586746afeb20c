"""``threads.gil_switch_interval_ms`` and ``memory.gc_thresholds``: validated in one line,
applied by a scan's start, restored when it ends."""

from __future__ import annotations

import gc
import shutil
import sys
from pathlib import Path

import pytest

from aion.config import ConfigError, default_config_dir, load_config


def _dir(tmp_path: Path, threads: str) -> Path:
    d = tmp_path / "cfg"
    d.mkdir()
    shutil.copy(default_config_dir() / "patterns.yaml", d / "patterns.yaml")
    (d / "aion.yaml").write_text(f"threads:\n  gil_switch_interval_ms: {threads}\n")
    return d


def test_repository_default_is_half_a_millisecond() -> None:
    assert load_config().threads.gil_switch_interval_ms == 0.5


@pytest.mark.parametrize("bad", ["0", "-1", "150", '"fast"'])
def test_bad_switch_interval_is_one_line_naming_the_key(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(_dir(tmp_path, bad))
    msg = str(exc.value)
    assert "threads.gil_switch_interval_ms" in msg and "\n" not in msg


def test_scanner_sets_and_restores_the_switch_interval(tmp_path: Path) -> None:
    from aion.app import Scanner

    cfg = load_config(_dir(tmp_path, "2"))
    before = sys.getswitchinterval()
    scanner = Scanner.__new__(Scanner)  # only the start/stop bookkeeping, no threads
    scanner.config = cfg
    scanner._switch_interval_s = before
    gc_before = gc.get_threshold()
    scanner._gc_thresholds = gc_before
    scanner.feeds, scanner.server, scanner.private_redis = [], None, None

    def fail() -> None:
        assert sys.getswitchinterval() == pytest.approx(0.002)
        assert gc.get_threshold() == (50_000, 20, 20)  # memory.gc_thresholds' default
        raise RuntimeError("no Redis here")

    scanner._start = fail  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        scanner.start()
    assert sys.getswitchinterval() == before  # a failed start restores it
    assert gc.get_threshold() == gc_before
