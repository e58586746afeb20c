"""``aion validate --date D``: forward-validate the stored alerts of one day into a Markdown report.

Each pattern and window gets a verdict against the random baseline
(:func:`aion.validation.stats.compare`, instruments as the bootstrap's clusters).

Reads the day's alert stream and the alerted instruments' regular 1-minute bars from Redis
(:mod:`aion.store.queries`), follows every alert on the later bars
(:mod:`aion.validation.forward`), compares each pattern with the random-entry baseline
(:mod:`aion.validation.stats`) and writes the report (:mod:`aion.validation.report`).
Windows and baseline settings come from ``validation:`` in ``config/aion.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aion.cli.context import ConfigDir, command_config, fail, redis_for_reading
from aion.cli.output import print_json, print_table


def validate(
    date: Annotated[str, typer.Option(help="trading date YYYY-MM-DD (IST)")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Markdown file to write (default validation-DATE.md)"),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="print every pattern x window row as JSON")
    ] = False,
    config_dir: ConfigDir = None,
) -> None:
    """Forward-validate the alerts of --date against later bars; write a Markdown report."""
    from aion.market.time import parse_date, ymd
    from aion.store.queries import read_alerts, read_bars
    from aion.store.server import RedisUnavailable
    from aion.validation.forward import random_baseline, validate_alerts
    from aion.validation.report import render_report
    from aion.validation.stats import ALL_PATTERNS, compare, summarize

    try:
        day = parse_date(date)
    except ValueError as exc:
        fail(str(exc))
        return
    day_ymd = ymd(day)
    cfg = command_config(config_dir)
    vc = cfg.validation
    try:
        client, pr = redis_for_reading(cfg)
    except RedisUnavailable as exc:
        fail(str(exc))
        return
    try:
        alerts = read_alerts(client, day_ymd)
        bars = {s: read_bars(client, s, day_ymd) for s in sorted({a["symbol"] for a in alerts})}
    finally:
        client.close()
        if pr is not None:
            pr.stop()
    if not alerts:
        fail(f"no alerts stored for {day.isoformat()}; run a scan of that day first", 1)
    try:
        rows = validate_alerts(alerts, bars, vc.windows_min)
        base = random_baseline(
            alerts, bars, vc.windows_min, vc.baseline_draws, vc.baseline_jitter_min, vc.seed
        )
    except ValueError as exc:
        fail(f"cannot validate: {exc}", 1)
        return
    summary = summarize(rows, base, vc.windows_min)
    # one day: instruments are the clusters of the bootstrap (alerts of one instrument move
    # together); aion evaluate clusters by session over many days
    verdicts = compare(rows, base, cluster="symbol", seed=vc.seed).select(
        "pattern", "window_min", "diff", "diff_lo", "diff_hi", "verdict"
    )
    summary = summary.join(verdicts, on=["pattern", "window_min"], how="left")
    text = render_report(
        summary, day.isoformat(), len(alerts), vc.baseline_draws, vc.baseline_jitter_min, vc.seed
    )
    path = out if out is not None else Path(f"validation-{day.isoformat()}.md")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {path}: {exc}", 1)
    if json_out:
        print_json(
            {"date": day.isoformat(), "alerts": len(alerts), "report": str(path),
             "rows": summary.to_dicts()}
        )  # fmt: skip
        return
    print_table(
        f"{len(alerts)} alerts of {day.isoformat()}, all patterns -> {path} "
        "(R: multiples of the stop distance)",
        [
            "window",
            "n",
            "hit rate",
            "mean R",
            "baseline hit rate",
            "baseline mean R",
            "difference [95% CI]",
            "verdict",
        ],
        [
            [
                f"{r['window_min']} min",
                str(r["n"]),
                f"{r['hit_rate']:.1%}",
                f"{r['mean_r']:+.2f}",
                f"{r['base_hit_rate']:.1%}",
                f"{r['base_mean_r']:+.2f}",
                f"{r['diff']:+.2f} [{r['diff_lo']:+.2f}, {r['diff_hi']:+.2f}]",
                r["verdict"],
            ]
            for r in summary.filter(summary["pattern"] == ALL_PATTERNS).iter_rows(named=True)
        ],
        right=[
            "window",
            "n",
            "hit rate",
            "mean R",
            "baseline hit rate",
            "baseline mean R",
            "difference [95% CI]",
        ],
    )
