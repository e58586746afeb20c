"""Kite Connect WebSocket wire format: constants, packet layouts, the tick dtype, divisors.

The protocol in four modules: this one (what the bytes are), :mod:`aion.kite.decode`
(frames -> :data:`TICK_DTYPE` rows and the compiled packet decoder), :mod:`aion.kite.encode`
(ticks -> frames and the replay server's per-client cut, :func:`~aion.kite.encode.filter_frame`)
and :mod:`aion.kite.text` (JSON text messages).

Source: Kite Connect v3 WebSocket docs ("Message structure", "Quote packet
structure", "Index packet structure"); the ``kiteconnect`` PyPI package's
``KiteTicker._parse_binary`` is the independent reference used by the tests.

Frame layout (all integers big-endian)::

    u16 number_of_packets
    repeated: u16 packet_length, packet body (packet_length bytes)

A 1-byte binary message is a heartbeat. Text messages are JSON objects (order
updates ``{"type": "order", ...}``, errors ``{"type": "error", ...}``, broker
messages ``{"type": "message", ...}``), see :func:`aion.kite.text.parse_text_message`.

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

Price divisor by segment (``instrument_token & 0xff``, :data:`PRICE_DIVISORS`): CDS (3)
1e7, BCD (6) and NCO (12, as kiteconnect does) 1e4, everything else 100. Prices in a
:data:`TICK_DTYPE` array are rupees (float64); timestamps are integer epoch
seconds (UTC epoch); IST datetimes appear only in the display view
:func:`aion.kite.decode.ticks_to_dicts`.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "DEPTH_LEVELS",
    "I32_MAX",
    "I32_MIN",
    "INDEX_PACKET_LENGTHS",
    "LEN_FULL",
    "LEN_INDEX_FULL",
    "LEN_INDEX_QUOTE",
    "LEN_LTP",
    "LEN_QUOTE",
    "MAX_CONNECTIONS_PER_KEY",
    "MAX_TOKENS_PER_CONNECTION",
    "MODE_BY_LENGTH",
    "MODE_CODES",
    "MODE_FULL",
    "MODE_LTP",
    "MODE_NAMES",
    "MODE_QUOTE",
    "PACKET_LAYOUTS",
    "PACKET_LENGTHS",
    "PRICE_DIVISORS",
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
    "U32_MAX",
    "BytesLike",
    "MalformedFrame",
    "price_divisor",
    "price_divisors",
    "segment_of_token",
    "token_divisor",
]

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
U32_MAX = 0xFFFF_FFFF
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
"""Ranges of the wire's u32 fields and int32 prices."""

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

PACKET_LAYOUTS: tuple[tuple[int, int, np.dtype, bool], ...] = (
    (LEN_LTP, MODE_LTP, _BE_LTP, False),
    (LEN_INDEX_QUOTE, MODE_QUOTE, _BE_INDEX_QUOTE, True),
    (LEN_INDEX_FULL, MODE_FULL, _BE_INDEX_FULL, True),
    (LEN_QUOTE, MODE_QUOTE, _BE_QUOTE, False),
    (LEN_FULL, MODE_FULL, _BE_FULL, False),
)
"""The packet layouts: (body length, mode code, big-endian wire dtype, is an index layout)."""
MODE_BY_LENGTH: dict[int, int] = {c[0]: c[1] for c in PACKET_LAYOUTS}
"""Mode code of each packet length (8 ltp, 28/44 quote, 32/184 full)."""

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

PRICE_DIVISORS = np.full(256, 100.0, np.float64)
PRICE_DIVISORS[[SEGMENT_CDS, SEGMENT_BCD, SEGMENT_NCO]] = (10_000_000.0, 10_000.0, 10_000.0)
PRICE_DIVISORS.flags.writeable = False
"""The one price-divisor table: float64 (256,) by segment code (``instrument_token & 0xff``).
Wire prices are integers in units of ``1 / divisor`` rupees: CDS 1e7, BCD and NCO 1e4, every
other segment 100 (Kite docs: "prices are in paise; currencies have 4 decimals"; CDS 7
decimals and NCO follow kiteconnect)."""


def segment_of_token(token: int) -> int:
    """Exchange segment code of an instrument token (``token & 0xff``)."""
    return int(token) & 0xFF


def price_divisor(token: int) -> float:
    """Price divisor of one instrument token (:data:`PRICE_DIVISORS`)."""
    return float(PRICE_DIVISORS[int(token) & 0xFF])


def price_divisors(tokens: np.ndarray) -> np.ndarray:
    """Vectorised :func:`price_divisor`: integer tokens (n,) -> float64 divisors (n,)."""
    return PRICE_DIVISORS[np.asarray(tokens).astype(np.int64) & 0xFF]


@numba.njit(cache=True, nogil=True, inline="always")
def token_divisor(tok):  # pragma: no cover - compiled
    """:func:`price_divisor` for compiled code (``tok`` an integer token)."""
    return PRICE_DIVISORS[tok & 0xFF]
