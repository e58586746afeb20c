"""When a live scan may run: XNSE trading days and session times (cron-friendly gating).

A live ``aion scan`` (Kite, not ``--replay``/``--ws-url``) started on a day NSE
is closed, or outside ``scan_lead_minutes`` before the pre-open (09:00 IST) ..
the end of the closing session (15:40 IST), prints one line and exits 0, so a
crontab can start it every weekday without knowing the holidays. ``--force``
skips the gate; replays never consult the wall clock.

``AION_NOW`` (ISO-8601 with offset, e.g. ``2022-11-08T10:00:00+05:30``, or epoch
seconds) replaces the wall clock for this decision only; it exists to test the
gate and to dry-run a crontab.
"""

from __future__ import annotations

import datetime as dt
import os
import time

from aion.market.calendar import MarketCalendar
from aion.market.time import to_ist


def wall_now_s() -> float:
    """Epoch seconds of now, or of ``AION_NOW`` when set.

    Raises:
        ValueError: ``AION_NOW`` is neither epoch seconds nor ISO-8601 with an offset.
    """
    text = os.environ.get("AION_NOW", "").strip()
    if not text:
        return time.time()
    try:
        return float(text)
    except ValueError:
        pass
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"AION_NOW={text!r}: give a UTC offset, e.g. +05:30")
    return when.timestamp()


def live_scan_gate(calendar: MarketCalendar, now_s: float, lead_minutes: int = 15) -> str | None:
    """None when a live scan may start at ``now_s`` (epoch s), else the one line saying why not.

    A scan may start from ``lead_minutes`` before the pre-open (so it sees the 09:00
    snapshot) until the end of the closing session, on XNSE trading days and
    configured special sessions (e.g. Muhurat trading in the evening).
    """
    now = to_ist(now_s)
    day = now.date()
    times = calendar.session(day)
    stamp = now.strftime("%Y-%m-%d %H:%M IST")
    if times is None:
        try:
            nxt = calendar.next_trading_day(day)
            nxt_times = calendar.session(nxt)
            hint = f"; next session {nxt} {nxt_times.open:%H:%M} IST" if nxt_times else ""
        except LookupError:
            hint = ""
        return (
            f"NSE is closed on {day:%a %Y-%m-%d} (XNSE holiday or weekend){hint}; "
            "not scanning (--force to scan anyway)"
        )
    start = times.pre_open_start - dt.timedelta(minutes=lead_minutes)
    if start <= now < times.closing_end:
        return None
    name = f" {times.name}" if times.name else ""
    return (
        f"outside the NSE{name} session at {stamp}: trading {times.open:%H:%M}-"
        f"{times.close:%H:%M} IST (scan from {start:%H:%M}); not scanning (--force to scan anyway)"
    )
