"""The rich live view of a running scan and the final summary."""

from __future__ import annotations

import json
import time

from rich.console import Group
from rich.table import Table

from aion.app import Scanner
from aion.market.time import to_ist


class LiveView:
    """Renders ticks/s, queue depths, instruments, counters and the latest alerts."""

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self._last_ticks = 0
        self._last_t = time.monotonic()
        self._rate = 0.0

    def __rich__(self) -> Group:
        s = self.scanner
        e = s.engine
        now = time.monotonic()
        if e is None:
            return Group("starting...")
        c = e.counters
        dt_s = now - self._last_t
        if dt_s >= 0.5:
            self._rate = (c.ticks - self._last_ticks) / dt_s
            self._last_ticks, self._last_t = c.ticks, now
        stats = Table(title="aion scan", show_header=False, expand=False)
        stats.add_column("k", style="bold")
        stats.add_column("v", justify="right")
        clock = to_ist(e.clock).strftime("%Y-%m-%d %H:%M:%S IST") if e.clock else "-"
        rows = [
            ("exchange time", clock),
            ("instruments", str(len(s.universe))),
            ("frames", f"{c.frames:,}"),
            ("ticks", f"{c.ticks:,}"),
            ("ticks/s", f"{self._rate:,.0f}"),
            ("malformed frames", str(c.malformed_frames)),
            ("bars closed", f"{c.bars:,}"),
            ("alerts", str(e.alert_manager.counters.published)),
            ("raw queue", f"{s.raw.qsize()} / {s.raw.maxsize} (drops {s.raw.stats.dropped})"),
            ("out queue", f"{s.out.qsize()} / {s.out.maxsize} (drops {s.out.stats.dropped})"),
            ("redis commands", f"{s.store.stats.commands:,}" if s.store else "-"),
        ]
        for k, v in rows:
            stats.add_row(k, v)
        alerts = Table(title="latest alerts", expand=False)
        for col in ("bar (IST)", "symbol", "pattern", "dir", "conf", "entry", "stop", "target"):
            alerts.add_column(col)
        for a in reversed(e.recent_alerts[-8:]):
            alerts.add_row(
                to_ist(a.bar_start).strftime("%H:%M"),
                a.symbol,
                a.pattern,
                a.direction,
                f"{a.confidence:.2f}",
                f"{a.plan.entry:.2f}",
                f"{a.plan.stop:.2f}",
                f"{a.plan.target:.2f}",
            )
        return Group(stats, alerts)


def summary_pairs(values: dict) -> list[tuple[str, str]]:
    """The final summary as ``(name, text)`` pairs: integers with thousands separators, dicts
    and lists as compact JSON (the JSON schema is ``aion scan --json``)."""
    out = []
    for k, v in values.items():
        if isinstance(v, int) and not isinstance(v, bool):
            text = f"{v:,}"
        elif isinstance(v, dict | list):
            text = json.dumps(v, separators=(",", ":")) if v else "-"
        else:
            text = str(v)
        out.append((k, text))
    return out
