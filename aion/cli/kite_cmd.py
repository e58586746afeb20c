"""``aion kite ...``: tools for Kite's WebSocket wire format (decode recorded frames)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from pathlib import Path
from typing import Any

import typer

from aion.kite.decode import decode_frame, decode_packet, ticks_to_dicts
from aion.kite.wire import MalformedFrame

kite_app = typer.Typer(
    help="Kite Connect WebSocket wire protocol tools (decode binary frames).",
    no_args_is_help=True,
)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@kite_app.command("decode")
def decode_cmd(
    file: Path = typer.Argument(..., help="File holding one binary frame (or packet body)."),
    base64_text: bool = typer.Option(
        False, "--base64", help="The file holds base64 text instead of raw bytes."
    ),
    body: bool = typer.Option(
        False, "--body", help="The file holds one packet body without the frame header."
    ),
) -> None:
    """Decode one Kite binary message and print each tick as one JSON line.

    Field names are Kite's (last_price, volume_traded, ohlc, depth, ...); prices
    in rupees; last_trade_time/exchange_timestamp as ISO 8601 IST (+05:30).
    A heartbeat prints nothing. Malformed input: one-line error, exit code 1.
    """
    try:
        data = file.read_bytes()
    except OSError as exc:
        typer.echo(f"error: cannot read {file}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    if base64_text:
        try:
            data = base64.b64decode(b"".join(data.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            typer.echo(f"error: {file}: not valid base64 ({exc})", err=True)
            raise typer.Exit(1) from None
    try:
        ticks = decode_packet(data) if body else decode_frame(data)
    except MalformedFrame as exc:
        typer.echo(f"error: {file}: malformed Kite message: {exc}", err=True)
        raise typer.Exit(1) from None
    for tick in ticks_to_dicts(ticks):
        typer.echo(json.dumps(tick, default=_json_default))
