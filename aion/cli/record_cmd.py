"""``aion record --duration S --out FILE``: capture a live (or replay) feed into a session file.

Every binary frame the feed receives (heartbeats excluded) is written untouched with its
receive time (wall clock, epoch ns) in the session format of :mod:`aion.replay.session_file`,
which the replay server serves: a recorded day can be replayed bit for bit later
(``aion scan --replay FILE`` or ``aion replay serve FILE``). The header carries the trading
date (IST, from the first exchange timestamp received), the instrument rows and the mode of
every subscribed token. Connections, credentials and universe are the scan's own (<= 3
connections x 3000 tokens, watchdog, reconnect with backoff).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from aion.config import ConfigError, load_config
from aion.feed.client import FeedClient
from aion.kite.decode import decode_frame
from aion.kite.wire import MODE_NAMES, MalformedFrame
from aion.market.time import session_date
from aion.queues import BoundedQueue
from aion.replay.server import SESSION_COMPLETE_MESSAGE
from aion.replay.session_file import SessionWriter

_COMPLETE_DATA = json.loads(SESSION_COMPLETE_MESSAGE)["data"]


def _trading_date(frame: bytes, recv_ns: int) -> str:
    """IST trading date of a frame: its latest exchange timestamp, else the receive time."""
    try:
        ts = int(decode_frame(frame)["exchange_timestamp"].max(initial=0))
    except MalformedFrame:
        ts = 0
    d = session_date(ts or recv_ns // 1_000_000_000)
    return f"{d // 10_000:04d}-{d // 100 % 100:02d}-{d % 100:02d}"


def record(
    duration: Annotated[float, typer.Option(help="seconds to record (wall clock)")],
    out: Annotated[Path, typer.Option(help="session file to write (.gz: compressed)")],
    ws_url: Annotated[
        str | None, typer.Option(help="record this Kite-protocol server instead of Kite")
    ] = None,
    symbols: Annotated[
        str | None, typer.Option(help="comma-separated symbols (default: the configured universe)")
    ] = None,
    instruments: Annotated[
        list[Path] | None, typer.Option(help="extra instrument CSV or session file (repeatable)")
    ] = None,
    config_dir: Annotated[
        Path | None, typer.Option("--config", help="folder holding aion.yaml")
    ] = None,
) -> None:
    """Record raw frames with receive timestamps into a session file the replay server serves."""
    from aion.app import ScanError, Scanner, ScanOptions

    err = Console(stderr=True)
    if not duration > 0:
        raise typer.BadParameter("--duration must be > 0 seconds")
    try:
        cfg = load_config(config_dir)
        opts = ScanOptions(
            ws_url=ws_url,
            symbols=[s.strip() for s in symbols.split(",") if s.strip()] if symbols else [],
            instruments=list(instruments or []),
        )
        plan = Scanner(cfg, opts, config_dir)  # credentials, master, universe, shards only
    except (ConfigError, ScanError, ValueError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    sink: BoundedQueue[Any] = BoundedQueue("record", 200_000, "block", 30.0)
    complete = threading.Event()

    def on_text(msg: dict) -> None:
        if msg.get("type") == "message" and msg.get("data") == _COMPLETE_DATA:
            complete.set()

    kc = cfg.kite
    feeds = [
        FeedClient(
            ws_url or kc.ws_url,
            plan.api_key,
            plan.access_token,
            modes,
            sink,
            name=f"conn{i}",
            on_text=on_text,
            max_backoff_s=kc.backoff_cap_s,
            base_backoff_s=kc.backoff_initial_s,
            stale_after_s=kc.watchdog_s,
            ping_interval_s=kc.ping_interval_s,
        )
        for i, modes in enumerate(plan.shards)
    ]
    header: dict[str, Any] = {
        "description": "recorded by aion record: raw Kite frames as received",
        "instruments": [inst.to_row() for inst in plan.universe.values()],
        "modes": {str(t): MODE_NAMES[m] for t, m in plan.modes.items()},
        "tick_timing": "receive time (wall clock) of each WebSocket message",
        "source": "Kite" if ws_url is None else "a Kite-protocol server",
    }
    writer: SessionWriter | None = None
    last_ns = 0
    deadline = time.monotonic() + duration
    for f in feeds:
        f.start()
    try:
        while True:
            try:
                recv_ns, _conn, frame = sink.get(timeout=0.1)
            except queue.Empty:
                if complete.is_set() or time.monotonic() >= deadline:
                    break
                if any(f.stats.fatal_error for f in feeds):
                    break
                continue
            if writer is None:
                header["date"] = _trading_date(frame, recv_ns)
                header["start_ns"] = recv_ns
                out.parent.mkdir(parents=True, exist_ok=True)
                writer = SessionWriter(out, header)
            last_ns = max(last_ns, recv_ns)  # feeds on several threads: keep time order
            writer.write(last_ns, frame)
    except KeyboardInterrupt:
        pass
    finally:
        for f in feeds:
            f.stop()
        while writer is not None and not sink.empty():
            recv_ns, _conn, frame = sink.get(timeout=0)
            last_ns = max(last_ns, recv_ns)
            writer.write(last_ns, frame)
        if writer is not None:
            writer.close()
    fatal = [f.stats.fatal_error for f in feeds if f.stats.fatal_error]
    if fatal:
        err.print(f"[red]error:[/red] {fatal[0]}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    if writer is None:
        err.print("[red]error:[/red] no frame received; nothing recorded", highlight=False)
        raise typer.Exit(1)
    Console().print(f"recorded {writer.records} frames to {out}", highlight=False)
