"""Session frames read from disk on demand (``open_session`` / ``FrameFile``, issue 9): the same
records as the in-memory reader, plain and gzip, truncation detected, and the replay server
serving them."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from websockets.sync.client import connect

from aion.replay.server import SESSION_COMPLETE_MESSAGE, ReplayServer
from aion.replay.session_file import (
    FrameFile,
    SessionFileError,
    SessionWriter,
    open_session,
    read_session,
)

T0 = 1_668_138_300 * 10**9  # 2022-11-11 09:15 IST, epoch ns


def _ltp_frame(tokens: list[int], price_paise: int) -> bytes:
    # Kite binary message: u16 packet count, then per packet u16 length + 8-byte ltp packet
    out = len(tokens).to_bytes(2, "big")
    for t in tokens:
        out += (8).to_bytes(2, "big") + t.to_bytes(4, "big") + price_paise.to_bytes(4, "big")
    return out


def _write(path: Path, n: int, *, compress: bool, close: bool = True) -> list[tuple[int, bytes]]:
    rnd = random.Random(7)
    recs = []
    w = SessionWriter(path, {"date": "2022-11-11"}, compress=compress)
    for i in range(n):
        frame = b"\x00" if i % 5 == 4 else _ltp_frame([256265, 260105][: 1 + i % 2], 10_000 + i)
        ts = T0 + i * 250_000_000 + rnd.randrange(1000)
        w.write(ts, frame)
        recs.append((ts, frame))
    if close:
        w.close()
    else:
        w.flush()
    return recs


@pytest.mark.parametrize("compress", [False, True])
def test_open_session_reads_the_same_records_as_read_session(tmp_path: Path, compress: bool):
    path = tmp_path / ("s.session.gz" if compress else "s.session")
    recs = _write(path, 300, compress=compress)
    s = open_session(path)
    ref = read_session(path)
    assert isinstance(s.frames, FrameFile)
    assert s.complete and len(s) == 300 and s.header["date"] == "2022-11-11"
    assert s.ts_ns.tolist() == [t for t, _ in recs] == ref.ts_ns.tolist()
    # random access in any order, from several places, equals what was written
    for i in [299, 0, 150, 4, 4, 73]:
        assert s.frames[i] == recs[i][1] == ref.frames[i]
    assert s.frames[10:13] == [f for _, f in recs[10:13]]
    assert s.frames.heartbeats().tolist() == [len(f) == 1 for _, f in recs]
    with pytest.raises(IndexError):
        s.frames[300]
    s.frames.close()


def test_open_session_without_end_marker_and_truncated(tmp_path: Path) -> None:
    path = tmp_path / "killed.session"
    recs = _write(path, 20, compress=False, close=False)  # no END marker: a killed recording
    s = open_session(path)
    assert not s.complete and len(s) == 20 and s.frames[19] == recs[19][1]
    data = path.read_bytes()
    cut = tmp_path / "cut.session"
    cut.write_bytes(data[:-3])  # last frame cut short
    with pytest.raises(SessionFileError, match="truncated"):
        open_session(cut)


def test_replay_server_serves_a_frame_file_in_order(tmp_path: Path) -> None:
    path = tmp_path / "s.session"
    recs = _write(path, 60, compress=False)
    session = open_session(path)
    sent = [f for _, f in recs if len(f) > 1]  # the server sends its own heartbeats
    got: list[bytes] = []
    srv = ReplayServer(session, speed=None, wait_for_client=True)
    with srv, connect(f"{srv.url}?api_key=k&access_token=t") as ws:
        ws.send('{"a": "mode", "v": ["ltp", [256265, 260105]]}')
        while True:
            msg = ws.recv(timeout=5)
            if msg == SESSION_COMPLETE_MESSAGE:
                break
            if isinstance(msg, bytes) and len(msg) > 1:
                got.append(msg)
    assert got == sent
    assert np.asarray(session.frames.lengths).sum() == sum(len(f) for _, f in recs)


def test_max_speed_replay_waits_for_start_clients(tmp_path: Path) -> None:
    """Three connections subscribing 0.3 s apart (a scanner's shards) each get every frame of
    the session at max speed: the clock starts when the third has subscribed."""
    import threading
    import time

    path = tmp_path / "s.session"
    recs = _write(path, 400, compress=False)
    expected = [f for _, f in recs if len(f) > 1]
    got: list[list[bytes]] = [[], [], []]
    srv = ReplayServer(open_session(path), speed=None, wait_for_client=True, start_clients=3)

    def client(i: int) -> None:
        time.sleep(0.3 * i)
        with connect(f"{srv.url}?api_key=k&access_token=t") as ws:
            ws.send('{"a": "mode", "v": ["ltp", [256265, 260105]]}')
            while (msg := ws.recv(timeout=10)) != SESSION_COMPLETE_MESSAGE:
                if isinstance(msg, bytes) and len(msg) > 1:
                    got[i].append(msg)

    with srv:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert [len(g) for g in got] == [len(expected)] * 3
    assert got[0] == got[1] == got[2] == expected
    with pytest.raises(ValueError, match="start_clients"):
        ReplayServer(open_session(path), speed=None, start_clients=0)
