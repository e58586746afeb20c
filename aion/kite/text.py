"""Kite's text WebSocket messages (JSON objects: order updates, errors, broker messages)."""

from __future__ import annotations

import json

from aion.kite.wire import MalformedFrame

__all__ = ["parse_text_message"]


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
