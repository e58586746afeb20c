"""Fixtures of the reliability suite (helpers live in ``rel_support``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rel_support import RedisProcess

from aion.store.server import connect


@pytest.fixture()
def redis_proc(tmp_path: Path) -> Iterator[RedisProcess]:
    """A restartable redis-server (AOF everysec) of this test only."""
    rp = RedisProcess(tmp_path / "redis")
    rp.start()
    yield rp
    rp.stop()


@pytest.fixture()
def redis_client_of(redis_proc: RedisProcess) -> Iterator[redis.Redis]:
    c = connect(redis_proc.url)
    yield c
    c.close()
