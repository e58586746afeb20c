"""Kite Connect WebSocket wire protocol: binary frames <-> tick arrays (vectorised).

Source: Kite Connect v3 WebSocket docs ("Message structure", "Quote packet
structure", "Index packet structure"); the ``kiteconnect`` PyPI package's
``KiteTicker._parse_binary`` is the independent reference used by the tests.

Frame layout (all integers big-endian)::

    u16 number_of_packets
    repeated: u16 packet_length, packet body (packet_length bytes)

A 1-byte binary message is a heartbeat. Text messages are JSON objects (order
updates ``{"type": "order", ...}``, errors ``{"type": "error", ...}``, broker
messages ``{"type": "message", ...}``), see :func:`parse_text_message`.

Packet bodies by length (byte offsets)::

    ltp           8   0 token, 4 last_price
    index quote  28   0 token, 4 last_price, 8 high, 12 low, 16 open, 20 close,
                      24 change (net change from close in price units; ignored
                      on decode, ``change`` is recomputed as percent like
                      kiteconnect; written as last_price - close on encode)
    index full   32   index quote + 28 exchange_timestamp
    quote        44   0 token, 4 last_price, 8 last_traded_quantity,
                      12 average_traded_price, 16 volume_traded,
                      20 total_buy_quantity, 24 total_sell_quantity,
                      28 open, 32 high, 36 low, 40 close
    full        184   quote + 44 last_trade_time, 48 oi, 52 oi_day_high,
                      56 oi_day_low, 60 exchange_timestamp, 64 depth:
                      10 x 12 bytes (5 buy then 5 sell) of
                      quantity u32, price i32, orders u16, 2 padding bytes

Packets are prefix-compatible: the first 44 bytes of a full packet are a quote
packet, the first 8 an ltp packet; likewise 32 -> 28 -> 8 for indices.

Signedness: prices (last_price, average_traded_price, OHLC, depth price and the
index change field) are read as signed int32, because they can be negative
(MCX crude oil futures settled below zero in April 2020; the index change field
is negative whenever the index is down). Quantities, volumes, open interest,
order counts and timestamps are unsigned (u32, u16). kiteconnect reads every
field as unsigned, so the two agree exactly for prices in [0, 2**31) units.

Price divisor by segment (``instrument_token & 0xff``): CDS (3) 1e7, BCD (6)
and NCO (12, as kiteconnect does) 1e4, everything else 100. Prices in a
:data:`TICK_DTYPE` array are rupees (float64); timestamps are integer epoch
seconds (UTC epoch); IST datetimes appear only in the display view
:func:`ticks_to_dicts`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numba
import numpy as np

from aion.market.time import to_ist

__all__ = [
    "FRAME_STATUS_REASONS",
    "INDEX_PACKET_LENGTHS",
    "MODE_CODES",
    "MODE_FULL",
    "MODE_LTP",
    "MODE_NAMES",
    "MODE_QUOTE",
    "PACKET_LENGTHS",
    "SEGMENT_BCD",
    "SEGMENT_BFO",
    "SEGMENT_BSE",
    "SEGMENT_CDS",
    "SEGMENT_INDICES",
    "SEGMENT_MCX",
    "SEGMENT_MCXSX",
    "SEGMENT_NAMES",
    "SEGMENT_NCO",
    "SEGMENT_NFO",
    "SEGMENT_NSE",
    "TICK_DTYPE",
    "BytesLike",
    "DecodedFrames",
    "FrameScan",
    "JoinedFrames",
    "MalformedFrame",
    "decode_frame",
    "decode_frames",
    "decode_packet",
    "depth_level",
    "encode_frame",
    "filter_frame",
    "is_heartbeat",
    "join_frames",
    "packet_fields",
    "packet_spans",
    "parse_text_message",
    "price_divisor",
    "price_divisors",
    "scan_frames",
    "scan_packets",
    "segment_of_token",
    "ticks_to_dicts",
]

# --------------------------------------------------------------------------- constants

BytesLike = bytes | bytearray | memoryview

MODE_LTP, MODE_QUOTE, MODE_FULL = 1, 2, 3
MODE_NAMES: dict[int, str] = {MODE_LTP: "ltp", MODE_QUOTE: "quote", MODE_FULL: "full"}
MODE_CODES: dict[str, int] = {name: code for code, name in MODE_NAMES.items()}

#: Kite's limit of instruments per WebSocket connection (Kite Connect WebSocket docs).
MAX_TOKENS_PER_CONNECTION = 3000
#: Kite's limit of WebSocket connections per API key.
MAX_CONNECTIONS_PER_KEY = 3

SEGMENT_NSE = 1
SEGMENT_NFO = 2
SEGMENT_CDS = 3
SEGMENT_BSE = 4
SEGMENT_BFO = 5
SEGMENT_BCD = 6
SEGMENT_MCX = 7
SEGMENT_MCXSX = 8
SEGMENT_INDICES = 9
SEGMENT_NCO = 12
SEGMENT_NAMES: dict[int, str] = {
    SEGMENT_NSE: "nse",
    SEGMENT_NFO: "nfo",
    SEGMENT_CDS: "cds",
    SEGMENT_BSE: "bse",
    SEGMENT_BFO: "bfo",
    SEGMENT_BCD: "bcd",
    SEGMENT_MCX: "mcx",
    SEGMENT_MCXSX: "mcxsx",
    SEGMENT_INDICES: "indices",
    SEGMENT_NCO: "nco",
}

LEN_LTP, LEN_INDEX_QUOTE, LEN_INDEX_FULL, LEN_QUOTE, LEN_FULL = 8, 28, 32, 44, 184
#: packet length by mode for tradable instruments / for indices
PACKET_LENGTHS: dict[int, int] = {MODE_LTP: LEN_LTP, MODE_QUOTE: LEN_QUOTE, MODE_FULL: LEN_FULL}
INDEX_PACKET_LENGTHS: dict[int, int] = {
    MODE_LTP: LEN_LTP,
    MODE_QUOTE: LEN_INDEX_QUOTE,
    MODE_FULL: LEN_INDEX_FULL,
}

DEPTH_LEVELS = 5
_U32_MAX = 0xFFFF_FFFF
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1

TICK_DTYPE = np.dtype(
    [
        ("instrument_token", np.uint32),
        ("mode", np.uint8),
        ("packet_length", np.uint16),
        ("tradable", np.bool_),
        ("last_price", np.float64),
        ("last_traded_quantity", np.int64),
        ("average_traded_price", np.float64),
        ("volume_traded", np.int64),
        ("total_buy_quantity", np.int64),
        ("total_sell_quantity", np.int64),
        ("open", np.float64),
        ("high", np.float64),
        ("low", np.float64),
        ("close", np.float64),
        ("change", np.float64),
        ("last_trade_time", np.int64),
        ("oi", np.int64),
        ("oi_day_high", np.int64),
        ("oi_day_low", np.int64),
        ("exchange_timestamp", np.int64),
        ("depth_buy_price", np.float64, (DEPTH_LEVELS,)),
        ("depth_buy_quantity", np.int64, (DEPTH_LEVELS,)),
        ("depth_buy_orders", np.int32, (DEPTH_LEVELS,)),
        ("depth_sell_price", np.float64, (DEPTH_LEVELS,)),
        ("depth_sell_quantity", np.int64, (DEPTH_LEVELS,)),
        ("depth_sell_orders", np.int32, (DEPTH_LEVELS,)),
    ]
)
"""One row per tick (native endian). Prices in rupees (float64), quantities as
int64, timestamps as int64 epoch seconds (0 when the packet does not carry
them), ``change`` in percent of ``close`` (0 when close is 0). Fields a packet
does not carry are 0. ``mode`` is 1/2/3 (:data:`MODE_NAMES`), ``packet_length``
the wire length it was decoded from (0 for ticks built in memory)."""

# Big-endian wire layouts, one per packet length.
_BE_DEPTH = np.dtype([("quantity", ">u4"), ("price", ">i4"), ("orders", ">u2"), ("pad", ">u2")])
_BE_LTP = np.dtype([("instrument_token", ">u4"), ("last_price", ">i4")])
_BE_INDEX_QUOTE = np.dtype(
    [
        *_BE_LTP.descr,
        ("high", ">i4"),
        ("low", ">i4"),
        ("open", ">i4"),
        ("close", ">i4"),
        ("change", ">i4"),
    ]
)
_BE_INDEX_FULL = np.dtype([*_BE_INDEX_QUOTE.descr, ("exchange_timestamp", ">u4")])
_BE_QUOTE = np.dtype(
    [
        *_BE_LTP.descr,
        ("last_traded_quantity", ">u4"),
        ("average_traded_price", ">i4"),
        ("volume_traded", ">u4"),
        ("total_buy_quantity", ">u4"),
        ("total_sell_quantity", ">u4"),
        ("open", ">i4"),
        ("high", ">i4"),
        ("low", ">i4"),
        ("close", ">i4"),
    ]
)
_BE_FULL = np.dtype(
    [
        *_BE_QUOTE.descr,
        ("last_trade_time", ">u4"),
        ("oi", ">u4"),
        ("oi_day_high", ">u4"),
        ("oi_day_low", ">u4"),
        ("exchange_timestamp", ">u4"),
        ("depth", _BE_DEPTH, (2 * DEPTH_LEVELS,)),
    ]
)
for _dt, _len in (
    (_BE_LTP, LEN_LTP),
    (_BE_INDEX_QUOTE, LEN_INDEX_QUOTE),
    (_BE_INDEX_FULL, LEN_INDEX_FULL),
    (_BE_QUOTE, LEN_QUOTE),
    (_BE_FULL, LEN_FULL),
):
    assert _dt.itemsize == _len, (_dt, _len)

# (length, mode, wire dtype, is index layout)
_CLASSES: tuple[tuple[int, int, np.dtype, bool], ...] = (
    (LEN_LTP, MODE_LTP, _BE_LTP, False),
    (LEN_INDEX_QUOTE, MODE_QUOTE, _BE_INDEX_QUOTE, True),
    (LEN_INDEX_FULL, MODE_FULL, _BE_INDEX_FULL, True),
    (LEN_QUOTE, MODE_QUOTE, _BE_QUOTE, False),
    (LEN_FULL, MODE_FULL, _BE_FULL, False),
)
_MODE_BY_LENGTH = {c[0]: c[1] for c in _CLASSES}

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

# --------------------------------------------------------------------------- errors


class MalformedFrame(ValueError):
    """A binary frame or text message that does not follow Kite's wire format.

    ``reason`` is a short, stable string (``"empty"``, ``"truncated header"``,
    ``"truncated packet"``, ``"count mismatch"``, ``"unknown packet length"``,
    ``"trailing bytes"``, ``"not bytes"``, ``"bad json"``, ``"not an object"``);
    the message adds details such as the byte offset.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


# --------------------------------------------------------------------------- segments


def segment_of_token(token: int) -> int:
    """Exchange segment code of an instrument token (``token & 0xff``)."""
    return int(token) & 0xFF


def price_divisor(token: int) -> float:
    """Price divisor for one instrument token: CDS 1e7, BCD/NCO 1e4, else 100.0.

    Wire prices are integers in units of ``1 / divisor`` rupees (Kite docs:
    "prices are in paise; currencies have 4 decimals"; CDS 7 decimals and NCO
    follow kiteconnect).
    """
    seg = int(token) & 0xFF
    if seg == SEGMENT_CDS:
        return 10_000_000.0
    if seg in (SEGMENT_BCD, SEGMENT_NCO):
        return 10_000.0
    return 100.0


def price_divisors(tokens: np.ndarray) -> np.ndarray:
    """Vectorised :func:`price_divisor`: integer tokens (n,) -> float64 divisors (n,)."""
    return _DIVISOR_BY_SEGMENT[np.asarray(tokens).astype(np.int64) & 0xFF]


_DIVISOR_BY_SEGMENT = np.array([price_divisor(seg) for seg in range(256)], np.float64)


# --------------------------------------------------------------------------- kernels

_OK, _TRUNC_HEADER, _TRUNC_PACKET, _COUNT, _UNKNOWN_LEN, _TRAILING = 0, 1, 2, 3, 4, 5


_HEARTBEAT, _EMPTY, _NOT_BYTES = 6, 7, 8

#: ``status`` codes of :func:`decode_frames`, index -> reason (``MalformedFrame.reason``).
FRAME_STATUS_REASONS: tuple[str, ...] = (
    "ok",
    "truncated header",
    "truncated packet",
    "count mismatch",
    "unknown packet length",
    "trailing bytes",
    "heartbeat",
    "empty",
    "not bytes",
)
FRAME_OK, FRAME_HEARTBEAT = _OK, _HEARTBEAT


@numba.njit(cache=True, nogil=True)
def _scan_into(buf, start, end, offsets, lengths, tokens, k):  # pragma: no cover - compiled
    """Walk the u16 length headers of the frame ``buf[start:end]`` (at least 2 bytes).

    Appends each packet's body offset, length and token at index ``k`` of the
    output arrays (capacity: every packet takes >= 10 bytes, so ``(end - start) // 10``
    entries per frame suffice). Returns ``(status, where, k_after)``; on an error
    ``k_after == k`` (nothing of the frame is kept) and ``where`` is the byte offset
    inside the frame, the packet index or the bad length, per status.
    """
    count = (np.int64(buf[start]) << 8) | np.int64(buf[start + 1])
    pos = start + 2
    for i in range(count):
        if pos == end:
            return _COUNT, np.int64(i), k
        if pos + 2 > end:
            return _TRUNC_HEADER, pos - start, k
        plen = (np.int64(buf[pos]) << 8) | np.int64(buf[pos + 1])
        pos += 2
        if plen != 8 and plen != 28 and plen != 32 and plen != 44 and plen != 184:
            return _UNKNOWN_LEN, plen, k
        if pos + plen > end:
            return _TRUNC_PACKET, pos - start, k
        offsets[k + i] = pos
        lengths[k + i] = plen
        tokens[k + i] = (
            (np.uint32(buf[pos]) << 24)
            | (np.uint32(buf[pos + 1]) << 16)
            | (np.uint32(buf[pos + 2]) << 8)
            | np.uint32(buf[pos + 3])
        )
        pos += plen
    if pos != end:
        return _TRAILING, end - pos, k
    return _OK, np.int64(0), k + count


@numba.njit(cache=True, nogil=True)
def scan_packets(
    buf, starts, ends, offsets, lengths, tokens, frame_of, status, where
):  # pragma: no cover - compiled
    """Locate the packets of many frames laid end to end in ``buf`` (:func:`join_frames`).

    Frame ``f`` is ``buf[starts[f]:ends[f]]``; writes each kept packet's body offset, length,
    token and frame index (capacity :attr:`JoinedFrames.max_packets`), sets ``status[f]`` (an
    index into :data:`FRAME_STATUS_REASONS`; frames already marked ``not bytes`` keep it) and
    ``where[f]`` (the error's detail); returns the number of packets kept. Numba:
    :func:`scan_frames` and the compute thread's fused pass (:mod:`aion.pipeline.ticks`).
    """
    k = np.int64(0)
    for f in range(starts.size):
        s = starts[f]
        n = ends[f] - s
        if n == 1:
            status[f] = _HEARTBEAT
            continue
        if n == 0:
            if status[f] != _NOT_BYTES:
                status[f] = _EMPTY
            continue
        st, w, k2 = _scan_into(buf, s, ends[f], offsets, lengths, tokens, k)
        status[f] = st
        where[f] = w
        for j in range(k, k2):
            frame_of[j] = f
        k = k2
    return k


@numba.njit(cache=True, nogil=True)
def _scatter(out, offsets, rows):  # pragma: no cover - compiled
    """Inverse of :func:`_gather`: write each row of ``rows`` at its offset in ``out``."""
    k, plen = rows.shape
    for i in range(k):
        o = offsets[i]
        for j in range(plen):
            out[o + j] = rows[i, j]


# --------------------------------------------------------------------------- framing


def _as_u8(frame: Any) -> np.ndarray:
    try:
        return np.frombuffer(frame, dtype=np.uint8)
    except (TypeError, ValueError, BufferError) as exc:
        raise MalformedFrame("not bytes", type(frame).__name__) from exc


def is_heartbeat(frame: BytesLike) -> bool:
    """True for Kite's 1-byte binary heartbeat message."""
    return len(frame) == 1


def _spans(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = buf.size
    if n == 1:
        empty = np.empty(0, np.int64)
        return empty, empty.copy(), np.empty(0, np.uint32)
    if n == 0:
        raise MalformedFrame("empty", "0-byte binary message")
    cap = n // 10 + 1
    offsets = np.empty(cap, np.int64)
    lengths = np.empty(cap, np.int64)
    tokens = np.empty(cap, np.uint32)
    status, where, k = _scan_into(buf, 0, n, offsets, lengths, tokens, 0)
    if status == _OK:
        return offsets[:k], lengths[:k], tokens[:k]
    raise _malformed(int(status), int(where), int(buf[0]) << 8 | int(buf[1]))


def _malformed(status: int, where: int, count: int) -> MalformedFrame:
    reason = FRAME_STATUS_REASONS[status]
    if status == _COUNT:
        return MalformedFrame(reason, f"header says {count} packets, frame holds {where}")
    if status == _TRUNC_HEADER:
        return MalformedFrame(reason, f"packet length header cut at byte {where}")
    if status == _TRUNC_PACKET:
        return MalformedFrame(reason, f"packet body at byte {where} runs past the end")
    if status == _UNKNOWN_LEN:
        return MalformedFrame(reason, f"{where} bytes (known: 8, 28, 32, 44, 184)")
    return MalformedFrame(reason, f"{where} bytes after {count} packets")


def packet_spans(frame: BytesLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Locate the packet bodies of one binary frame without decoding them.

    Returns ``(offsets, lengths, tokens)``: int64 (n,) byte offsets of each
    packet body in ``frame``, int64 (n,) body lengths (each one of 8, 28, 32,
    44, 184), uint32 (n,) instrument tokens; n = 0 for a heartbeat or an empty
    frame (count 0).

    Raises :class:`MalformedFrame` for a 0-byte message, a packet count that
    does not match the bytes (``count mismatch``, ``truncated header``,
    ``truncated packet``, ``trailing bytes``) or an ``unknown packet length``.
    Source: Kite Connect WebSocket docs, "Message structure".
    """
    return _spans(_as_u8(frame))


# --------------------------------------------------------------------------- decode


@numba.njit(cache=True, nogil=True, inline="always")
def _u32(buf, p):  # pragma: no cover - compiled
    return (
        (np.int64(buf[p]) << 24)
        | (np.int64(buf[p + 1]) << 16)
        | (np.int64(buf[p + 2]) << 8)
        | np.int64(buf[p + 3])
    )


@numba.njit(cache=True, nogil=True, inline="always")
def _i32(buf, p):  # pragma: no cover - compiled
    v = _u32(buf, p)
    return v - (np.int64(1) << 32) if v >= (np.int64(1) << 31) else v


@numba.njit(cache=True, nogil=True, inline="always")
def _divisor(tok):  # pragma: no cover - compiled
    seg = tok & 0xFF
    return 10_000_000.0 if seg == 3 else (10_000.0 if seg == 6 or seg == 12 else 100.0)


@numba.njit(cache=True, nogil=True, inline="always")
def packet_fields(buf, p, plen, tok):  # pragma: no cover - compiled
    """Decode the scalar fields of the packet body ``buf[p:p+plen]`` of instrument ``tok``.

    The one packet decoder: :func:`decode_frame`/:func:`decode_frames` write its result into
    :data:`TICK_DTYPE` rows and the compute thread's columnar pass
    (:mod:`aion.pipeline.ticks`) reads it directly. Numba-only (call it from compiled code).

    Returns the tuple ``(mode, tradable, last_price, last_traded_quantity,
    average_traded_price, volume_traded, total_buy_quantity, total_sell_quantity, open, high,
    low, close, change, last_trade_time, oi, oi_day_high, oi_day_low, exchange_timestamp)``
    (prices in rupees divided by the segment's divisor, quantities and epoch seconds as int64,
    0 for what the packet does not carry; ``change`` is ``(last_price - close) * 100 / close``,
    0 when close is 0, the same float operations as kiteconnect). Depth: :func:`depth_level`.
    """
    div = _divisor(tok)
    lp = _i32(buf, p + 4) / div
    zero = np.int64(0)
    ltq = vol = tbq = tsq = ltt = oi = oih = oil = ets = zero
    o = h = lo = c = 0.0
    if plen == 8:
        return (np.int64(1), tok & 0xFF != 9, lp, ltq, 0.0, vol, tbq, tsq, o, h, lo, c, 0.0,
                ltt, oi, oih, oil, ets)  # fmt: skip
    if plen == 28 or plen == 32:
        mode = np.int64(2 if plen == 28 else 3)
        h = _i32(buf, p + 8) / div
        lo = _i32(buf, p + 12) / div
        o = _i32(buf, p + 16) / div
        c = _i32(buf, p + 20) / div
        if plen == 32:
            ets = _u32(buf, p + 28)
        atp = 0.0
    else:
        mode = np.int64(2 if plen == 44 else 3)
        ltq = _u32(buf, p + 8)
        atp = _i32(buf, p + 12) / div
        vol = _u32(buf, p + 16)
        tbq = _u32(buf, p + 20)
        tsq = _u32(buf, p + 24)
        o = _i32(buf, p + 28) / div
        h = _i32(buf, p + 32) / div
        lo = _i32(buf, p + 36) / div
        c = _i32(buf, p + 40) / div
        if plen == 184:
            ltt = _u32(buf, p + 44)
            oi = _u32(buf, p + 48)
            oih = _u32(buf, p + 52)
            oil = _u32(buf, p + 56)
            ets = _u32(buf, p + 60)
    change = (lp - c) * 100 / c if c != 0 else 0.0
    return (mode, tok & 0xFF != 9, lp, ltq, atp, vol, tbq, tsq, o, h, lo, c, change, ltt, oi,
            oih, oil, ets)  # fmt: skip


@numba.njit(cache=True, nogil=True, inline="always")
def depth_level(buf, p, j, tok):  # pragma: no cover - compiled
    """Depth level ``j`` (0..4) of the full packet body at ``p`` of instrument ``tok``:
    ``(buy quantity, buy price, buy orders, sell quantity, sell price, sell orders)`` (prices
    in rupees, the rest int64). Numba-only; see :func:`packet_fields`."""
    div = _divisor(tok)
    b = p + 64 + 12 * j
    a = b + 60
    return (
        _u32(buf, b),
        _i32(buf, b + 4) / div,
        (np.int64(buf[b + 8]) << 8) | np.int64(buf[b + 9]),
        _u32(buf, a),
        _i32(buf, a + 4) / div,
        (np.int64(buf[a + 8]) << 8) | np.int64(buf[a + 9]),
    )


@numba.njit(cache=True, nogil=True)
def _decode_kernel(buf, offsets, lengths, tokens, out):  # pragma: no cover - compiled
    """Decode each packet body ``buf[offsets[i]:offsets[i]+lengths[i]]`` into ``out[i]``
    (a zeroed :data:`TICK_DTYPE` array) with :func:`packet_fields` and :func:`depth_level`."""
    for i in range(offsets.size):
        p = offsets[i]
        plen = lengths[i]
        tok = tokens[i]
        (mode, tradable, lp, ltq, atp, vol, tbq, tsq, o, h, lo, c, change, ltt, oi, oih, oil,
         ets) = packet_fields(buf, p, plen, tok)  # fmt: skip
        r = out[i]
        r["instrument_token"] = tok
        r["packet_length"] = plen
        r["tradable"] = tradable
        r["mode"] = mode
        r["last_price"] = lp
        if plen == 8:
            continue
        r["open"] = o
        r["high"] = h
        r["low"] = lo
        r["close"] = c
        r["change"] = change
        r["exchange_timestamp"] = ets
        if plen == 28 or plen == 32:  # index packets carry nothing else (``out`` is zeroed)
            continue
        r["last_traded_quantity"] = ltq
        r["average_traded_price"] = atp
        r["volume_traded"] = vol
        r["total_buy_quantity"] = tbq
        r["total_sell_quantity"] = tsq
        if plen == 184:
            r["last_trade_time"] = ltt
            r["oi"] = oi
            r["oi_day_high"] = oih
            r["oi_day_low"] = oil
            for j in range(5):
                bq, bp, bo, sq, sp, so = depth_level(buf, p, j, tok)
                r["depth_buy_quantity"][j] = bq
                r["depth_buy_price"][j] = bp
                r["depth_buy_orders"][j] = bo
                r["depth_sell_quantity"][j] = sq
                r["depth_sell_price"][j] = sp
                r["depth_sell_orders"][j] = so


def _decode_spans(
    buf: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, tokens: np.ndarray
) -> np.ndarray:
    out = np.zeros(offsets.size, TICK_DTYPE)
    if offsets.size:
        _decode_kernel(buf, offsets, lengths, tokens, out)
    return out


def decode_frame(frame: BytesLike) -> np.ndarray:
    """Decode one binary WebSocket message into ticks.

    ``frame``: bytes-like. Returns a :data:`TICK_DTYPE` array (n,), one row per
    packet in packet order (prices in rupees, timestamps in epoch seconds,
    ``change`` in percent vs close recomputed like kiteconnect). A heartbeat
    (1 byte) or a count-0 frame gives an empty array.

    Raises :class:`MalformedFrame` (and nothing else for any bytes input) when
    the frame is empty, its packet count does not match its bytes, a packet is
    truncated, a packet length is unknown or bytes trail the last packet.
    Source: Kite Connect WebSocket docs, "Message structure".
    """
    buf = _as_u8(frame)
    offsets, lengths, tokens = _spans(buf)
    return _decode_spans(buf, offsets, lengths, tokens)


class DecodedFrames(NamedTuple):
    """Result of :func:`decode_frames`.

    Attributes:
        ticks: :data:`TICK_DTYPE` (n,), the packets of every well-formed frame in order.
        tick_frame: int64 (n,), index of each tick's frame in the input sequence.
        status: uint8 (m,), per input frame: an index into :data:`FRAME_STATUS_REASONS`
            (0 ``ok``, 6 ``heartbeat``, 1-5 and 7-8 malformed reasons).
    """

    ticks: np.ndarray
    tick_frame: np.ndarray
    status: np.ndarray

    def malformed(self) -> np.ndarray:
        """Boolean (m,): frames that were neither well-formed nor heartbeats."""
        return (self.status != FRAME_OK) & (self.status != FRAME_HEARTBEAT)


class JoinedFrames(NamedTuple):
    """Result of :func:`join_frames`: many frames in one buffer, not scanned yet.

    Attributes:
        buf: uint8 (b,), the frames joined end to end.
        starts: int64 (m,), where frame ``f`` starts in ``buf``.
        ends: int64 (m,), where it ends (exclusive).
        status: uint8 (m,), ``not bytes`` (8) for inputs that are not bytes-like, else 0.
        max_packets: the sum of the frames' packet-count headers: an upper bound on the
            packets :func:`scan_packets` writes.
    """

    buf: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    status: np.ndarray
    max_packets: int


def join_frames(frames: Sequence[Any], into: np.ndarray | None = None) -> JoinedFrames:
    """Join binary WebSocket messages end to end for :func:`scan_packets` (never raises).

    With ``into`` (uint8, 1-D) long enough for all the frames' bytes, they are copied into
    its head and ``buf`` is a view of it (a caller that joins many batches reuses one
    buffer); else a new buffer is made.
    """
    m = len(frames)
    status = np.zeros(m, np.uint8)
    parts: list[Any] = []
    sizes = np.empty(m, np.int64)
    for i, f in enumerate(frames):
        if isinstance(f, bytes | bytearray | memoryview):
            parts.append(f)
            sizes[i] = f.nbytes if isinstance(f, memoryview) else len(f)
        else:
            status[i] = _NOT_BYTES
            sizes[i] = 0
    total = int(sizes.sum())
    if into is not None and into.shape[0] >= total:
        buf = into[:total]
        at = 0
        for part in parts:
            k = part.nbytes if isinstance(part, memoryview) else len(part)
            buf[at : at + k] = np.frombuffer(part, np.uint8)
            at += k
    else:
        buf = np.frombuffer(b"".join(parts), dtype=np.uint8)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    # a frame's scan writes at most its header's count of packets (then keeps them or not)
    heads = starts[sizes >= 2]
    max_packets = int(((buf[heads].astype(np.int64) << 8) | buf[heads + 1]).sum())
    return JoinedFrames(buf, starts, ends, status, max_packets)


class FrameScan(NamedTuple):
    """Result of :func:`scan_frames`: where the packets of many frames are, not decoded.

    Attributes:
        buf: uint8 (b,), the frames joined end to end.
        offsets: int64 (n,), byte offset in ``buf`` of each packet body of a well-formed frame.
        lengths: int64 (n,), each body's length (8, 28, 32, 44 or 184).
        tokens: uint32 (n,), each packet's instrument token.
        frame_of: int64 (n,), index of each packet's frame in the input sequence.
        status: uint8 (m,), per input frame, as in :class:`DecodedFrames`.
    """

    buf: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    tokens: np.ndarray
    frame_of: np.ndarray
    status: np.ndarray


def scan_frames(frames: Sequence[Any]) -> FrameScan:
    """Join many binary WebSocket messages and locate their packets in one compiled pass.

    The first half of :func:`decode_frames` (which then decodes every packet into a
    :data:`TICK_DTYPE` row). A malformed frame contributes no packets and gets the reason
    :func:`decode_frame` would raise in ``status``; objects that are not bytes-like get
    ``not bytes``. Never raises for any input sequence.
    """
    j = join_frames(frames)
    cap = j.max_packets
    offsets = np.empty(cap, np.int64)
    lengths = np.empty(cap, np.int64)
    tokens = np.empty(cap, np.uint32)
    frame_of = np.empty(cap, np.int64)
    where = np.zeros(j.status.shape[0], np.int64)
    k = scan_packets(j.buf, j.starts, j.ends, offsets, lengths, tokens, frame_of, j.status, where)
    return FrameScan(j.buf, offsets[:k], lengths[:k], tokens[:k], frame_of[:k], j.status)


def decode_frames(frames: Sequence[Any]) -> DecodedFrames:
    """Decode many binary WebSocket messages at once (one compiled pass, one decode).

    Equivalent to :func:`decode_frame` on each frame followed by a concatenation
    of the well-formed results, without the per-frame Python overhead: the frames
    are joined into one buffer, scanned by one Numba call (:func:`scan_frames`) and decoded
    together. A malformed frame contributes no ticks (nothing of it is kept) and is
    reported in ``status`` with the same reason :func:`decode_frame` would raise;
    objects that are not bytes-like get ``not bytes``. Never raises for any input
    sequence. Source: Kite Connect WebSocket docs, "Message structure".
    """
    sc = scan_frames(frames)
    ticks = _decode_spans(sc.buf, sc.offsets, sc.lengths, sc.tokens)
    return DecodedFrames(ticks, sc.frame_of.copy(), sc.status)


def decode_packet(body: BytesLike) -> np.ndarray:
    """Decode one packet body (no frame or length header) into a (1,) :data:`TICK_DTYPE` array.

    The body length selects the layout (8, 28, 32, 44 or 184 bytes); raises
    :class:`MalformedFrame` ``unknown packet length`` otherwise (or ``not bytes``).
    """
    buf = _as_u8(body)
    plen = buf.size
    if plen not in _MODE_BY_LENGTH:
        raise MalformedFrame("unknown packet length", f"{plen} bytes (known: 8, 28, 32, 44, 184)")
    token = np.frombuffer(buf[:4].tobytes(), dtype=">u4").astype(np.uint32)
    return _decode_spans(buf, np.zeros(1, np.int64), np.array([plen], np.int64), token)


# --------------------------------------------------------------------------- encode


def _raw_prices(values: np.ndarray, div: np.ndarray, name: str) -> np.ndarray:
    raw = np.rint(np.asarray(values, np.float64) * (div if values.ndim == 1 else div[:, None]))
    bad = ~np.isfinite(raw) | (raw < _I32_MIN) | (raw > _I32_MAX)
    if bad.any():
        raise ValueError(f"{name}: price not representable as int32 units of its divisor")
    return raw.astype(np.int64)


def _raw_u32(values: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(values).astype(np.int64)
    if ((v < 0) | (v > _U32_MAX)).any():
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
    for plen, _mode, be, is_index_layout in _CLASSES:
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
            change = (lp - rec["close"].astype(np.int64)) & _U32_MAX
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
    buf = _as_u8(frame)
    if buf.size == 1:
        return bytes(frame)
    offsets, lengths, tokens = _spans(buf)
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


# --------------------------------------------------------------------------- display


def _ist_or_none(epoch_s: int) -> Any:
    return to_ist(epoch_s) if epoch_s else None


def ticks_to_dicts(ticks: np.ndarray) -> list[dict]:
    """Display view of ticks as dicts shaped like kiteconnect's ticks (Kite field names).

    ``mode`` as ``"ltp"``/``"quote"``/``"full"``; ``ohlc`` nested; ``depth`` as
    ``{"buy": [{"quantity", "price", "orders"} x5], "sell": [...]}``;
    ``last_trade_time``/``exchange_timestamp`` as tz-aware IST datetimes (None
    when 0). An ltp tick carries only tradable, mode, instrument_token,
    last_price; quote ticks carry no full-only fields; index ticks (28/32-byte
    packets, or segment 9 when ``packet_length`` is 0) carry last_price, ohlc,
    change (+ exchange_timestamp in full). Not for hot paths: one dict per tick.
    """
    rows = np.asarray(ticks).reshape(-1).tolist()  # tuples in TICK_DTYPE field order
    names = TICK_DTYPE.names
    assert names is not None
    result: list[dict] = []
    for row in rows:
        r = dict(zip(names, row, strict=True))
        mode = int(r["mode"])
        plen = int(r["packet_length"])
        token = int(r["instrument_token"])
        d: dict[str, Any] = {
            "tradable": bool(r["tradable"]),
            "mode": MODE_NAMES.get(mode, str(mode)),
            "instrument_token": token,
            "last_price": r["last_price"],
        }
        if mode == MODE_LTP:
            result.append(d)
            continue
        is_index = plen in (LEN_INDEX_QUOTE, LEN_INDEX_FULL) or (
            plen == 0 and token & 0xFF == SEGMENT_INDICES
        )
        if is_index:
            d["ohlc"] = {"high": r["high"], "low": r["low"], "open": r["open"], "close": r["close"]}
            d["change"] = r["change"]
            if mode == MODE_FULL:
                d["exchange_timestamp"] = _ist_or_none(r["exchange_timestamp"])
            result.append(d)
            continue
        d["last_traded_quantity"] = r["last_traded_quantity"]
        d["average_traded_price"] = r["average_traded_price"]
        d["volume_traded"] = r["volume_traded"]
        d["total_buy_quantity"] = r["total_buy_quantity"]
        d["total_sell_quantity"] = r["total_sell_quantity"]
        d["ohlc"] = {"open": r["open"], "high": r["high"], "low": r["low"], "close": r["close"]}
        d["change"] = r["change"]
        if mode == MODE_FULL:
            d["last_trade_time"] = _ist_or_none(r["last_trade_time"])
            d["oi"] = r["oi"]
            d["oi_day_high"] = r["oi_day_high"]
            d["oi_day_low"] = r["oi_day_low"]
            d["exchange_timestamp"] = _ist_or_none(r["exchange_timestamp"])
            d["depth"] = {
                side: [
                    {"quantity": q, "price": p, "orders": o}
                    for q, p, o in zip(
                        r[f"depth_{side}_quantity"].tolist(),
                        r[f"depth_{side}_price"].tolist(),
                        r[f"depth_{side}_orders"].tolist(),
                        strict=True,
                    )
                ]
                for side in ("buy", "sell")
            }
        result.append(d)
    return result


# --------------------------------------------------------------------------- text frames


def parse_text_message(text: str | bytes) -> dict:
    """Parse a text WebSocket message (JSON object) into a dict.

    Kite sends order updates ``{"type": "order", "data": {...}}``, errors
    ``{"type": "error", "data": "..."}`` and messages ``{"type": "message",
    "data": ...}``; the dict is returned as parsed. Bytes are decoded as UTF-8.
    Raises :class:`MalformedFrame` (``bad json`` / ``not an object``).
    """
    try:
        if isinstance(text, bytes | bytearray | memoryview):
            text = bytes(text).decode("utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError, TypeError, RecursionError) as exc:
        raise MalformedFrame("bad json", str(exc).splitlines()[0][:120]) from exc
    if not isinstance(data, dict):
        raise MalformedFrame("not an object", f"JSON {type(data).__name__}")
    return data
