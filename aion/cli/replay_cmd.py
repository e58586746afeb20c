"""``aion replay serve FILE``: serve a recorded session on a loopback Kite-protocol WebSocket."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import typer
from rich.console import Console

replay_app = typer.Typer(
    help="Replay a recorded session over a Kite-protocol WebSocket on 127.0.0.1.",
    no_args_is_help=True,
)


@replay_app.callback()
def _replay() -> None:
    """Replay a recorded session over a Kite-protocol WebSocket on 127.0.0.1."""


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _parse_speed(text: str) -> float | None:
    if text.strip().lower() in ("max", "inf", "none"):
        return None
    try:
        speed = float(text.rstrip("xX"))
    except ValueError:
        raise typer.BadParameter(f"--speed must be 'max' or a number > 0, got {text!r}") from None
    if not speed > 0:
        raise typer.BadParameter(f"--speed must be 'max' or a number > 0, got {text!r}")
    return speed


@replay_app.command("serve")
def serve(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="session file (.aion[.gz])"),
    port: int = typer.Option(8765, "--port", "-p", help="TCP port (0 picks a free one)"),
    speed: str = typer.Option("1", "--speed", help="'max' (as fast as read) or N x real time"),
    host: str = typer.Option("127.0.0.1", "--host", help="interface to bind"),
    wait_for_client: bool = typer.Option(
        False, "--wait-for-client", help="start the session clock at the first subscription"
    ),
    start_clients: int = typer.Option(
        1,
        "--start-clients",
        min=1,
        help="with --wait-for-client: start when this many clients subscribed (a scanner's "
        "connections), each then gets the session from its first frame",
    ),
    status_every: float = typer.Option(5.0, "--status-every", help="seconds between status lines"),
) -> None:
    """Serve FILE until Ctrl-C; connect with any api_key/access_token (both non-empty)."""
    from aion.market.time import to_ist
    from aion.replay.server import ReplayServer
    from aion.replay.session_file import open_session

    console = Console()
    spd = _parse_speed(speed)
    session = open_session(file)  # frames stay on disk, read as they are sent
    server = ReplayServer(
        session,
        host=host,
        port=port,
        speed=spd,
        wait_for_client=wait_for_client,
        start_clients=start_clients,
    )
    server.start()
    signal.signal(signal.SIGTERM, _raise_interrupt)  # stop on SIGTERM like on Ctrl-C
    console.print(
        f"replaying {file.name} ({len(session.frames)} frames, date {session.header.get('date')}) "
        f"at speed {'max' if spd is None else spd} on [bold]{server.url}[/bold]  (Ctrl-C to stop)"
    )
    try:
        while True:
            time.sleep(status_every)
            st = server.stats
            now = server.session_time_ns()
            clock = "-" if now is None else to_ist(now / 1e9).strftime("%H:%M:%S")
            console.print(
                f"clients {st.clients}  frames {st.frames_sent}  "
                f"MB {st.bytes_sent / 1e6:.1f}  session time {clock} IST"
            )
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        console.print(f"stopped: {server.stats.frames_sent} frames sent")
