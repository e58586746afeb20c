"""`aion dashboard`'s HTTP edge against a real redis-server (Starlette's TestClient in-process):
the token, malformed parameters, unknown symbols, oversized bodies, and Redis going away and
coming back. Data is written through the store's own writer (RedisStore)."""

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
from starlette.testclient import TestClient

from aion.config import load_config
from aion.dashboard.app import create_app
from aion.queues import BoundedQueue
from aion.store import keys
from aion.store.batch import AlertRecord, StoreBatch
from aion.store.layout import encode_bar
from aion.store.server import _free_port, connect, find_redis_server
from aion.store.writer import RedisStore, TtlSeconds

pytestmark = pytest.mark.integration

DATE = 20221111
SYMBOL = "NSE:HDFCBANK"
TTL = TtlSeconds(bars=86_400, state=86_400, alerts=86_400, runs=86_400)
TOKEN = "not-a-real-token-5f0c"
START = 1668138300  # 2022-11-11 09:15 IST, epoch s


def _seed(url: str) -> None:
    """Two 1-minute bars and one alert of HDFCBANK, written by the store writer."""
    client = connect(url)
    store = RedisStore(client, BoundedQueue("out", 10, "block", 1.0), TTL)
    bars = {
        f"09:{15 + i}": encode_bar(
            {"start": START + 60 * i, "open": 1549.0, "high": 1552.0, "low": 1545.0,
             "close": 1548.3 + i, "volume": 540_451, "oi": 0, "ticks": 4, "segment": "regular"}
        )
        for i in range(2)
    }  # fmt: skip
    alert = AlertRecord(
        DATE,
        f"{(START + 60) * 1000}-0",
        {"symbol": SYMBOL, "pattern": "volume_spike", "direction": "long",
         "bar_time": "2022-11-11T09:15:00+0530", "entry": "1548.30", "stop": "1545.00",
         "target": "1554.90", "quantity": "6", "risk_reward": "2.00", "confidence": "0.91"},
    )  # fmt: skip
    gap = {
        "connection": "main",
        "start_ns": "1668147000000000000",
        "end_ns": "1668147005000000000",
        "duration_s": "5.000",
        "reason": "server closed",
        "attempts": "2",
        "tokens": "32",
    }
    run = {
        "stop_reason": "replayed session complete",
        "ticks": "48167",
        "alerts": "1",
        "queue_drops": "0",
        "alerts_by_pattern": json.dumps({"volume_spike": 1}),
    }
    store.merge(
        StoreBatch(
            bars=[(keys.bars_1m(SYMBOL, DATE), bars)],
            state={keys.gaps(DATE): {"main:1668147000000000000": json.dumps(gap)}},
            alerts=[alert],
            runs=[(DATE, run)],
        )
    )  # fmt: skip
    assert store.flush()
    client.close()


@pytest.fixture()
def seeded(redis_url: str) -> str:
    _seed(redis_url)
    return redis_url


@pytest.fixture()
def client(seeded: str) -> Iterator[TestClient]:
    with TestClient(create_app(load_config(), seeded)) as c:
        yield c


def test_reads_alerts_and_bars(client: TestClient) -> None:
    r = client.get("/api/alerts")
    assert r.status_code == 200
    body = r.json()
    assert body["date"] == "2022-11-11"
    assert [a["symbol"] for a in body["alerts"]] == [SYMBOL]
    r = client.get("/api/instrument", params={"symbol": SYMBOL})
    assert r.status_code == 200
    assert len(r.json()["bars"]) == 2
    assert client.get("/").headers["content-type"].startswith("text/html")


def test_health_is_the_health_report_with_runs_and_gaps(client: TestClient) -> None:
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    names = [c["name"] for c in body["report"]["checks"]]
    assert names[0] == "redis.reachable" and "keys.without_ttl" in names
    assert body["report"]["streams"]["aion:alerts:20221111"]["length"] == 1
    assert body["date"] == "2022-11-11"
    assert [(u["queue_drops"], u["alerts_by_pattern"]) for u in body["runs"]] == [
        (0, {"volume_spike": 1})
    ]
    assert [(g["reason"], g["duration_s"]) for g in body["gaps"]] == [("server closed", "5.000")]


def test_token_required_on_every_request(seeded: str) -> None:
    with TestClient(create_app(load_config(), seeded, token=TOKEN)) as c:
        for path in ("/", "/api/days", "/api/alerts", "/static/app.js", "/api/alerts/stream"):
            r = c.get(path)
            assert r.status_code == 401, path
            assert TOKEN not in r.text
            assert r.json()["error"].startswith("missing or wrong token")
        assert c.get("/api/days", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/days", params={"token": "wrong"}).status_code == 401
        ok = c.get("/api/days", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        assert c.get("/api/days", params={"token": TOKEN}).status_code == 200
        page = c.get("/", params={"token": TOKEN})
        assert page.status_code == 200
        assert TOKEN not in page.text and TOKEN not in ok.text


@pytest.mark.parametrize(
    ("path", "params", "needle"),
    [
        ("/api/alerts", {"date": "2022-02-30"}, "date:"),
        ("/api/alerts", {"date": "yesterday"}, "date:"),
        ("/api/alerts", {"side": "up"}, "side:"),
        ("/api/instrument", {}, "symbol: required"),
        ("/api/instrument", {"symbol": SYMBOL, "tf": "7m"}, "tf:"),
        ("/api/instrument", {"symbol": "NSE:{X}"}, "braces"),
        ("/api/validation", {"date": "20221399"}, "date:"),
    ],
)
def test_malformed_parameters_are_400(
    client: TestClient, path: str, params: dict[str, str], needle: str
) -> None:
    r = client.get(path, params=params)
    assert r.status_code == 400
    assert needle in r.json()["error"]


def test_bad_last_event_id_is_400(client: TestClient) -> None:
    r = client.get("/api/alerts/stream", headers={"Last-Event-ID": "abc"})
    assert r.status_code == 400
    assert "Last-Event-ID" in r.json()["error"]


def test_unknown_symbol_and_route_are_404_json(client: TestClient) -> None:
    r = client.get("/api/instrument", params={"symbol": "NSE:NOSUCH"})
    assert r.status_code == 404
    assert r.json() == {"error": "unknown symbol NSE:NOSUCH: no bars stored on 2022-11-11"}
    r = client.get("/api/nothing")
    assert r.status_code == 404
    assert "error" in r.json()


def test_ten_megabyte_body_is_413(client: TestClient) -> None:
    body = b"x" * (10 * 1024 * 1024)
    r = client.post("/api/days", content=body)
    assert r.status_code == 413
    assert "request body over" in r.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: read up to the limit, then refused
        for _ in range(160):
            yield b"x" * 65_536

    r = client.post("/api/days", content=chunks())
    assert r.status_code == 413


def _redis_on(port: int, folder: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
         "--save", "", "--appendonly", "yes", "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    probe = redis.Redis(port=port, socket_timeout=1.0)
    for _ in range(200):
        try:
            probe.ping()
            break
        except redis.RedisError:
            time.sleep(0.05)
    probe.close()
    return proc


def test_redis_down_is_503_and_recovers(tmp_path: Path) -> None:
    port = _free_port()
    server = _redis_on(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    _seed(url)
    try:
        with TestClient(create_app(load_config(), url)) as c:
            assert c.get("/api/alerts").status_code == 200
            server.terminate()  # SIGTERM: redis-server saves the AOF and exits
            server.wait(10)
            for path in ("/api/alerts", "/api/instrument?symbol=NSE:HDFCBANK", "/api/days"):
                r = c.get(path)
                assert r.status_code == 503, path
                assert r.json()["redis"] is False
                assert r.json()["error"].startswith("Redis unreachable")
            h = c.get("/api/health")
            assert h.status_code == 200
            assert h.json()["report"]["status"] == "down"
            server = _redis_on(port, tmp_path)  # back on the same data (AOF)
            r = c.get("/api/alerts")
            assert r.status_code == 200
            assert len(r.json()["alerts"]) == 1
    finally:
        server.terminate()
        server.wait(10)


def test_cli_refuses_to_bind_beyond_loopback_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("AION_DASHBOARD_TOKEN", "REDIS_URL")}
    env["AION_DATA_DIR"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "dashboard", "--host", "0.0.0.0", "--port", "8050"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "needs a token" in lines[0] and "AION_DASHBOARD_TOKEN" in lines[0]
