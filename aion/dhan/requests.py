"""DhanHQ v2 market-feed JSON requests: subscribe, unsubscribe, disconnect.

Source: DhanHQ v2 API docs, "Live Market Feed" (request structure ``{"RequestCode",
"InstrumentCount", "InstrumentList": [{"ExchangeSegment", "SecurityId"}]}``, at most 100
instruments per JSON message, 5000 instruments per connection, 5 connections per user, the
connection URL ``wss://api-feed.dhan.co?version=2&token=...&clientId=...&authType=2``) and the
``dhanhq`` package's ``MarketFeed`` (request codes 15 ticker, 17 quote, 21 full; unsubscribe is
the subscribe code + 1; 12 disconnects; segment names by code).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlencode

from aion.dhan.wire import SEGMENT_NAMES, split_token
from aion.kite.wire import MODE_FULL, MODE_LTP, MODE_QUOTE

__all__ = [
    "FEED_URL",
    "MAX_CONNECTIONS_PER_USER",
    "MAX_INSTRUMENTS_PER_CONNECTION",
    "MAX_INSTRUMENTS_PER_MESSAGE",
    "REQUEST_CODES",
    "REQUEST_DISCONNECT",
    "disconnect_message",
    "feed_url",
    "subscription_messages",
]

FEED_URL = "wss://api-feed.dhan.co"
MAX_INSTRUMENTS_PER_MESSAGE = 100
MAX_INSTRUMENTS_PER_CONNECTION = 5000
MAX_CONNECTIONS_PER_USER = 5
#: subscribe RequestCode by aion mode (1 ltp -> Dhan ticker, 2 quote, 3 full)
REQUEST_CODES: dict[int, int] = {MODE_LTP: 15, MODE_QUOTE: 17, MODE_FULL: 21}
REQUEST_DISCONNECT = 12


def feed_url(client_id: str, access_token: str, base: str = FEED_URL) -> str:
    """The v2 connection URL. It carries the access token: never log it."""
    query = urlencode({"version": 2, "token": access_token, "clientId": client_id, "authType": 2})
    return f"{base}?{query}"


def subscription_messages(tokens: Iterable[int], mode: int, *, subscribe: bool = True) -> list[str]:
    """JSON messages that (un)subscribe instrument tokens in one mode, 100 per message.

    ``tokens``: aion instrument tokens of Dhan instruments
    (:func:`aion.dhan.wire.instrument_token`), duplicates dropped, order kept.
    ``mode``: 1 ltp (ticker), 2 quote, 3 full. Raises ValueError for an unknown mode, a token
    without a Dhan segment, or more than :data:`MAX_INSTRUMENTS_PER_CONNECTION` instruments
    (one connection's limit).
    """
    if mode not in REQUEST_CODES:
        raise ValueError(f"mode must be 1 (ltp), 2 (quote) or 3 (full), got {mode!r}")
    unique = list(dict.fromkeys(int(t) for t in tokens))
    if len(unique) > MAX_INSTRUMENTS_PER_CONNECTION:
        raise ValueError(
            f"{len(unique)} instruments exceed Dhan's {MAX_INSTRUMENTS_PER_CONNECTION} per "
            "connection"
        )
    code = REQUEST_CODES[mode] + (0 if subscribe else 1)
    items = []
    for t in unique:
        seg, sid = split_token(t)
        items.append({"ExchangeSegment": SEGMENT_NAMES[seg], "SecurityId": str(sid)})
    step = MAX_INSTRUMENTS_PER_MESSAGE
    return [
        json.dumps(
            {
                "RequestCode": code,
                "InstrumentCount": len(items[i : i + step]),
                "InstrumentList": items[i : i + step],
            }
        )
        for i in range(0, len(items), step)
    ]


def disconnect_message() -> str:
    """The JSON message that asks the server to close the feed (RequestCode 12)."""
    return json.dumps({"RequestCode": REQUEST_DISCONNECT})
