"""Forward validation of an archived day's alerts, stored in the ``validations`` table.

The validation itself is :func:`aion.validation.forward.validate_alerts` (target or stop
first within its default windows, from later 1-minute bars); this module
only feeds it the archived alerts and bars in the shapes ``aion validate`` reads
from Redis (:func:`aion.store.queries.read_alerts` / ``read_bars``) and replaces
the day's ``validations`` partition with the frame it returns.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import polars as pl

from aion.archive.store import Archive
from aion.ops.logging import log_event
from aion.validation.forward import validate_alerts

log = logging.getLogger(__name__)


def archived_alerts(archive: Archive, date: dt.date) -> list[dict]:
    """The day's alerts as stream entries: ``{"id": stream_id, **fields}`` (all str values)."""
    df = archive.read("alerts", [date])
    return [{"id": r["stream_id"], **json.loads(r["fields"])} for r in df.iter_rows(named=True)]


def archived_bars_by_symbol(archive: Archive, date: dt.date) -> dict[str, list[dict]]:
    """The day's regular-session bars per symbol, as :func:`aion.store.queries.read_bars` gives."""
    df = archive.read("bars_1m", [date]).filter(pl.col("segment") == "regular")
    out: dict[str, list[dict]] = {}
    cols = ["time", "start", "open", "high", "low", "close", "volume", "oi", "ticks", "segment"]
    for r in df.select(["symbol", *cols]).iter_rows(named=True):
        out.setdefault(r.pop("symbol"), []).append(r)
    return out


def archive_validations(archive: Archive, date: dt.date) -> pl.DataFrame | None:
    """Validate the day's archived alerts and replace the ``validations`` partition.

    Returns the frame written, or None when there is nothing to validate or the
    validator failed (logged, not raised: an archive flush at shutdown must not
    fail because of it).
    """
    alerts = archived_alerts(archive, date)
    if not alerts:
        return None
    try:
        df = validate_alerts(alerts, archived_bars_by_symbol(archive, date))
    except Exception as exc:  # the validator's failure must not lose the archive flush
        log_event(
            log,
            "validation failed",
            logging.ERROR,
            date=date.isoformat(),
            error=f"{type(exc).__name__}: {exc}",
        )
        return None
    archive.replace("validations", date, df)
    return df
