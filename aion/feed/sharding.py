"""Spread a universe over Kite's connection limits: <= 3000 tokens x <= 3 connections per key.

Source of the limits: Kite Connect WebSocket docs ("you can subscribe to up to 3000
instruments on a single WebSocket connection ... an API key can have up to 3 websocket
connections"), held in :data:`aion.kite.wire.MAX_TOKENS_PER_CONNECTION` and
:data:`~aion.kite.wire.MAX_CONNECTIONS_PER_KEY`.
"""

from __future__ import annotations

from collections.abc import Mapping

from aion.kite.wire import MAX_CONNECTIONS_PER_KEY, MAX_TOKENS_PER_CONNECTION

__all__ = ["MAX_TOKENS_PER_KEY", "ShardingError", "shard_modes"]

#: The most instruments one API key can stream (9,000).
MAX_TOKENS_PER_KEY = MAX_TOKENS_PER_CONNECTION * MAX_CONNECTIONS_PER_KEY


class ShardingError(ValueError):
    """The universe does not fit one API key; ``str()`` is one line naming the count."""


def shard_modes(
    modes: Mapping[int, int],
    per_connection: int = MAX_TOKENS_PER_CONNECTION,
    max_connections: int = MAX_CONNECTIONS_PER_KEY,
) -> list[dict[int, int]]:
    """Split ``token -> mode`` into the fewest connections of at most ``per_connection`` tokens.

    Tokens keep their order: connection ``i`` gets the ``i``-th run of ``per_connection``
    tokens. An empty universe gives no connection.

    Raises:
        ShardingError: more than ``per_connection * max_connections`` tokens (9,000 for Kite).
    """
    n = len(modes)
    limit = per_connection * max_connections
    if n > limit:
        raise ShardingError(
            f"{n} instruments configured: one Kite API key streams at most {limit} "
            f"({max_connections} connections x {per_connection}); shrink the universe "
            "or run another aion process with its own key"
        )
    items = list(modes.items())
    return [dict(items[i : i + per_connection]) for i in range(0, n, per_connection)]
