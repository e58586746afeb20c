"""``aion evaluate``: forward validation pooled over many sessions, pattern against baseline.

For each session (:mod:`aion.validation.sessions`: built from vendor bars and replayed
in-process through the scan's engine and alert code), every alert is followed on the later
bars (:func:`aion.validation.forward.validate_alerts`) and mirrored by random entries
(:func:`aion.validation.forward.random_baseline`); the rows of all sessions are then
compared per pattern and window (:func:`aion.validation.stats.compare`, sessions as the
bootstrap's clusters: alerts of one day are not independent).

Walk-forward: ``aion evaluate`` fits nothing. Every parameter and threshold is the one in
``config/patterns.yaml`` and ``config/aion.yaml``, chosen before the evaluation; the report
lists each session with its role: ``development`` for 2022-11-11 (the one day with stocks,
futures and volume, on which the detectors were built and demonstrated, so in-sample) and
``held out`` for every other day. Verdicts are given over all sessions and over the held-out
ones alone.

**Not applicable**: a pattern that offered no signal at all (before any threshold) on any
session of one data source (e.g. volume patterns on the index-only days, which carry no
volume) cannot fire on that data; its rows for those sessions are counted as not applicable,
not as zero alerts.

**Alert flow**: per session, alerts published, instruments, the most alerts in one bar
minute, and the suppression counts by rule (:class:`aion.alerts.manager.AlertCounters`).
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from aion.config import AionConfig
from aion.validation.forward import random_baseline, validate_alerts
from aion.validation.sessions import SessionRun, SessionSpec, run_session
from aion.validation.stats import ALL_PATTERNS, MIN_CLUSTERS, compare

DEVELOPMENT_DATES = (dt.date(2022, 11, 11),)
"""Sessions the detectors were built and demonstrated on (in-sample for every parameter)."""

PRIMARY_WINDOW_MIN = 30
"""The window whose verdict decides whether a pattern ships enabled (minutes)."""


@dataclass
class Evaluation:
    """The pooled result of :func:`evaluate`.

    Attributes:
        sessions: one row per session: ``date``, ``source``, ``role``, ``instruments``,
            ``signals``, ``alerts``, ``max_per_minute``, one column per suppression rule.
        trades: every alert x window (:data:`aion.validation.forward.SCHEMA` plus
            ``session`` (YYYY-MM-DD), ``role`` and ``base_r``: the mean R of that alert's
            baseline draws in that window).
        table: :func:`aion.validation.stats.compare` over all sessions, plus ``scope``
            (``all`` / ``held out``), ``sessions_applicable`` and ``sessions_not_applicable``,
            and the optimistic second reading ``iday_clusters``, ``iday_diff_lo``,
            ``iday_diff_hi``, ``iday_verdict``: the same comparison resampling instrument-days
            (a session's instruments as separate clusters; they share the market's moves, so
            these intervals are too narrow, but exist for a pattern of one session).
        per_minute: alerts per (session, bar minute): ``session``, ``bar_start`` (epoch
            seconds), ``alerts``.
    """

    sessions: pl.DataFrame
    trades: pl.DataFrame
    table: pl.DataFrame
    per_minute: pl.DataFrame
    windows: tuple[int, ...]
    draws: int
    jitter_min: int
    seed: int


def _role(d: dt.date) -> str:
    return "development" if d in DEVELOPMENT_DATES else "held out"


def evaluate(
    specs: Sequence[SessionSpec],
    config: AionConfig,
    workdir: Path,
    config_dir: Path | None = None,
    on_session: Callable[[SessionRun], None] | None = None,
    n_boot: int = 2000,
) -> Evaluation:
    """Build, replay and validate each session of ``specs`` in turn; pool them.

    Args:
        specs: the sessions, ascending by date.
        config: ``aion.yaml`` (``validation:`` gives windows and the baseline's settings).
        workdir: folder for the built session files.
        config_dir: folder of ``patterns.yaml`` (default: the repository's ``config/``).
        on_session: called after each session (the progress bar).
        n_boot: bootstrap replicates.

    Raises:
        ValueError: no sessions, or a session the builder rejects.
    """
    if not specs:
        raise ValueError("no sessions to evaluate")
    vc = config.validation
    wins = tuple(vc.windows_min)
    srows, trades, bases, minutes = [], [], [], []
    fired: dict[tuple[str, str], int] = {}  # (source, pattern) -> signals
    patterns_of: dict[str, set[str]] = {}
    for spec in specs:
        run = run_session(spec, config, workdir, config_dir)
        day, role = spec.date.isoformat(), _role(spec.date)
        for pat, n in run.signals_by_pattern.items():
            fired[(spec.source, pat)] = fired.get((spec.source, pat), 0) + n
        per_min: dict[int, int] = {}
        for a in run.alerts:
            per_min[a.bar_start] = per_min.get(a.bar_start, 0) + 1
        minutes += [{"session": day, "bar_start": t, "alerts": n} for t, n in per_min.items()]
        srows.append({"date": day, "source": spec.source, "role": role,
                      "instruments": len(run.bars), "signals": run.signals,
                      "alerts": len(run.alerts),
                      "max_per_minute": max(per_min.values(), default=0),
                      **run.suppressed})  # fmt: skip
        patterns_of[day] = {a.pattern for a in run.alerts}
        if run.alerts:
            tag = [pl.lit(day).alias("session"), pl.lit(role).alias("role")]
            trades.append(validate_alerts(run.alerts, run.bars, wins).with_columns(tag))
            bases.append(
                random_baseline(run.alerts, run.bars, wins, vc.baseline_draws,
                                vc.baseline_jitter_min, vc.seed, run.tick_size)
                .with_columns(tag)
            )  # fmt: skip
        if on_session is not None:
            on_session(run)
    sessions = pl.DataFrame(srows)
    if not trades:
        raise ValueError(f"no alerts in {len(specs)} sessions: nothing to evaluate")
    v, b = pl.concat(trades), pl.concat(bases)
    base_r = b.group_by("alert_id", "window_min").agg(pl.col("r").mean().alias("base_r"))
    v = v.join(base_r, on=["alert_id", "window_min"], how="left")
    tables = []
    for scope, vs, bs in (
        ("all", v, b),
        (
            "held out",
            v.filter(pl.col("role") == "held out"),
            b.filter(pl.col("role") == "held out"),
        ),
    ):
        if vs.height:
            strict = compare(vs, bs, cluster="session", n_boot=n_boot, seed=vc.seed)
            iday = pl.concat_str("session", pl.lit(" "), "symbol").alias("instrument_day")
            loose = compare(vs.with_columns(iday), bs.with_columns(iday),
                            cluster="instrument_day", n_boot=n_boot, seed=vc.seed)  # fmt: skip
            loose = loose.select(
                "pattern", "window_min",
                *(pl.col(c).alias(f"iday_{c}") for c in
                  ("clusters", "diff_lo", "diff_hi", "verdict")),
            )  # fmt: skip
            tables.append(
                strict.join(loose, on=["pattern", "window_min"], how="left").with_columns(
                    pl.lit(scope).alias("scope")
                )
            )
    table = pl.concat(tables, how="diagonal_relaxed")
    # applicability: sessions whose data source gave the pattern any signal at all
    src = dict(zip(sessions["date"], sessions["source"], strict=True))
    roles = dict(zip(sessions["date"], sessions["role"], strict=True))
    app_n, na_n = [], []
    for r in table.iter_rows(named=True):
        days = [d for d in src if r["scope"] == "all" or roles[d] == "held out"]
        if r["pattern"] == ALL_PATTERNS:
            ok = len(days)
        else:
            ok = sum(fired.get((src[d], r["pattern"]), 0) > 0 for d in days)
        app_n.append(ok)
        na_n.append(len(days) - ok)
    table = table.with_columns(
        pl.Series("sessions_applicable", app_n), pl.Series("sessions_not_applicable", na_n)
    )
    per_minute = pl.DataFrame(
        minutes, schema={"session": pl.Utf8, "bar_start": pl.Int64, "alerts": pl.Int64}
    )
    return Evaluation(sessions, v, table, per_minute, wins, vc.baseline_draws,
                      vc.baseline_jitter_min, vc.seed)  # fmt: skip


# -------------------------------------------------------------------------------- report
def _f(x: Any, fmt: str = "+.2f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def ci_text(lo: Any, hi: Any) -> str:
    """`` [lo, hi]`` with signs and 2 decimals, or ``""`` when a bound is missing or NaN."""
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return ""
    return f" [{lo:+.2f}, {hi:+.2f}]"


def _pct(x: Any, lo: Any, hi: Any) -> str:
    if x is None or math.isnan(x):
        return "-"
    return f"{100 * x:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


_SESSION_COLUMNS = ("date", "source", "role", "instruments", "signals", "alerts",
                    "max_per_minute")  # fmt: skip
"""The session columns that are not suppression counts."""


def flow_summary(ev: Evaluation) -> dict[str, Any]:
    """Alert flow figures over the sessions of ``ev``: alerts per day (max, and per 50
    instruments), per bar minute (max, and how many minutes had more than 5), signals and
    suppression totals by rule."""
    s = ev.sessions
    busy = ev.per_minute.filter(pl.col("alerts") > 5).height
    per50 = (s["alerts"] / s["instruments"].clip(lower_bound=1) * 50).to_list()
    rules = [c for c in s.columns if c not in _SESSION_COLUMNS]
    return {
        "sessions": s.height,
        "alerts": int(s["alerts"].sum()),
        "alerts_per_day_max": int(s["alerts"].max()),  # type: ignore[arg-type]
        "alerts_per_day_per_50_instruments_max": round(max(per50), 1),
        "alerts_per_minute_max": int(s["max_per_minute"].max()),  # type: ignore[arg-type]
        "minutes_over_5_alerts": busy,
        "signals": int(s["signals"].sum()),
        "suppressed": {r: int(s[r].sum()) for r in rules},
    }


def render_markdown(ev: Evaluation, command: str) -> str:
    """The Markdown report: sessions and roles, alert flow, then per window the table of
    every pattern (count, hit rate, mean R, baseline, difference, verdict)."""
    s = ev.sessions
    held = s.filter(pl.col("role") == "held out").height
    out = [
        "# aion evaluation: alerts against a random baseline over many sessions",
        "",
        f"Command: `{command}`. {s.height} sessions ({held} held out), "
        f"{int(s['alerts'].sum())} alerts; windows {', '.join(map(str, ev.windows))} minutes; "
        f"baseline: {ev.draws} coin-flip entries per alert from its bar to {ev.jitter_min} "
        f"minutes after, seed {ev.seed}.",
        "",
        "Rules: each alert is a trade entered at its bar's close and followed on the later "
        "1-minute bars (a bar reaching stop and target counts as the stop; R = multiples of "
        "the stop distance; trades open at the window's end marked at its last close). "
        "Hit rate: Wilson 95% interval. Mean R, baseline mean R and the difference "
        "(pattern - baseline): 95% bootstrap intervals resampling whole sessions. Verdict: "
        "**beats** when the difference's lower bound is above 0, **worse** when its upper "
        "bound is below 0, else **no evidence** (also with alerts on fewer than "
        f"{MIN_CLUSTERS} sessions: no interval). "
        "The last column is an optimistic second reading: the same difference resampling "
        "instrument-days (count: instrument-days with alerts), which exists for a pattern "
        "of one session but ignores that a day's instruments move together. "
        "`n/a` sessions: the pattern offered no signal on any session of that data source "
        "(it cannot fire there, e.g. volume patterns on index-only days).",
        "",
        "Walk-forward: nothing is fitted here; parameters and thresholds are those of "
        "`config/patterns.yaml` and `config/aion.yaml`, chosen before this evaluation. "
        "`development` sessions are those the detectors were built on (in-sample); the "
        "`held out` scope uses only the others.",
        "",
        "## Sessions",
        "",
        "| date | role | data | instruments | signals | alerts | most in a minute "
        "| suppressed (rule: count) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    flow = flow_summary(ev)
    rules = list(flow["suppressed"])
    for r in s.iter_rows(named=True):
        sup = ", ".join(f"{k} {r[k]}" for k in rules if r[k])
        out.append(
            f"| {r['date']} | {r['role']} | {r['source']} | {r['instruments']} "
            f"| {r['signals']} | {r['alerts']} | {r['max_per_minute']} | {sup or '-'} |"
        )
    out += [
        "",
        "## Alert flow (default settings)",
        "",
        f"- alerts per day: at most {flow['alerts_per_day_max']} "
        f"({flow['alerts_per_day_per_50_instruments_max']} per 50 instruments); "
        f"at most {flow['alerts_per_minute_max']} in one bar minute, "
        f"{flow['minutes_over_5_alerts']} minutes with more than 5 (the alert manager's "
        "`alerts.max_alerts_per_minute` caps a minute whatever the universe size);",
        f"- {flow['signals']} signals, {flow['alerts']} published; suppressed: "
        + ", ".join(f"{k} {v}" for k, v in flow["suppressed"].items())
        + ".",
        "",
    ]
    for scope in ("all", "held out"):
        t = ev.table.filter(pl.col("scope") == scope)
        if t.height == 0:
            continue
        out += [f"## Verdicts, {scope} sessions", ""]
        out += [
            "| pattern | window | sessions (n/a) | alerts | n | hit rate [95% CI] "
            "| mean R [95% CI] | baseline mean R [95% CI] | difference [95% CI] | verdict "
            "| instrument-days: difference CI, verdict |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        ]
        for r in t.sort("pattern", "window_min").iter_rows(named=True):
            name = "**(all)**" if r["pattern"] == ALL_PATTERNS else f"`{r['pattern']}`"
            out.append(
                f"| {name} | {r['window_min']} | {r['clusters']} ({r['sessions_not_applicable']}) "
                f"| {r['alerts']} | {r['n']} | {_pct(r['hit_rate'], r['hit_lo'], r['hit_hi'])} "
                f"| {_f(r['mean_r'])}{ci_text(r['r_lo'], r['r_hi'])} "
                f"| {_f(r['base_mean_r'])}{ci_text(r['base_r_lo'], r['base_r_hi'])} "
                f"| {_f(r['diff'])}{ci_text(r['diff_lo'], r['diff_hi'])} | {r['verdict']} "
                f"| {r['iday_clusters']}:{ci_text(r['iday_diff_lo'], r['iday_diff_hi'])} "
                f"{r['iday_verdict']} |"
            )
        out.append("")
    return "\n".join(out) + "\n"


def _svg_chart(rows: list[dict[str, Any]], windows: Sequence[int]) -> str:
    """Inline SVG: mean R by window, pattern (blue) and baseline (grey) with 95% bars."""
    w, h, pad = 520, 220, 40
    vals = [x for r in rows for x in (r["r_lo"], r["r_hi"], r["base_r_lo"], r["base_r_hi"],
                                       r["mean_r"], r["base_mean_r"])
            if x is not None and not math.isnan(x)]  # fmt: skip
    lo, hi = min([*vals, -0.5]), max([*vals, 0.5])

    def y(v: float) -> float:
        return pad / 2 + (hi - v) / (hi - lo) * (h - pad)

    def x(i: int, off: float) -> float:
        return pad + (i + 0.5 + off) * (w - pad) / len(windows)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'role="img" aria-label="mean R by window">',
             f'<line x1="{pad}" x2="{w}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#999" '
             'stroke-dasharray="4 3"/>',
             f'<text x="2" y="{y(hi) + 10:.1f}" font-size="10">{hi:+.2f} R</text>',
             f'<text x="2" y="{y(lo):.1f}" font-size="10">{lo:+.2f} R</text>']  # fmt: skip
    by_w = {r["window_min"]: r for r in rows}
    for i, win in enumerate(windows):
        parts.append(f'<text x="{x(i, 0) - 12:.1f}" y="{h - 4}" font-size="10">{win} min</text>')
        r = by_w.get(win)
        if r is None:
            continue
        for key, off, colour in (("", -0.15, "#1f6feb"), ("base_", 0.15, "#777")):
            m, a, b = r[f"{key}mean_r"], r[f"{key}r_lo"], r[f"{key}r_hi"]
            if m is None or math.isnan(m):
                continue
            if a is not None and not math.isnan(a):
                parts.append(f'<line x1="{x(i, off):.1f}" x2="{x(i, off):.1f}" y1="{y(a):.1f}" '
                             f'y2="{y(b):.1f}" stroke="{colour}" stroke-width="2"/>')  # fmt: skip
            parts.append(f'<circle cx="{x(i, off):.1f}" cy="{y(m):.1f}" r="4" fill="{colour}">'
                         f"<title>{html.escape(key or 'pattern ')}mean R {m:+.3f}</title>"
                         "</circle>")  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def render_html(ev: Evaluation, command: str) -> str:
    """A self-contained HTML page (no scripts, no external resources): per pattern an inline
    SVG chart of mean R by window (pattern blue, baseline grey, 95% intervals) and its table
    over all sessions."""
    t = ev.table.filter(pl.col("scope") == "all")
    body = [f"<h1>aion evaluation</h1><p>Command: <code>{html.escape(command)}</code>. "
            f"{ev.sessions.height} sessions, {int(ev.sessions['alerts'].sum())} alerts. "
            "Blue: the pattern's mean R; grey: the random baseline; bars: 95% bootstrap "
            "intervals over sessions. The Markdown report holds the rules and every table."
            "</p>"]  # fmt: skip
    for pat in sorted(set(t["pattern"].to_list())):
        rows = t.filter(pl.col("pattern") == pat).sort("window_min").to_dicts()
        body.append(f"<h2>{html.escape(pat)}</h2>{_svg_chart(rows, ev.windows)}")
        body.append("<table><tr><th>window</th><th>sessions</th><th>n</th><th>mean R</th>"
                    "<th>baseline mean R</th><th>difference</th><th>verdict</th></tr>")  # fmt: skip
        for r in rows:
            body.append(
                f"<tr><td>{r['window_min']} min</td><td>{r['clusters']}</td><td>{r['n']}</td>"
                f"<td>{_f(r['mean_r'])}{ci_text(r['r_lo'], r['r_hi'])}</td>"
                f"<td>{_f(r['base_mean_r'])}{ci_text(r['base_r_lo'], r['base_r_hi'])}</td>"
                f"<td>{_f(r['diff'])}{ci_text(r['diff_lo'], r['diff_hi'])}</td>"
                f"<td>{html.escape(r['verdict'])}</td></tr>"
            )
        body.append("</table>")
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
    )
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>aion evaluation</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")  # fmt: skip


def write_reports(ev: Evaluation, out_dir: Path, command: str) -> dict[str, Path]:
    """Write ``evaluation.md``, ``evaluation.html`` and ``evaluation-trades.parquet``
    (:attr:`Evaluation.trades`) into ``out_dir`` (created); returns their paths by kind.

    Raises:
        OSError: the folder or a file cannot be written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": out_dir / "evaluation.md",
        "html": out_dir / "evaluation.html",
        "parquet": out_dir / "evaluation-trades.parquet",
    }
    paths["markdown"].write_text(render_markdown(ev, command), encoding="utf-8")
    paths["html"].write_text(render_html(ev, command), encoding="utf-8")
    ev.trades.write_parquet(paths["parquet"])
    return paths
