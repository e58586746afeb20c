"""``aion premarket refresh-averages``: prepare the daily volume statistics of a trading date.

Reads Kite daily candles (a folder such as ``aion/data/daily_kite``), computes per
instrument the 20- and 55-day average volume and close, the 55-day high/low and a
readiness flag from the sessions strictly before the prepared date
(:func:`aion.volume.averages.premarket_averages`), and writes them to Redis
(``aion:{SYM}:averages``, through :class:`aion.store.writer.RedisStore`) and to a
Parquet file. The default date is the next XNSE trading day (today, when today is
a trading day and it is before 09:15 IST).

It also learns the time-of-day volume curves (:mod:`aion.volume.baseline`, from the
intraday and daily candles) and writes them to ``<data_dir>/premarket/baselines.npz``
(:mod:`aion.volume.baseline_store`), which ``aion scan`` loads instead of learning them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from aion.cli.context import fail
from aion.cli.output import console, err, print_table
from aion.config import AionConfig, ConfigError, load_config
from aion.market.calendar import MarketCalendar
from aion.market.time import IST, parse_date
from aion.queues import BoundedQueue
from aion.store import keys
from aion.store.batch import StoreBatch
from aion.store.server import PrivateRedis, RedisUnavailable, connect
from aion.store.writer import RedisStore, TtlSeconds
from aion.volume.averages import (
    AdjustmentFactor,
    PremarketAverages,
    bundled_adjustment_factors,
    bundled_daily_dir,
    daily_files,
    premarket_averages,
    read_factors,
)
from aion.volume.baseline import BaselineSet, intraday_files, learn_baselines
from aion.volume.baseline_store import (
    baseline_folders,
    baseline_inputs,
    prepared_baselines_path,
    write_baselines,
)

premarket_app = typer.Typer(
    help="Pre-market preparation: daily averages, breakout levels, time-of-day baselines.",
    no_args_is_help=True,
)

_DAY_S = 86_400


def default_trading_date(now: dt.datetime, calendar: MarketCalendar) -> dt.date:
    """The trading date a pre-market run at ``now`` (tz-aware) prepares.

    Today (IST) when it is a trading day and ``now`` is before 09:15 IST, else the next
    XNSE trading day after today.
    """
    ist = now.astimezone(IST)
    today = ist.date()
    if calendar.is_trading_day(today) and ist.time() < dt.time(9, 15):
        return today
    return calendar.next_trading_day(today)


def averages_frame(avgs: dict[str, PremarketAverages]) -> pl.DataFrame:
    """One row per instrument (columns = :class:`PremarketAverages` fields), sorted by symbol."""
    rows = [a.__dict__ for _s, a in sorted(avgs.items())]
    return pl.DataFrame(rows)


def write_redis(cfg: AionConfig, avgs: dict[str, PremarketAverages], url: str | None = None) -> int:
    """Write ``aion:{SYM}:averages`` hashes through the store; returns the commands sent.

    The keys keep the bars TTL (``redis.ttl_days.bars``) so a Friday refresh outlives the
    weekend. ``url`` (else ``cfg.redis.url``, else aion's private redis-server) picks Redis.

    Raises:
        RedisUnavailable: Redis cannot be reached or started.
    """
    url = url or cfg.redis.url
    private = None
    if url is None:
        private = PrivateRedis(cfg.data_dir())
        url = private.start()
    client = connect(url)
    try:
        days = cfg.redis.ttl_days
        ttl = TtlSeconds(
            bars=days.bars * _DAY_S,
            state=days.bars * _DAY_S,
            alerts=days.alerts * _DAY_S,
            runs=days.runs * _DAY_S,
        )
        store = RedisStore(client, BoundedQueue("premarket", 1), ttl)
        store.merge(StoreBatch(state={keys.averages(s): a.fields() for s, a in avgs.items()}))
        if not store.flush():
            raise RedisUnavailable(
                f"Redis unreachable while writing averages: {store.stats.last_error}"
            )
        return store.stats.commands
    finally:
        client.close()
        if private is not None:
            private.stop()


def prepare_baselines(
    cfg: AionConfig, intraday: Path, daily: Path, now: dt.datetime
) -> tuple[BaselineSet, Path]:
    """Learn the time-of-day curves from the two candle folders (latest sessions, as the
    scan does) and write them to ``<data_dir>/premarket/baselines.npz``, with progress.

    Returns:
        The curves and the file written.

    Raises:
        FileNotFoundError: a folder does not exist.
        ValueError: a candle CSV is malformed.
        OSError: the file cannot be written.
    """
    bc = cfg.volume.baseline
    inputs = baseline_inputs(intraday, daily, bc.sessions, bc.min_sessions)
    with Progress(
        TextColumn("intraday history"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.description}"), console=err, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("", total=inputs.intraday_files)
        learnt = learn_baselines(
            intraday, daily, None, bc.sessions, bc.min_sessions,
            on_file=lambda s: progress.update(task, advance=1, description=s),
        )  # fmt: skip
    target = prepared_baselines_path(cfg.data_dir())
    write_baselines(target, learnt, inputs, now)
    return learnt, target


@premarket_app.command("refresh-averages")
def refresh_averages(
    history: Annotated[
        Path | None,
        typer.Option(
            help="folder of Kite daily candles <SYMBOL>_day_*.csv[.gz] "
            "(default: volume.daily_history_dir, else the bundled ones)"
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="trading date to prepare, YYYY-MM-DD (default: next XNSE day)"
        ),
    ] = None,
    factors: Annotated[
        Path | None,
        typer.Option(
            help="corporate-action adjustment factors CSV (default: "
            "volume.adjustment_factors, else the bundled 2022-11-11 file)"
        ),
    ] = None,
    no_factors: Annotated[
        bool, typer.Option("--no-factors", help="treat the history as unadjusted (factor 1)")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Parquet file to write (default: DATA_DIR/premarket/averages_YYYYMMDD.parquet)"
        ),
    ] = None,
    symbols: Annotated[
        str | None, typer.Option(help="comma-separated tradingsymbols, e.g. HDFCBANK,SBIN")
    ] = None,
    redis_write: Annotated[
        bool, typer.Option("--redis/--no-redis", help="write the averages to Redis")
    ] = True,
    intraday: Annotated[
        Path | None,
        typer.Option(
            help="folder of Kite intraday candles <SYMBOL>_<interval>_*.csv[.gz] for the "
            "time-of-day baselines (default: volume.baseline.intraday_history_dir, else the "
            "bundled 60-minute ones)"
        ),
    ] = None,
    baselines: Annotated[
        bool,
        typer.Option(
            "--baselines/--no-baselines",
            help="also learn the time-of-day baselines of every instrument with intraday "
            "candles (not only --symbols) into DATA_DIR/premarket/baselines.npz for aion scan",
        ),
    ] = True,
    config_dir: Annotated[
        Path | None, typer.Option("--config", help="folder holding aion.yaml")
    ] = None,
) -> None:
    """Compute 20/55-day average volume and close, 55-day high/low per instrument, and the
    time-of-day volume baselines the scan loads."""
    try:
        cfg = load_config(config_dir)
    except ConfigError as exc:
        fail(str(exc))
        return
    vc = cfg.volume
    if as_of is not None:
        try:
            date = parse_date(as_of)
        except ValueError as exc:
            fail(str(exc))
            return
    else:
        date = default_trading_date(dt.datetime.now(tz=IST), MarketCalendar())
    hist = history or (Path(vc.daily_history_dir) if vc.daily_history_dir else bundled_daily_dir())
    fpath = None if no_factors else (
        factors or (Path(vc.adjustment_factors) if vc.adjustment_factors
                    else bundled_adjustment_factors())
    )  # fmt: skip
    fac: dict[str, AdjustmentFactor] = {}
    if fpath is not None:
        try:
            fac = read_factors(fpath)
        except (OSError, ValueError) as exc:
            fail(f"adjustment factors {fpath}: {exc}".splitlines()[0])
    try:
        files = daily_files(hist)
    except FileNotFoundError as exc:
        fail(str(exc))
        return
    scan_intraday, scan_daily = baseline_folders(cfg)
    intra = intraday or scan_intraday
    if baselines:
        try:
            intraday_files(intra)
        except FileNotFoundError as exc:
            fail(str(exc))
    wanted = {s.strip() for s in symbols.split(",") if s.strip()} if symbols else None
    total = len(files) if wanted is None else len(wanted & set(files))
    if total == 0:
        fail(f"no daily candle files (<SYMBOL>_day_*.csv[.gz]) to read in {hist}")
    with Progress(
        TextColumn("daily history"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.description}"), console=err, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("", total=total)
        avgs, skipped = premarket_averages(
            hist, date, fac, vc.average_days, vc.long_average_days, wanted,
            on_file=lambda s: progress.update(task, advance=1, description=s),
        )  # fmt: skip
    if wanted:
        for s in sorted(wanted - set(files)):
            skipped[f"NSE:{s}"] = f"no daily candle file in {hist}"
    target = out or cfg.data_dir() / "premarket" / f"averages_{date:%Y%m%d}.parquet"
    if avgs:
        target.parent.mkdir(parents=True, exist_ok=True)
        averages_frame(avgs).write_parquet(target)
    commands = 0
    if avgs and redis_write:
        try:
            commands = write_redis(cfg, avgs)
        except RedisUnavailable as exc:
            fail(str(exc))
    ready = sum(a.ready for a in avgs.values())
    console.print(
        f"prepared {date} from sessions before it: {len(avgs)} instruments "
        f"({ready} ready with {vc.long_average_days} sessions), {len(skipped)} skipped; "
        f"factors: {fpath.name if fpath else 'none'}; parquet: {target if avgs else '-'}; "
        f"redis commands: {commands}",
        highlight=False, soft_wrap=True,
    )  # fmt: skip
    if baselines:
        try:
            learnt, bpath = prepare_baselines(cfg, intra, hist, dt.datetime.now(tz=IST))
        except (OSError, ValueError) as exc:
            fail(f"baselines: {exc}".splitlines()[0])
            return
        console.print(
            f"baselines: {len(learnt.curves)} instruments from {intra} "
            f"(others use the {learnt.fallback.source} curve); file: {bpath}",
            highlight=False, soft_wrap=True,
        )  # fmt: skip
        if (intra.resolve(), hist.resolve()) != (scan_intraday.resolve(), scan_daily.resolve()):
            console.print(
                "note: aion scan reads other candle folders (volume.daily_history_dir, "
                "volume.baseline.intraday_history_dir) and will learn its own baselines",
                highlight=False, soft_wrap=True,
            )  # fmt: skip
    if skipped:
        print_table(
            "skipped", ["instrument", "reason"], [[s, why] for s, why in sorted(skipped.items())]
        )
    if not avgs:
        raise typer.Exit(1)
