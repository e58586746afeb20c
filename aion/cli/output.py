"""One output convention for every command.

- On a terminal (stdout is a TTY): rich tables, coloured unless ``NO_COLOR`` is set (rich
  honours it).
- Off a terminal (a pipe, a file, cron, CI logs): plain lines that are never truncated or
  wrapped and carry no control sequences: a title line, then a header line and one line per
  row with the columns padded to their widest cell (two spaces apart), or ``key: value`` lines
  for a two-column key/value listing. A cell holding several lines is joined with ``"; "``.
- ``--json`` (on every command that prints data): one JSON document on stdout, nothing else;
  the schemas are documented in the README (## Output).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)
"""stdout: rich decides colour from the TTY and ``NO_COLOR``."""
err = Console(stderr=True, highlight=False)
"""stderr: errors and progress."""


def on_terminal() -> bool:
    """True when stdout is a terminal (rich tables); False for pipes and files (plain lines)."""
    return console.is_terminal


def _plain_cell(value: str) -> str:
    return "; ".join(part for part in value.splitlines() if part) if "\n" in value else value


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Sequence[str] = (),
    colours: dict[str, dict[str, str]] | None = None,
) -> None:
    """Print a table by the module's convention.

    Args:
        title: one line above the table.
        columns: header names.
        rows: cells as text, one sequence per row (``len(columns)`` cells each).
        right: columns to right-justify (numbers) on a terminal and in plain lines.
        colours: ``column -> {cell text -> rich colour}``: colours a status cell on a
            terminal; ignored off it.
    """
    if on_terminal():
        t = Table(title=title)
        for c in columns:
            t.add_column(c, justify="right" if c in right else "left")
        paint = colours or {}
        for row in rows:
            cells = []
            for c, v in zip(columns, row, strict=True):
                colour = paint.get(c, {}).get(v)
                cells.append(f"[{colour}]{v}[/]" if colour else v)
            t.add_row(*cells)
        console.print(t)
        return
    plain = [[_plain_cell(v) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in plain)]) for i, c in enumerate(columns)]
    lines = [title]
    for cells in [list(columns), *plain]:
        parts = [
            v.rjust(w) if c in right else v.ljust(w)
            for c, v, w in zip(columns, cells, widths, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    _write_lines(lines)


def print_pairs(title: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Print ``key -> value`` pairs: a two-column rich table on a terminal, ``key: value``
    lines off it (values never cut)."""
    if on_terminal():
        t = Table(title=title, show_header=False)
        t.add_column("k", style="bold")
        t.add_column("v", justify="right")
        for k, v in pairs:
            t.add_row(k, v)
        console.print(t)
        return
    _write_lines([title, *(f"{k}: {_plain_cell(v)}" for k, v in pairs)])


def print_line(text: str) -> None:
    """One line of prose on stdout, never wrapped (rich markup allowed on a terminal)."""
    if on_terminal():
        console.print(text, soft_wrap=True)
    else:
        _write_lines([console.render_str(text).plain])


def print_json(document: Any) -> None:
    """``document`` as one JSON line on stdout (non-JSON values as their ``str``)."""
    sys.stdout.write(json.dumps(document, default=str) + "\n")
    sys.stdout.flush()


def _write_lines(lines: Sequence[str]) -> None:
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    sys.stdout.flush()
