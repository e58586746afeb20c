"""``dashboard:`` in aion.yaml: defaults, the token kept out of repr, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from aion.cli.dashboard_cmd import is_loopback
from aion.config import ConfigError, load_config

REPO_CONFIG = Path(__file__).resolve().parents[3] / "config"


def _config_with(tmp_path: Path, dashboard_yaml: str) -> Path:
    text = (REPO_CONFIG / "aion.yaml").read_text().split("\ndashboard:")[0]
    (tmp_path / "aion.yaml").write_text(text + "\ndashboard:\n" + dashboard_yaml)
    return tmp_path


def test_defaults_bind_loopback_without_a_token() -> None:
    d = load_config(REPO_CONFIG).dashboard
    assert (d.host, d.port, d.auth_token) == ("127.0.0.1", 8050, None)


def test_token_never_in_repr(tmp_path: Path) -> None:
    cfg = load_config(_config_with(tmp_path, "  host: 0.0.0.0\n  auth_token: s3cr3t-xyz\n"))
    assert cfg.dashboard.auth_token == "s3cr3t-xyz"
    assert "s3cr3t-xyz" not in repr(cfg) and "s3cr3t-xyz" not in repr(cfg.dashboard)


@pytest.mark.parametrize(
    ("yaml", "needle"),
    [("  port: 0\n", "dashboard.port"), ("  colour: red\n", "dashboard.colour: unknown key")],
)
def test_bad_values_name_the_key(tmp_path: Path, yaml: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_config(_config_with(tmp_path, yaml))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True),
     ("0.0.0.0", False), ("192.168.1.5", False), ("::", False), ("example.org", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
