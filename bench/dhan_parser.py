"""Dhan parser benchmark: aion's decoder vs the ``dhanhq`` package's ``MarketFeed.process_data``.

Both parse the identical messages: one packet per WebSocket message (``dhanhq`` reads the
first packet of each message only), mixed like a full-mode subscription (70% full, 20% quote,
10% ticker, NSE_EQ/NSE_FNO/IDX_I), built with :func:`aion.dhan.wire.encode_ticks` from seeded
random ticks. aion decodes the list of messages in one :func:`aion.dhan.wire.decode_frames`
call; ``dhanhq`` is called once per message. Figures are packets per second, both measured in
this run on this machine; the ratio is aion / dhanhq. Its target (20x, in :mod:`bench.run`)
is below the Kite parser's 100x because the baseline is leaner: ``dhanhq`` unpacks a packet
with one ``struct.unpack`` call where kiteconnect unpacks field by field, and with one packet
per message aion's cost is mostly the per-message join (first run 2026-12-08: 30-38x on a
shared 2-core machine).

Run: ``python -m bench.dhan_parser`` (prints JSON) or ``python -m bench.run --only dhan``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from aion.dhan.wire import decode_frames, encode_ticks
from aion.kite.wire import MODE_FULL, MODE_LTP, MODE_QUOTE, TICK_DTYPE
from bench.parser import _rate


def make_messages(n: int, seed: int = 11) -> list[bytes]:
    """``n`` one-packet messages of mixed modes and segments (deterministic)."""
    rng = np.random.default_rng(seed)
    t = np.zeros(n, TICK_DTYPE)
    seg = rng.choice([1, 2, 9], size=n, p=[0.6, 0.35, 0.05])  # Kite codes of NSE_EQ, NSE_FNO, IDX_I
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
    t["depth_buy_price"] = px[:, None] - 0.05
    t["depth_sell_price"] = px[:, None] + 0.05
    t["depth_buy_quantity"] = rng.integers(1, 5000, (n, 5))
    t["depth_sell_quantity"] = rng.integers(1, 5000, (n, 5))
    t["depth_buy_orders"] = rng.integers(1, 50, (n, 5))
    t["depth_sell_orders"] = rng.integers(1, 50, (n, 5))
    return [encode_ticks(t[i : i + 1]) for i in range(n)]


def run(n_messages: int = 20_000, seed: int = 11, min_s: float = 2.0) -> dict[str, Any]:
    """Measure packets/s of ``dhanhq`` and of aion's batched decoder on the same messages."""
    from dhanhq.marketfeed import MarketFeed

    messages = make_messages(n_messages, seed)
    feed = MarketFeed.__new__(MarketFeed)  # the parser needs no connection

    def dhanhq(ms: list[bytes]) -> None:
        for m in ms:
            feed.process_data(m)

    decode_frames(messages[:2])  # compile outside the timing
    base = _rate(dhanhq, messages, n_messages, min_s)
    ours = _rate(decode_frames, messages, n_messages, min_s)
    return {
        "messages": n_messages,
        "packets": n_messages,
        "dhanhq_packets_per_s": round(base),
        "aion_decode_frames_packets_per_s": round(ours),
        "ratio": round(ours / base, 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
