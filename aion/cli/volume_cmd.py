"""``aion rvol``: print the stored per-minute volume statistics of one instrument from Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from aion.cli.context import fail
from aion.cli.output import print_table
from aion.config import ConfigError, load_config
from aion.market.time import parse_date, ymd
from aion.store import keys
from aion.store.layout import minute_labels
from aion.store.queries import read_hash
from aion.store.server import PrivateRedis, RedisUnavailable, connect

_COLUMNS = ["time", "volume", "cum_volume", "expected_cum", "rvol_cum", "expected_bar",
            "rvol_bar", "vix", "regime", "multiplier", "poc"]  # fmt: skip


def as_of_field(hhmm: str) -> str:
    """The bar field holding the state *at* IST ``HH:MM``: the bar that ended then (``HH:MM-1``).

    Raises:
        ValueError: ``hhmm`` is not an IST time HH:MM.
    """
    try:
        hh, mm = (int(x) for x in hhmm.split(":"))
    except ValueError:
        raise ValueError(f"bad time {hhmm!r}: expected HH:MM (IST)") from None
    if not (0 <= hh < 24 and 0 <= mm < 60):
        raise ValueError(f"bad time {hhmm!r}: expected HH:MM (IST)")
    return minute_labels()[(hh * 60 + mm - 1) % 1440]


def rvol(
    symbol: Annotated[str, typer.Option(help="e.g. NSE:HDFCBANK")],
    date: Annotated[str, typer.Option(help="trading date YYYY-MM-DD")],
    time: Annotated[
        str | None,
        typer.Option(help="IST HH:MM: the statistics after the bar ending then (default: all)"),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON lines")] = False,
    config_dir: Annotated[
        Path | None, typer.Option("--config", help="folder holding aion.yaml")
    ] = None,
) -> None:
    """Print cumulative and bar RVOL, expected volumes, VIX regime and POC per minute."""
    try:
        cfg = load_config(config_dir)
        d = parse_date(date)
        field = as_of_field(time) if time else None
    except (ConfigError, ValueError) as exc:
        fail(str(exc))
        return
    day_ymd = ymd(d)
    private = None
    try:
        url = cfg.redis.url
        if url is None:
            private = PrivateRedis(cfg.data_dir())
            url = private.start()
        client = connect(url)
        try:
            stored = read_hash(client, keys.rvol(symbol, day_ymd))
        finally:
            client.close()
    except RedisUnavailable as exc:
        fail(str(exc))
        return
    finally:
        if private is not None:
            private.stop()
    rows = [{"time": k, **json.loads(v)} for k, v in sorted(stored.items())]
    if field is not None:
        rows = [r for r in rows if r["time"] == field]
    if not rows:
        fail(f"no RVOL stored for {symbol} on {day_ymd}{' at ' + time if time else ''}", 1)
    if json_out:
        for r in rows:
            print(json.dumps(r, sort_keys=True))
        return
    print_table(
        f"{symbol} volume statistics {day_ymd} (IST bar start; cumulative after the bar; "
        "volumes in shares, prices in rupees)",
        _COLUMNS,
        [
            [
                f"{r.get(c):.4g}" if isinstance(r.get(c), float) else str(r.get(c, ""))
                for c in _COLUMNS
            ]
            for r in rows
        ],
        right=_COLUMNS,
    )
