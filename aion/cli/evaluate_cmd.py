"""``aion evaluate [PATHS...]``: build, replay and validate many sessions; verdicts per pattern.

Without PATHS: every session the bundled data can build (:func:`aion.validation.sessions.
bundled_sessions`); with PATHS (vendor 1-minute bar files or folders): every day they hold.
``--dates`` keeps some of them. Writes the Markdown and HTML reports and the Parquet file of
every alert x window (:func:`aion.validation.evaluate.write_reports`) into ``--out-dir``
(default ``<data_dir>/reports/evaluation``). A progress bar over sessions on a terminal only.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from aion.cli.context import ConfigDir, command_config, fail
from aion.cli.output import err, print_json, print_line, print_table


def evaluate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="vendor 1-minute bar files or folders (default: the bundled data)"),
    ] = None,
    dates: Annotated[
        str | None,
        typer.Option(help="comma-separated YYYY-MM-DD: evaluate only these sessions"),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out-dir", "-o", help="folder for the reports (default <data_dir>/reports/evaluation)"
        ),
    ] = None,
    boot: Annotated[int, typer.Option(help="bootstrap replicates (>= 100)")] = 2000,
    json_out: Annotated[
        bool, typer.Option("--json", help="print sessions, flow and every table row as JSON")
    ] = False,
    config_dir: ConfigDir = None,
) -> None:
    """Evaluate the alerts of many sessions against a random baseline; write the reports."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from aion.app import ScanError
    from aion.market.time import parse_date
    from aion.validation.evaluate import (
        PRIMARY_WINDOW_MIN,
        ci_text,
        flow_summary,
        write_reports,
    )
    from aion.validation.evaluate import evaluate as run_evaluation
    from aion.validation.sessions import bundled_sessions, sessions_from_paths

    if boot < 100:
        fail("--boot must be >= 100")
    cfg = command_config(config_dir)
    try:
        specs = sessions_from_paths(paths) if paths else bundled_sessions()
        if dates:
            wanted = {parse_date(d.strip()) for d in dates.split(",") if d.strip()}
            missing = wanted - {s.date for s in specs}
            if missing:
                fail(f"no bars for {', '.join(sorted(d.isoformat() for d in missing))}")
            specs = [s for s in specs if s.date in wanted]
    except (ValueError, OSError) as exc:
        fail(str(exc))
        return
    reports = (
        Path(cfg.reports.path).expanduser() if cfg.reports.path else cfg.data_dir() / "reports"
    )
    folder = out_dir if out_dir is not None else reports / "evaluation"
    command = "aion evaluate " + shlex.join(sys.argv[2:]) if len(sys.argv) > 2 else "aion evaluate"
    try:
        with tempfile.TemporaryDirectory(prefix="aion-evaluate-") as work:
            if err.is_terminal and not json_out:
                with Progress(
                    TextColumn("sessions"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.description}"), console=err, transient=True,
                ) as progress:  # fmt: skip
                    task = progress.add_task("", total=len(specs))
                    ev = run_evaluation(
                        specs, cfg, Path(work), config_dir, n_boot=boot,
                        on_session=lambda r: progress.update(
                            task, advance=1,
                            description=f"{r.spec.date} {len(r.alerts)} alerts"),
                    )  # fmt: skip
            else:
                ev = run_evaluation(specs, cfg, Path(work), config_dir, n_boot=boot)
    except (ValueError, ScanError) as exc:
        fail(f"cannot evaluate: {exc}", 1)
        return
    try:
        written = write_reports(ev, folder, command)
    except OSError as exc:
        fail(f"cannot write the reports to {folder}: {exc}", 1)
        return
    flow = flow_summary(ev)
    if json_out:
        print_json(
            {"sessions": ev.sessions.to_dicts(), "flow": flow,
             "reports": {k: str(v) for k, v in written.items()},
             "rows": ev.table.to_dicts()}
        )  # fmt: skip
        return
    prim = ev.table.filter(
        (ev.table["scope"] == "all") & (ev.table["window_min"] == PRIMARY_WINDOW_MIN)
    ).sort("pattern")
    print_table(
        f"{flow['sessions']} sessions, {flow['alerts']} alerts, window {PRIMARY_WINDOW_MIN} min "
        f"(R: multiples of the stop distance) -> {written['markdown']}",
        ["pattern", "sessions", "n", "mean R", "baseline mean R", "difference [95% CI]",
         "verdict"],
        [
            [r["pattern"], str(r["clusters"]), str(r["n"]), f"{r['mean_r']:+.2f}",
             f"{r['base_mean_r']:+.2f}",
             f"{r['diff']:+.2f}{ci_text(r['diff_lo'], r['diff_hi'])}", r["verdict"]]
            for r in prim.iter_rows(named=True)
        ],
        right=["sessions", "n", "mean R", "baseline mean R", "difference [95% CI]"],
    )  # fmt: skip
    print_line(
        f"alert flow: at most {flow['alerts_per_day_max']} alerts a day "
        f"({flow['alerts_per_day_per_50_instruments_max']} per 50 instruments), "
        f"at most {flow['alerts_per_minute_max']} in one minute; reports: "
        + " ".join(str(p) for p in written.values())
    )
