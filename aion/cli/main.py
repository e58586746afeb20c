"""The ``aion`` command line (typer + rich)."""

from __future__ import annotations

import csv
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live

from aion.app import ScanError, Scanner, ScanOptions, install_signal_handlers, resolve_credentials
from aion.cli.context import LOG_FLAGS, ConfigDir, command_config, fail, redis_for_reading
from aion.cli.dashboard_cmd import dashboard
from aion.cli.evaluate_cmd import evaluate
from aion.cli.kite_cmd import kite_app
from aion.cli.notify_cmd import notify
from aion.cli.output import (
    console,
    on_terminal,
    print_json,
    print_line,
    print_pairs,
    print_table,
)
from aion.cli.premarket_cmd import premarket_app
from aion.cli.record_cmd import record
from aion.cli.replay_cmd import replay_app
from aion.cli.session_cmd import session_app
from aion.cli.validate_cmd import validate
from aion.cli.volume_cmd import rvol
from aion.config import ConfigError
from aion.market.time import parse_date, ymd
from aion.ops.logging import log_event
from aion.store.server import RedisUnavailable

app = typer.Typer(
    help="aion: intraday NSE scanner on Kite Connect ticks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(kite_app, name="kite")
app.add_typer(session_app, name="session")
app.add_typer(replay_app, name="replay")
app.add_typer(premarket_app, name="premarket")
app.command("rvol")(rvol)
app.command("validate")(validate)
app.command("evaluate")(evaluate)
app.command("record")(record)
app.command("dashboard")(dashboard)
app.command("notify")(notify)

_log = logging.getLogger("aion.cli")


@app.callback()
def _global_options(
    log_json: Annotated[
        bool, typer.Option("--log-json", help="log one JSON object per line (default: text)")
    ] = False,
    log_level: Annotated[
        str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR (default: config)")
    ] = None,
) -> None:
    """aion: intraday NSE scanner on Kite Connect ticks."""
    LOG_FLAGS.update(json_format=True if log_json else None, level=log_level)


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        v = float(text.rstrip("x"))
    except ValueError:
        v = -1.0
    if v <= 0:
        raise typer.BadParameter("use 'max' or a positive number such as 1 or 20")
    return v


@app.command()
def scan(
    replay: Annotated[
        Path | None, typer.Option(help="replay this session file through a loopback server")
    ] = None,
    ws_url: Annotated[
        str | None, typer.Option(help="connect to this Kite-protocol server instead of Kite")
    ] = None,
    speed: Annotated[str, typer.Option(help="replay speed: max or N (x real time)")] = "max",
    duration: Annotated[
        float | None, typer.Option(help="stop after this many seconds (default: session end)")
    ] = None,
    symbols: Annotated[
        str | None, typer.Option(help="comma-separated symbols, e.g. NSE:HDFCBANK,NSE:SBIN")
    ] = None,
    instruments: Annotated[
        list[Path] | None, typer.Option(help="extra instrument CSV or session file (repeatable)")
    ] = None,
    restore: Annotated[
        bool | None,
        typer.Option(help="seed volume state from Redis (default: on for live, off for --replay)"),
    ] = None,
    live: Annotated[bool, typer.Option(help="show the live view")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    force: Annotated[
        bool, typer.Option(help="scan live Kite even on an NSE holiday or outside the session")
    ] = False,
    patterns: Annotated[
        str | None,
        typer.Option(
            "--patterns",
            help="which patterns.yaml entries run: enabled (default; only patterns with "
            "evidence), all (research: every entry), or names separated by commas; "
            "env AION_PATTERNS",
        ),
    ] = None,
    config_dir: ConfigDir = None,
) -> None:
    """Scan live Kite ticks, a Kite-protocol server, or a replayed session into Redis."""
    cfg = command_config(config_dir)
    if replay is not None and not replay.exists():
        fail(f"session file not found: {replay} (build one with `aion session build`)")
    opts = ScanOptions(
        replay=replay,
        ws_url=ws_url,
        speed=_speed(speed),
        duration_s=duration,
        symbols=[s.strip() for s in symbols.split(",") if s.strip()] if symbols else [],
        instruments=list(instruments or []),
        restore=restore,
        patterns=patterns,
    )
    if replay is None and ws_url is None and not force:
        # a misconfiguration (no credentials) is reported even when the market is closed
        try:
            resolve_credentials(opts, cfg.kite.secrets_file)
        except ScanError as exc:
            fail(str(exc))
            return
        from aion.ops.schedule import live_scan_gate, wall_now_s

        try:
            closed = live_scan_gate(
                cfg.calendar.market_calendar(), wall_now_s(), cfg.calendar.scan_lead_minutes
            )
        except ValueError as exc:
            fail(str(exc))
            return
        if closed:
            log_event(_log, "scan not started: market closed", reason=closed)
            console.print(closed, highlight=False, soft_wrap=True)
            raise typer.Exit(0)
    try:
        scanner = Scanner(cfg, opts, config_dir)
        scanner.start()
    except (ConfigError, ScanError, RedisUnavailable, ValueError, OSError) as exc:
        fail(str(exc))
        return
    install_signal_handlers(scanner)
    if not scanner.patterns.active:
        print_line(
            "no pattern runs: none in patterns.yaml has shown an edge over random entries "
            "(README, Evidence); --patterns all runs every entry for research"
        )
    from aion.cli.live import LiveView, summary_pairs

    show_live = live and on_terminal() and not json_out
    try:
        if show_live:
            with Live(LiveView(scanner), console=console, refresh_per_second=4):
                while not scanner.should_stop():
                    time.sleep(0.1)
        else:
            while not scanner.should_stop():
                time.sleep(0.1)
    finally:
        summary = scanner.stop()
        log_event(_log, "scan finished", **summary.values)
    fatal = [f.stats.fatal_error for f in scanner.feeds if f.stats.fatal_error]
    if fatal:  # e.g. HTTP 403: one line naming the cause, exit code 2 (the summary is in Redis)
        fail(fatal[0], 2)
    if scanner.compute_error:  # a bug: the traceback is in the log, exit code 1
        fail(scanner.compute_error, 1)
    if json_out:
        print_json(summary.values)
        return
    print_pairs("scan summary", summary_pairs(summary.values))
    alerts = scanner.engine.alerts if scanner.engine is not None else []
    if alerts:
        print_line(f"{len(alerts)} alerts; first ones (bar time IST, prices in rupees):")
        for a in alerts[:10]:
            f = a.fields()
            print_line(
                f"  {f['bar_time']} {a.symbol:<16} {a.pattern:<13} {a.direction:<5} "
                f"conf {f['confidence']} entry {f['entry']} stop {f['stop']} "
                f"target {f['target']} qty {f['quantity']}"
            )
    d = summary.values.get("session_date") or ""
    day = f" --date {str(d)[:4]}-{str(d)[4:6]}-{str(d)[6:]}" if d else ""
    print_line(
        f"next: aion bars --symbol NSE:HDFCBANK{day} | aion dashboard | aion health | "
        f"aion validate{day} | aion premarket refresh-averages (20/55-day averages for RVOL)"
    )


@app.command()
def bars(
    symbol: Annotated[str, typer.Option(help="e.g. NSE:HDFCBANK")],
    date: Annotated[
        str | None, typer.Option(help="trading date YYYY-MM-DD (default: latest)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
    extended: Annotated[bool, typer.Option(help="include pre-open and post-close bars")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="same as --format json")] = False,
    config_dir: ConfigDir = None,
) -> None:
    """Print the 1-minute bars (start-labelled, IST) of one instrument from Redis."""
    from aion.store.queries import known_dates, read_bars

    if json_out:
        fmt = "json"
    if fmt not in ("table", "csv", "json"):
        fail("--format must be table, csv or json")
    cfg = command_config(config_dir)
    try:
        client, pr = redis_for_reading(cfg)
    except RedisUnavailable as exc:
        fail(str(exc))
        return
    try:
        if date is None:
            dates = known_dates(client, symbol)
            if not dates:
                fail(f"no bars stored for {symbol}; run a scan first", 1)
            d = dates[-1]
        else:
            try:
                pd_ = parse_date(date)
            except ValueError as exc:
                fail(str(exc))
                return
            d = ymd(pd_)
        rows = read_bars(client, symbol, d, extended=extended)
    finally:
        client.close()
        if pr is not None:
            pr.stop()
    if not rows:
        fail(f"no bars for {symbol} on {d}", 1)
    cols = ["time", "open", "high", "low", "close", "volume", "oi", "ticks", "segment"]
    if fmt == "json":
        print_json({"symbol": symbol, "date": d, "bars": [{c: r[c] for c in cols} for r in rows]})
        return
    if fmt == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(["date", *cols])
        for r in rows:
            w.writerow([d, *[r[c] for c in cols]])
        return
    print_table(
        f"{symbol} 1-minute bars {d} (IST, start-labelled; prices in rupees, volume in shares)",
        cols,
        [[f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in cols] for r in rows],
        right=cols[1:-1],
    )


@app.command()
def health(
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    config_dir: ConfigDir = None,
) -> None:
    """Redis (reachable, version, memory, eviction, persistence), keys, streams, feeds, archive.

    Exit code 0 healthy, 1 degraded, 2 down or misconfigured.
    """
    from aion.ops.health import EXIT_CODES, GRADE_COLOURS, health_rows, run_health

    cfg = command_config(config_dir)
    report = run_health(cfg)
    if json_out:
        print_json(report)
    else:
        print_table(
            f"aion health: {report['status']}",
            ["check", "status", "value", "detail"],
            health_rows(report),
            colours={"status": GRADE_COLOURS},
        )
    raise typer.Exit(EXIT_CODES[str(report["status"])])


@app.command()
def audit(
    date: Annotated[
        str | None, typer.Option(help="IST trading date YYYY-MM-DD (default: newest archived)")
    ] = None,
    health_check: Annotated[
        bool, typer.Option("--health/--no-health", help="include an aion health snapshot")
    ] = True,
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    config_dir: ConfigDir = None,
) -> None:
    """Nightly data-quality audit of an archived day: Markdown + HTML reports; exit 1 on failure."""
    from aion.ops.audit import run_audit

    cfg = command_config(config_dir)
    try:
        day = parse_date(date) if date else None
        result, md, page = run_audit(cfg, day, with_health=health_check)
    except (ValueError, LookupError) as exc:
        fail(str(exc))
        return
    if json_out:
        print_json(
            {
                "date": str(result.date),
                "failed": result.failed,
                "checks": [
                    {"name": c.name, "status": c.status, "summary": c.summary}
                    for c in result.checks
                ],
                "reports": [str(md), str(page)],
            }
        )
        raise typer.Exit(1 if result.failed else 0)
    print_table(
        f"aion audit {result.date}: {'FAILED' if result.failed else 'passed'}",
        ["check", "status", "summary"],
        [[c.name, c.status, c.summary] for c in result.checks],
        colours={"status": {"pass": "green", "warn": "yellow", "fail": "red"}},
    )
    print_line(f"reports: {md} {page}")
    raise typer.Exit(1 if result.failed else 0)


@app.command()
def patterns(
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    config_dir: ConfigDir = None,
) -> None:
    """List the registered detectors, their parameters and whether patterns.yaml enables them."""
    from aion.config import load_patterns
    from aion.patterns.registry import FAMILIES, PatternEngine, known_detectors

    try:
        configs = load_patterns(config_dir)
        PatternEngine(configs)  # the same checks as start-up: names, parameters, types
    except ConfigError as exc:
        fail(str(exc))
        return
    enabled = {p.name: p for p in configs}
    dets = sorted(known_detectors().values(), key=lambda d: (FAMILIES.index(d.family), d.name))
    listing: list[dict[str, Any]] = []
    for det in dets:
        p = enabled.get(det.name)
        listing.append(
            {
                "family": det.family,
                "name": det.name,
                "enabled": bool(p and p.enabled),
                "min_confidence": None if p is None else p.min_confidence,
                "cooldown_s": None if p is None else p.cooldown_s,
                "description": det.description,
                "parameters": {
                    k: (p.params.get(k, d) if p else d) for k, (d, _h) in det.params.items()
                },
            }
        )
    if json_out:
        print_json({"detectors": listing})
        return
    print_table(
        "detectors (config/patterns.yaml; rules and formulas: README ## Patterns)",
        ["family", "name", "on", "min conf", "cooldown s", "description", "parameters"],
        [
            [
                d["family"],
                d["name"],
                "yes" if d["enabled"] else "no",
                "-" if d["min_confidence"] is None else f"{d['min_confidence']:.2f}",
                "-" if d["cooldown_s"] is None else str(d["cooldown_s"]),
                d["description"],
                "\n".join(f"{k}={v!r}" for k, v in d["parameters"].items()),
            ]
            for d in listing
        ],
    )
