"""Kite credentials: environment first, else an owner-only secrets file; secrets never shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aion.kite.credentials import CredentialsError, load_credentials

KEY, TOKEN = "kitekey123", "tok-S3CRET-value-42"


def secrets(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    p = tmp_path / "kite.env"
    p.write_text(text)
    os.chmod(p, mode)
    return p


def test_environment_gives_credentials_and_repr_hides_the_token() -> None:
    c = load_credentials(None, {"KITE_API_KEY": KEY, "KITE_ACCESS_TOKEN": TOKEN})
    assert c is not None
    assert (c.api_key, c.access_token, c.source) == (KEY, TOKEN, "env")
    assert TOKEN not in repr(c) and TOKEN not in str(c)


def test_nothing_configured_is_none() -> None:
    assert load_credentials(None, {}) is None


def test_owner_only_file_is_read_with_comments_export_and_quotes(tmp_path: Path) -> None:
    p = secrets(tmp_path, f"# kite\n\nexport KITE_API_KEY={KEY}\nKITE_ACCESS_TOKEN='{TOKEN}'\n")
    c = load_credentials(p, {})
    assert c is not None and (c.api_key, c.access_token, c.source) == (KEY, TOKEN, str(p))
    p.chmod(0o400)
    assert load_credentials(p, {}) is not None


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    p = secrets(tmp_path, "KITE_API_KEY=filekey\nKITE_ACCESS_TOKEN=filetoken\n")
    c = load_credentials(p, {"KITE_API_KEY": KEY, "KITE_ACCESS_TOKEN": TOKEN})
    assert c is not None and (c.api_key, c.access_token) == (KEY, TOKEN)
    # a partial environment is completed from the file
    c = load_credentials(p, {"KITE_ACCESS_TOKEN": TOKEN})
    assert c is not None and (c.api_key, c.access_token) == ("filekey", TOKEN)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o620])
def test_group_or_world_accessible_file_is_refused_in_one_line(tmp_path: Path, mode: int) -> None:
    p = secrets(tmp_path, f"KITE_API_KEY={KEY}\nKITE_ACCESS_TOKEN={TOKEN}\n", mode)
    with pytest.raises(CredentialsError) as exc:
        load_credentials(p, {})
    msg = str(exc.value)
    assert "\n" not in msg and f"{mode:04o}" in msg and "chmod 600" in msg
    assert TOKEN not in msg and KEY not in msg


def test_malformed_line_is_refused_without_echoing_it(tmp_path: Path) -> None:
    p = secrets(tmp_path, f"KITE_API_KEY={KEY}\n{TOKEN}\n")
    with pytest.raises(CredentialsError) as exc:
        load_credentials(p, {})
    assert "line 2" in str(exc.value) and TOKEN not in str(exc.value)


def test_missing_file_and_half_credentials_are_errors(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="cannot be read"):
        load_credentials(tmp_path / "nope.env", {})
    with pytest.raises(CredentialsError, match="KITE_ACCESS_TOKEN is not set"):
        load_credentials(None, {"KITE_API_KEY": KEY})
