"""The Markdown report of ``aion validate``: per-pattern tables against the random baseline."""

from __future__ import annotations

import math

import polars as pl

from aion.validation.stats import ALL_PATTERNS

_RULES = """\
How to read this report (rules in `aion/validation/forward.py`):

- each alert is one trade entered at its bar's close; it is followed on the later 1-minute bars
  of the same instrument for W minutes after that close;
- **hit rate**: share of trades whose **target** was reached before the stop within W minutes;
  a bar reaching both the stop and the target counts as a **stop** (conservative); fills at
  the stop/target price, no slippage or costs;
- **mean R**: outcome in units of the risk `|entry - stop|`: -1 at the stop, +reward:risk at
  the target, the mark-to-market at the window's last close for a trade still open;
- **MFE/MAE R**: mean largest favourable / adverse excursion until the exit, in R;
- **baseline**: random entries on the same instruments from each alert's bar to {jitter}
  minutes after it (never before: a bar before the alert would see the move that raised it),
  on a coin-flip side, with the alert's stop distance (as a fraction of price) and
  reward:risk, stop and target rounded to the tick; {draws} draws per alert, seed {seed};
- intervals are 95%: Wilson for the hit rate, Student t for mean R (baseline draws share
  their alert's time and instrument, so their intervals are optimistic);
- **difference**: pattern mean R - baseline mean R with a bootstrap interval that resamples
  whole instruments (alerts of one instrument are not independent); **verdict**: `beats`
  when the interval's lower bound is above 0, `worse` when its upper bound is below 0,
  else `no evidence`. One day is little evidence: `aion evaluate` pools many sessions.
"""


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}%"


def _num(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:+.2f}"


def _ci(lo: float, hi: float, pct: bool = False) -> str:
    if math.isnan(lo) or math.isnan(hi):
        return ""
    f = _pct if pct else _num
    return f" [{f(lo)}, {f(hi)}]"


def render_report(
    summary: pl.DataFrame,
    date: str,
    alerts: int,
    draws: int,
    jitter_min: int,
    seed: int,
) -> str:
    """Markdown text: a header with the rules, then one table per window.

    Args:
        summary: :func:`aion.validation.stats.summarize` output, optionally joined with
            :func:`aion.validation.stats.compare`'s ``diff``, ``diff_lo``, ``diff_hi`` and
            ``verdict`` (shown as ``-`` when absent).
        date: the trading date shown in the title (``YYYY-MM-DD``).
        alerts: number of alerts validated.
        draws, jitter_min, seed: the baseline's settings (shown in the rules).
    """
    out = [f"# aion forward validation: {date}", ""]
    out.append(f"{alerts} alerts validated.")
    out.append("")
    out.append(_RULES.format(jitter=jitter_min, draws=draws, seed=seed))
    if summary.height == 0:
        out.append("No alerts on this date: nothing to validate.")
        return "\n".join(out) + "\n"
    head = (
        "| pattern | alerts | n | hit rate [95% CI] | mean R [95% CI] | MFE R | MAE R "
        "| baseline n | baseline hit rate [95% CI] | baseline mean R [95% CI] "
        "| difference [95% CI] | verdict |"
    )
    rule = "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    for w in sorted(set(summary["window_min"].to_list())):
        out += ["", f"## Within {w} minute{'s' if w != 1 else ''}", "", head, rule]
        for r in summary.filter(pl.col("window_min") == w).iter_rows(named=True):
            name = f"**{r['pattern']}**" if r["pattern"] == ALL_PATTERNS else f"`{r['pattern']}`"
            out.append(
                f"| {name} | {r['alerts']} | {r['n']} "
                f"| {_pct(r['hit_rate'])}{_ci(r['hit_lo'], r['hit_hi'], pct=True)} "
                f"| {_num(r['mean_r'])}{_ci(r['r_lo'], r['r_hi'])} "
                f"| {_num(r['mean_mfe_r'])} | {_num(r['mean_mae_r'])} "
                f"| {r['base_n']} "
                f"| {_pct(r['base_hit_rate'])}{_ci(r['base_hit_lo'], r['base_hit_hi'], pct=True)} "
                f"| {_num(r['base_mean_r'])}{_ci(r['base_r_lo'], r['base_r_hi'])} "
                f"| {_num(r.get('diff', math.nan))}"
                f"{_ci(r.get('diff_lo', math.nan), r.get('diff_hi', math.nan))} "
                f"| {r.get('verdict') or '-'} |"
            )
    return "\n".join(out) + "\n"
