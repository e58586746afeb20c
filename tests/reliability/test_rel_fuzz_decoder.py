"""Bad input: hypothesis properties of the decoder and the volume rules, a fuzz run of random
and mutated frames (>= 10 million in the ``long`` variant) checked against an independent
frame validator written here, and per-tick rejection of absurd values with counters."""

from __future__ import annotations

import os
import random
import struct
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aion.kite.decode import decode_frame
from aion.kite.encode import encode_frame
from aion.kite.wire import TICK_DTYPE, MalformedFrame
from aion.volume.state import VolumeStateManager

LENGTHS = (8, 28, 32, 44, 184)


def oracle_packets(frame: bytes) -> int | None:
    """Kite's "Message structure" walked by hand: number of packets, or None when malformed.
    A 1-byte message is a heartbeat (0 packets); an empty one is malformed."""
    n = len(frame)
    if n == 1:
        return 0
    if n < 2:
        return None
    (count,) = struct.unpack_from(">H", frame, 0)
    pos = 2
    for _ in range(count):
        if pos + 2 > n:
            return None
        (plen,) = struct.unpack_from(">H", frame, pos)
        pos += 2
        if plen not in LENGTHS or pos + plen > n:
            return None
        pos += plen
    return count if pos == n else None


def _packet(rng: random.Random) -> bytes:
    plen = rng.choice(LENGTHS)
    return struct.pack(">H", plen) + rng.randbytes(plen)


def _valid(rng: random.Random) -> bytes:
    k = rng.choice((0, 1, 1, 1, 2, 3))
    return struct.pack(">H", k) + b"".join(_packet(rng) for _ in range(k))


def _mutate(rng: random.Random, f: bytes) -> bytes:
    op = rng.randrange(9)
    if op == 0 and len(f) > 0:  # truncated
        return f[: rng.randrange(len(f))]
    if op == 1:  # wrong count
        return struct.pack(">H", rng.randrange(65536)) + f[2:]
    if op == 2:  # huge count
        return b"\xff\xff" + f[2:]
    if op == 3 and len(f) >= 6:  # wrong packet length
        return f[:2] + struct.pack(">H", rng.randrange(65536)) + f[4:]
    if op == 4:  # trailing bytes
        return f + rng.randbytes(rng.randrange(1, 9))
    if op == 5:  # text in a binary message
        return rng.choice((b'{"type":"order","data":{}}', b"Hello\n", b"\x00", b"null"))
    if op == 6 and f:  # flip bytes anywhere
        b = bytearray(f)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if op == 7:  # pure noise
        return rng.randbytes(rng.randrange(0, 300))
    return f  # valid as is


def fuzz(n: int, seed: int) -> dict[str, int]:
    """Decode ``n`` random/mutated frames; returns the decoder's and the oracle's counts."""
    rng = random.Random(seed)
    counts = {"frames": 0, "malformed": 0, "oracle_malformed": 0, "ticks": 0, "crashes": 0}
    for _ in range(n):
        f = _mutate(rng, _valid(rng))
        want = oracle_packets(f)
        try:
            ticks = decode_frame(f)
            got: int | None = int(ticks.shape[0])
        except MalformedFrame:
            got = None
            counts["malformed"] += 1
        except Exception:  # any other exception is a crash
            counts["crashes"] += 1
            raise
        if want is None:
            counts["oracle_malformed"] += 1
        assert got == want, (f.hex(), got, want)
        counts["frames"] += 1
        counts["ticks"] += got or 0
    return counts


def test_fuzz_200k_frames_match_the_oracle() -> None:
    c = fuzz(200_000, seed=11)
    assert c["crashes"] == 0 and c["frames"] == 200_000
    assert c["malformed"] == c["oracle_malformed"]
    assert 0 < c["malformed"] < c["frames"]  # both kinds were exercised
    assert c["ticks"] > 0


@pytest.mark.long
def test_fuzz_10_million_frames() -> None:
    n = int(os.environ.get("AION_FUZZ_FRAMES", "10000000"))
    assert n >= 10_000_000
    t0 = time.monotonic()
    workers = 2  # the decoder is pure per frame: split the run over the machine's 2 cores
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(fuzz, [n // workers + (i < n % workers) for i in range(workers)],
                              [2022 + i for i in range(workers)]))  # fmt: skip
    c = {k: sum(p[k] for p in parts) for k in parts[0]}
    print(f"fuzzed {c['frames']:,} frames in {time.monotonic() - t0:.0f} s: "
          f"{c['malformed']:,} malformed (oracle {c['oracle_malformed']:,}), {c['ticks']:,} ticks, "
          f"{c['crashes']} crashes")  # fmt: skip
    assert c["crashes"] == 0 and c["frames"] == n
    assert c["malformed"] == c["oracle_malformed"]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_decode_or_raise_malformed(frame: bytes) -> None:
    want = oracle_packets(frame)
    try:
        got = int(decode_frame(frame).shape[0])
    except MalformedFrame:
        got = None
    assert got == want


_tick = st.fixed_dictionaries(
    {
        "instrument_token": st.integers(1, 2**32 - 1).filter(
            lambda t: t & 0xFF not in (3, 6, 9, 12)
        ),
        "last_price": st.integers(-(2**31), 2**31 - 1),
        "volume_traded": st.integers(0, 2**32 - 1),
        "exchange_timestamp": st.integers(0, 2**32 - 1),
        "oi": st.integers(0, 2**32 - 1),
    }
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_tick, min_size=1, max_size=20))
def test_full_packets_round_trip(rows: list[dict[str, int]]) -> None:
    """encode -> decode gives back every field (prices in paise for segment divisor 100)."""
    a = np.zeros(len(rows), TICK_DTYPE)
    for i, r in enumerate(rows):
        a["instrument_token"][i] = r["instrument_token"]
        a["last_price"][i] = r["last_price"] / 100.0
        a["volume_traded"][i] = r["volume_traded"]
        a["exchange_timestamp"][i] = r["exchange_timestamp"]
        a["oi"][i] = r["oi"]
    a["mode"] = 3
    a["packet_length"] = 184
    a["tradable"] = True
    back = decode_frame(encode_frame(a))
    assert back.shape[0] == len(rows)
    for f in ("instrument_token", "volume_traded", "exchange_timestamp", "oi"):
        assert back[f].tolist() == a[f].tolist(), f
    assert np.rint(back["last_price"] * 100).astype(np.int64).tolist() == [
        r["last_price"] for r in rows
    ]


# -- the volume rules, against a plain reimplementation ---------------------------------------

_vol_tick = st.tuples(st.integers(0, 3), st.sampled_from([20221110, 20221111, 20221114]),
                      st.integers(-5, 10_000))  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_vol_tick, max_size=60), st.integers(1, 5))
def test_volume_rules_match_a_reference(ticks: list[tuple[int, int, int]], batches: int) -> None:
    seen: dict[int, tuple[int, int, int]] = {}  # slot -> (session, first, last)
    want = []
    for s, d, c in ticks:
        if c < 0:
            want.append(0)
            continue
        if s not in seen:
            seen[s] = (d, c, c)
            want.append(0)
        elif d > seen[s][0]:
            seen[s] = (d, 0, c)
            want.append(c)
        elif d < seen[s][0] or c < seen[s][2]:
            want.append(0)
        else:
            want.append(c - seen[s][2])
            seen[s] = (seen[s][0], seen[s][1], c)
    vm = VolumeStateManager(2)
    arr = np.array(ticks, np.int64).reshape(-1, 3)
    got: list[int] = []
    for part in np.array_split(arr, batches):  # batching must not matter
        got += vm.apply(part[:, 0], part[:, 1], part[:, 2]).tolist()
    assert got == want
    for s, (d, first, last) in seen.items():
        snap = vm.snapshot(s)
        assert (snap["session_date"], snap["first_cumulative"], snap["last_cumulative"]) == (
            d, first, last)  # fmt: skip
        # the invariant: incremental volume of the current session == last - first
        assert snap["incremental_total"] == last - first
    assert all(v >= 0 for v in got)


def test_fuzzed_frames_through_the_compute_batch_path() -> None:
    """The scanner's own path (ComputeEngine.process, batches of 512 frames): no exception,
    every malformed frame counted, garbage ticks of a known token rejected or applied."""
    from aion.config import load_config, load_patterns
    from aion.instruments.master import InstrumentMaster
    from aion.patterns.registry import PatternEngine
    from aion.pipeline.compute import ComputeEngine

    inst = InstrumentMaster.bundled().by_symbol("NSE:HDFCBANK")
    eng = ComputeEngine({inst.instrument_token: inst}, load_config(),
                        PatternEngine(load_patterns()), {}, {})  # fmt: skip
    known = struct.pack(">I", inst.instrument_token)
    rng = random.Random(5)
    frames, want_malformed = [], 0
    for _ in range(30_000):
        f = bytearray(_mutate(rng, _valid(rng)))
        if len(f) >= 8 and rng.random() < 0.5:
            f[4:8] = known  # the first packet's token, when there is one, is the known one
        want_malformed += oracle_packets(bytes(f)) is None
        frames.append((0, "c0", bytes(f)))
    for i in range(0, len(frames), 512):
        eng.process(frames[i : i + 512])
    eng.finish()
    c = eng.counters
    assert c.frames == 30_000
    assert c.malformed_frames == want_malformed
    assert c.ticks > 0 and c.invalid_ticks + c.untimed_ticks > 0
