"""Pacing of Telegram messages within the Bot API's limits.

Telegram's limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
about one message a second to one chat, at most 20 messages a minute to one group, about 30
messages a second in all. Beyond them the API answers HTTP 429 with ``parameters.retry_after``.

:class:`Pacer` keeps the times of the latest messages and says how long to wait before the
next one to a chat. Times are wall-clock monotonic seconds (pacing is about the real API, not
the exchange clock). The caller records a message when its response arrived, so the gaps the
server sees between two requests are at least the configured ones (the server received the
earlier request before it answered).
"""

from __future__ import annotations

from collections import deque


def is_group(chat_id: str) -> bool:
    """Whether a chat id names a group, supergroup or channel (negative ids, ``@name``)."""
    return chat_id.startswith(("-", "@"))


class Pacer:
    """Waits between messages: per chat, per group per minute, overall per second.

    Args:
        per_chat_interval_s: seconds between two messages to one chat (> 0).
        per_group_per_min: messages to one group in any 60 s window (> 0).
        global_per_s: messages to all chats in any 1 s window (> 0).
    """

    def __init__(
        self, per_chat_interval_s: float, per_group_per_min: int, global_per_s: int
    ) -> None:
        self.per_chat_interval_s = per_chat_interval_s
        self.per_group_per_min = per_group_per_min
        self.global_per_s = global_per_s
        self._last: dict[str, float] = {}
        self._group: dict[str, deque[float]] = {}
        self._all: deque[float] = deque(maxlen=global_per_s)

    def delay(self, chat_id: str, now: float) -> float:
        """Seconds to wait from ``now`` before a message to ``chat_id`` (0: send now)."""
        ready = self._last.get(chat_id, -1e18) + self.per_chat_interval_s
        window = self._group.get(chat_id)
        if window is not None and len(window) == self.per_group_per_min:
            ready = max(ready, window[0] + 60.0)
        if len(self._all) == self.global_per_s:
            ready = max(ready, self._all[0] + 1.0)
        return max(0.0, ready - now)

    def record(self, chat_id: str, now: float) -> None:
        """A message to ``chat_id`` was answered at ``now`` (also a 429 or an error: the
        server counted the request)."""
        self._last[chat_id] = now
        if is_group(chat_id):
            self._group.setdefault(chat_id, deque(maxlen=self.per_group_per_min)).append(now)
        self._all.append(now)
