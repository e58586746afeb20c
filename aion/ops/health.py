"""``aion health``: is Redis, the feed, the averages refresh and the archive fit for a session?

:func:`health_report` asks Redis (``INFO``, ``SCAN`` + ``TTL``, ``XLEN``, the
``aion:feed:*`` hashes and the ``aion:{SYM}:averages`` hashes) and the archive's
disk, and grades every check ``ok``, ``info`` (worth knowing, not a problem),
``degraded`` or ``down``. The report's ``status`` is the worst grade:

- ``down`` (exit code 2): Redis unreachable or the configuration is invalid;
- ``degraded`` (exit code 1): an aion key without a TTL (every key aion writes
  must have one, see :mod:`aion.store.keys`), ``used_memory`` at or above
  ``health.memory_degraded_fraction`` of ``maxmemory``, an evicting
  ``maxmemory-policy`` while ``maxmemory`` is set (eviction silently deletes
  bars), a failed AOF/RDB write, a stream longer than its MAXLEN allows, a
  feed silent for more than ``health.tick_stale_s`` while NSE is open (XNSE
  calendar), an averages refresh older than ``health.averages_max_age_days``,
  less than ``health.min_free_disk_mb`` free on the archive's disk;
- ``ok`` (exit code 0) otherwise.

Running scanners' store status files (:func:`aion.store.status.merge_store_status`)
are merged in: a scanner that keeps buffering while Redis is away turns ``down``
into ``degraded``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any

import redis

from aion.archive.config import archive_root
from aion.config import AionConfig
from aion.market.time import to_ist
from aion.store import keys, queries
from aion.store.keys import RUNS_MAXLEN
from aion.store.status import merge_store_status

"""Approximate MAXLEN of the run-summary streams (the store writes ``XADD MAXLEN ~ 1000``)."""

# Approximate trimming (XADD MAXLEN ~) removes whole stream nodes of at most this many
# entries (redis.conf stream-node-max-entries), so a stream may exceed MAXLEN by that much.
_STREAM_NODE_ENTRIES = 100

EXIT_CODES = {"ok": 0, "info": 0, "degraded": 1, "down": 2}
"""Exit code of ``aion health`` per overall status."""

_RANK = {"ok": 0, "info": 0, "degraded": 1, "down": 2}


def _check(name: str, status: str, value: Any, detail: str = "") -> dict[str, Any]:
    return {"name": name, "status": status, "value": value, "detail": detail}


def _worst(checks: list[dict[str, Any]]) -> str:
    worst = max((_RANK[c["status"]] for c in checks), default=0)
    return {0: "ok", 1: "degraded", 2: "down"}[worst]


def _disk(path: Path) -> tuple[Path, int, int]:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    return probe, int(usage.free), int(usage.total)


def _redis_checks(info: dict[str, Any], cfg: AionConfig) -> list[dict[str, Any]]:
    out = [_check("redis.version", "ok", info.get("redis_version"))]
    used = int(info.get("used_memory", 0))
    maxmem = int(info.get("maxmemory", 0))
    if maxmem > 0:
        frac = used / maxmem
        bad = frac >= cfg.health.memory_degraded_fraction
        out.append(
            _check(
                "redis.memory",
                "degraded" if bad else "ok",
                f"{used} / {maxmem} bytes ({frac:.0%})",
                f">= {cfg.health.memory_degraded_fraction:.0%} of maxmemory" if bad else "",
            )
        )
    else:
        out.append(_check("redis.memory", "ok", f"{used} bytes (no maxmemory)"))
    policy = str(info.get("maxmemory_policy", ""))
    evicting = maxmem > 0 and policy != "noeviction"
    out.append(
        _check(
            "redis.eviction_policy",
            "degraded" if evicting else "ok",
            policy,
            "evicting policy with maxmemory set: bars and alerts can vanish" if evicting else "",
        )
    )
    evicted = int(info.get("evicted_keys", 0))
    out.append(_check("redis.evicted_keys", "degraded" if evicted else "ok", evicted))
    aof = bool(info.get("aof_enabled"))
    failures = [
        k
        for k in ("aof_last_write_status", "aof_last_bgrewrite_status", "rdb_last_bgsave_status")
        if str(info.get(k, "ok")) != "ok"
    ]
    changes = info.get("rdb_changes_since_last_save", "?")
    persistence = f"aof {'on' if aof else 'off'}, {changes} changes since the last RDB save"
    if failures:
        out.append(
            _check("redis.persistence", "degraded", persistence, "failed: " + ", ".join(failures))
        )
    else:
        out.append(_check("redis.persistence", "ok" if aof else "info", persistence))
    return out


def _feed_checks(
    client: redis.Redis, cfg: AionConfig, now_s: float
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    feeds: dict[str, Any] = {}
    checks = []
    market_open = cfg.calendar.market_calendar().is_open(int(now_s))
    for node, h in queries.read_feeds(client).items():
        wall = float(h["last_frame_wall"]) if "last_frame_wall" in h else None
        age = None if wall is None else round(now_s - wall, 3)
        feeds[node] = {
            "age_s": age,
            "last_exchange_timestamp": h.get("last_exchange_timestamp"),
            "frames": h.get("frames"),
        }
        stale = age is None or age > cfg.health.tick_stale_s
        status = "degraded" if (stale and market_open) else ("info" if stale else "ok")
        detail = "NSE open and no recent frame" if status == "degraded" else ""
        if stale and not market_open:
            detail = "NSE closed now"
        checks.append(_check(f"feed.{node}.last_tick_age_s", status, age, detail))
    if not feeds:
        checks.append(
            _check(
                "feed.last_tick_age_s",
                "degraded" if market_open else "info",
                None,
                "no feed has written yet" + (" and NSE is open" if market_open else ""),
            )
        )
    return checks, feeds


def _averages_check(client: redis.Redis, cfg: AionConfig, today: dt.date) -> dict[str, Any]:
    latest: dt.date | None = None
    n = 0
    for text in queries.averages_dates(client):
        n += 1
        if text:
            d = dt.date.fromisoformat(text)
            latest = d if latest is None or d > latest else latest
    if latest is None:
        return _check(
            "averages.last_refresh",
            "info",
            None,
            "no averages in Redis yet: run `aion premarket refresh-averages` (RVOL needs them)",
        )
    age = (today - latest).days
    bad = age > cfg.health.averages_max_age_days
    return _check(
        "averages.last_refresh",
        "degraded" if bad else "ok",
        latest.isoformat(),
        f"{n} instruments; prepared for a date {age} days ago" if bad else f"{n} instruments",
    )


def health_report(
    client: redis.Redis | None,
    cfg: AionConfig,
    now_s: float | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """Run every check; returns a JSON-able report.

    Args:
        client: a redis-py client (``decode_responses=True``), or None when it could
            not even be built (``error`` says why).
        cfg: the validated configuration (thresholds, archive path, calendar).
        now_s: wall-clock epoch seconds (default ``time.time()``); used for feed ages,
            the market-open test and the averages age.
        error: why Redis could not be reached, when ``client`` is None.

    Returns:
        ``{"status", "checks": [{"name", "status", "value", "detail"}], "redis",
        "keys_per_namespace", "keys_without_ttl", "streams", "feeds", "archive"}``.
    """
    now = time.time() if now_s is None else now_s
    today = to_ist(now).date()
    checks: list[dict[str, Any]] = []
    report: dict[str, Any] = {}
    root = archive_root(cfg)
    probe, free, total = _disk(root)
    min_free = cfg.health.min_free_disk_mb * 1024 * 1024
    report["archive"] = {"path": str(root), "free_bytes": free, "total_bytes": total}
    checks.append(
        _check(
            "archive.disk_free",
            "degraded" if free < min_free else "ok",
            f"{free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB ({probe})",
            f"below {cfg.health.min_free_disk_mb} MiB" if free < min_free else "",
        )
    )
    info: dict[str, Any] | None = None
    if client is not None:
        try:
            info = queries.server_info(client)
        except redis.RedisError as exc:
            error = f"{type(exc).__name__}: {exc}"
    if info is None:
        checks.insert(0, _check("redis.reachable", "down", False, error or "unreachable"))
        report["redis"] = {"reachable": False, "error": error}
        return {"status": _worst(checks), "checks": checks, **report}
    assert client is not None
    checks.insert(0, _check("redis.reachable", "ok", True))
    checks.extend(_redis_checks(info, cfg))
    report["redis"] = {
        "reachable": True,
        "version": info.get("redis_version"),
        "used_memory_bytes": info.get("used_memory"),
        "maxmemory_bytes": info.get("maxmemory"),
        "maxmemory_policy": info.get("maxmemory_policy"),
        "aof_enabled": bool(info.get("aof_enabled")),
    }
    counts, no_ttl, streams = queries.key_facts(client)
    report["keys_per_namespace"] = counts
    report["keys_without_ttl"] = {"count": len(no_ttl), "sample": no_ttl[:10]}
    checks.append(
        _check(
            "keys.without_ttl",
            "degraded" if no_ttl else "ok",
            len(no_ttl),
            ", ".join(no_ttl[:3]) + (" ..." if len(no_ttl) > 3 else ""),
        )
    )
    maxlens = {"alerts": cfg.redis.alerts_maxlen, "runs": RUNS_MAXLEN}
    report["streams"] = {}
    for k in streams:
        length = queries.stream_length(client, k)
        maxlen = maxlens.get(keys.namespace_of(k))
        report["streams"][k] = {"length": length, "maxlen": maxlen}
        over = maxlen is not None and length > maxlen + _STREAM_NODE_ENTRIES
        checks.append(
            _check(
                f"stream.{k}",
                "degraded" if over else "ok",
                f"{length} entries / MAXLEN {maxlen if maxlen is not None else 'unbounded?'}",
                "longer than MAXLEN allows" if over else "",
            )
        )
    feed_checks, feeds = _feed_checks(client, cfg, now)
    checks.extend(feed_checks)
    report["feeds"] = feeds
    checks.append(_averages_check(client, cfg, today))
    return {"status": _worst(checks), "checks": checks, **report}


def run_health(cfg: AionConfig, now_s: float | None = None) -> dict[str, Any]:
    """``aion health``: connect (``REDIS_URL`` or aion's own server), check, merge scanner status.

    Never raises for an unreachable Redis: that is reported as ``down``.
    """
    from aion.store.server import PrivateRedis, connect

    pr: PrivateRedis | None = None
    client: redis.Redis | None = None
    error = None
    try:
        if cfg.redis.url:
            client = connect(cfg.redis.url)
        else:
            pr = PrivateRedis(cfg.data_dir())
            client = connect(pr.start())
    except Exception as exc:  # the report is the point: show why Redis is down
        error = f"{type(exc).__name__}: {exc}"
    try:
        report = health_report(client, cfg, now_s, error)
    finally:
        if client is not None:
            client.close()
        if pr is not None:
            pr.stop()
    return merge_store_status(report, cfg.data_dir())


GRADE_COLOURS = {"ok": "green", "info": "cyan", "degraded": "yellow", "down": "red"}
"""Terminal colour of each check grade."""


def _value_text(name: str, value: Any) -> str:
    """A check's value with its unit: ``*_s`` checks in seconds, none as ``-``."""
    if value is None:
        return "-"
    if name.endswith("_s") and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.3f} s"
    return str(value)


def health_rows(report: dict[str, Any]) -> list[list[str]]:
    """The report as text rows ``[check, status, value, detail]``: one per check (values with
    their units), then one per scanner's store status."""
    rows = [
        [c["name"], c["status"], _value_text(c["name"], c["value"]), c["detail"]]
        for c in report["checks"]
    ]
    for node, st in sorted(report.get("scanners", {}).items()):
        reach = "reachable" if st.get("redis_reachable") else "UNREACHABLE"
        rows.append(
            [
                f"scanner.{node}",
                "",
                f"Redis {reach}",
                f"pending {st.get('pending_commands')} commands, "
                f"dropped {st.get('dropped_commands')} commands",
            ]
        )
    return rows
