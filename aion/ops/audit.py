"""``aion audit``: can yesterday's archived data be trusted? (the nightly job)

:func:`audit_day` reads one IST trading date from the Parquet archive
(:mod:`aion.archive`) and runs these checks (``fail`` makes the exit code 1):

- ``archive``: the day has archived 1-minute bars (fail otherwise);
- ``missing_minutes``: per instrument, regular-session minutes of the XNSE
  session (09:15-15:29 bar starts on a normal day, special sessions from
  ``calendar.special_sessions``) without a bar (fail when any);
- ``feed_gaps``: reconnect gaps recorded by the feed (``gaps`` table, wall
  clock) and silent stretches, i.e. session minutes in which no instrument had
  a bar (exchange clock) -- each with its duration (fail when any);
- ``volume_reconciliation``: per instrument, the sum of its bar volumes (all
  segments) against the day's final cumulative volume minus the first one seen
  (``volume_state`` table, Kite ``volume_traded``) (fail on any mismatch);
- ``tick_quality``: bad-cumulative ticks per instrument, and the scans'
  ``bad_cumulative_ticks``, ``late_ticks``, ``invalid_ticks``,
  ``malformed_frames`` (warn) and ``queue_drops`` (fail);
- ``alerts_outside_hours``: alerts whose bar starts outside the continuous
  session (fail when any);
- ``validation``: forward-validation summary per pattern and window
  (:func:`aion.validation.stats.summarize`; computed and archived if missing);
- ``health``: a snapshot of :func:`aion.ops.health.run_health` (warn when not ok).

Reports: ``audit-YYYY-MM-DD.md`` and a self-contained ``audit-YYYY-MM-DD.html``
(inline SVG, no JavaScript, no network) in the reports folder; the newest
``reports.keep_last`` dates are kept. Each chart's data is embedded as JSON in
``<script type="application/json" id="chart-<name>">`` next to its SVG:
``alerts_per_pattern``, ``hit_rate`` (pattern x window), ``rvol_heatmap``
(instrument x IST hour: the hour's volume / the volume the scanner's
time-of-day baseline expected, from the archived ``rvol_1m`` rows),
``gap_timeline`` (epoch seconds).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from aion.archive.config import archive_root
from aion.archive.store import Archive
from aion.archive.validations import archive_validations
from aion.config import AionConfig
from aion.market.calendar import MarketCalendar
from aion.market.time import IST_OFFSET_S, to_ist
from aion.ops.health import run_health
from aion.ops.logging import log_event
from aion.validation.stats import summarize

log = logging.getLogger(__name__)

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass
class Check:
    """One audit check: ``status`` pass/warn/fail, a one-line ``summary``, detail rows."""

    name: str
    status: str
    summary: str
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AuditResult:
    """Everything the reports show for one IST trading ``date``."""

    date: dt.date
    checks: list[Check]
    charts: dict[str, dict[str, Any]]
    health: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        """True when any check failed (``aion audit`` exits 1)."""
        return any(c.status == FAIL for c in self.checks)

    def check(self, name: str) -> Check:
        """The check called ``name``. Raises KeyError."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)


def _finite(x: float | None, digits: int | None = None) -> float | None:
    """``x`` (rounded to ``digits``) when finite, else None (JSON null, an empty cell)."""
    if x is None or not math.isfinite(x):
        return None
    return x if digits is None else round(x, digits)


def _hhmm(epoch_s: int) -> str:
    return to_ist(epoch_s).strftime("%H:%M")


def _ranges(starts: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs of minute starts (epoch s, ascending) as (first, last) pairs."""
    out: list[tuple[int, int]] = []
    for s in starts:
        if out and s == out[-1][1] + 60:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def _fmt_ranges(rs: list[tuple[int, int]], limit: int = 6) -> str:
    text = ", ".join(_hhmm(a) if a == b else f"{_hhmm(a)}-{_hhmm(b)}" for a, b in rs[:limit])
    return text + (f" (+{len(rs) - limit} more)" if len(rs) > limit else "")


def _session_minutes(calendar: MarketCalendar, date: dt.date) -> tuple[int, int] | None:
    times = calendar.session(date)
    if times is None:
        return None
    return int(times.open.timestamp()), int(times.close.timestamp())


def _missing_minutes(bars: pl.DataFrame, session: tuple[int, int]) -> tuple[Check, list[int]]:
    expected = list(range(session[0], session[1], 60))
    regular = bars.filter(pl.col("segment") == "regular")
    rows = []
    total = 0
    for sym, group in regular.group_by("symbol", maintain_order=True):
        have = set(group["start"].to_list())
        missing = [s for s in expected if s not in have]
        total += len(missing)
        rows.append(
            {
                "symbol": sym[0],
                "bars": len(have & set(expected)),
                "missing": len(missing),
                "ranges": _fmt_ranges(_ranges(missing)),
            }
        )
    rows.sort(key=lambda r: (-r["missing"], r["symbol"]))
    any_bar = set(regular["start"].to_list())
    silent = [s for s in expected if s not in any_bar]
    n = len(rows)
    summary = f"{total} missing minutes over {n} instruments ({len(expected)} expected each)"
    return Check("missing_minutes", FAIL if total else PASS, summary, rows), silent


def _feed_gaps(gaps: pl.DataFrame, silent: list[int]) -> tuple[Check, list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    spans: list[dict[str, Any]] = []
    for a, b in _ranges(silent):
        minutes = (b - a) // 60 + 1
        rows.append(
            {
                "kind": "silent",
                "start": _hhmm(a),
                "end": _hhmm(b + 60),
                "duration_s": minutes * 60,
                "detail": f"no instrument had a bar for {minutes} minute(s)",
            }
        )
        spans.append({"kind": "silent", "start": a, "end": b + 60})
    for g in gaps.iter_rows(named=True):
        start = g["disconnected_ns"] / 1e9
        end = g["reconnected_ns"] / 1e9 if g["reconnected_ns"] is not None else None
        rows.append(
            {
                "kind": "reconnect",
                "start": to_ist(start).strftime("%H:%M:%S"),
                "end": to_ist(end).strftime("%H:%M:%S") if end is not None else "never",
                "duration_s": g["duration_s"],
                "detail": f"{g['connection']}: {g['reason']} ({g['attempts']} attempts)",
            }
        )
        spans.append({"kind": "reconnect", "start": start, "end": end})
    total_s = sum(float(r["duration_s"] or 0) for r in rows)
    summary = (
        f"{len(rows)} gaps ({sum(r['kind'] == 'silent' for r in rows)} silent, "
        f"{gaps.height} reconnects), {total_s:.0f} s in total"
    )
    return Check("feed_gaps", FAIL if rows else PASS, summary, rows), spans


def _volume(bars: pl.DataFrame, state: pl.DataFrame) -> Check:
    sums = dict(bars.group_by("symbol").agg(pl.col("volume").sum()).iter_rows())
    rows = []
    seen = set()
    for r in state.iter_rows(named=True):
        sym = r["symbol"]
        seen.add(sym)
        expected = int(r["last_cumulative"]) - int(r["first_cumulative"])
        got = int(sums.get(sym, 0))
        if got != expected:
            rows.append(
                {
                    "symbol": sym,
                    "bar_volume": got,
                    "cumulative_delta": expected,
                    "difference": got - expected,
                }
            )
    for sym, got in sums.items():
        if sym not in seen and got:
            rows.append(
                {
                    "symbol": sym,
                    "bar_volume": int(got),
                    "cumulative_delta": None,
                    "difference": None,
                }
            )
    summary = (
        f"{len(rows)} of {len(set(sums) | seen)} instruments disagree with "
        "last - first cumulative volume_traded"
    )
    return Check("volume_reconciliation", FAIL if rows else PASS, summary, rows)


_RUN_COUNTERS_WARN = ("bad_cumulative_ticks", "late_ticks", "invalid_ticks", "malformed_frames")
_RUN_COUNTERS_FAIL = ("queue_drops",)


def _tick_quality(state: pl.DataFrame, runs: pl.DataFrame) -> Check:
    totals = {k: 0 for k in (*_RUN_COUNTERS_WARN, *_RUN_COUNTERS_FAIL)}
    for r in runs.iter_rows(named=True):
        summary = json.loads(r["summary"])
        for k in totals:
            totals[k] += int(summary.get(k) or 0)
    rows = [
        {"symbol": r["symbol"], "bad_cumulative_ticks": int(r["bad_ticks"])}
        for r in state.iter_rows(named=True)
        if r["bad_ticks"]
    ]
    status = FAIL if any(totals[k] for k in _RUN_COUNTERS_FAIL) else PASS
    if status == PASS and (any(totals[k] for k in _RUN_COUNTERS_WARN) or rows):
        status = WARN
    summary = ", ".join(f"{k} {v}" for k, v in totals.items()) + f" over {runs.height} runs"
    return Check("tick_quality", status, summary, rows)


def _alerts_outside(alerts: pl.DataFrame, session: tuple[int, int] | None) -> Check:
    rows = []
    for a in alerts.iter_rows(named=True):
        start = a["bar_start"]
        if session is None or start is None or not session[0] <= start < session[1]:
            rows.append({"alert_id": a["alert_id"], "bar_time": a["bar_time"]})
    summary = f"{len(rows)} of {alerts.height} alerts outside the continuous session"
    return Check("alerts_outside_hours", FAIL if rows else PASS, summary, rows)


def _validation(
    archive: Archive, date: dt.date, alerts: pl.DataFrame
) -> tuple[Check, pl.DataFrame]:
    vals = archive.read("validations", [date])
    if vals.height == 0 and alerts.height:
        computed = archive_validations(archive, date)
        vals = computed if computed is not None else vals
    if vals.height == 0:
        return Check("validation", PASS, "no alerts to validate"), pl.DataFrame()
    summ = summarize(vals.drop("date", strict=False))
    rows = [
        {
            "pattern": r["pattern"],
            "window_min": r["window_min"],
            "n": r["n"],
            "hit_rate": _finite(r["hit_rate"], 4),
            "mean_r": _finite(r["mean_r"], 4),
        }
        for r in summ.iter_rows(named=True)
    ]
    n_alerts = vals["alert_id"].n_unique()
    return Check("validation", PASS, f"{n_alerts} alerts validated", rows), summ


def _rvol(rvol: pl.DataFrame, session: tuple[int, int]) -> dict[str, Any]:
    """RVOL per instrument and IST hour: the hour's volume / its expected volume.

    Both come from the archived per-minute ``rvol_1m`` rows (the scanner's time-of-day
    baseline), so an hour's RVOL is ``sum(volume) / sum(expected_bar)`` over its bars.
    """
    hours = sorted({to_ist(s).hour for s in range(session[0], session[1], 60)})
    usable = rvol.filter(pl.col("expected_bar").is_not_null() & (pl.col("expected_bar") > 0))
    by = (
        usable.with_columns(((pl.col("start") + IST_OFFSET_S) % 86_400 // 3600).alias("hour"))
        .group_by(["symbol", "hour"])
        .agg(pl.col("volume").sum(), pl.col("expected_bar").sum())
    )
    look = {(r["symbol"], r["hour"]): r for r in by.iter_rows(named=True)}
    symbols = sorted(set(usable["symbol"].to_list()))
    matrix = []
    for sym in symbols:
        row: list[float | None] = []
        for h in hours:
            r = look.get((sym, h))
            row.append(round(r["volume"] / r["expected_bar"], 4) if r else None)
        matrix.append(row)
    return {"instruments": symbols, "hours": hours, "rvol": matrix}


def audit_day(
    archive: Archive,
    date: dt.date,
    calendar: MarketCalendar,
    health: dict[str, Any] | None = None,
) -> AuditResult:
    """Run every check on the archived IST trading ``date``.

    Args:
        archive: the archive to read.
        date: IST trading date.
        calendar: XNSE calendar with the configured special sessions.
        health: a :func:`aion.ops.health.run_health` report to include (None: skipped).
    """
    bars = archive.read("bars_1m", [date])
    alerts = archive.read("alerts", [date])
    state = archive.read("volume_state", [date])
    gaps = archive.read("gaps", [date])
    runs = archive.read("runs", [date])
    session = _session_minutes(calendar, date)
    checks: list[Check] = []
    if bars.height == 0:
        checks.append(Check("archive", FAIL, f"no archived bars for {date}"))
    elif session is None:
        checks.append(Check("archive", WARN, f"{date} is not an XNSE trading day"))
    else:
        n = bars["symbol"].n_unique()
        checks.append(Check("archive", PASS, f"{bars.height} bars of {n} instruments"))
    silent: list[int] = []
    if session is not None and bars.height:
        c, silent = _missing_minutes(bars, session)
        checks.append(c)
    gap_check, spans = _feed_gaps(gaps, silent)
    checks.append(gap_check)
    checks.append(_volume(bars, state))
    checks.append(_tick_quality(state, runs))
    checks.append(_alerts_outside(alerts, session))
    val_check, summ = _validation(archive, date, alerts)
    checks.append(val_check)
    if health is not None:
        ok = health.get("status") == "ok"
        bad = [c for c in health.get("checks", []) if c["status"] != "ok"]
        checks.append(Check("health", PASS if ok else WARN, f"status {health.get('status')}", bad))
    counts = alerts.group_by("pattern").len().sort("pattern") if alerts.height else None
    charts: dict[str, dict[str, Any]] = {
        "alerts_per_pattern": {
            "patterns": counts["pattern"].to_list() if counts is not None else [],
            "counts": counts["len"].to_list() if counts is not None else [],
        },
        "hit_rate": _hit_rate_chart(summ),
        "rvol_heatmap": _rvol(archive.read("rvol_1m", [date]), session) if session else {},
        "gap_timeline": {
            "session": list(session) if session else [],
            "gaps": spans,
        },
    }
    return AuditResult(date, checks, charts, health)


def _hit_rate_chart(summ: pl.DataFrame) -> dict[str, Any]:
    if summ.height == 0:
        return {"patterns": [], "windows": [], "hit_rate": [], "n": []}
    pats = list(dict.fromkeys(summ["pattern"].to_list()))
    wins = sorted(set(summ["window_min"].to_list()))
    look = {(r["pattern"], r["window_min"]): r for r in summ.iter_rows(named=True)}
    rate = [[_finite(look[(p, w)]["hit_rate"]) for w in wins] for p in pats]
    n = [[int(look[(p, w)]["n"]) for w in wins] for p in pats]
    return {"patterns": pats, "windows": wins, "hit_rate": rate, "n": n}


# -- reports -------------------------------------------------------------------------------


def render_markdown(result: AuditResult) -> str:
    """The Markdown report: verdict, one table of checks, then each check's detail rows."""
    verdict = "FAILED" if result.failed else "passed"
    lines = [
        f"# aion audit {result.date.isoformat()}: {verdict}",
        "",
        "| check | status | summary |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {c.name} | {c.status} | {c.summary} |" for c in result.checks]
    for c in result.checks:
        if not c.rows:
            continue
        cols = list(c.rows[0])
        lines += [
            "",
            f"## {c.name}",
            "",
            "| " + " | ".join(cols) + " |",
            "|" + " --- |" * len(cols),
        ]
        lines += ["| " + " | ".join(str(r.get(k, "")) for k in cols) + " |" for r in c.rows[:200]]
    return "\n".join(lines) + "\n"


_W = 720


def _el(tag: str, text: str | None = None, **attrs: Any) -> str:
    """One SVG/HTML element; ``cls`` becomes ``class``, ``_`` in names becomes ``-``."""
    a = " ".join(
        f'{"class" if k == "cls" else k.replace("_", "-")}="{html.escape(str(v))}"'
        for k, v in attrs.items()
    )
    return f"<{tag} {a}/>" if text is None else f"<{tag} {a}>{html.escape(text)}</{tag}>"


def _svg_open(name: str, width: float, height: float) -> str:
    return (
        f'<svg data-chart="{name}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width:.0f}" height="{height:.0f}">'
    )


def _empty(name: str, text: str = "no data") -> str:
    return _el("p", text, cls="empty", data_chart=name)


def _svg_bars(name: str, labels: list[str], values: list[float]) -> str:
    if not values:
        return _empty(name)
    top = max(values) or 1
    bar_h, left = 26, 160
    parts = [_svg_open(name, _W, bar_h * len(values) + 20)]
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        y = 10 + i * bar_h
        w = (_W - left - 60) * v / top
        parts.append(_el("text", lab, x=left - 8, y=y + 17, text_anchor="end"))
        parts.append(
            _el(
                "rect",
                cls="bar",
                x=left,
                y=y + 3,
                width=f"{w:.1f}",
                height=bar_h - 8,
                fill="#4477aa",
            )
        )
        parts.append(_el("text", f"{v:g}", x=f"{left + w + 6:.1f}", y=y + 17))
    parts.append("</svg>")
    return "".join(parts)


def _colour(v: float | None, lo: float, hi: float) -> str:
    if v is None:
        return "#eeeeee"
    t = 0.0 if hi <= lo else min(1.0, max(0.0, (v - lo) / (hi - lo)))
    r, g, b = int(255 - 200 * t), int(255 - 120 * t), int(255 - 60 * t)
    return f"#{r:02x}{g:02x}{b:02x}"


def _svg_heatmap(
    name: str,
    rows: list[str],
    cols: list[str],
    matrix: list[list[float | None]],
    lo: float,
    hi: float,
) -> str:
    if not rows or not cols:
        return _empty(name)
    cw, ch, left, top = 70, 20, 170, 24
    parts = [_svg_open(name, left + cw * len(cols) + 10, top + ch * len(rows) + 10)]
    for j, c in enumerate(cols):
        parts.append(_el("text", c, x=left + j * cw + cw / 2, y=16, text_anchor="middle"))
    for i, r in enumerate(rows):
        y = top + i * ch
        parts.append(_el("text", r, x=left - 6, y=y + 14, text_anchor="end"))
        for j, v in enumerate(matrix[i]):
            x = left + j * cw
            fill = _colour(v, lo, hi)
            parts.append(_el("rect", cls="cell", x=x, y=y, width=cw - 2, height=ch - 2, fill=fill))
            label = "" if v is None else f"{v:.2f}"
            parts.append(_el("text", label, x=x + cw / 2 - 1, y=y + 14, text_anchor="middle"))
    parts.append("</svg>")
    return "".join(parts)


def _svg_timeline(name: str, session: list[int], spans: list[dict[str, Any]]) -> str:
    if not session:
        return _empty(name, "no session")
    a, b = session
    left, width = 20, _W - 40
    parts = [_svg_open(name, _W, 90)]
    parts.append(_el("rect", x=left, y=30, width=width, height=24, fill="#d8ecd8"))
    for t in range(a, b + 1, 3600 if b - a > 3 * 3600 else 1800):
        x = left + width * (t - a) / (b - a)
        parts.append(_el("text", _hhmm(t), x=f"{x:.1f}", y=74, text_anchor="middle"))
    for s in spans:
        end = s["end"] if s["end"] is not None else b
        x0 = left + width * (max(a, min(b, s["start"])) - a) / (b - a)
        x1 = left + width * (max(a, min(b, end)) - a) / (b - a)
        fill = "#cc3311" if s["kind"] == "silent" else "#ee7733"
        w = f"{max(2.0, x1 - x0):.1f}"
        parts.append(_el("rect", cls="gap", x=f"{x0:.1f}", y=26, width=w, height=32, fill=fill))
    parts.append("</svg>")
    return "".join(parts)


def render_html(result: AuditResult) -> str:
    """A self-contained HTML report: checks, four inline-SVG charts with their data as JSON."""
    ch = result.charts
    app, hr = ch["alerts_per_pattern"], ch["hit_rate"]
    rv, gt = ch["rvol_heatmap"], ch["gap_timeline"]
    windows = [f"{w} min" for w in hr["windows"]]
    hours = [f"{h:02d}:00" for h in rv.get("hours", [])]
    charts = [
        (
            "alerts_per_pattern",
            "Alerts per pattern",
            _svg_bars("alerts_per_pattern", app["patterns"], app["counts"]),
        ),
        (
            "hit_rate",
            "Hit rate (target first) per pattern and window",
            _svg_heatmap("hit_rate", hr["patterns"], windows, hr["hit_rate"], 0.0, 1.0),
        ),
        (
            "rvol_heatmap",
            "RVOL by instrument and IST hour",
            _svg_heatmap(
                "rvol_heatmap", rv.get("instruments", []), hours, rv.get("rvol", []), 0.0, 3.0
            ),
        ),
        (
            "gap_timeline",
            "Feed gaps on the session timeline (IST)",
            _svg_timeline("gap_timeline", gt["session"], gt["gaps"]),
        ),
    ]
    colour = {PASS: "#228833", WARN: "#ccbb44", FAIL: "#cc3311"}
    rows = "".join(
        f"<tr><td>{html.escape(c.name)}</td>"
        f'<td style="color:{colour[c.status]}"><b>{c.status}</b></td>'
        f"<td>{html.escape(c.summary)}</td></tr>"
        for c in result.checks
    )
    details = []
    for c in result.checks:
        if not c.rows:
            continue
        cols = list(c.rows[0])
        head = "".join(f"<th>{html.escape(k)}</th>" for k in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(r.get(k, '')))}</td>" for k in cols) + "</tr>"
            for r in c.rows[:200]
        )
        details.append(f"<h3>{html.escape(c.name)}</h3><table><tr>{head}</tr>{body}</table>")
    sections = "".join(
        f'<section><h2>{html.escape(title)}</h2>{svg}<script type="application/json" '
        f'id="chart-{name}">{_json_for_script(ch[name])}</script></section>'
        for name, title, svg in charts
    )
    verdict = "FAILED" if result.failed else "passed"
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>aion audit {result.date}</title><style>"
        "body{font-family:sans-serif;margin:24px;max-width:1000px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
        "svg text{font-size:12px;font-family:sans-serif}"
        "</style></head><body>"
        f"<h1>aion audit {result.date}: {verdict}</h1>"
        f"<table><tr><th>check</th><th>status</th><th>summary</th></tr>{rows}</table>"
        f"{sections}{''.join(details)}</body></html>\n"
    )


def _json_for_script(obj: Any) -> str:
    return json.dumps(obj, default=str).replace("</", "<\\/")


_REPORT = re.compile(r"^audit-(\d{4}-\d{2}-\d{2})\.(md|html)$")


def write_reports(result: AuditResult, folder: Path, keep_last: int) -> tuple[Path, Path]:
    """Write ``audit-<date>.md`` and ``.html`` to ``folder``; keep the newest ``keep_last`` dates.

    Returns (markdown path, html path).
    """
    folder.mkdir(parents=True, exist_ok=True)
    md = folder / f"audit-{result.date.isoformat()}.md"
    page = folder / f"audit-{result.date.isoformat()}.html"
    md.write_text(render_markdown(result), encoding="utf-8")
    page.write_text(render_html(result), encoding="utf-8")
    dates = sorted({m.group(1) for p in folder.iterdir() if (m := _REPORT.match(p.name))})
    for old in dates[:-keep_last]:
        for ext in ("md", "html"):
            (folder / f"audit-{old}.{ext}").unlink(missing_ok=True)
    return md, page


def run_audit(
    cfg: AionConfig, date: dt.date | None = None, with_health: bool = True
) -> tuple[AuditResult, Path, Path]:
    """``aion audit``: audit ``date`` (default: the newest archived day) and write the reports.

    Raises:
        LookupError: the archive holds no bars at all and no date was given.
    """
    archive = Archive(archive_root(cfg))
    if date is None:
        dates = archive.dates("bars_1m")
        if not dates:
            raise LookupError(f"the archive {archive.root} holds no bars yet; run a scan first")
        date = dates[-1]
    health = run_health(cfg) if with_health else None
    result = audit_day(archive, date, cfg.calendar.market_calendar(), health)
    folder = Path(cfg.reports.path).expanduser() if cfg.reports.path else cfg.data_dir() / "reports"
    md, page = write_reports(result, folder, cfg.reports.keep_last)
    statuses = {c.name: c.status for c in result.checks}
    log_event(
        log,
        "audit finished",
        date=date.isoformat(),
        failed=result.failed,
        checks=statuses,
        report=str(page),
    )
    return result, md, page
