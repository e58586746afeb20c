"""DhanHQ v2 live market feed wire format: binary messages <-> tick arrays (vectorised).

Sources: DhanHQ v2 API docs, "Live Market Feed" (https://dhanhq.co/docs/v2/live-market-feed/:
JSON requests, binary responses, little-endian, 8-byte response header, 5 connections per
user, 5000 instruments per connection, 100 instruments per JSON message) and the ``dhanhq``
PyPI package (2.3.0), ``dhanhq/marketfeed.py`` ``MarketFeed.process_*``, which is the
independent reference the tests compare against field by field.

Every packet starts with the response header (all integers little-endian)::

    0 u8 response code   1 u16 message length   3 u8 exchange segment   4 u32 security id

Packets by response code (byte offsets after the 8-byte header, ``f32`` = IEEE float32 rupees)::

    2  ticker        16 B  8 f32 last_price, 12 u32 LTT
    4  quote         50 B  8 f32 last_price, 12 u16 last_traded_quantity, 14 u32 LTT,
                           18 f32 average_traded_price, 22 u32 volume (cumulative for the day),
                           26 u32 total_sell_quantity, 30 u32 total_buy_quantity,
                           34 f32 open, 38 f32 close, 42 f32 high, 46 f32 low
    5  OI            12 B  8 u32 oi
    6  prev close    16 B  8 f32 previous day's close, 12 u32 previous day's OI
    7  market status  8 B  header only
    8  full         162 B  quote's first 34 bytes, then 34 u32 oi, 38 u32 oi_day_high,
                           42 u32 oi_day_low, 46 f32 open, 50 f32 close, 54 f32 high,
                           58 f32 low, 62 depth: 5 levels x 20 B of bid quantity u32,
                           ask quantity u32, bid orders u16, ask orders u16, bid price f32,
                           ask price f32
    50 disconnect    10 B  8 u16 reason code (:data:`DISCONNECT_REASONS`)

Note the order of the two book totals: total *sell* quantity comes before total *buy*
quantity (``dhanhq`` unpacks them in that order). Response code 3 (5-level depth) is a v1
packet and not part of the v2 feed; it is an unknown code here.

The message length field: ``dhanhq`` never reads it and the docs do not say whether it
counts the header, so a packet is accepted when it equals either the whole packet size or
the size without the header; anything else is counted ``bad message length``. A WebSocket
message may carry several packets back to back; each one's size comes from its response code.

Mapping to :data:`aion.kite.wire.TICK_DTYPE` (Kite's names, rupees as float64, epoch
seconds): ticker -> mode 1 (ltp), quote -> mode 2, full -> mode 3; ``volume_traded`` is Dhan's
cumulative day volume (the VolumeStateManager stays the only place it becomes incremental);
``close`` is the packet's close field as sent; ``change`` is percent vs ``close`` as on the Kite
path; depth bid -> ``depth_buy_*``, ask -> ``depth_sell_*``. Dhan sends one time per packet,
LTT: ``dhanhq`` renders it with ``datetime.fromtimestamp(ltt, timezone.utc)`` and prints
exchange clock times (09:15:00 at the open), i.e. LTT counts seconds of IST wall-clock time
since 1970-01-01 00:00 (UTC epoch + 19,800 s). aion stores UTC epoch seconds, so
``exchange_timestamp = last_trade_time = LTT - 19800`` (0 stays 0).

Prices: Dhan sends float32 rupees. They are rounded to 2 decimals (4 for the currency
segments), the exchange's price precision; float32 keeps every paise value exactly recoverable
below 131,072 rupees (half an ulp < 0.005 there).

Instrument tokens: a Dhan instrument is (exchange segment, security id). aion's
``instrument_token`` for it is ``security_id << 8 | kite_segment`` (:func:`instrument_token`),
Kite's own token rule: Dhan's security id is the exchange's token, so for NSE/BSE cash and F&O
the result is Kite's ``instrument_token`` (HDFCBANK: Dhan NSE_EQ 1333, Kite 341249 = 1333 * 256
+ 1). Index ids are Dhan's own (NIFTY 50 is 13), so index tokens differ from Kite's.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

import numba
import numpy as np

from aion.kite.wire import MODE_FULL, MODE_LTP, MODE_QUOTE, TICK_DTYPE

__all__ = [
    "CODE_DISCONNECT",
    "CODE_FULL",
    "CODE_MARKET_STATUS",
    "CODE_OI",
    "CODE_PREV_CLOSE",
    "CODE_QUOTE",
    "CODE_TICKER",
    "DISCONNECT_REASONS",
    "EVENT_DTYPE",
    "FRAME_STATUS_REASONS",
    "IST_EPOCH_OFFSET_S",
    "PACKET_SIZES",
    "SEGMENT_NAMES",
    "DecodedFrames",
    "decode_frames",
    "disconnect_reason",
    "encode_disconnect",
    "encode_market_status",
    "encode_oi",
    "encode_prev_close",
    "encode_ticks",
    "instrument_token",
    "split_token",
]

# --------------------------------------------------------------------------- constants

CODE_TICKER, CODE_QUOTE, CODE_OI, CODE_PREV_CLOSE = 2, 4, 5, 6
CODE_MARKET_STATUS, CODE_FULL, CODE_DISCONNECT = 7, 8, 50

#: packet size (header included) by response code (``dhanhq`` ``struct`` formats)
PACKET_SIZES: dict[int, int] = {
    CODE_TICKER: 16,
    CODE_QUOTE: 50,
    CODE_OI: 12,
    CODE_PREV_CLOSE: 16,
    CODE_MARKET_STATUS: 8,
    CODE_FULL: 162,
    CODE_DISCONNECT: 10,
}
_SIZE_BY_CODE = np.zeros(256, np.int64)
for _code, _size in PACKET_SIZES.items():
    _SIZE_BY_CODE[_code] = _size

#: Dhan exchange segment code -> name used in JSON requests (``MarketFeed.get_exchange_segment``)
SEGMENT_NAMES: dict[int, str] = {
    0: "IDX_I",
    1: "NSE_EQ",
    2: "NSE_FNO",
    3: "NSE_CURRENCY",
    4: "BSE_EQ",
    5: "MCX_COMM",
    7: "BSE_CURRENCY",
    8: "BSE_FNO",
}
#: Dhan segment code -> Kite segment code (``instrument_token & 0xff``: 1 NSE, 2 NFO, 3 CDS,
#: 4 BSE, 5 BFO, 6 BCD, 7 MCX, 9 INDICES)
_KITE_SEGMENT: dict[int, int] = {0: 9, 1: 1, 2: 2, 3: 3, 4: 4, 5: 7, 7: 6, 8: 5}
_KITE_SEG_BY_DHAN = np.zeros(256, np.int64)
_DHAN_SEG_BY_KITE = np.full(256, -1, np.int64)
_DECIMALS_BY_DHAN = np.full(256, 2, np.int64)
for _d, _k in _KITE_SEGMENT.items():
    _KITE_SEG_BY_DHAN[_d] = _k
    _DHAN_SEG_BY_KITE[_k] = _d
_DECIMALS_BY_DHAN[[3, 7]] = 4  # NSE_CURRENCY, BSE_CURRENCY quote to 4 decimals
_SCALE_BY_DHAN = 10.0**_DECIMALS_BY_DHAN

#: Disconnect packet reason codes, in words (``dhanhq`` ``MarketFeed.server_disconnection``).
DISCONNECT_REASONS: dict[int, str] = {
    805: "no. of active websocket connections exceeded",
    806: "subscribe to Data APIs to continue",
    807: "access token is expired",
    808: "invalid client id",
    809: "authentication failed",
}

#: LTT counts IST wall-clock seconds: UTC epoch = LTT - 19800 (see the module docstring).
IST_EPOCH_OFFSET_S = 19_800

_OK, _EMPTY, _TRUNC_HEADER, _TRUNC_PACKET, _UNKNOWN, _BAD_LEN, _BAD_ID, _NOT_BYTES = range(8)
#: ``status`` of :func:`decode_frames`, index -> reason
FRAME_STATUS_REASONS: tuple[str, ...] = (
    "ok",
    "empty",
    "truncated header",
    "truncated packet",
    "unknown response code",
    "bad message length",
    "security id out of range",
    "not bytes",
)

_HEADER = [("response_code", "u1"), ("message_length", "<u2"), ("exchange_segment", "u1"),
           ("security_id", "<u4")]  # fmt: skip
_LE_TICKER = np.dtype([*_HEADER, ("last_price", "<f4"), ("ltt", "<u4")])
_QUOTE_HEAD = [
    *_HEADER,
    ("last_price", "<f4"),
    ("last_traded_quantity", "<u2"),
    ("ltt", "<u4"),
    ("average_traded_price", "<f4"),
    ("volume_traded", "<u4"),
    ("total_sell_quantity", "<u4"),
    ("total_buy_quantity", "<u4"),
]
_OHLC = [("open", "<f4"), ("close", "<f4"), ("high", "<f4"), ("low", "<f4")]
_LE_QUOTE = np.dtype([*_QUOTE_HEAD, *_OHLC])
_LE_DEPTH = np.dtype(
    [
        ("bid_quantity", "<u4"),
        ("ask_quantity", "<u4"),
        ("bid_orders", "<u2"),
        ("ask_orders", "<u2"),
        ("bid_price", "<f4"),
        ("ask_price", "<f4"),
    ]
)
_LE_FULL = np.dtype(
    [
        *_QUOTE_HEAD,
        ("oi", "<u4"),
        ("oi_day_high", "<u4"),
        ("oi_day_low", "<u4"),
        *_OHLC,
        ("depth", _LE_DEPTH, (5,)),
    ]
)
_LE_OI = np.dtype([*_HEADER, ("oi", "<u4")])
_LE_PREV_CLOSE = np.dtype([*_HEADER, ("prev_close", "<f4"), ("prev_oi", "<u4")])
_LE_STATUS = np.dtype(_HEADER)
_LE_DISCONNECT = np.dtype([*_HEADER, ("reason_code", "<u2")])
_LAYOUT: dict[int, np.dtype] = {
    CODE_TICKER: _LE_TICKER,
    CODE_QUOTE: _LE_QUOTE,
    CODE_OI: _LE_OI,
    CODE_PREV_CLOSE: _LE_PREV_CLOSE,
    CODE_MARKET_STATUS: _LE_STATUS,
    CODE_FULL: _LE_FULL,
    CODE_DISCONNECT: _LE_DISCONNECT,
}
for _code, _dt in _LAYOUT.items():
    assert _dt.itemsize == PACKET_SIZES[_code], (_code, _dt.itemsize)
_MODE_BY_CODE = {CODE_TICKER: MODE_LTP, CODE_QUOTE: MODE_QUOTE, CODE_FULL: MODE_FULL}
_CODE_BY_MODE = np.array([0, CODE_TICKER, CODE_QUOTE, CODE_FULL], np.int64)

EVENT_DTYPE = np.dtype(
    [
        ("response_code", np.uint8),
        ("exchange_segment", np.uint8),
        ("security_id", np.uint32),
        ("instrument_token", np.uint32),
        ("oi", np.int64),
        ("prev_close", np.float64),
        ("prev_oi", np.int64),
        ("reason_code", np.int32),
    ]
)
"""One row per packet that carries no trade: OI (5: ``oi``), previous close (6: ``prev_close``
rupees, ``prev_oi``), market status (7: header only), disconnect (50: ``reason_code``). Fields a
packet does not carry are 0."""


# --------------------------------------------------------------------------- tokens


def instrument_token(exchange_segment: int, security_id: int) -> int:
    """aion's ``instrument_token`` of a Dhan instrument: ``security_id << 8 | kite_segment``.

    ``exchange_segment``: Dhan code (:data:`SEGMENT_NAMES`); ``security_id`` in [0, 2**24).
    Raises ValueError for an unknown segment or an id that does not fit 24 bits.
    """
    if exchange_segment not in _KITE_SEGMENT:
        raise ValueError(f"unknown Dhan exchange segment {exchange_segment!r}")
    if not 0 <= security_id < 1 << 24:
        raise ValueError(f"security id {security_id} does not fit an instrument token (24 bits)")
    return (security_id << 8) | _KITE_SEGMENT[exchange_segment]


def split_token(token: int) -> tuple[int, int]:
    """Inverse of :func:`instrument_token`: ``(dhan exchange segment, security id)``.

    Raises ValueError for a token whose segment has no Dhan equivalent (e.g. Kite's NCO 12).
    """
    seg = int(_DHAN_SEG_BY_KITE[int(token) & 0xFF])
    if seg < 0:
        raise ValueError(f"token {token}: Kite segment {int(token) & 0xFF} has no Dhan segment")
    return seg, int(token) >> 8


# --------------------------------------------------------------------------- scan


@numba.njit(cache=True, nogil=True)
def _scan(buf, starts, ends, sizes, offsets, codes, frame_of, status, where):  # pragma: no cover
    """Walk the packet headers of each frame ``buf[starts[f]:ends[f]]``.

    Writes each kept packet's offset, response code and frame index; a frame with any error
    keeps none of its packets and gets its reason in ``status[f]`` (byte offset in ``where``).
    Frames already marked ``not bytes`` keep that. Returns the number of packets kept.
    """
    k = 0
    for f in range(starts.size):
        s = starts[f]
        e = ends[f]
        if status[f] == 7:
            continue
        if s == e:
            status[f] = 1
            continue
        pos = s
        k0 = k
        st = 0
        while pos < e:
            if pos + 8 > e:
                st = 2
                break
            code = buf[pos]
            size = sizes[code]
            if size == 0:
                st = 4
                break
            if pos + size > e:
                st = 3
                break
            mlen = np.int64(buf[pos + 1]) | (np.int64(buf[pos + 2]) << 8)
            if mlen != size and mlen != size - 8:
                st = 5
                break
            if buf[pos + 7] != 0:  # security id >= 2**24 does not fit a token
                st = 6
                break
            offsets[k] = pos
            codes[k] = code
            frame_of[k] = f
            k += 1
            pos += size
        if st != 0:
            status[f] = st
            where[f] = pos - s
            k = k0
    return k


# --------------------------------------------------------------------------- decode


class DecodedFrames(NamedTuple):
    """Result of :func:`decode_frames`.

    Attributes:
        ticks: :data:`TICK_DTYPE` (n,), ticker/quote/full packets of the well-formed frames in
            arrival order.
        tick_frame: int64 (n,), index of each tick's frame in the input.
        events: :data:`EVENT_DTYPE` (e,), OI/previous close/market status/disconnect packets.
        event_frame: int64 (e,), index of each event's frame.
        status: uint8 (m,), per input frame an index into :data:`FRAME_STATUS_REASONS`.
        where: int64 (m,), byte offset in the frame where a malformed frame went wrong.
    """

    ticks: np.ndarray
    tick_frame: np.ndarray
    events: np.ndarray
    event_frame: np.ndarray
    status: np.ndarray
    where: np.ndarray

    def reason_counts(self) -> dict[str, int]:
        """Malformed frames counted by reason (``ok`` frames not included)."""
        counts = np.bincount(self.status, minlength=len(FRAME_STATUS_REASONS))
        return {FRAME_STATUS_REASONS[i]: int(c) for i, c in enumerate(counts) if i and c}


@numba.njit(cache=True, nogil=True)
def _gather(buf, offsets, out):  # pragma: no cover - compiled
    """Copy the packet at each offset into the rows of ``out`` (k, packet size)."""
    size = out.shape[1]
    for i in range(offsets.size):
        o = offsets[i]
        for j in range(size):
            out[i, j] = buf[o + j]


def _rows(buf: np.ndarray, offsets: np.ndarray, layout: np.dtype) -> np.ndarray:
    raw = np.empty((offsets.size, layout.itemsize), np.uint8)
    _gather(buf, offsets, raw)
    return raw.view(layout).reshape(offsets.size)


def _join(frames: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(buf, sizes, status)``: the frames end to end; inputs that are not bytes-like get size
    0 and status ``not bytes``."""
    m = len(frames)
    status = np.zeros(m, np.uint8)
    try:  # fast path: every frame is bytes (the WebSocket client's type)
        sizes = np.fromiter(map(len, frames), np.int64, m)
        buf = np.frombuffer(b"".join(frames), np.uint8)
        if buf.size == int(sizes.sum()):
            return buf, sizes, status
    except TypeError:
        pass
    sizes = np.zeros(m, np.int64)
    parts: list[Any] = []
    for i, f in enumerate(frames):
        if isinstance(f, bytes | bytearray | memoryview):
            b = f if not isinstance(f, memoryview) else f.cast("B")
            parts.append(b)
            sizes[i] = len(b)
        else:
            status[i] = _NOT_BYTES
    return np.frombuffer(b"".join(parts), np.uint8), sizes, status


def _prices(values: np.ndarray, decimals: np.ndarray) -> np.ndarray:
    v = values.astype(np.float64)
    scale = 10.0 ** decimals.reshape((-1,) + (1,) * (v.ndim - 1))
    return np.rint(v * scale) / scale


@numba.njit(cache=True, nogil=True, inline="always")
def _u32le(buf, p):  # pragma: no cover - compiled
    return (
        np.int64(buf[p])
        | (np.int64(buf[p + 1]) << 8)
        | (np.int64(buf[p + 2]) << 16)
        | (np.int64(buf[p + 3]) << 24)
    )


@numba.njit(cache=True, nogil=True, inline="always")
def _f32le(buf, p, bits, as_f32, scale):  # pragma: no cover - compiled
    """The float32 at ``buf[p:p+4]`` as float64 rupees rounded to ``1/scale`` (``bits`` and
    ``as_f32`` are one uint32 cell and its float32 view, a scratch for the reinterpretation)."""
    bits[0] = np.uint32(_u32le(buf, p))
    return np.rint(np.float64(as_f32[0]) * scale) / scale


@numba.njit(cache=True, nogil=True)
def _decode_ticks(
    buf, offsets, out, bits, as_f32, kite_seg, scales, ist_offset
):  # pragma: no cover
    """Decode the ticker/quote/full packet at each offset into ``out[i]`` (a zeroed
    :data:`TICK_DTYPE` array), per the layouts in the module docstring."""
    for i in range(offsets.size):
        p = offsets[i]
        code = buf[p]
        seg = buf[p + 3]
        sc = scales[seg]
        r = out[i]
        r["instrument_token"] = (_u32le(buf, p + 4) << 8) | kite_seg[seg]
        r["tradable"] = seg != 0
        lp = _f32le(buf, p + 8, bits, as_f32, sc)
        r["last_price"] = lp
        ltt = _u32le(buf, p + 12 if code == 2 else p + 14)
        ts = ltt - ist_offset if ltt > 0 else np.int64(0)
        r["last_trade_time"] = ts
        r["exchange_timestamp"] = ts
        if code == 2:
            r["mode"] = 1
            r["packet_length"] = 16
            continue
        r["last_traded_quantity"] = np.int64(buf[p + 12]) | (np.int64(buf[p + 13]) << 8)
        r["average_traded_price"] = _f32le(buf, p + 18, bits, as_f32, sc)
        r["volume_traded"] = _u32le(buf, p + 22)
        r["total_sell_quantity"] = _u32le(buf, p + 26)
        r["total_buy_quantity"] = _u32le(buf, p + 30)
        q = p + 34
        if code == 4:
            r["mode"] = 2
            r["packet_length"] = 50
        else:
            r["mode"] = 3
            r["packet_length"] = 162
            r["oi"] = _u32le(buf, p + 34)
            r["oi_day_high"] = _u32le(buf, p + 38)
            r["oi_day_low"] = _u32le(buf, p + 42)
            q = p + 46
            for j in range(5):
                d = p + 62 + 20 * j
                r["depth_buy_quantity"][j] = _u32le(buf, d)
                r["depth_sell_quantity"][j] = _u32le(buf, d + 4)
                r["depth_buy_orders"][j] = np.int64(buf[d + 8]) | (np.int64(buf[d + 9]) << 8)
                r["depth_sell_orders"][j] = np.int64(buf[d + 10]) | (np.int64(buf[d + 11]) << 8)
                r["depth_buy_price"][j] = _f32le(buf, d + 12, bits, as_f32, sc)
                r["depth_sell_price"][j] = _f32le(buf, d + 16, bits, as_f32, sc)
        r["open"] = _f32le(buf, q, bits, as_f32, sc)
        close = _f32le(buf, q + 4, bits, as_f32, sc)
        r["close"] = close
        r["high"] = _f32le(buf, q + 8, bits, as_f32, sc)
        r["low"] = _f32le(buf, q + 12, bits, as_f32, sc)
        r["change"] = (lp - close) * 100 / close if close != 0 else 0.0


def _fill_events(out: np.ndarray, rec: np.ndarray, code: int) -> None:
    seg = rec["exchange_segment"].astype(np.int64)
    out["response_code"] = code
    out["exchange_segment"] = seg
    out["security_id"] = rec["security_id"]
    out["instrument_token"] = (rec["security_id"].astype(np.int64) << 8) | _KITE_SEG_BY_DHAN[seg]
    if code == CODE_OI:
        out["oi"] = rec["oi"]
    elif code == CODE_PREV_CLOSE:
        out["prev_close"] = _prices(rec["prev_close"], _DECIMALS_BY_DHAN[seg])
        out["prev_oi"] = rec["prev_oi"]
    elif code == CODE_DISCONNECT:
        out["reason_code"] = rec["reason_code"]


def _decode_group(
    buf: np.ndarray, offsets: np.ndarray, codes: np.ndarray, dtype: np.dtype, fill: Any
) -> np.ndarray:
    """Decode packets of several codes: each code's packets into one contiguous slice (one
    vectorised view per code), then back to arrival order by one gather."""
    order = np.argsort(codes, kind="stable")
    grouped = np.zeros(codes.size, dtype)
    sorted_codes = codes[order]
    for code in np.unique(sorted_codes).tolist():
        a, b = np.searchsorted(sorted_codes, [code, code + 1])
        fill(grouped[a:b], _rows(buf, offsets[order[a:b]], _LAYOUT[code]), code)
    if codes.size and not (order[1:] > order[:-1]).all():
        grouped = grouped[np.argsort(order)]
    return grouped


def decode_frames(frames: Sequence[Any]) -> DecodedFrames:
    """Decode many binary WebSocket messages of Dhan's v2 market feed at once.

    ``frames``: bytes-like objects (anything else is counted ``not bytes``). One Numba pass
    locates the packets of every frame (:data:`PACKET_SIZES` by response code), then each
    packet type is decoded by one vectorised little-endian view. A malformed frame (empty,
    truncated header or packet, unknown response code, bad message length, security id beyond
    24 bits) contributes nothing and is reported in ``status`` with its reason; this function
    never raises for any input sequence. Source: DhanHQ v2 docs "Live Market Feed", ``dhanhq``
    ``MarketFeed.process_data``.
    """
    m = len(frames)
    buf, sizes, status = _join(frames)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    cap = buf.size // 8 + 1
    offsets = np.empty(cap, np.int64)
    codes = np.empty(cap, np.uint8)
    frame_of = np.empty(cap, np.int64)
    where = np.zeros(m, np.int64)
    k = _scan(buf, starts, ends, _SIZE_BY_CODE, offsets, codes, frame_of, status, where)
    offsets, codes, frame_of = offsets[:k], codes[:k], frame_of[:k]
    is_tick = (codes == CODE_TICKER) | (codes == CODE_QUOTE) | (codes == CODE_FULL)
    tick_at = np.flatnonzero(is_tick)
    event_at = np.flatnonzero(~is_tick)
    ticks = np.zeros(tick_at.size, TICK_DTYPE)
    if tick_at.size:
        bits = np.zeros(1, np.uint32)
        _decode_ticks(buf, offsets[tick_at], ticks, bits, bits.view(np.float32),
                      _KITE_SEG_BY_DHAN, _SCALE_BY_DHAN, IST_EPOCH_OFFSET_S)  # fmt: skip
    events = _decode_group(buf, offsets[event_at], codes[event_at], EVENT_DTYPE, _fill_events)
    return DecodedFrames(ticks, frame_of[tick_at], events, frame_of[event_at], status, where)


def disconnect_reason(reason_code: int) -> str:
    """A disconnect packet's reason code in words (:data:`DISCONNECT_REASONS`)."""
    words = DISCONNECT_REASONS.get(int(reason_code))
    return f"{words} ({reason_code})" if words else f"unknown disconnect reason {reason_code}"


# --------------------------------------------------------------------------- encode


def encode_ticks(ticks: np.ndarray) -> bytes:
    """Encode ticks as one binary message of Dhan packets (the inverse of :func:`decode_frames`).

    ``ticks``: :data:`TICK_DTYPE` (n,). ``mode`` 1/2/3 selects ticker/quote/full; the token is
    split by :func:`split_token`; prices are written as float32 rupees; LTT is
    ``exchange_timestamp + 19800`` (0 stays 0; ``last_trade_time`` is not written, Dhan sends one
    time); the message length field is the whole packet size. ``change``, ``tradable`` and
    ``packet_length`` are not encoded (derived on decode). Raises ValueError for a wrong dtype,
    a mode outside 1..3, a token without a Dhan segment, or a quantity that does not fit its
    field (u32; last_traded_quantity and depth orders u16).
    """
    ticks = np.asarray(ticks)
    if ticks.dtype != TICK_DTYPE:
        raise ValueError(f"encode_ticks needs a TICK_DTYPE array, got {ticks.dtype}")
    ticks = ticks.reshape(-1)
    modes = ticks["mode"].astype(np.int64)
    if ((modes < MODE_LTP) | (modes > MODE_FULL)).any():
        raise ValueError("mode must be 1 (ltp), 2 (quote) or 3 (full)")
    tokens = ticks["instrument_token"].astype(np.int64)
    seg = _DHAN_SEG_BY_KITE[tokens & 0xFF]
    if (seg < 0).any():
        bad = int(tokens[np.argmax(seg < 0)])
        raise ValueError(f"token {bad}: Kite segment {bad & 0xFF} has no Dhan segment")
    codes = _CODE_BY_MODE[modes]
    size_of = _SIZE_BY_CODE[codes]
    starts = np.cumsum(size_of) - size_of
    out = np.zeros(int(size_of.sum()), np.uint8)
    for code in (CODE_TICKER, CODE_QUOTE, CODE_FULL):
        idx = np.flatnonzero(codes == code)
        if not idx.size:
            continue
        t = ticks[idx]
        rec = np.zeros(idx.size, _LAYOUT[code])
        rec["response_code"] = code
        rec["message_length"] = PACKET_SIZES[code]
        rec["exchange_segment"] = seg[idx]
        rec["security_id"] = tokens[idx] >> 8
        rec["last_price"] = t["last_price"]
        ets = t["exchange_timestamp"].astype(np.int64)
        rec["ltt"] = _fit(np.where(ets > 0, ets + IST_EPOCH_OFFSET_S, 0), 32, "exchange_timestamp")
        if code != CODE_TICKER:
            rec["last_traded_quantity"] = _fit(
                t["last_traded_quantity"], 16, "last_traded_quantity"
            )
            for f in ("volume_traded", "total_buy_quantity", "total_sell_quantity"):
                rec[f] = _fit(t[f], 32, f)
            for f in ("average_traded_price", "open", "high", "low", "close"):
                rec[f] = t[f]
        if code == CODE_FULL:
            for f in ("oi", "oi_day_high", "oi_day_low"):
                rec[f] = _fit(t[f], 32, f)
            d = rec["depth"]
            d["bid_quantity"] = _fit(t["depth_buy_quantity"], 32, "depth quantity")
            d["ask_quantity"] = _fit(t["depth_sell_quantity"], 32, "depth quantity")
            d["bid_orders"] = _fit(t["depth_buy_orders"], 16, "depth orders")
            d["ask_orders"] = _fit(t["depth_sell_orders"], 16, "depth orders")
            d["bid_price"] = t["depth_buy_price"]
            d["ask_price"] = t["depth_sell_price"]
        size = PACKET_SIZES[code]
        out[starts[idx][:, None] + np.arange(size)] = rec.view(np.uint8).reshape(idx.size, size)
    return out.tobytes()


def _fit(values: np.ndarray, bits: int, name: str) -> np.ndarray:
    v = np.asarray(values).astype(np.int64)
    if ((v < 0) | (v >= 1 << bits)).any():
        raise ValueError(f"{name}: value outside the u{bits} range of Dhan's wire format")
    return v


def _header(code: int, segment: int, security_id: int) -> bytes:
    if segment not in SEGMENT_NAMES:
        raise ValueError(f"unknown Dhan exchange segment {segment!r}")
    return struct.pack("<BHBI", code, PACKET_SIZES[code], segment, security_id)


def encode_oi(segment: int, security_id: int, oi: int) -> bytes:
    """An OI packet (code 5, 12 bytes). Raises ValueError/struct.error for bad values."""
    return _header(CODE_OI, segment, security_id) + struct.pack("<I", oi)


def encode_prev_close(segment: int, security_id: int, prev_close: float, prev_oi: int) -> bytes:
    """A previous-close packet (code 6, 16 bytes): rupees as float32, OI as u32."""
    return _header(CODE_PREV_CLOSE, segment, security_id) + struct.pack("<fI", prev_close, prev_oi)


def encode_market_status(segment: int, security_id: int) -> bytes:
    """A market-status packet (code 7, the 8-byte header alone)."""
    return _header(CODE_MARKET_STATUS, segment, security_id)


def encode_disconnect(reason_code: int, segment: int = 0, security_id: int = 0) -> bytes:
    """A disconnect packet (code 50, 10 bytes) with a u16 reason code."""
    return _header(CODE_DISCONNECT, segment, security_id) + struct.pack("<H", reason_code)
