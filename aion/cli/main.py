"""The ``aion`` command line (typer + rich)."""

from __future__ import annotations

import csv
import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from aion.app import ScanError, Scanner, ScanOptions, install_signal_handlers, resolve_credentials
from aion.cli.dashboard_cmd import dashboard
from aion.cli.kite_cmd import kite_app
from aion.cli.premarket_cmd import premarket_app
from aion.cli.record_cmd import record
from aion.cli.replay_cmd import replay_app
from aion.cli.session_cmd import session_app
from aion.cli.validate_cmd import validate
from aion.cli.volume_cmd import rvol
from aion.config import AionConfig, ConfigError, load_config
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
app.command("record")(record)
app.command("dashboard")(dashboard)

console = Console()
err = Console(stderr=True)
_log = logging.getLogger("aion.cli")

ConfigDir = Annotated[
    Path | None,
    typer.Option("--config", help="folder holding aion.yaml and patterns.yaml (default ./config)"),
]


def _fail(line: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


_LOG_FLAGS: dict[str, Any] = {"json_format": None, "level": None}


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
    _LOG_FLAGS.update(json_format=True if log_json else None, level=log_level)


def _config(config_dir: Path | None) -> AionConfig:
    from aion.ops.logging import configure_logging

    try:
        cfg = load_config(config_dir)
    except ConfigError as exc:
        _fail(str(exc))
        raise AssertionError from exc  # unreachable
    if _LOG_FLAGS["level"] not in (None, "DEBUG", "INFO", "WARNING", "ERROR"):
        _fail(f"--log-level: {_LOG_FLAGS['level']!r} is not one of DEBUG, INFO, WARNING, ERROR")
    configure_logging(cfg, **_LOG_FLAGS)
    return cfg


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
    config_dir: ConfigDir = None,
) -> None:
    """Scan live Kite ticks, a Kite-protocol server, or a replayed session into Redis."""
    cfg = _config(config_dir)
    if replay is not None and not replay.exists():
        _fail(f"session file not found: {replay} (build one with `aion session build`)")
    opts = ScanOptions(
        replay=replay,
        ws_url=ws_url,
        speed=_speed(speed),
        duration_s=duration,
        symbols=[s.strip() for s in symbols.split(",") if s.strip()] if symbols else [],
        instruments=list(instruments or []),
        restore=restore,
    )
    if replay is None and ws_url is None and not force:
        # a misconfiguration (no credentials) is reported even when the market is closed
        try:
            resolve_credentials(opts, cfg.kite.secrets_file)
        except ScanError as exc:
            _fail(str(exc))
            return
        from aion.ops.schedule import live_scan_gate, wall_now_s

        try:
            closed = live_scan_gate(
                cfg.calendar.market_calendar(), wall_now_s(), cfg.calendar.scan_lead_minutes
            )
        except ValueError as exc:
            _fail(str(exc))
            return
        if closed:
            log_event(_log, "scan not started: market closed", reason=closed)
            console.print(closed, highlight=False, soft_wrap=True)
            raise typer.Exit(0)
    try:
        scanner = Scanner(cfg, opts, config_dir)
        scanner.start()
    except (ConfigError, ScanError, RedisUnavailable, ValueError, OSError) as exc:
        _fail(str(exc))
        return
    install_signal_handlers(scanner)
    from aion.cli.live import LiveView, summary_table

    show_live = live and console.is_terminal and not json_out
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
        _fail(fatal[0], 2)
    if scanner.compute_error:  # a bug: the traceback is in the log, exit code 1
        _fail(scanner.compute_error, 1)
    if json_out:
        print(json.dumps(summary.values))
    else:
        console.print(summary_table(summary.values))
        if scanner.engine is not None and scanner.engine.alerts:
            console.print(f"{len(scanner.engine.alerts)} alerts; first ones:")
            for a in scanner.engine.alerts[:10]:
                f = a.fields()
                console.print(
                    f"  {f['bar_time']} {a.symbol:<16} {a.pattern:<13} {a.direction:<5} "
                    f"conf {f['confidence']} entry {f['entry']} stop {f['stop']} "
                    f"target {f['target']} qty {f['quantity']}",
                    highlight=False,
                )


def _redis_for_reading(cfg: AionConfig) -> tuple[Any, Any]:
    from aion.store.server import PrivateRedis, connect

    if cfg.redis.url:
        return connect(cfg.redis.url, cfg.redis.tls), None
    pr = PrivateRedis(cfg.data_dir())
    return connect(pr.start()), pr


@app.command()
def bars(
    symbol: Annotated[str, typer.Option(help="e.g. NSE:HDFCBANK")],
    date: Annotated[
        str | None, typer.Option(help="trading date YYYY-MM-DD (default: latest)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or csv")] = "table",
    extended: Annotated[bool, typer.Option(help="include pre-open and post-close bars")] = False,
    config_dir: ConfigDir = None,
) -> None:
    """Print the 1-minute bars (start-labelled, IST) of one instrument from Redis."""
    from aion.store.queries import known_dates, read_bars

    if fmt not in ("table", "csv"):
        _fail("--format must be table or csv")
    cfg = _config(config_dir)
    try:
        client, pr = _redis_for_reading(cfg)
    except RedisUnavailable as exc:
        _fail(str(exc))
        return
    try:
        if date is None:
            dates = known_dates(client, symbol)
            if not dates:
                _fail(f"no bars stored for {symbol}; run a scan first", 1)
            d = dates[-1]
        else:
            try:
                pd_ = parse_date(date)
            except ValueError as exc:
                _fail(str(exc))
                return
            d = ymd(pd_)
        rows = read_bars(client, symbol, d, extended=extended)
    finally:
        client.close()
        if pr is not None:
            pr.stop()
    if not rows:
        _fail(f"no bars for {symbol} on {d}", 1)
    cols = ["time", "open", "high", "low", "close", "volume", "oi", "ticks", "segment"]
    if fmt == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(["date", *cols])
        for r in rows:
            w.writerow([d, *[r[c] for c in cols]])
        return
    t = Table(title=f"{symbol} 1-minute bars {d} (IST, start-labelled)")
    for c in cols:
        t.add_column(c, justify="right")
    for r in rows:
        t.add_row(*[f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in cols])
    console.print(t)


@app.command()
def health(
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    config_dir: ConfigDir = None,
) -> None:
    """Redis (reachable, version, memory, eviction, persistence), keys, streams, feeds, archive.

    Exit code 0 healthy, 1 degraded, 2 down or misconfigured.
    """
    from aion.ops.health import EXIT_CODES, health_table, run_health

    cfg = _config(config_dir)
    report = run_health(cfg)
    if json_out:
        print(json.dumps(report, default=str))
    else:
        console.print(health_table(report))
    raise typer.Exit(EXIT_CODES[str(report["status"])])


@app.command()
def audit(
    date: Annotated[
        str | None, typer.Option(help="IST trading date YYYY-MM-DD (default: newest archived)")
    ] = None,
    health_check: Annotated[
        bool, typer.Option("--health/--no-health", help="include an aion health snapshot")
    ] = True,
    config_dir: ConfigDir = None,
) -> None:
    """Nightly data-quality audit of an archived day: Markdown + HTML reports; exit 1 on failure."""
    from aion.ops.audit import run_audit

    cfg = _config(config_dir)
    try:
        day = parse_date(date) if date else None
        result, md, page = run_audit(cfg, day, with_health=health_check)
    except (ValueError, LookupError) as exc:
        _fail(str(exc))
        return
    t = Table(title=f"aion audit {result.date}: {'FAILED' if result.failed else 'passed'}")
    for col in ("check", "status", "summary"):
        t.add_column(col)
    colour = {"pass": "green", "warn": "yellow", "fail": "red"}
    for c in result.checks:
        t.add_row(c.name, f"[{colour[c.status]}]{c.status}[/]", c.summary)
    console.print(t)
    console.print(f"reports: {md} {page}", highlight=False, soft_wrap=True)
    raise typer.Exit(1 if result.failed else 0)


@app.command()
def patterns(config_dir: ConfigDir = None) -> None:
    """List the registered detectors, their parameters and whether patterns.yaml enables them."""
    from aion.config import load_patterns
    from aion.patterns.registry import FAMILIES, PatternEngine, known_detectors

    try:
        configs = load_patterns(config_dir)
        PatternEngine(configs)  # the same checks as start-up: names, parameters, types
    except ConfigError as exc:
        _fail(str(exc))
        return
    enabled = {p.name: p for p in configs}
    t = Table(title="detectors (config/patterns.yaml; rules and formulas: README ## Patterns)")
    for c in ("family", "name", "on", "min conf", "cooldown s", "description", "parameters"):
        t.add_column(c)
    dets = known_detectors().values()
    for det in sorted(dets, key=lambda d: (FAMILIES.index(d.family), d.name)):
        p = enabled.get(det.name)
        params = "\n".join(
            f"{k}={(p.params.get(k, d) if p else d)!r}" for k, (d, _h) in det.params.items()
        )
        conf = "-" if p is None or p.min_confidence is None else f"{p.min_confidence:.2f}"
        cooldown = str(p.cooldown_s) if p else "-"
        on = "yes" if p and p.enabled else "no"
        t.add_row(det.family, det.name, on, conf, cooldown, det.description, params)
    console.print(t)
