"""``decode_frames`` (one compiled pass over many frames) equals ``decode_frame`` per frame.

The per-frame decoder is itself cross-checked against kiteconnect's parser in
``test_kite_protocol.py``; here the batch path must give exactly the same ticks
for well-formed frames and the same reason for every malformed one.
"""

from __future__ import annotations

import random
import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kite_protocol import KINDS, make_packet, make_token

from aion.kite.decode import (
    FRAME_STATUS_REASONS,
    decode_frame,
    decode_frames,
    join_frames,
    scan_frames,
)
from aion.kite.wire import TICK_DTYPE, MalformedFrame


def _frame(rng: random.Random, n_packets: int) -> bytes:
    body = b""
    for _ in range(n_packets):
        kind = rng.choice(KINDS)
        seg = 9 if kind.startswith("index") else rng.choice((1, 2, 3, 6, 12))
        pkt = make_packet(rng, kind, make_token(rng, seg))
        body += struct.pack(">H", len(pkt)) + pkt
    return struct.pack(">H", n_packets) + body


def _mutate(rng: random.Random, frame: bytes) -> bytes:
    choice = rng.randrange(6)
    if choice == 0:
        return frame[: rng.randrange(len(frame))]  # truncated
    if choice == 1:
        return frame + bytes(rng.randrange(1, 5))  # trailing bytes
    if choice == 2:
        return struct.pack(">H", rng.randrange(65536)) + frame[2:]  # wrong count
    if choice == 3 and len(frame) > 4:
        return frame[:2] + struct.pack(">H", rng.randrange(65536)) + frame[4:]  # wrong length
    if choice == 4:
        return b"garbage text in a binary frame"
    return bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))


def _reference(frames: list[object]) -> tuple[np.ndarray, list[int], list[str]]:
    parts, owners, reasons = [], [], []
    for i, f in enumerate(frames):
        try:
            t = decode_frame(f)  # type: ignore[arg-type]
        except MalformedFrame as exc:
            reasons.append(exc.reason)
            continue
        reasons.append("heartbeat" if isinstance(f, bytes) and len(f) == 1 else "ok")
        parts.append(t)
        owners += [i] * t.shape[0]
    ticks = np.concatenate(parts) if parts else np.empty(0, TICK_DTYPE)
    return ticks, owners, reasons


def _check(frames: list[object]) -> None:
    got = decode_frames(frames)
    ticks, owners, reasons = _reference(frames)
    assert [FRAME_STATUS_REASONS[s] for s in got.status] == reasons
    assert got.tick_frame.tolist() == owners
    assert got.ticks.dtype == TICK_DTYPE
    assert got.ticks.tobytes() == ticks.tobytes()
    assert int(got.malformed().sum()) == sum(r not in ("ok", "heartbeat") for r in reasons)


def test_mixed_well_formed_heartbeats_and_malformed_frames() -> None:
    rng = random.Random(20221111)
    frames: list[object] = []
    for _ in range(300):
        r = rng.random()
        if r < 0.1:
            frames.append(b"\x00")
        elif r < 0.7:
            frames.append(_frame(rng, rng.randrange(0, 60)))
        else:
            frames.append(_mutate(rng, _frame(rng, rng.randrange(1, 20))))
    frames += [b"", bytearray(_frame(rng, 3)), memoryview(_frame(rng, 2)), "text", None]
    _check(frames)


def test_empty_batch() -> None:
    got = decode_frames([])
    assert got.ticks.shape == (0,) and got.status.shape == (0,)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=400), max_size=20))
def test_arbitrary_bytes_match_the_per_frame_decoder(frames: list[bytes]) -> None:
    _check(list(frames))


def test_join_into_a_reused_buffer_equals_a_fresh_join() -> None:
    """``join_frames(frames, into=buf)`` copies into the head of ``buf`` (the compute engine
    reuses one buffer for every chunk) and is otherwise the same join; a short ``buf`` is
    not used."""
    rng = random.Random(7)
    first = [_frame(rng, rng.randrange(0, 30)) for _ in range(20)]
    second = [b"\x00", bytearray(_frame(rng, 3)), memoryview(_frame(rng, 2)), "text", None,
              _mutate(rng, _frame(rng, 5)), _frame(rng, 9)]  # fmt: skip
    buf = np.full(64 * 1024, 0xAB, np.uint8)
    for frames in (first, second):  # the second join overwrites the first's bytes
        fresh = join_frames(frames)
        into = join_frames(frames, into=buf)
        assert np.shares_memory(into.buf, buf)
        assert into.buf.tobytes() == fresh.buf.tobytes()
        for a, b in zip(into[1:4], fresh[1:4], strict=True):
            assert a.tolist() == b.tolist()
        assert into.max_packets == fresh.max_packets
        got = scan_frames(frames)
        assert got.buf.tobytes() == fresh.buf.tobytes()
    short = join_frames(first, into=np.empty(3, np.uint8))
    assert short.buf.tobytes() == join_frames(first).buf.tobytes()
    assert short.buf.shape[0] > 3
