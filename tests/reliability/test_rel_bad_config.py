"""Table of invalid configurations: each stops `aion scan --config DIR` with exit code 2 and
exactly one line that names the offending key and says how to fix it."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from rel_support import aion_cmd, scan_env

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"

# (case id, dotted key to set (None: raw YAML text), value, text the error line must contain)
CASES: list[tuple[str, str | None, object, str]] = [
    ("mode-choice", "kite.default_mode", "fast", "kite.default_mode"),
    ("ws-scheme", "kite.ws_url", "http://ws.kite.trade", "kite.ws_url"),
    ("flush-type", "redis.flush_interval_ms", "fast", "redis.flush_interval_ms"),
    ("flush-zero", "redis.flush_interval_ms", 0, "redis.flush_interval_ms"),
    ("buffer-negative", "redis.max_buffered_commands", -5, "redis.max_buffered_commands"),
    ("buffer-float", "redis.max_buffered_commands", 1.5, "redis.max_buffered_commands"),
    ("url-scheme", "redis.url", "http://localhost:6379", "redis.url"),
    ("ttl-zero", "redis.ttl_days.bars", 0, "redis.ttl_days.bars"),
    ("ttl-unknown", "redis.ttl_days.ticks", 3, "redis.ttl_days.ticks"),
    ("maxlen-bool", "redis.alerts_maxlen", True, "redis.alerts_maxlen"),
    ("tls-ca-missing", "redis.tls.ca_file", "/nonexistent/ca.pem", "redis.tls.ca_file"),
    ("tls-cert-alone", "redis.tls.cert_file", "@aion.yaml", "redis.tls.cert_file"),
    ("queue-zero", "queues.raw_maxsize", 0, "queues.raw_maxsize"),
    ("queue-timeout", "queues.block_timeout_s", -1.0, "queues.block_timeout_s"),
    ("universe-symbol", "universe.symbols", ["RELIANCE"], "universe.symbols"),
    ("universe-type", "universe.symbols", "NSE:RELIANCE", "universe.symbols"),
    ("ema-short", "indicators.ema_periods", [1, 20], "indicators.ema_periods"),
    ("ema-empty", "indicators.ema_periods", [], "indicators.ema_periods"),
    ("rsi-small", "indicators.rsi_period", 1, "indicators.rsi_period"),
    ("risk-fraction", "risk.risk_per_trade", 0.5, "risk.risk_per_trade"),
    ("capital-negative", "risk.capital", -100.0, "risk.capital"),
    ("confidence-range", "alerts.min_confidence", 1.5, "alerts.min_confidence"),
    ("hours-type", "alerts.market_hours_only", "yes", "alerts.market_hours_only"),
    ("unknown-section", "nonsense.key", 1, "nonsense"),
    ("unknown-key", "redis.passwrd", "x", "redis.passwrd"),
    ("volume-minutes", "volume.regular_session_minutes", 0, "volume.regular_session_minutes"),
    ("yaml-syntax", None, "redis: [unclosed\n", "aion.yaml"),
    ("pattern-unknown", "patterns:no_such_detector.enabled", True, "no_such_detector"),
    ("pattern-confidence", "patterns:*.min_confidence", 2.0, "min_confidence"),
    ("pattern-cooldown", "patterns:*.cooldown_s", -1, "cooldown_s"),
]


def _write_case(d: Path, key: str | None, value: object) -> None:
    d.mkdir(parents=True)
    aion = yaml.safe_load((REPO_CONFIG / "aion.yaml").read_text())
    patterns = yaml.safe_load((REPO_CONFIG / "patterns.yaml").read_text())
    for extra in REPO_CONFIG.iterdir():  # fields.yaml and friends
        if extra.name not in ("aion.yaml", "patterns.yaml") and extra.is_file():
            (d / extra.name).write_bytes(extra.read_bytes())
    if key is None:
        (d / "aion.yaml").write_text(str(value))
        (d / "patterns.yaml").write_text(yaml.safe_dump(patterns))
        return
    if isinstance(value, str) and value.startswith("@"):
        value = str(d / value[1:])
    if key.startswith("patterns:"):
        name, field = key.split(":", 1)[1].split(".", 1)
        name = next(iter(patterns)) if name == "*" else name
        patterns.setdefault(name, {})[field] = value
    else:
        node = aion
        *path, last = key.split(".")
        for p in path:
            node = node.setdefault(p, {}) if isinstance(node.get(p), dict | None) else node[p]
            if node is None:
                node = {}
        node[last] = value
    (d / "aion.yaml").write_text(yaml.safe_dump(aion))
    (d / "patterns.yaml").write_text(yaml.safe_dump(patterns))


def _run(case: tuple[str, str | None, object, str], root: Path) -> tuple[int, str]:
    cid, key, value, _ = case
    d = root / cid
    _write_case(d, key, value)
    proc = subprocess.run(
        aion_cmd("scan", "--config", str(d), "--replay", os.devnull, "--no-live"),
        capture_output=True, text=True, timeout=120,
        env=scan_env(AION_DATA_DIR=str(root / "data")),
    )  # fmt: skip
    return proc.returncode, proc.stderr


def test_at_least_20_invalid_configs_each_exit_2_with_one_line(tmp_path: Path) -> None:
    assert len(CASES) >= 20
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: _run(c, tmp_path), CASES))
    failures = []
    for (cid, _key, _value, must), (code, stderr) in zip(CASES, results, strict=True):
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        if code != 2 or len(lines) != 1 or must not in lines[0]:
            failures.append((cid, code, stderr[-400:]))
    assert not failures, failures


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_secrets_file_must_be_owner_only(tmp_path: Path, mode: int) -> None:
    """A group/world-readable secrets file is refused with one line (issue 3's credentials)."""
    secrets = tmp_path / "kite.env"
    secrets.write_text("KITE_API_KEY=k\nKITE_ACCESS_TOKEN=t0ken-under-test\n")
    secrets.chmod(mode)
    d = tmp_path / "cfg"
    _write_case(d, "kite.secrets_file", str(secrets))
    proc = subprocess.run(
        aion_cmd("scan", "--config", str(d), "--force", "--no-live"),
        capture_output=True, text=True, timeout=120,
        env=scan_env(AION_DATA_DIR=str(tmp_path / "data")),
    )  # fmt: skip
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "secrets_file" in lines[0] or str(secrets) in lines[0]
    assert "t0ken-under-test" not in proc.stderr + proc.stdout


def test_missing_secrets_file_is_one_line(tmp_path: Path) -> None:
    d = tmp_path / "cfg"
    _write_case(d, "kite.secrets_file", str(tmp_path / "nope.env"))
    proc = subprocess.run(
        aion_cmd("scan", "--config", str(d), "--force", "--no-live"),
        capture_output=True, text=True, timeout=120,
        env=scan_env(AION_DATA_DIR=str(tmp_path / "data")),
    )  # fmt: skip
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "secrets_file" in lines[0] or "nope.env" in lines[0]
