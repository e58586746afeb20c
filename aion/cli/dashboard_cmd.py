"""``aion dashboard``: serve the read-only web dashboard on aion's Redis.

Redis is found like ``aion bars``: ``REDIS_URL`` (``redis.url``) if set, else aion's own
redis-server on the data folder (``AION_DATA_DIR``), reused when a scan is running and started
on the stored data when not (and stopped again on exit). The app is
:func:`aion.dashboard.app.create_app` on uvicorn.
"""

from __future__ import annotations

import ipaddress
import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from aion.cli.context import command_config, fail, redis_for_reading
from aion.cli.output import console

TOKEN_ENV = "AION_DASHBOARD_TOKEN"


def is_loopback(host: str) -> bool:
    """Whether ``host`` binds only the local machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def dashboard(
    host: Annotated[
        str | None, typer.Option(help="bind address (default dashboard.host, 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="TCP port (default dashboard.port, 8050)")
    ] = None,
    config_dir: Annotated[
        Path | None,
        typer.Option("--config", help="folder holding aion.yaml and patterns.yaml"),
    ] = None,
) -> None:
    """Serve the read-only dashboard (alerts, instrument, validation, health) on Redis.

    Binding anything but loopback requires dashboard.auth_token or AION_DASHBOARD_TOKEN;
    with a token every request must send it (Authorization: Bearer, or ?token=).
    """
    import uvicorn

    from aion.dashboard.app import create_app
    from aion.store.server import RedisUnavailable, redacted_url

    cfg = command_config(config_dir)
    bind = host or cfg.dashboard.host
    bind_port = port if port is not None else cfg.dashboard.port
    if not 0 < bind_port < 65536:
        fail(f"--port: {bind_port} must be in 1..65535")
    token = os.environ.get(TOKEN_ENV) or cfg.dashboard.auth_token
    if not is_loopback(bind) and not token:
        fail(
            f"dashboard: binding {bind} (not loopback) needs a token: set dashboard.auth_token "
            f"or {TOKEN_ENV}"
        )
    try:
        client, pr = redis_for_reading(cfg)
    except RedisUnavailable as exc:
        fail(str(exc))
        return
    url = cfg.redis.url or (pr.url if pr is not None else "")
    client.close()
    try:
        app = create_app(cfg, url, token)
        auth = "token required" if token else "no token (loopback)"
        console.print(
            f"aion dashboard on http://{bind}:{bind_port}/ ({auth}; reading {redacted_url(url)})",
            highlight=False,
            soft_wrap=True,
        )
        # uvicorn re-raises SIGTERM after its graceful shutdown; exiting through SystemExit
        # instead lets the private redis-server below be stopped
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        # no access log: a ?token= query string must never reach a log line
        uvicorn.run(app, host=bind, port=bind_port, access_log=False, log_level="warning")
    finally:
        if pr is not None:
            pr.stop()
