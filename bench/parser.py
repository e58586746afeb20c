"""Parser benchmark: aion's decoder vs kiteconnect's ``KiteTicker._parse_binary``.

Both parse the identical frames: realistic Kite messages of mixed modes (full
for NSE/NFO instruments, quote, ltp, index quote/full) with 1-200 packets per
frame, built with :func:`aion.kite.encode.encode_frame` from seeded random
ticks. Figures are packets per second; the ratio is aion / kiteconnect, both
measured in this run on this machine.

Run under glibc's default allocator settings (before :mod:`bench.store` applies the
scanner's): :func:`decode_frames` allocates its output per call, and glibc's defaults recycle
that block from call to call, as the scanner's tick path reuses its decode buffers
(:mod:`aion.pipeline.ticks`). Under the scanner's 1 MiB mmap threshold every call's
output is a fresh ``mmap`` and pays a page fault per 4 KiB: measured 2026-11-22, 5.8 M
against 14 M packets/s, a cost of this benchmark's allocation pattern, not of the scanner's.

Run: ``python -m bench.parser`` (prints JSON).
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from aion.kite.decode import decode_frame, decode_frames
from aion.kite.encode import encode_frame
from aion.kite.wire import MODE_FULL, MODE_LTP, MODE_QUOTE, TICK_DTYPE


def make_frames(n_frames: int, seed: int = 11) -> list[bytes]:
    """``n_frames`` frames of 1-200 packets, mixed modes and segments (deterministic)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        n = int(rng.integers(1, 201))
        t = np.zeros(n, TICK_DTYPE)
        seg = rng.choice([1, 2, 9], size=n, p=[0.6, 0.35, 0.05])
        t["instrument_token"] = (rng.integers(1, 1 << 20, n) << 8) | seg
        t["mode"] = rng.choice([MODE_FULL, MODE_QUOTE, MODE_LTP], size=n, p=[0.7, 0.2, 0.1])
        px = rng.uniform(50, 5000, n).round(2)
        for f in ("last_price", "open", "high", "low", "close", "average_traded_price"):
            t[f] = px
        t["volume_traded"] = rng.integers(0, 10_000_000, n)
        t["last_traded_quantity"] = rng.integers(1, 1000, n)
        t["total_buy_quantity"] = rng.integers(0, 10_000_000, n)
        t["total_sell_quantity"] = rng.integers(0, 10_000_000, n)
        t["exchange_timestamp"] = 1_668_138_300 + rng.integers(0, 22_500, n)
        t["last_trade_time"] = t["exchange_timestamp"]
        t["depth_buy_price"] = px[:, None] - 0.05
        t["depth_sell_price"] = px[:, None] + 0.05
        t["depth_buy_quantity"] = rng.integers(1, 5000, (n, 5))
        t["depth_sell_quantity"] = rng.integers(1, 5000, (n, 5))
        t["depth_buy_orders"] = rng.integers(1, 50, (n, 5))
        t["depth_sell_orders"] = rng.integers(1, 50, (n, 5))
        frames.append(encode_frame(t))
    return frames


def _rate(fn: Any, frames: list[bytes], packets: int, min_s: float) -> float:
    best = 0.0
    t_end = time.perf_counter() + min_s
    while True:
        t0 = time.perf_counter()
        fn(frames)
        dt = time.perf_counter() - t0
        best = max(best, packets / dt)
        if time.perf_counter() >= t_end:
            return best


def run(n_frames: int = 400, seed: int = 11, min_s: float = 2.0) -> dict[str, Any]:
    """Measure packets/s of kiteconnect, aion per frame and aion batched on the same frames."""
    from kiteconnect.ticker import KiteTicker

    frames = make_frames(n_frames, seed)
    packets = sum(int.from_bytes(f[:2], "big") for f in frames)
    ticker = KiteTicker("bench", "bench")

    def kite(fs: list[bytes]) -> None:
        for f in fs:
            ticker._parse_binary(f)

    def aion_each(fs: list[bytes]) -> None:
        for f in fs:
            decode_frame(f)

    decode_frames(frames[:2])  # compile outside the timing
    base = _rate(kite, frames, packets, min_s)
    each = _rate(aion_each, frames, packets, min_s)
    batch = _rate(decode_frames, frames, packets, min_s)
    return {
        "frames": n_frames,
        "packets": packets,
        "kiteconnect_packets_per_s": round(base),
        "aion_decode_frame_packets_per_s": round(each),
        "aion_decode_frames_packets_per_s": round(batch),
        "ratio_per_frame": round(each / base, 1),
        "ratio": round(batch / base, 1),
        "target_ratio": 100.0,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
