"""The minute-close rule across connections (:class:`aion.pipeline.merge.FeedMerge`): a frame
goes on once every active connection's exchange clock has reached its minute; a connection more
than ``feed.close_wait_ms`` behind the leading one no longer holds the close back. Checked on
the rule itself and end to end through the compute engine's bars (one connection running
ahead gives the bars of one connection; a silent one is released and its ticks are late)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from aion.config import ConfigError, load_config, load_patterns
from aion.feed.config import FeedConfig
from aion.kite.decode import frame_exchange_time
from aion.kite.encode import encode_frame, filter_frame
from aion.kite.wire import MODE_FULL, MODE_QUOTE, TICK_DTYPE
from aion.patterns.registry import PatternEngine
from aion.pipeline.compute import ComputeEngine
from aion.pipeline.merge import FeedMerge
from aion.pipeline.outputs import CollectedOutputs
from aion.replay.builder import build_session
from aion.replay.session_file import Session, read_session

T0 = 1_668_138_300  # 2022-11-11 09:15:00 IST, epoch s
DATA = Path(__file__).resolve().parents[3] / "aion" / "data" / "intraday_1min_2022-11-11"
DAY = dt.date(2022, 11, 11)


def frame(ts: int, token: int = 408065, mode: int = MODE_FULL) -> bytes:
    """One full-mode (or ``mode``) tick of ``token`` stamped ``ts`` (epoch s)."""
    t = np.zeros(1, TICK_DTYPE)
    t["instrument_token"] = token
    t["mode"] = mode
    t["last_price"] = 100.0
    t["volume_traded"] = ts - T0 + 1
    t["exchange_timestamp"] = ts
    return encode_frame(t)


def test_frame_exchange_time_reads_the_wire() -> None:
    assert frame_exchange_time(frame(T0 + 7)) == T0 + 7
    two = np.zeros(2, TICK_DTYPE)
    two["instrument_token"] = (408065, 256265)  # an equity (184 B) and NIFTY 50 (index, 32 B)
    two["mode"] = MODE_FULL
    two["last_price"] = 10.0
    two["exchange_timestamp"] = (T0 + 3, T0 + 9)
    assert frame_exchange_time(encode_frame(two)) == T0 + 9
    assert frame_exchange_time(frame(T0, mode=MODE_QUOTE)) == 0  # quote packets carry none
    assert frame_exchange_time(b"\x00") == 0  # heartbeat
    assert frame_exchange_time(frame(T0 + 5)[:-10]) == 0  # truncated: nothing readable


def test_a_connection_running_ahead_waits_for_the_others_minute() -> None:
    m = FeedMerge(2500, ["conn0", "conn1"])
    a = (0, "conn0", frame(T0 + 58))
    b = (1, "conn1", frame(T0 + 58))
    ahead = (2, "conn0", frame(T0 + 60))  # minute 09:16 while conn1 is still in 09:15
    assert m.admit([a, b, ahead]) == [a, b]
    assert m.stats.held == 1
    same = (3, "conn1", frame(T0 + 59))  # conn1's last 09:15 tick still goes on before it
    assert m.admit([same]) == [same]
    nxt = (4, "conn1", frame(T0 + 61))  # conn1 enters 09:16: the minute closes
    assert m.admit([nxt]) == [ahead, nxt]
    assert m.close == T0 + 60 and m.stats.expired == 0
    # one item at a time or all at once: the same order
    m1, m2 = FeedMerge(2500, ["conn0", "conn1"]), FeedMerge(2500, ["conn0", "conn1"])
    items = [a, b, ahead, same, nxt]
    assert [x for i in items for x in m1.admit([i])] == m2.admit(items) == [a, b, same, ahead, nxt]


S = 1_000_000_000  # receive times in ns


def test_a_silent_connection_is_released_after_close_wait_ms() -> None:
    m = FeedMerge(2500, ["conn0", "conn1"])
    b = (0, "conn1", frame(T0 + 58))
    a1 = (1 * S, "conn0", frame(T0 + 60))  # 2 s ahead of conn1: held
    a2 = (2 * S, "conn0", frame(T0 + 61))  # 3 s ahead, but conn1 spoke 2 s ago: still held
    assert m.admit([b, a1]) == [b]
    assert m.admit([a2]) == []
    beat = (3 * S, "conn1", b"\x00")  # a heartbeat is not a timed frame: conn1 stays silent
    assert m.admit([beat]) == [beat, a1, a2]  # 3 s silent and 3 s behind: released
    assert m.close == T0 + 61 and m.stats.expired == 1
    late = (4 * S, "conn1", frame(T0 + 59))  # conn1 comes back with a tick of the closed minute
    assert m.admit([late]) == [late]  # at once: the bar builder counts it late
    # close_wait_ms 0: the leading connection closes the minute alone (the global clock)
    z = FeedMerge(0)
    assert z.admit([b, a1]) == [b, a1]


def test_a_connection_that_still_delivers_holds_the_close_however_far_behind() -> None:
    """Max replay speed: the connections drift apart by minutes of exchange time within
    milliseconds, and the trailing one still holds every close until it gets there."""
    m = FeedMerge(2500, ["conn0", "conn1"])
    ahead = [(i * 1000, "conn0", frame(T0 + 30 * i)) for i in range(10)]  # to 09:19:30
    trail = [(10_000 + i * 1000, "conn1", frame(T0 + 30 * i)) for i in range(10)]
    out = m.admit(ahead) + m.admit(trail)
    assert m.stats.expired == 0
    # every frame goes on in minute order: no tick of either connection is late
    minutes = [frame_exchange_time(x[2]) // 60 for x in out]
    assert minutes == sorted(minutes)
    assert len(out) + len(m.drain()) == 20


def test_named_connections_hold_the_first_close_and_untimed_frames_hold_nothing() -> None:
    m = FeedMerge(2500, ["conn0", "conn1"])
    first = (0, "conn0", frame(T0 + 59))
    nxt = (1 * S, "conn0", frame(T0 + 61))  # conn1 said nothing yet: it counts from T0 + 59
    assert m.admit([first, nxt]) == [first]
    third = (3 * S, "conn0", frame(T0 + 62))  # conn1 silent for 3 s since the first time
    assert m.admit([third]) == [nxt, third]
    quote = (4 * S, "conn2", frame(T0, mode=MODE_QUOTE))  # no exchange timestamps: no clock
    assert m.admit([quote]) == [quote]
    assert "conn2" not in m.clocks()


def test_close_wait_ms_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"feed\.close_wait_ms"):
        FeedConfig(close_wait_ms=-1)
    with pytest.raises(ValueError, match="close_wait_ms"):
        FeedMerge(-5)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    out = tmp_path_factory.mktemp("merge") / "s.session.gz"
    files = ["HDFCBANK", "RELIANCE", "SBIN", "TATAMOTORS", "NIFTY", "INFY"]
    build_session([DATA / f"{f}.txt.gz" for f in files], DAY, out)
    return read_session(out)


def _bars(session: Session, items: list[tuple[int, str, bytes]], wait_ms: int, step: int):
    cfg = load_config()
    cfg = dataclasses.replace(cfg, feed=FeedConfig(close_wait_ms=wait_ms))
    insts = {i.instrument_token: i for i in session.instruments()}
    out = CollectedOutputs()
    eng = ComputeEngine(insts, cfg, PatternEngine(load_patterns()), {}, {}, outputs=out)
    for i in range(0, len(items), step):
        eng.process(items[i : i + step])
    eng.finish()
    bars = np.concatenate([c.bars for b in out.batches for c in b.bar_columns])
    final = {}
    for row in bars[np.argsort(bars["revision"], kind="stable")].tolist():
        final[(row[0], row[1])] = row  # (slot, start) -> the last emission of the bar
    return final, eng.bars.late_ticks


def test_a_connection_running_ahead_gives_the_bars_of_one_connection(session: Session) -> None:
    tokens = sorted(int(i.instrument_token) for i in session.instruments())
    shards = [dict.fromkeys(tokens[:3], MODE_FULL), dict.fromkeys(tokens[3:], MODE_FULL)]
    own = [
        [(int(t), f"conn{k}", g) for t, f in zip(session.ts_ns, session.frames, strict=True)
         if (g := filter_frame(f, shard)) is not None]
        for k, shard in enumerate(shards)
    ]  # fmt: skip
    one = [(int(t), "conn0", f) for t, f in zip(session.ts_ns, session.frames, strict=True)]
    ref, ref_late = _bars(session, one, 2500, 50)
    assert ref_late == 0 and len(ref) > 375 * 6
    # conn1 delivers everything 20 s of exchange time after conn0 (its frames arrive with
    # conn0's 20 s later): conn0 is 1-2 frames ahead all day. The session ticks at :01 :15
    # :30 :50, so conn1's clock trails by up to 20 + 20 s: within a close_wait_ms of 45 s
    c0, c1 = own
    ahead = sorted(c0 + c1, key=lambda x: x[0] + (20 * 10**9 if x[1] == "conn1" else 0))
    assert ahead != sorted(c0 + c1) and len(ahead) == len(c0) + len(c1)
    for step in (1, 7, 400):
        got, late = _bars(session, ahead, 45_000, step)
        assert late == 0 and got == ref
    # with no wait (any connection closes the minute) the lagging ticks are late
    got, late = _bars(session, ahead, 0, 50)
    assert late > 0 and got != ref
    # a connection silent for 3 minutes: released, its ticks of the closed minutes late, their
    # volume kept in its next bars (sum of volumes unchanged)
    cut = [x for x in c1 if not T0 + 3600 <= x[0] // 10**9 < T0 + 3780]
    back = [x for x in c1 if T0 + 3600 <= x[0] // 10**9 < T0 + 3780]
    resumed = sorted(c0 + cut, key=lambda x: x[0])
    at = next(i for i, x in enumerate(resumed) if x[0] // 10**9 >= T0 + 3840)
    resumed[at:at] = back  # they arrive a minute after their time
    got, late = _bars(session, resumed, 2500, 50)
    assert late == sum(int.from_bytes(x[2][:2], "big") for x in back)  # every packet
    for s in range(6):
        vol = sum(r[6] for k, r in got.items() if k[0] == s)
        assert vol == sum(r[6] for k, r in ref.items() if k[0] == s)
