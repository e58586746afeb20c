"""What every ``aion`` command needs: the one-line failure exit, the validated config (with
the global logging options applied) and a Redis connection for reading.

The command modules (:mod:`aion.cli.main` and the ``*_cmd`` modules it registers) import
these from here, never from :mod:`aion.cli.main` (which imports them all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aion.cli.output import err
from aion.config import AionConfig, ConfigError, load_config

ConfigDir = Annotated[
    Path | None,
    typer.Option("--config", help="folder holding aion.yaml and patterns.yaml (default ./config)"),
]
"""The ``--config`` option every command that reads the config takes."""

LOG_FLAGS: dict[str, Any] = {"json_format": None, "level": None}
"""The global ``--log-json``/``--log-level`` options (set by the ``aion`` callback) for
:func:`command_config`'s :func:`aion.ops.logging.configure_logging` call."""


def fail(line: str, code: int = 2) -> None:
    """Print ``error: line`` on stderr and exit with ``code`` (2: bad usage or config)."""
    err.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def command_config(config_dir: Path | None) -> AionConfig:
    """The validated ``aion.yaml`` of ``config_dir`` (default ``./config``) with logging
    configured from it and :data:`LOG_FLAGS`; a bad config or ``--log-level`` exits 2 with
    one line naming it."""
    from aion.ops.logging import configure_logging

    try:
        cfg = load_config(config_dir)
    except ConfigError as exc:
        fail(str(exc))
        raise AssertionError from exc  # unreachable
    if LOG_FLAGS["level"] not in (None, "DEBUG", "INFO", "WARNING", "ERROR"):
        fail(f"--log-level: {LOG_FLAGS['level']!r} is not one of DEBUG, INFO, WARNING, ERROR")
    configure_logging(cfg, **LOG_FLAGS)
    return cfg


def redis_for_reading(cfg: AionConfig) -> tuple[Any, Any]:
    """``(client, private_server)``: a redis-py client on ``REDIS_URL``/``redis.url`` (server
    None), else on aion's private redis-server under the data folder, started here (stop it
    when done). Raises :class:`aion.store.server.RedisUnavailable`."""
    from aion.store.server import PrivateRedis, connect

    if cfg.redis.url:
        return connect(cfg.redis.url, cfg.redis.tls), None
    pr = PrivateRedis(cfg.data_dir())
    return connect(pr.start()), pr
