"""``aion session build``: build a replayable session file from real vendor 1-minute bars.

The rules (tick path inside each minute, pre-open snapshot, vendor name -> instrument, tokens)
are documented in :mod:`aion.replay.builder`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from aion.cli.output import err, print_line, print_pairs, print_table

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
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="also list every instrument (vendor name, token, lot)"
    ),
) -> None:
    """Build the session of --date from vendor bars into --out and print one summary line."""
    from aion.replay.builder import build_session

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
        err.print(f"[red]session build failed:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    if replicate:
        from aion.replay.replicate import replicate_file

        try:
            rep = replicate_file(out, replicate, window)
        except (ValueError, OSError) as exc:
            err.print(f"[red]session build failed:[/red] {exc}", soft_wrap=True)
            raise typer.Exit(1) from None
        print_line(
            f"replicated to {rep.instruments:,} instruments ({rep.copies:,} copies): "
            f"{rep.frames:,} frames, {rep.ticks:,} ticks, {rep.bytes:,} bytes -> {rep.path}"
        )
        return

    n = len(res.instruments)
    print_line(
        f"session {res.date.isoformat()} -> {res.path}: {n} instruments, {res.frames:,} frames, "
        f"{res.ticks:,} ticks, {_ist(res.first_ns)} to {_ist(res.last_ns)}, {res.bytes:,} bytes"
    )
    if not verbose:
        return
    if res.synthesised:
        print_line(
            f"  {len(res.synthesised)} instruments not in the bundled Kite instrument master (2022 "
            "futures, equities renamed since) got deterministic tokens: "
            + ", ".join(res.synthesised)
        )
    if len(res.prev_close) < n:
        print_line(
            f"  previous close known for {len(res.prev_close)} of {n} instruments (the bars "
            "hold no earlier session for the others; their Kite 'close' field is 0)"
        )
    print_pairs(
        "session",
        [
            ("file", str(res.path)),
            ("first frame", _ist(res.first_ns)),
            ("last frame", _ist(res.last_ns)),
            ("file size", f"{res.bytes:,} bytes"),
        ],
    )
    print_table(
        "instruments (lot: contract size in units; indices have none)",
        ["vendor", "symbol", "token", "type", "expiry", "lot"],
        [
            [
                res.vendor_symbols[inst.instrument_token],
                inst.symbol,
                str(inst.instrument_token),
                "INDEX" if inst.is_index else inst.instrument_type,
                inst.expiry.isoformat() if inst.expiry else "",
                "-" if inst.is_index else str(inst.lot_size),
            ]
            for inst in res.instruments
        ],
        right=["token", "lot"],
    )


def _ist(ns: int) -> str:
    from aion.market.time import to_ist

    return to_ist(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S IST")
