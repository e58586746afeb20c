"""Session fixtures shared by unit and integration tests.

The shipped ``config/patterns.yaml`` runs no pattern (none has shown an edge over random
entries yet, README Evidence); the suite tests every detector and the alert path, so it runs
every entry, as ``aion scan --patterns all`` does: ``AION_PATTERNS=all`` for this process and
the scans it starts (a test of the shipped selection sets it back itself).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aion.config import PATTERNS_ENV
from aion.replay.builder import build_session

os.environ[PATTERNS_ENV] = "all"

DATA = Path(__file__).resolve().parent.parent / "aion" / "data"
INTRADAY_DIR = DATA / "intraday_1min_2022-11-11"


@pytest.fixture(scope="session")
def session_2022_11_11(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled real 2022-11-11 session, built once per test run."""
    out = tmp_path_factory.mktemp("session") / "2022-11-11.session.gz"
    build_session([INTRADAY_DIR], "2022-11-11", out)
    return out
