"""Bounded queues between the feed, compute and store threads.

Every queue has an explicit overflow policy and counts what it did, so nothing
is ever lost silently (DESIGN.md, "The process"):

- ``block``: the producer waits up to ``block_timeout_s`` for space (TCP
  backpressure reaches the server while it waits); after the timeout the item is
  dropped and counted in ``dropped``. Time spent waiting is counted in
  ``blocked_s``.
- ``drop_newest``: a full queue drops the incoming item at once and counts it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

T = TypeVar("T")

OverflowPolicy = Literal["block", "drop_newest"]


@dataclass
class QueueStats:
    """Counters of one queue; read by the live view and the final summary."""

    put: int = 0
    dropped: int = 0
    blocked_s: float = 0.0
    high_water: int = 0


class BoundedQueue(Generic[T]):
    """A FIFO of at most ``maxsize`` items with a counted overflow policy.

    Args:
        name: shown in the live view and summary (``raw``, ``out``).
        maxsize: capacity in items (> 0).
        policy: ``block`` or ``drop_newest`` (see module docstring).
        block_timeout_s: longest wait of a blocked producer before it drops, seconds.
        max_bytes: optional second bound, in bytes of the queued items as measured by
            ``size_of`` (the ``raw`` queue holds frames of up to megabytes each, so an item
            count alone does not bound memory); one item is always admitted.
        size_of: bytes of one item (required with ``max_bytes``).
    """

    def __init__(
        self,
        name: str,
        maxsize: int,
        policy: OverflowPolicy = "block",
        block_timeout_s: float = 30.0,
        max_bytes: int | None = None,
        size_of: Callable[[T], int] | None = None,
    ) -> None:
        if maxsize <= 0:
            raise ValueError(f"queue {name}: maxsize must be > 0, got {maxsize}")
        if max_bytes is not None and (max_bytes <= 0 or size_of is None):
            raise ValueError(f"queue {name}: max_bytes must be > 0 and needs size_of")
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._bytes = 0
        self._room = threading.Condition()
        self.name = name
        self.maxsize = maxsize
        self.policy = policy
        self.block_timeout_s = block_timeout_s
        self.stats = QueueStats()
        self._q: queue.Queue[T] = queue.Queue(maxsize)
        self._lock = threading.Lock()

    def _reserve(self, nbytes: int) -> bool:
        """Wait (per policy) until ``nbytes`` fit under ``max_bytes``; False = drop it."""
        assert self.max_bytes is not None
        with self._room:
            if self._bytes and self._bytes + nbytes > self.max_bytes:
                if self.policy == "drop_newest":
                    return False
                t0 = time.monotonic()
                ok = self._room.wait_for(
                    lambda: not self._bytes or self._bytes + nbytes <= self.max_bytes,  # type: ignore[operator]
                    timeout=self.block_timeout_s,
                )
                with self._lock:
                    self.stats.blocked_s += time.monotonic() - t0
                if not ok:
                    return False
            self._bytes += nbytes
            return True

    def _release(self, items: list[T]) -> None:
        if self._size_of is None or not items:
            return
        freed = sum(self._size_of(i) for i in items)
        with self._room:
            self._bytes -= freed
            self._room.notify_all()

    def put(self, item: T) -> bool:
        """Enqueue ``item``; returns False (and counts a drop) when it could not."""
        if self._size_of is not None:
            nbytes = self._size_of(item)
            if not self._reserve(nbytes):
                with self._lock:
                    self.stats.dropped += 1
                return False
            if not self._put(item):
                with self._room:
                    self._bytes -= nbytes
                    self._room.notify_all()
                return False
            return True
        return self._put(item)

    def _put(self, item: T) -> bool:
        try:
            self._q.put_nowait(item)
        except queue.Full:
            if self.policy == "drop_newest":
                with self._lock:
                    self.stats.dropped += 1
                return False
            t0 = time.monotonic()
            try:
                self._q.put(item, timeout=self.block_timeout_s)
            except queue.Full:
                with self._lock:
                    self.stats.dropped += 1
                    self.stats.blocked_s += time.monotonic() - t0
                return False
            with self._lock:
                self.stats.blocked_s += time.monotonic() - t0
        with self._lock:
            self.stats.put += 1
            depth = self._q.qsize()
            if depth > self.stats.high_water:
                self.stats.high_water = depth
        return True

    def get(self, timeout: float | None = None) -> T:
        """Dequeue one item; raises ``queue.Empty`` after ``timeout`` seconds."""
        item = self._q.get(timeout=timeout)
        self._release([item])
        return item

    def get_many(self, max_items: int, timeout: float, max_bytes: int | None = None) -> list[T]:
        """Up to ``max_items`` items: waits ``timeout`` s for the first, then takes the rest.

        With ``max_bytes`` (needs ``size_of``) it stops taking once the items taken hold at
        least that many bytes, so a consumer never holds much more than ``max_bytes`` outside
        the queue on top of the queue's own ``max_bytes`` bound (the first item is always
        taken, whatever its size).
        """
        try:
            first = self._q.get(timeout=timeout)
        except queue.Empty:
            return []
        items = [first]
        size_of = self._size_of
        budget = max_bytes if max_bytes is not None and size_of is not None else None
        taken = size_of(first) if budget is not None and size_of is not None else 0
        while len(items) < max_items and (budget is None or taken < budget):
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                break
            items.append(item)
            if budget is not None and size_of is not None:
                taken += size_of(item)
        self._release(items)
        return items

    def qsize(self) -> int:
        """Current depth (approximate, as ``queue.Queue.qsize``)."""
        return self._q.qsize()

    def empty(self) -> bool:
        return self._q.empty()
