"""The store thread's status file: Redis reachable or not, pending and dropped commands, for
``aion health`` (and the dashboard) when Redis itself cannot be asked.

One JSON file per scanning process under ``<data_dir>/run/store-<node>.json``, rewritten
atomically (a temporary file renamed over it) by the store thread at most once per wall
second, at once when an outage starts or ends, and removed when the store stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

STATUS_STALE_S = 10.0
"""A store status file older than this (wall seconds) describes no running scanner."""


def status_path(data_dir: Path, node: str) -> Path:
    """Where the store thread of process ``node`` keeps its status file (JSON)."""
    return Path(data_dir) / "run" / f"store-{node}.json"


def read_store_status(data_dir: Path) -> list[dict[str, Any]]:
    """Fresh store status files under ``data_dir`` (running scanners), one dict each.

    Each dict: ``node``, ``pid``, ``redis_reachable`` (bool), ``outage_since`` (epoch s or
    None), ``pending_commands``, ``dropped_commands``, ``errors``, ``updated`` (epoch s,
    wall clock). Files older than :data:`STATUS_STALE_S` or of a process that is gone are
    skipped.
    """
    out = []
    for f in sorted((Path(data_dir) / "run").glob("store-*.json")):
        try:
            st = json.loads(f.read_text())
            fresh = time.time() - float(st["updated"]) <= STATUS_STALE_S
            os.kill(int(st["pid"]), 0)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if fresh:
            out.append(st)
    return out


def merge_store_status(report: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """Add running scanners' store status to a health ``report`` (modified and returned).

    ``report["scanners"]`` lists :func:`read_store_status`. A scanner that cannot reach Redis
    but keeps scanning and buffering makes the status ``degraded`` (it was ``down`` when this
    process could not reach Redis either): writes are delayed, not lost, unless
    ``dropped_commands`` says otherwise.
    """
    scanners = read_store_status(data_dir)
    if not scanners:
        return report
    report["scanners"] = {str(st["node"]): st for st in scanners}
    if any(not st["redis_reachable"] or st["dropped_commands"] for st in scanners):
        report["status"] = "degraded"
    return report


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Replace the status file at ``path`` with ``status`` (JSON) atomically; an unwritable
    folder is ignored (the status file is a convenience: health then sees no scanner).

    ``status`` holds at least ``node``, ``pid``, ``redis_reachable``, ``outage_since`` (epoch s
    or None), ``updated`` (epoch s, wall clock), ``pending_commands``, ``dropped_commands``,
    ``errors`` (:func:`read_store_status`)."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        tmp.replace(path)
