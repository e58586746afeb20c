"""Kite binary frames -> ticks: the frame scanner and the one packet decoder (compiled).

Frames and packets as laid out in :mod:`aion.kite.wire` (source: Kite Connect v3 WebSocket
docs, "Message structure", "Quote packet structure", "Index packet structure"; the
``kiteconnect`` package's ``KiteTicker._parse_binary`` is the tests' independent reference).
:func:`packet_fields` is the one packet decoder: :func:`decode_frame`/:func:`decode_frames`
write its result into :data:`~aion.kite.wire.TICK_DTYPE` rows and the compute thread's
columnar pass (:mod:`aion.pipeline.ticks`) reads it directly. Prices are rupees (float64),
timestamps integer epoch seconds; IST datetimes appear only in the display view
:func:`ticks_to_dicts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numba
import numpy as np

from aion.kite.wire import (
    LEN_INDEX_FULL,
    LEN_INDEX_QUOTE,
    MODE_BY_LENGTH,
    MODE_FULL,
    MODE_LTP,
    MODE_NAMES,
    SEGMENT_INDICES,
    TICK_DTYPE,
    BytesLike,
    MalformedFrame,
    token_divisor,
)
from aion.market.time import to_ist

__all__ = [
    "FRAME_HEARTBEAT",
    "FRAME_OK",
    "FRAME_STATUS_REASONS",
    "DecodedFrames",
    "FrameScan",
    "JoinedFrames",
    "decode_frame",
    "decode_frames",
    "decode_packet",
    "depth_level",
    "frame_exchange_time",
    "is_heartbeat",
    "join_frames",
    "packet_fields",
    "packet_spans",
    "scan_frames",
    "scan_packets",
    "ticks_to_dicts",
]

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


# --------------------------------------------------------------------------- framing


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
def _frame_time(buf):  # pragma: no cover - compiled
    """Largest ``exchange_timestamp`` among the packets of the frame ``buf`` (0 when none)."""
    n = buf.shape[0]
    if n < 2:
        return np.int64(0)
    count = (np.int64(buf[0]) << 8) | np.int64(buf[1])
    pos = np.int64(2)
    best = np.int64(0)
    for _ in range(count):
        if pos + 2 > n:
            break
        plen = (np.int64(buf[pos]) << 8) | np.int64(buf[pos + 1])
        pos += 2
        if pos + plen > n:
            break
        ets = np.int64(0)
        if plen == 184:
            ets = _u32(buf, pos + 60)
        elif plen == 32:
            ets = _u32(buf, pos + 28)
        if ets > best:
            best = ets
        pos += plen
    return best


def frame_exchange_time(frame: BytesLike) -> int:
    """The latest ``exchange_timestamp`` (epoch s) among the packets of one binary message.

    Only full (184 B) and index full (32 B) packets carry one (offsets 60 and 28); 0 when no
    packet of the frame does (ltp, quote, index quote), for a heartbeat, and for what is not a
    tick frame. Never raises: the packets before a malformation count, the decoder reports it.
    """
    return int(_frame_time(np.frombuffer(frame, dtype=np.uint8)))


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
    div = token_divisor(tok)
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
    div = token_divisor(tok)
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
    if plen not in MODE_BY_LENGTH:
        raise MalformedFrame("unknown packet length", f"{plen} bytes (known: 8, 28, 32, 44, 184)")
    token = np.frombuffer(buf[:4].tobytes(), dtype=">u4").astype(np.uint32)
    return _decode_spans(buf, np.zeros(1, np.int64), np.array([plen], np.int64), token)


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
