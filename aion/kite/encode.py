"""Ticks -> Kite binary frames, and a recorded frame cut to one client's subscription.

The inverse of :mod:`aion.kite.decode` for the replay server, the session builder and the
tests: :func:`encode_frame` writes :data:`~aion.kite.wire.TICK_DTYPE` rows as one frame in
the layouts of :mod:`aion.kite.wire`; :func:`filter_frame` keeps the packets of the tokens a
client subscribed to, truncated to its mode, as Kite itself sends them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numba
import numpy as np

from aion.kite.decode import is_heartbeat, packet_spans
from aion.kite.wire import (
    DEPTH_LEVELS,
    I32_MAX,
    I32_MIN,
    LEN_FULL,
    LEN_INDEX_FULL,
    LEN_INDEX_QUOTE,
    LEN_LTP,
    LEN_QUOTE,
    MODE_FULL,
    MODE_LTP,
    MODE_QUOTE,
    PACKET_LAYOUTS,
    SEGMENT_INDICES,
    TICK_DTYPE,
    U32_MAX,
    BytesLike,
    price_divisors,
)

__all__ = ["encode_frame", "filter_frame"]

# filter_frame truncation: packet length -> {subscribed mode: kept length}
_TRUNCATE: dict[int, dict[int, int]] = {
    LEN_FULL: {MODE_FULL: LEN_FULL, MODE_QUOTE: LEN_QUOTE, MODE_LTP: LEN_LTP},
    LEN_QUOTE: {MODE_FULL: LEN_QUOTE, MODE_QUOTE: LEN_QUOTE, MODE_LTP: LEN_LTP},
    LEN_INDEX_FULL: {MODE_FULL: LEN_INDEX_FULL, MODE_QUOTE: LEN_INDEX_QUOTE, MODE_LTP: LEN_LTP},
    LEN_INDEX_QUOTE: {MODE_FULL: LEN_INDEX_QUOTE, MODE_QUOTE: LEN_INDEX_QUOTE, MODE_LTP: LEN_LTP},
    LEN_LTP: {MODE_FULL: LEN_LTP, MODE_QUOTE: LEN_LTP, MODE_LTP: LEN_LTP},
}

_TRUNCATE_TABLE = np.zeros((LEN_FULL + 1, MODE_FULL + 1), np.int64)
for _plen, _by_mode in _TRUNCATE.items():
    for _mode, _new in _by_mode.items():
        _TRUNCATE_TABLE[_plen, _mode] = _new
"""``_TRUNCATE`` as an array: ``[packet length, mode] -> truncated length``."""


@numba.njit(cache=True, nogil=True)
def _scatter(out, offsets, rows):  # pragma: no cover - compiled
    """Write each row of ``rows`` (uint8 (k, plen)) at its offset in ``out``."""
    k, plen = rows.shape
    for i in range(k):
        o = offsets[i]
        for j in range(plen):
            out[o + j] = rows[i, j]


# --------------------------------------------------------------------------- encode


def _raw_prices(values: np.ndarray, div: np.ndarray, name: str) -> np.ndarray:
    raw = np.rint(np.asarray(values, np.float64) * (div if values.ndim == 1 else div[:, None]))
    bad = ~np.isfinite(raw) | (raw < I32_MIN) | (raw > I32_MAX)
    if bad.any():
        raise ValueError(f"{name}: price not representable as int32 units of its divisor")
    return raw.astype(np.int64)


def _raw_u32(values: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(values).astype(np.int64)
    if ((v < 0) | (v > U32_MAX)).any():
        raise ValueError(f"{name}: value outside the u32 range of the wire format")
    return v


def _raw_u16(values: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(values).astype(np.int64)
    if ((v < 0) | (v > 0xFFFF)).any():
        raise ValueError(f"{name}: value outside the u16 range of the wire format")
    return v


def encode_frame(ticks: np.ndarray) -> bytes:
    """Encode ticks into one binary WebSocket message (the inverse of :func:`decode_frame`).

    ``ticks``: :data:`TICK_DTYPE` array (n,), n <= 65535. Each tick becomes one
    packet chosen by its ``mode`` and segment: index tokens (segment 9) give
    8/28/32-byte packets, others 8/44/184 (``packet_length`` is ignored). Prices
    (rupees) are rounded to the nearest integer unit of the segment's divisor;
    the index change field is written as ``last_price - close`` in those units
    (int32 wrap-around); depth padding bytes are zero; ``change`` and
    ``tradable`` are not encoded (they are derived on decode).

    Raises ValueError for a wrong dtype, more than 65535 ticks, a mode not in
    1..3, or a value that does not fit its wire field (prices int32 units,
    quantities/timestamps u32, orders u16).
    """
    ticks = np.asarray(ticks)
    if ticks.dtype != TICK_DTYPE:
        raise ValueError(f"encode_frame needs a TICK_DTYPE array, got {ticks.dtype}")
    ticks = ticks.reshape(-1)
    n = ticks.size
    if n > 0xFFFF:
        raise ValueError(f"{n} ticks do not fit one frame (max 65535)")
    tokens = ticks["instrument_token"].astype(np.uint32)
    modes = ticks["mode"].astype(np.int64)
    if ((modes < MODE_LTP) | (modes > MODE_FULL)).any():
        raise ValueError("mode must be 1 (ltp), 2 (quote) or 3 (full)")
    is_index = (tokens & 0xFF) == SEGMENT_INDICES
    len_table = np.array([0, LEN_LTP, LEN_QUOTE, LEN_FULL], np.int64)
    idx_table = np.array([0, LEN_LTP, LEN_INDEX_QUOTE, LEN_INDEX_FULL], np.int64)
    lengths = np.where(is_index, idx_table[modes], len_table[modes])
    sizes = lengths + 2
    starts = 2 + np.cumsum(sizes) - sizes
    out = np.zeros(2 + int(sizes.sum()), np.uint8)
    out[0], out[1] = n >> 8, n & 0xFF
    out[starts] = lengths >> 8
    out[starts + 1] = lengths & 0xFF
    bodies = starts + 2
    div_all = price_divisors(tokens)
    for plen, _mode, be, is_index_layout in PACKET_LAYOUTS:
        idx = np.flatnonzero(lengths == plen)
        if idx.size == 0:
            continue
        t = ticks[idx]
        div = div_all[idx]
        rec = np.zeros(idx.size, be)
        rec["instrument_token"] = tokens[idx]
        lp = _raw_prices(t["last_price"], div, "last_price")
        rec["last_price"] = lp
        if plen != LEN_LTP:
            for f in ("open", "high", "low", "close"):
                rec[f] = _raw_prices(t[f], div, f)
        if is_index_layout:
            change = (lp - rec["close"].astype(np.int64)) & U32_MAX
            rec["change"] = change.astype(np.uint32).view(np.int32)
            if plen == LEN_INDEX_FULL:
                rec["exchange_timestamp"] = _raw_u32(t["exchange_timestamp"], "exchange_timestamp")
        elif plen != LEN_LTP:
            rec["average_traded_price"] = _raw_prices(
                t["average_traded_price"], div, "average_traded_price"
            )
            for f in (
                "last_traded_quantity",
                "volume_traded",
                "total_buy_quantity",
                "total_sell_quantity",
            ):
                rec[f] = _raw_u32(t[f], f)
            if plen == LEN_FULL:
                for f in (
                    "last_trade_time",
                    "oi",
                    "oi_day_high",
                    "oi_day_low",
                    "exchange_timestamp",
                ):
                    rec[f] = _raw_u32(t[f], f)
                depth = rec["depth"]
                for side, sl in (
                    ("buy", slice(0, DEPTH_LEVELS)),
                    ("sell", slice(DEPTH_LEVELS, None)),
                ):
                    depth["price"][:, sl] = _raw_prices(
                        t[f"depth_{side}_price"], div, "depth price"
                    )
                    depth["quantity"][:, sl] = _raw_u32(
                        t[f"depth_{side}_quantity"], "depth quantity"
                    )
                    depth["orders"][:, sl] = _raw_u16(t[f"depth_{side}_orders"], "depth orders")
        _scatter(out, bodies[idx], rec.view(np.uint8).reshape(idx.size, plen))
    return out.tobytes()


# --------------------------------------------------------------------------- replay filter


@numba.njit(cache=True, nogil=True)
def _gather_packets(
    buf: np.ndarray, offsets: np.ndarray, new_len: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Write a frame of the packets at ``offsets`` cut to ``new_len`` bytes into ``out``."""
    n = offsets.shape[0]
    out[0] = (n >> 8) & 0xFF
    out[1] = n & 0xFF
    w = 2
    for i in range(n):
        ln = new_len[i]
        out[w] = (ln >> 8) & 0xFF
        out[w + 1] = ln & 0xFF
        w += 2
        src = offsets[i]
        for j in range(ln):
            out[w + j] = buf[src + j]
        w += ln


def filter_frame(frame: BytesLike, modes: Mapping[int, int]) -> bytes | None:
    """Cut a recorded frame down to what one client subscribed to (for the replay server).

    ``modes`` maps instrument token -> subscribed mode code (1 ltp, 2 quote,
    3 full). Packets whose token is not in ``modes`` are dropped; the others are
    truncated to the subscribed mode (full 184 -> quote 44 -> ltp 8, index full
    32 -> index quote 28 -> ltp 8; a packet is never lengthened). Packet order
    is kept. Returns the new frame, or None when no packet is left. A heartbeat
    is returned unchanged (it carries no packets and every client gets it).

    Raises :class:`MalformedFrame` as :func:`packet_spans` does, and ValueError
    for a mode code outside 1..3.
    """
    offsets, lengths, tokens = packet_spans(frame)
    if is_heartbeat(frame):
        return bytes(frame)
    buf = np.frombuffer(frame, dtype=np.uint8)
    if not modes or offsets.shape[0] == 0:
        return None
    sub = np.fromiter(modes.keys(), np.int64, len(modes))
    sub_mode = np.fromiter(modes.values(), np.int64, len(modes))
    order = np.argsort(sub)
    sub, sub_mode = sub[order], sub_mode[order]
    pos = np.minimum(np.searchsorted(sub, tokens), sub.shape[0] - 1)
    hit = sub[pos] == tokens
    if not hit.any():
        return None
    mode = sub_mode[pos[hit]]
    bad = (mode < MODE_LTP) | (mode > MODE_FULL)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"token {int(tokens[hit][i])}: mode {int(mode[i])!r} is not 1, 2 or 3")
    new_len = _TRUNCATE_TABLE[lengths[hit], mode]
    out = np.empty(2 + int(new_len.sum()) + 2 * new_len.shape[0], np.uint8)
    _gather_packets(buf, offsets[hit], new_len, out)
    return out.tobytes()
