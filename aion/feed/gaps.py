"""Feed gaps on the compute side: flag the first tick of each instrument after a gap.

A :class:`~aion.feed.client.FeedClient` with ``gap_markers`` puts its
:class:`~aion.feed.client.Gap` on the raw queue when a connection comes back, before the
first frame of the new connection. The compute thread hands it to :class:`GapTracker`, which
marks every instrument of that connection as waiting (:attr:`GapTracker.pending`); the compute
thread's tick pass (:mod:`aion.pipeline.ticks`) flags the next tick of each such instrument and
clears its mark, and the bar builder sets the ``gap`` flag of the bar that tick lands in.

The volume itself needs nothing special: the VolumeStateManager keeps the last cumulative
``volume_traded`` across the gap, so the first tick after it yields the volume traded during
the gap as one increment, counted once (``aion/volume/state.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from aion.feed.client import Gap
from aion.market.time import session_date
from aion.store.batch import GapRow

__all__ = ["GapTracker"]


class GapTracker:
    """Instrument slots waiting for their first tick after a feed gap, and the gaps seen.

    Args:
        tokens: int64 (n,) instrument tokens sorted ascending; slot ``i`` is ``tokens[i]``
            (the compute engine's slot order).

    Attributes:
        pending: bool (n,), slots waiting for their first tick after a gap (the tick pass
            flags that tick and clears the mark).
    """

    def __init__(self, tokens: np.ndarray) -> None:
        self._tokens = np.asarray(tokens, dtype=np.int64)
        self.pending = np.zeros(max(1, self._tokens.shape[0]), np.bool_)
        self._new: list[Gap] = []
        self.gaps = 0  # gaps seen since start

    def on_gap(self, gap: Gap) -> None:
        """Record ``gap``; if the connection came back, its instruments wait for a first tick."""
        self.gaps += 1
        self._new.append(gap)
        if gap.reconnected_ns is None or not gap.tokens or self._tokens.shape[0] == 0:
            return
        toks = np.asarray(gap.tokens, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._tokens, toks), self._tokens.shape[0] - 1)
        hit = self._tokens[pos] == toks
        self.pending[pos[hit]] = True

    def frames(self, items: Sequence[tuple[int, str, Any]]) -> list[tuple[int, str, bytes]]:
        """``items`` of the raw queue without their :class:`Gap` markers (handed to
        :meth:`on_gap` in order); the binary frames are returned untouched."""
        if not any(isinstance(it[2], Gap) for it in items):
            return list(items)
        out = []
        for it in items:
            if isinstance(it[2], Gap):
                self.on_gap(it[2])
            else:
                out.append(it)
        return out

    def gap_rows(self, exchange_clock_s: int) -> list[GapRow]:
        """The gaps recorded since the last call, as records for the store
        (:class:`~aion.store.batch.GapRow`), in order.

        Each belongs to the trading date of ``exchange_clock_s`` (epoch s; 0 before any tick:
        the IST date of the gap's start); a gap first recorded open is recorded again when it
        closes (same connection and start).
        """
        new, self._new = self._new, []
        out = []
        for g in new:
            ts = exchange_clock_s or g.disconnected_ns // 1_000_000_000
            out.append(GapRow(session_date(ts), g.connection, g.disconnected_ns, g.record()))
        return out
