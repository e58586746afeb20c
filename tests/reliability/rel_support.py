"""Helpers of the reliability suite: restartable real redis-servers, `aion scan`
subprocesses, the vendor reference volumes of the bundled real 2022-11-11 session."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from aion.store.server import find_redis_server

INTRADAY_DIR = Path(__file__).resolve().parents[2] / "aion" / "data" / "intraday_1min_2022-11-11"


def scan_env(**extra: str) -> dict[str, str]:
    """The environment of an ``aion scan`` subprocess: no inherited secrets or endpoints."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "KITE_API_KEY", "KITE_ACCESS_TOKEN", "AION_CONFIG_DIR")
    }
    env.update(extra)
    return env


def aion_cmd(*args: str) -> list[str]:
    """``python -m aion ARGS`` with this interpreter."""
    return [sys.executable, "-m", "aion", *args]


def vendor_day_volume() -> dict[str, int]:
    """Vendor file stem -> total volume of 2022-11-11 (every row of the day: the reference a
    scan that saw the whole session must reproduce exactly, bar volumes summed)."""
    out: dict[str, int] = {}
    for f in sorted(INTRADAY_DIR.glob("*.txt.gz")):
        with gzip.open(f, "rt") as fh:
            out[f.name.split(".")[0]] = sum(
                int(line.split(",")[7]) for line in fh if line.split(",")[1] == "20221111"
            )
    return out


class RedisProcess:
    """A redis-server on a fixed loopback port and data folder that a test can stop and start
    again (same port, same AOF), unlike the shared fixture. ``extra`` adds server arguments."""

    def __init__(self, data_dir: Path, extra: list[str] | None = None, exe: str | None = None):
        self.dir = data_dir.resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.extra = extra or []
        self.exe = exe or find_redis_server()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, wait_url: str | None = None, **client_kw: object) -> None:
        args = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                "--logfile", str(self.dir / "redis.log"), *self.extra]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                if wait_url:
                    c = redis.Redis.from_url(wait_url, socket_timeout=1.0, **client_kw)  # type: ignore[arg-type]
                else:
                    c = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0)
                c.ping()
                c.close()
                return
            except redis.AuthenticationError:
                return
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.dir / "redis.log").read_text()) from None
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: redis-server fsyncs the AOF and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
