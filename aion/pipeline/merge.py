"""Minute closes across connections: the feed's frames handed on in exchange-minute order.

A scan of more than 3,000 instruments reads 2-3 connections (:mod:`aion.feed.sharding`), and
the network interleaves their frames as it likes. The compute engine's tick path closes minute
m when the exchange time of the ticks it is given enters a later minute (the bar builder; the
option chain, the volume profile and the order book "as of a bar's close" follow the same
clock), so one connection's first frame of minute m+1 processed before another connection's
last frame of minute m would make the latter's ticks late. :class:`FeedMerge` sits in front of
the tick path and decides when each frame may go on:

* a connection's *exchange clock* is the latest ``exchange_timestamp`` it has delivered (per
  frame, the latest of its packets', :func:`aion.kite.decode.frame_exchange_time`);
* a connection is *active* while its clock is at most ``close_wait_ms`` behind the leading
  connection's clock, or while it delivered a timed frame within the last ``close_wait_ms``
  of receive time (the latest ``recv_ns`` of any item, heartbeats included); the *close
  clock* is the minimum of the active connections' clocks (never decreasing): every active
  connection has passed it;
* a frame of minute F (the minute of its latest exchange timestamp; a frame without one, or a
  gap marker, takes its connection's clock) goes on once the close clock is in F or later:
  every active connection is past minute F-1 and will send no more of it. Frames held back go
  on by minute, then in arrival order.

So a minute closes when every active connection's exchange clock has passed it. A connection
that still delivers holds the close back however far behind it is (its ticks are real and
would otherwise be late): at max replay speed the connections drift apart by seconds of
exchange time within milliseconds, and this is what keeps a replay over several connections
exact. A connection that falls *silent* (no timed frame for ``close_wait_ms`` of receive time,
Kite's heartbeats do not count) and lags by more than ``close_wait_ms`` of exchange time no
longer holds the close back: what it sends later of a minute already closed goes on at once,
and its ticks are late ticks of the bar builder (counted, volume kept).
A connection whose packets carry no exchange timestamp (ltp or quote mode only) has no clock
and holds nothing back. The scan's named connections count from the first exchange time seen
on any of them, so a connection that subscribes a moment after the others holds the first
close too (``close_wait_ms`` at most).

Deterministic: what goes on, and in which order, depends only on the items as they arrive
(order and receive times), never on how they are split into batches; and the minutes' bars,
indicators and alerts do not depend on how the connections interleave, as long as no
connection stalls for more than ``close_wait_ms`` of wall time while trailing by more than
``close_wait_ms`` of exchange time (a fault, which the release turns into counted late ticks).
With one connection every frame goes on at once, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aion.kite.decode import frame_exchange_time

__all__ = ["FeedMerge", "MergeStats"]

_FRAME_TYPES = (bytes, bytearray, memoryview)  # anything else is a gap marker


@dataclass
class MergeStats:
    """Counters of :class:`FeedMerge` (run summary).

    Attributes:
        held: frames held back until the other connections passed their minute.
        held_high_water: most frames held back at once.
        expired: times a connection stopped holding the close back (silent, and its clock
            more than ``close_wait_ms`` behind the leading connection's).
    """

    held: int = 0
    held_high_water: int = 0
    expired: int = 0


class FeedMerge:
    """Hands raw-queue items on once every active connection has passed their minute.

    Args:
        close_wait_ms: how long (ms, >= 0) a connection may be silent (receive time) and how
            far its clock may trail the leading connection's (exchange time) before it no
            longer holds a minute close back; 0 closes a minute as soon as any connection
            passes it.
        connections: the scan's connection names (``conn0``...); each counts as active from
            the first exchange time seen on any connection. Others count from their first
            timed frame.

    Raises:
        ValueError: a negative ``close_wait_ms``.
    """

    def __init__(self, close_wait_ms: int, connections: Sequence[str] = ()) -> None:
        if close_wait_ms < 0:
            raise ValueError(f"close_wait_ms must be >= 0, got {close_wait_ms}")
        self.close_wait_ms = int(close_wait_ms)
        self.stats = MergeStats()
        self.close = 0  # close clock, epoch s (0: none yet)
        self._clock: dict[str, int] = {}  # connection -> latest exchange timestamp, epoch s
        self._timed_ns: dict[str, int] = {}  # connection -> recv_ns of its latest timed frame
        self._now_ns = 0  # latest recv_ns of any item
        self._unseen = list(dict.fromkeys(connections))  # named, waiting for a first time
        self._active: set[str] = set()
        self._held: list[tuple[int, int, Any]] = []  # (minute start, arrival seq, item)
        self._seq = 0

    def clocks(self) -> dict[str, int]:
        """Each connection's exchange clock, epoch s (a copy)."""
        return dict(self._clock)

    def admit(self, items: Sequence[Any]) -> list[Any]:
        """Take raw-queue items ``(recv_ns, connection, frame or Gap)`` in arrival order;
        returns the items that may go on now (earlier ones held back included), in order."""
        out: list[Any] = []
        for item in items:
            recv_ns, conn, frame = item[0], item[1], item[2]
            if recv_ns > self._now_ns:
                self._now_ns = recv_ns
            t = frame_exchange_time(frame) if isinstance(frame, _FRAME_TYPES) else 0
            clk = self._clock.get(conn, 0)
            if t > 0:
                self._timed_ns[conn] = self._now_ns
            if t > clk:
                clk = t
                self._set_clock(conn, t)
            when = t if t > 0 else clk
            advanced = self._advance()
            if when <= 0 or when - when % 60 <= self.close:
                if advanced and self._held:
                    self._hold(when, item)
                else:
                    out.append(item)
                    continue
            else:
                self._hold(when, item)
            if advanced:
                out.extend(self._release())
        return out

    def drain(self) -> list[Any]:
        """Every item still held back, by minute then arrival (end of the scan)."""
        self._held.sort(key=lambda h: (h[0], h[1]))
        out = [h[2] for h in self._held]
        self._held = []
        return out

    def _set_clock(self, conn: str, t: int) -> None:
        if not self._clock and self._unseen:  # the first exchange time: the named start here
            for name in self._unseen:
                self._clock[name] = t
                self._timed_ns.setdefault(name, self._now_ns)
        self._clock[conn] = t
        self._unseen = []

    def _hold(self, when: int, item: Any) -> None:
        self._held.append((when - when % 60 if when > 0 else 0, self._seq, item))
        self._seq += 1
        self.stats.held += 1
        self.stats.held_high_water = max(self.stats.held_high_water, len(self._held))

    def _advance(self) -> bool:
        """Recompute the close clock; True when it moved."""
        if not self._clock:
            return False
        lead_ms = max(self._clock.values()) * 1000
        wait_ns = self.close_wait_ms * 1_000_000
        active = {
            c
            for c, t in self._clock.items()
            if t * 1000 >= lead_ms - self.close_wait_ms
            or self._now_ns - self._timed_ns.get(c, 0) <= wait_ns
        }
        self.stats.expired += len(self._active - active)
        self._active = active
        close = min(self._clock[c] for c in active)
        if close > self.close:
            self.close = close
            return True
        return False

    def _release(self) -> list[Any]:
        """Held items whose minute the close clock has reached, by minute then arrival."""
        ready = [h for h in self._held if h[0] <= self.close]
        if not ready:
            return []
        self._held = [h for h in self._held if h[0] > self.close]
        ready.sort(key=lambda h: (h[0], h[1]))
        return [h[2] for h in ready]
