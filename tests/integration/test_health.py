"""`aion health` exit codes against a real redis-server: up, up-but-degraded, stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from aion.store import keys
from aion.store.server import PrivateRedis

DAY_S = 86_400


def run_health(env_extra: dict[str, str], *args: str) -> tuple[int, dict, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AION_CONFIG_DIR")}
    env.update(env_extra)
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "health", "--json", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    report = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    return proc.returncode, report, proc.stderr


def seed_healthy(client: redis.Redis) -> None:
    """What a scan leaves behind: keys with TTLs, a bounded stream, a fresh feed hash."""
    client.hset(keys.tick("NSE:SBIN"), mapping={"last_price": "600.5", "volume_traded": "10"})
    client.expire(keys.tick("NSE:SBIN"), 2 * DAY_S)
    client.hset(keys.bars_1m("NSE:SBIN", 20221111), "09:15", "{}")
    client.expire(keys.bars_1m("NSE:SBIN", 20221111), 8 * DAY_S)
    client.xadd(keys.alerts(20221111), {"symbol": "NSE:SBIN"}, maxlen=100_000, approximate=True)
    client.expire(keys.alerts(20221111), 8 * DAY_S)
    client.hset(keys.feed("main"), mapping={"last_frame_wall": f"{time.time():.3f}", "frames": "5"})
    client.expire(keys.feed("main"), 2 * DAY_S)


@pytest.fixture()
def env(redis_url: str, data_dir: Path) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "AION_DATA_DIR": str(data_dir)}


def _status(report: dict, name: str) -> str:
    return next(c["status"] for c in report["checks"] if c["name"] == name)


def test_healthy_redis_exits_0(env: dict[str, str], redis_client: redis.Redis) -> None:
    seed_healthy(redis_client)
    code, report, err = run_health(env)
    assert code == 0, (report, err)
    assert report["status"] == "ok"
    assert report["redis"]["reachable"] is True
    assert report["redis"]["version"] == redis_client.info()["redis_version"]
    counts = report["keys_per_namespace"]
    assert counts["tick"] == 1 and counts["bars"] == 1 and counts["alerts"] == 1
    assert counts["feed"] == 1
    assert report["keys_without_ttl"]["count"] == 0
    stream = report["streams"][keys.alerts(20221111)]
    assert stream == {"length": 1, "maxlen": 100_000}
    age = report["feeds"]["main"]["age_s"]
    assert 0 <= age < 60
    assert report["archive"]["free_bytes"] > 0


def test_key_without_ttl_is_degraded(env: dict[str, str], redis_client: redis.Redis) -> None:
    seed_healthy(redis_client)
    redis_client.hset(keys.tick("NSE:INFY"), "last_price", "1500")  # no EXPIRE
    code, report, _ = run_health(env)
    assert code == 1
    assert report["status"] == "degraded"
    assert report["keys_without_ttl"] == {"count": 1, "sample": [keys.tick("NSE:INFY")]}
    assert _status(report, "keys.without_ttl") == "degraded"


@pytest.fixture()
def restore_memory_config(redis_client: redis.Redis) -> Iterator[None]:
    before = redis_client.config_get("maxmemory*")
    yield
    redis_client.config_set("maxmemory", before["maxmemory"])
    redis_client.config_set("maxmemory-policy", before["maxmemory-policy"])


def test_maxmemory_near_full_is_degraded(
    env: dict[str, str], redis_client: redis.Redis, restore_memory_config: None
) -> None:
    seed_healthy(redis_client)
    used = int(redis_client.info("memory")["used_memory"])
    # 95% full by Redis' own accounting; the degraded threshold is 90% (config/aion.yaml)
    redis_client.config_set("maxmemory", str(int(used / 0.95)))
    redis_client.config_set("maxmemory-policy", "noeviction")
    code, report, _ = run_health(env)
    assert code == 1, report
    assert _status(report, "redis.memory") == "degraded"
    assert _status(report, "redis.eviction_policy") == "ok"
    assert report["redis"]["maxmemory_bytes"] == int(used / 0.95)


def test_evicting_policy_with_maxmemory_is_degraded(
    env: dict[str, str], redis_client: redis.Redis, restore_memory_config: None
) -> None:
    seed_healthy(redis_client)
    redis_client.config_set("maxmemory", str(1 << 30))  # plenty of room
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    code, report, _ = run_health(env)
    assert code == 1
    assert _status(report, "redis.memory") == "ok"
    assert _status(report, "redis.eviction_policy") == "degraded"


def test_stopped_redis_exits_2(tmp_path: Path) -> None:
    server = PrivateRedis(tmp_path / "own")
    url = server.start()
    assert redis.Redis.from_url(url).ping()
    server.stop()
    code, report, _ = run_health({"REDIS_URL": url, "AION_DATA_DIR": str(tmp_path / "d")})
    assert code == 2
    assert report["status"] == "down"
    assert report["redis"]["reachable"] is False
    assert "Connection" in report["redis"]["error"]


def test_misconfigured_exits_2_with_one_line(tmp_path: Path, redis_url: str) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "aion.yaml").write_text("health:\n  memory_degraded_fraction: 1.5\n")
    code, report, err = run_health({"REDIS_URL": redis_url}, "--config", str(cfg))
    assert code == 2 and report == {}
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "health.memory_degraded_fraction" in lines[0]
