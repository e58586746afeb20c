"""Session fixtures shared by unit and integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from aion.replay.builder import build_session

DATA = Path(__file__).resolve().parent.parent / "aion" / "data"
INTRADAY_DIR = DATA / "intraday_1min_2022-11-11"


@pytest.fixture(scope="session")
def session_2022_11_11(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled real 2022-11-11 session, built once per test run."""
    out = tmp_path_factory.mktemp("session") / "2022-11-11.session.gz"
    build_session([INTRADAY_DIR], "2022-11-11", out)
    return out
