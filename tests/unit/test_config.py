"""aion.config: the repository's config loads; bad files fail with one line naming the key."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aion.config import AionConfig, ConfigError, default_config_dir, load_config, load_patterns
from aion.patterns.config import PatternConfig
from aion.risk.config import RiskConfig

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("REDIS_URL", "AION_DATA_DIR", "AION_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)


def _dir(tmp_path: Path, aion: str | None = None, patterns: str | None = None) -> Path:
    """A config folder: the repository's files, with aion.yaml/patterns.yaml replaced if given."""
    d = tmp_path / "cfg"
    d.mkdir()
    for name, text in (("aion.yaml", aion), ("patterns.yaml", patterns)):
        if text is None:
            shutil.copy(REPO_CONFIG / name, d / name)
        else:
            (d / name).write_text(text, encoding="utf-8")
    return d


# ------------------------------------------------------------------------ the shipped config
def test_repository_config_loads() -> None:
    cfg = load_config(REPO_CONFIG)
    assert isinstance(cfg, AionConfig)
    assert cfg.kite.ws_url == "wss://ws.kite.trade"
    assert cfg.kite.default_mode == "full"
    assert cfg.redis.url is None
    assert cfg.redis.flush_interval_ms == 200
    assert cfg.redis.ttl_days.runs == 30
    assert cfg.indicators.ema_periods == (5, 10, 20, 50, 100, 200)
    assert cfg.risk.risk_per_trade == 0.01
    assert isinstance(cfg.risk.capital, float)
    assert cfg.alerts.min_confidence == 0.85
    assert cfg.alerts.market_hours_only is True
    pats = {p.name: p for p in load_patterns(REPO_CONFIG)}
    assert {"volume_spike", "breakout"} <= set(pats) and len(pats) == 21  # every detector
    assert pats["breakout"].params["lookback_bars"] == 20
    assert pats["volume_spike"].cooldown_s == 900


def test_empty_files_give_defaults(tmp_path: Path) -> None:
    d = _dir(tmp_path, aion="", patterns="")
    assert load_config(d) == AionConfig()
    assert load_patterns(d) == []


def test_int_is_accepted_for_float_keys(tmp_path: Path) -> None:
    cfg = load_config(_dir(tmp_path, aion="risk:\n  capital: 500000\n"))
    assert cfg.risk.capital == 500000.0
    assert isinstance(cfg.risk.capital, float)


# ------------------------------------------------------------------------ invalid aion.yaml
AION_CASES = [
    ("bogus: 1\n", "bogus"),
    ("kite:\n  wsurl: wss://x\n", "kite.wsurl"),
    ("redis:\n  ttl_days:\n    bars: 8\n    weeks: 2\n", "redis.ttl_days.weeks"),
    ("redis:\n  flush_interval_ms: fast\n", "redis.flush_interval_ms"),
    ("redis:\n  flush_interval_ms: 0\n", "redis.flush_interval_ms"),
    ("redis:\n  url: http://localhost:6379\n", "redis.url"),
    ("redis:\n  ttl_days:\n    bars: true\n", "redis.ttl_days.bars"),
    ("redis:\n  ttl_days: 8\n", "redis.ttl_days"),
    ("kite:\n  ws_url: https://ws.kite.trade\n", "kite.ws_url"),
    ("kite:\n  ws_url: 42\n", "kite.ws_url"),
    ("kite:\n  default_mode: snap\n", "kite.default_mode"),
    ("risk:\n  risk_per_trade: 0.5\n", "risk.risk_per_trade"),
    ("risk:\n  risk_per_trade: 0\n", "risk.risk_per_trade"),
    ("risk:\n  risk_per_trade: -0.01\n", "risk.risk_per_trade"),
    ("risk:\n  capital: -5\n", "risk.capital"),
    ("risk:\n  reward_multiple: lots\n", "risk.reward_multiple"),
    ("alerts:\n  min_confidence: 1.5\n", "alerts.min_confidence"),
    ("alerts:\n  min_confidence: -0.1\n", "alerts.min_confidence"),
    ("alerts:\n  market_hours_only: sometimes\n", "alerts.market_hours_only"),
    ("indicators:\n  ema_periods: []\n", "indicators.ema_periods"),
    ("indicators:\n  ema_periods: [20, 1]\n", "indicators.ema_periods"),
    ("indicators:\n  ema_periods: 20\n", "indicators.ema_periods"),
    ("indicators:\n  ema_periods: [20, x]\n", "indicators.ema_periods[1]"),
    ("indicators:\n  rsi_period: 1\n", "indicators.rsi_period"),
    ("queues:\n  raw_maxsize: 1.5\n", "queues.raw_maxsize"),
    ("queues:\n  block_timeout_s: 0\n", "queues.block_timeout_s"),
    ("queues:\n  out_max_mb: 0\n", "queues.out_max_mb"),
    ("memory:\n  gc_thresholds: [700, 10]\n", "memory.gc_thresholds"),
    ("memory:\n  gc_thresholds: [0, 10, 10]\n", "memory.gc_thresholds"),
    ("queues: 5\n", "queues"),
    ("universe:\n  symbols: [RELIANCE]\n", "universe.symbols"),
    ("volume:\n  average_days: -3\n", "volume.average_days"),
    ("paths:\n  data_dir: 5\n", "paths.data_dir"),
    ("kite: {ws_url: [unclosed\n", "aion.yaml"),
    ("risk:\n  capital: 1\n   bad_indent: 2\n", "aion.yaml"),
    ("- a\n- list\n", "config"),
]


@pytest.mark.parametrize(
    ("text", "key"), AION_CASES, ids=[f"{k}-{i}" for i, (_, k) in enumerate(AION_CASES)]
)
def test_invalid_aion_yaml(tmp_path: Path, text: str, key: str) -> None:
    d = _dir(tmp_path, aion=text)
    with pytest.raises(ConfigError) as ei:
        load_config(d)
    msg = str(ei.value)
    assert "\n" not in msg
    assert key in msg
    assert msg.strip()


def test_unknown_key_lists_known_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(_dir(tmp_path, aion="risk:\n  capitol: 5\n"))
    msg = str(ei.value)
    assert msg.startswith("risk.capitol:")
    for known in ("capital", "risk_per_trade", "atr_stop_multiple", "reward_multiple"):
        assert known in msg


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(_dir(tmp_path, aion="kite:\n  ws_url: wss://x\nredis: [a\n"))
    assert "line 3" in str(ei.value) or "line 4" in str(ei.value)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"aion\.yaml: file not found"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match=r"patterns\.yaml: file not found"):
        load_patterns(tmp_path)


# ------------------------------------------------------------------------ invalid patterns.yaml
PATTERN_CASES = [
    ("volume_spike:\n  cooldown_s: -1\n", "volume_spike.cooldown_s"),
    ("volume_spike:\n  min_confidence: 1.2\n", "volume_spike.min_confidence"),
    ("breakout:\n  min_confidence: high\n", "breakout.min_confidence"),
    ("volume_spike:\n  enable: true\n", "volume_spike.enable"),
    ("breakout:\n  params: [1, 2]\n", "breakout.params"),
    ("breakout:\n  cooldown_s: soon\n", "breakout.cooldown_s"),
    ("breakout:\n  enabled: 1\n", "breakout.enabled"),
    ("- volume_spike\n- breakout\n", "patterns.yaml"),
    ("volume_spike:\n  params: {min_ratio: 3\n", "patterns.yaml"),
    ("volume_spike: 5\n", "volume_spike"),
    ("volume_spike: [a, b]\n", "volume_spike"),
]


@pytest.mark.parametrize(
    ("text", "key"), PATTERN_CASES, ids=[f"{k}-{i}" for i, (_, k) in enumerate(PATTERN_CASES)]
)
def test_invalid_patterns_yaml(tmp_path: Path, text: str, key: str) -> None:
    d = _dir(tmp_path, patterns=text)
    with pytest.raises(ConfigError) as ei:
        load_patterns(d)
    msg = str(ei.value)
    assert "\n" not in msg
    assert key in msg


def test_dataclass_validation_directly() -> None:
    with pytest.raises(ConfigError, match=r"^risk\.risk_per_trade:"):
        RiskConfig(risk_per_trade=0.11)
    assert RiskConfig(risk_per_trade=0.1).risk_per_trade == 0.1  # upper bound inclusive
    with pytest.raises(ConfigError, match=r"^x\.cooldown_s:"):
        PatternConfig(name="x", cooldown_s=-1)
    assert PatternConfig(name="x", cooldown_s=0, min_confidence=1.0).cooldown_s == 0


# ------------------------------------------------------------------------ environment
def test_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = _dir(tmp_path)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/2")
    monkeypatch.setenv("AION_DATA_DIR", str(tmp_path / "data"))
    cfg = load_config(d)
    assert cfg.redis.url == "redis://127.0.0.1:6390/2"
    assert cfg.redis.flush_interval_ms == 200  # the rest of the section is kept
    assert cfg.paths.data_dir == str(tmp_path / "data")
    assert cfg.data_dir() == tmp_path / "data"


def test_env_override_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = _dir(tmp_path, aion="redis:\n  url: redis://file:1/0\npaths:\n  data_dir: /from/file\n")
    assert load_config(d).redis.url == "redis://file:1/0"
    assert load_config(d).data_dir() == Path("/from/file")
    monkeypatch.setenv("REDIS_URL", "unix:///tmp/r.sock")
    monkeypatch.setenv("AION_DATA_DIR", "/from/env")
    cfg = load_config(d)
    assert cfg.redis.url == "unix:///tmp/r.sock"
    assert cfg.data_dir() == Path("/from/env")


def test_bad_redis_url_from_env_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "http://nope:6379")
    with pytest.raises(ConfigError, match=r"redis\.url"):
        load_config(_dir(tmp_path))


def test_default_data_dir_uses_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert load_config(_dir(tmp_path)).data_dir() == tmp_path / "xdg" / "aion"


def test_default_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AION_CONFIG_DIR", str(tmp_path / "elsewhere"))
    assert default_config_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("AION_CONFIG_DIR")
    monkeypatch.chdir(tmp_path)
    assert default_config_dir().resolve() == REPO_CONFIG.resolve()
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "aion.yaml").write_text("", encoding="utf-8")
    assert default_config_dir() == Path("config")


# ------------------------------------------------------------------------ the CLI
def _error_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


@pytest.mark.parametrize(
    ("aion", "patterns", "key"),
    [
        ("risk:\n  risk_per_trade: 0.5\n", None, "risk.risk_per_trade"),
        ("redis:\n  colour: red\n", None, "redis.colour"),
        (None, "volume_spike:\n  cooldown_s: -5\n", "volume_spike.cooldown_s"),
        (None, "no_such_detector:\n  enabled: true\n", "no_such_detector"),
    ],
)
def test_cli_scan_bad_config_exits_2(
    tmp_path: Path, aion: str | None, patterns: str | None, key: str
) -> None:
    from aion.cli.main import app

    d = _dir(tmp_path, aion=aion, patterns=patterns)
    session = tmp_path / "x.session.gz"
    session.write_bytes(b"not read: config fails first")
    result = CliRunner().invoke(app, ["scan", "--replay", str(session), "--config", str(d)])
    assert result.exit_code == 2, result.output
    lines = _error_lines(result.output)
    assert len(lines) == 1, lines
    assert key in lines[0]
    assert "error" in lines[0]


def test_cli_subprocess_bad_config(tmp_path: Path) -> None:
    d = _dir(tmp_path, aion="alerts:\n  min_confidence: 2\n")
    aion_bin = Path(sys.executable).parent / "aion"
    cmd = [str(aion_bin)] if aion_bin.exists() else [sys.executable, "-m", "aion"]
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AION_CONFIG_DIR")}
    proc = subprocess.run(
        [*cmd, "scan", "--replay", str(tmp_path / "missing.gz"), "--config", str(d)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 2, proc.stderr
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1, lines
    assert "alerts.min_confidence" in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


# -- which patterns.yaml entries run (issue 23: only patterns with evidence ship enabled) ----


def _shipped(monkeypatch: pytest.MonkeyPatch) -> list:
    from aion.config import PATTERNS_ENV, load_patterns

    monkeypatch.delenv(PATTERNS_ENV, raising=False)  # the suite runs every entry (conftest)
    return load_patterns()


def test_the_shipped_registry_enables_only_entries_whose_evidence_beats_the_baseline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configs = _shipped(monkeypatch)
    text = (Path(__file__).resolve().parents[2] / "config" / "patterns.yaml").read_text()
    evidence = {}
    for block in text.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln and not ln.startswith("#")]
        if lines and lines[0].endswith(":") and not lines[0].startswith(" "):
            evidence[lines[0][:-1]] = [ln for ln in block.splitlines() if "# evidence" in ln]
    assert {c.name for c in configs} == set(evidence)
    for c in configs:
        assert len(evidence[c.name]) == 1, f"{c.name}: one evidence comment citing make evaluate"
        assert "make evaluate" in evidence[c.name][0]
        if c.enabled:
            assert ": beats:" in evidence[c.name][0], f"{c.name} is enabled without evidence"


def test_pattern_selection_all_names_and_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    from aion.config import ConfigError, select_patterns

    configs = _shipped(monkeypatch)
    assert select_patterns(configs, None) == configs
    assert select_patterns(configs, "enabled") == configs
    every = select_patterns(configs, "all")
    assert [c.name for c in every] == [c.name for c in configs] and all(c.enabled for c in every)
    assert [c.params for c in every] == [c.params for c in configs]  # settings kept
    two = select_patterns(configs, "breakout, volume_spike")
    assert {c.name for c in two if c.enabled} == {"breakout", "volume_spike"}
    with pytest.raises(ConfigError, match=r"no_such_pattern: not in patterns\.yaml"):
        select_patterns(configs, "breakout,no_such_pattern")
    with pytest.raises(ConfigError, match=r"not in patterns\.yaml"):
        select_patterns(configs, " , ")


def test_aion_patterns_env_selects_for_load_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    from aion.config import PATTERNS_ENV, load_patterns

    monkeypatch.setenv(PATTERNS_ENV, "fair_value_gaps")
    assert [c.name for c in load_patterns() if c.enabled] == ["fair_value_gaps"]
    assert all(c.enabled for c in load_patterns(selection="all"))  # the argument wins
