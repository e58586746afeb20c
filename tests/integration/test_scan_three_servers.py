"""A live-style scan of the real 2022-11-11 session over 3 connections from 3 *independent*
replay servers (issue 16): no server keeps its clients together, each delays every frame by
its own random network jitter of up to 500 ms (wall time, as a network would), and the three
share one session clock like the connections of one exchange. The scan's merge
(:mod:`aion.pipeline.merge`) must give exactly the bars of every instrument and the alerts of
a scan on one connection, in every one of 5 runs.

Real parts throughout: loopback WebSocket servers speaking Kite's protocol, the feed client,
the bounded raw queue and the compute engine, wired as :mod:`aion.app` wires them; the
instruments are split over the connections by the scanner's sharding
(:func:`aion.feed.sharding.shard_modes`, 11 per connection instead of Kite's 3,000).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from aion.config import load_config, load_patterns
from aion.feed.client import FeedClient
from aion.feed.config import FeedConfig
from aion.feed.sharding import shard_modes
from aion.kite.wire import MODE_FULL
from aion.patterns.registry import PatternEngine
from aion.pipeline.compute import ComputeEngine
from aion.pipeline.outputs import CollectedOutputs
from aion.queues import BoundedQueue
from aion.replay.server import SESSION_COMPLETE_MESSAGE, ReplayServer
from aion.replay.session_file import Session, read_session
from aion.volume.averages import (
    bundled_adjustment_factors,
    bundled_daily_dir,
    daily_averages,
    read_adjustment_factors,
)

pytestmark = pytest.mark.integration

DAY = dt.date(2022, 11, 11)
SPEED = 1000.0  # session seconds per wall second: the 6.6 h session in about 24 s
JITTER_S = 0.5  # wall seconds: 500 s of session time at this speed
# The shipped feed.close_wait_ms (2.5 s): a connection that still delivers holds each close
# however far its exchange clock trails (the jitter puts up to 500 s of session time between
# the connections' clocks), and none falls silent for 2.5 s of wall time; without the merge
# (close_wait_ms 0: any connection closes the minute) most runs have late ticks.
CLOSE_WAIT_MS = FeedConfig().close_wait_ms
RUNS = 5


@dataclasses.dataclass
class ScanResult:
    bars: dict[tuple[str, int], tuple[Any, ...]]  # (symbol, start) -> final bar row
    alerts: list[tuple[str, dict[str, str]]]  # (stream id, fields), in order
    late_ticks: int
    ticks: int
    gaps: int
    held: int  # frames the merge held back


def _engine(session: Session, connections: list[str], out: CollectedOutputs) -> ComputeEngine:
    insts = {i.instrument_token: i for i in session.instruments()}
    cfg = dataclasses.replace(load_config(), feed=FeedConfig(close_wait_ms=CLOSE_WAIT_MS))
    wanted = {i.tradingsymbol for i in insts.values() if i.exchange == "NSE"}
    factors = read_adjustment_factors(bundled_adjustment_factors())
    avgs = daily_averages(bundled_daily_dir(), DAY, cfg.volume.average_days, factors, wanted)
    return ComputeEngine(
        insts, cfg, PatternEngine(load_patterns()), {k: a.avg_volume for k, a in avgs.items()},
        {}, connections=connections, outputs=out,
    )  # fmt: skip


def scan(session: Session, servers: list[ReplayServer], shards: list[dict[int, int]]) -> ScanResult:
    """Connection ``i`` reads ``shards[i]`` from ``servers[i]`` into one raw queue that the
    compute engine drains, until every connection got the session's end message."""
    names = [f"conn{i}" for i in range(len(shards))]
    out = CollectedOutputs()
    engine = _engine(session, names, out)
    raw: BoundedQueue[Any] = BoundedQueue("raw", 20_000, "block", 30.0)
    ends: list[str] = []
    done = threading.Event()

    def on_text(msg: dict) -> None:
        if msg == {"type": "message", "data": _COMPLETE}:
            ends.append(msg["data"])
            if len(ends) == len(shards):
                done.set()

    feeds = [
        FeedClient(srv.url, "key", "token", modes, raw, name=name, on_text=on_text,
                   ping_interval_s=10.0, gap_markers=True)
        for srv, modes, name in zip(servers, shards, names, strict=True)
    ]  # fmt: skip
    stop = threading.Event()
    failure: list[BaseException] = []

    def compute() -> None:
        try:
            while not stop.is_set() or not raw.empty():
                frames = raw.get_many(512, timeout=0.05)
                if frames:
                    engine.process(frames)
        except BaseException as exc:  # reported by the test thread
            failure.append(exc)

    thread = threading.Thread(target=compute, name="compute", daemon=True)
    thread.start()
    for f in feeds:
        f.start()
    try:
        assert done.wait(240), f"session incomplete: {len(ends)} of {len(shards)} connections"
    finally:
        for f in feeds:
            f.stop()
        stop.set()
        thread.join(30)
    assert not failure, failure
    engine.finish()
    bars: dict[tuple[str, int], tuple[Any, ...]] = {}
    for batch in out.batches:
        for cols in batch.bar_columns:
            for row in cols.bars.tolist():  # a revision (late volume) replaces the bar
                bars[(cols.symbols[row[0]], row[1])] = row
    alerts = [(r.stream_id, r.fields) for r in out.alert_records]
    return ScanResult(
        bars, alerts, engine.bars.late_ticks, engine.counters.ticks,
        sum(len(f.stats.gaps) for f in feeds), engine.merge.stats.held,
    )  # fmt: skip


_COMPLETE = json.loads(SESSION_COMPLETE_MESSAGE)["data"]


def test_three_independent_servers_give_the_bars_and_alerts_of_one_connection(
    session_2022_11_11: Path,
) -> None:
    session = read_session(session_2022_11_11)
    modes = dict.fromkeys(sorted(i.instrument_token for i in session.instruments()), MODE_FULL)
    assert len(modes) == 32
    with ReplayServer(session, speed=None, wait_for_client=True) as one:
        ref = scan(session, [one], [modes])
    assert ref.late_ticks == 0 and ref.gaps == 0 and ref.alerts
    assert len([k for k in ref.bars if k[0] == "NSE:HDFCBANK"]) > 375
    shards = shard_modes(modes, per_connection=11)
    assert [len(s) for s in shards] == [11, 11, 10]
    for run in range(RUNS):
        start_at = time.monotonic() + 1.5  # one exchange clock, after every client subscribed
        servers = [
            ReplayServer(session, speed=SPEED, jitter_s=JITTER_S, seed=1000 * run + k,
                         start_at=start_at)
            for k in range(3)
        ]  # fmt: skip
        for srv in servers:
            srv.start()
        try:
            got = scan(session, servers, shards)
        finally:
            for srv in servers:
                srv.stop()
        assert got.gaps == 0, f"run {run}: a connection dropped"
        assert got.ticks == ref.ticks, f"run {run}"
        assert got.late_ticks == 0, f"run {run}: {got.late_ticks} late ticks"
        assert got.bars == ref.bars, f"run {run}: bars differ"
        assert got.alerts == ref.alerts, f"run {run}: alerts differ"
        assert got.held > 0  # the connections did interleave across minutes
