"""``aion session build``: build a replayable session file from real vendor 1-minute bars.

The rules (tick path inside each minute, pre-open snapshot, vendor name -> instrument, tokens)
are documented in :mod:`aion.replay.builder`.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

session_app = typer.Typer(
    help="Build and inspect session files (timestamped Kite binary frames).",
    no_args_is_help=True,
)


@session_app.command("build")
def build(
    bars: list[Path] = typer.Option(
        ...,
        "--bars",
        help="vendor 1-minute file (.txt/.txt.gz) or directory of them; repeat --bars, or list "
        "further paths after the options",
    ),
    date: str = typer.Option(..., "--date", help="trading date YYYY-MM-DD (IST)"),
    out: Path = typer.Option(..., "--out", "-o", help="session file to write (.gz -> gzip)"),
    nifty_1s: Path | None = typer.Option(
        None, "--nifty-1s", help="per-second NIFTY 50 file (YYYY-MM-DD HH:MM:SS,value)"
    ),
    instruments: list[Path] = typer.Option(
        [], "--instruments", help="extra Kite instruments CSV merged over the bundled master"
    ),
    option_chain: int = typer.Option(
        0,
        "--option-chain",
        min=0,
        help="add a DERIVED NIFTY/BANKNIFTY near-month option chain: N strikes each side of the "
        "opening ATM, Black-Scholes priced from the index bars with INDIA VIX as volatility "
        "(synthesised volume/OI; labelled 'derived' in the header)",
    ),
    ticks_per_minute: int = typer.Option(
        4,
        "--ticks-per-minute",
        min=4,
        max=600,
        help="ticks per regular 1-minute bar: 4 (open, extremes, close) or Kite's full-mode "
        "density, 60-120 (1-2 ticks/s), on a linear path through the bar's OHLC",
    ),
    replicate: int = typer.Option(
        0,
        "--replicate",
        min=0,
        help="scale to N instruments (<= 9000): copies of the real equities under new tokens "
        "with deterministic price/volume factors (aion.replay.replicate)",
    ),
    window: str | None = typer.Option(
        None, "--window", help="with --replicate: keep only HH:MM-HH:MM IST, e.g. 09:15-10:15"
    ),
    more_bars: list[Path] = typer.Argument(
        None, help="more bar files/directories", metavar="[PATH]..."
    ),
) -> None:
    """Build the session of --date from vendor bars into --out and print a summary."""
    from aion.replay.builder import build_session

    console = Console()
    paths = [*bars, *(more_bars or [])]
    try:
        res = build_session(
            paths,
            date,
            out,
            nifty_1s=nifty_1s,
            instruments=list(instruments or []),
            option_chain=option_chain,
            ticks_per_minute=ticks_per_minute,
        )
    except (ValueError, KeyError, OSError) as exc:
        console.print(f"[red]session build failed:[/red] {exc}")
        raise typer.Exit(1) from None
    if replicate:
        from aion.replay.replicate import replicate_file

        try:
            rep = replicate_file(out, replicate, window)
        except (ValueError, OSError) as exc:
            console.print(f"[red]session build failed:[/red] {exc}")
            raise typer.Exit(1) from None
        console.print(
            f"replicated to {rep.instruments:,} instruments ({rep.copies:,} copies): "
            f"{rep.frames:,} frames, {rep.ticks:,} ticks, {rep.bytes:,} bytes -> {rep.path}"
        )
        return

    table = Table(title=f"session {res.date.isoformat()} -> {res.path}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("instruments", str(len(res.instruments)))
    table.add_row("frames", f"{res.frames:,}")
    table.add_row("ticks", f"{res.ticks:,}")
    table.add_row("first frame", _ist(res.first_ns))
    table.add_row("last frame", _ist(res.last_ns))
    table.add_row("file size", f"{res.bytes:,} bytes")
    table.add_row("synthesised tokens", ", ".join(res.synthesised) or "-")
    table.add_row("previous close", f"{len(res.prev_close)} of {len(res.instruments)} instruments")
    console.print(table)
    syms = Table(title="instruments", show_lines=False)
    for col in ("vendor", "symbol", "token", "type", "expiry", "lot"):
        syms.add_column(col)
    for inst in res.instruments:
        syms.add_row(
            res.vendor_symbols[inst.instrument_token],
            inst.symbol,
            str(inst.instrument_token),
            "INDEX" if inst.is_index else inst.instrument_type,
            inst.expiry.isoformat() if inst.expiry else "",
            str(inst.lot_size),
        )
    console.print(syms)


def _ist(ns: int) -> str:
    from aion.market.time import to_ist

    return to_ist(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S IST")
