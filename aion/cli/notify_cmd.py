"""``aion notify``: send each of the day's alerts to Telegram chats and webhooks, once.

Redis is found like ``aion dashboard``: ``REDIS_URL`` (``redis.url``) if set, else aion's own
redis-server on the data folder, reused when a scan runs and started on the stored data when
not. Runs until SIGTERM or Ctrl-C (the request in flight finishes first), then prints its
summary. :mod:`aion.notify.notifier` documents what is delivered when.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from aion.cli.context import command_config, fail, redis_for_reading
from aion.cli.output import print_json, print_pairs


def notify(
    date: Annotated[
        str | None,
        typer.Option(help="IST trading date YYYY-MM-DD to notify (default: today, followed)"),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    config_dir: Annotated[
        Path | None,
        typer.Option("--config", help="folder holding aion.yaml and patterns.yaml"),
    ] = None,
) -> None:
    """Notify Telegram chats and webhooks of every alert of the day (notify: in aion.yaml).

    Each alert is sent once per destination, across restarts; the summary counts what was
    sent, failed for good, capped and filtered.
    """
    from aion.kite.credentials import CredentialsError
    from aion.market.time import parse_date, ymd
    from aion.notify.notifier import Notifier, load_bot_token
    from aion.patterns.registry import known_detectors
    from aion.store.server import RedisUnavailable

    cfg = command_config(config_dir)
    nc = cfg.notify
    if not nc.enabled:
        fail("notify.enabled is false in aion.yaml: set it (and notify.telegram or webhooks)")
    known = known_detectors()
    for i, p in enumerate(nc.patterns):
        if p not in known:
            fail(
                f"notify.patterns[{i}]: {p!r} is not a detector (known: {', '.join(sorted(known))})"
            )
    day = None
    if date is not None:
        try:
            day = ymd(parse_date(date))
        except ValueError as exc:
            fail(f"--date: {exc}")
    try:
        token = load_bot_token(cfg.kite.secrets_file) if nc.telegram.enabled else None
    except CredentialsError as exc:
        fail(str(exc))
        return
    try:
        client, pr = redis_for_reading(cfg)
    except RedisUnavailable as exc:
        fail(str(exc))
        return
    try:
        try:
            notifier = Notifier(nc, client, token, cfg.redis.ttl_days.alerts * 86_400, day)
        except CredentialsError as exc:
            fail(str(exc))
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _s, _f: notifier.stop())
        stats = notifier.run()
    finally:
        client.close()
        if pr is not None:
            pr.stop()
    if json_out:
        print_json(stats.values())
    else:
        print_pairs("notify summary", [(k, str(v)) for k, v in stats.values().items()])
