"""The order book each instrument shows at the close of its 1-minute bar.

Full-mode ticks carry ``total_buy_quantity``, ``total_sell_quantity`` and five
depth levels per side (Kite Connect WebSocket docs, "Quote packet structure").
Detectors read the book *as of the bar's close*: the last full tick of the
instrument with ``exchange_timestamp`` before the bar's end. A batch of ticks
may run past a bar's end before the bar closes, so the last tick of the batch is
not that book; :class:`BookTracker` finds the right tick per closed bar with one
sorted search over ``(slot, exchange_timestamp)``, so the result does not depend
on how frames were batched (deterministic replay).
"""

from __future__ import annotations

import numpy as np

from aion.kite.protocol import MODE_FULL

BOOK_FIELDS = ("total_buy_quantity", "total_sell_quantity", "bid_quantity_5", "ask_quantity_5")
"""Names of :attr:`aion.patterns.registry.InstrumentView.book` (shares)."""

_TS_BITS = 34  # epoch seconds < 2**34 (year 2514)


class BookTracker:
    """Per-slot book (float64 (n, 4) in :data:`BOOK_FIELDS` order) with its tick time.

    Args:
        n_slots: number of instrument slots.
    """

    def __init__(self, n_slots: int) -> None:
        self.values = np.full((n_slots, len(BOOK_FIELDS)), np.nan)
        self.ts = np.zeros(n_slots, np.int64)
        self._keys = np.empty(0, np.int64)
        self._rows = np.empty((0, len(BOOK_FIELDS)))
        self._prev_values = self.values
        self._prev_ts = self.ts

    def on_ticks(self, ticks: np.ndarray, slots: np.ndarray, ts: np.ndarray) -> None:
        """Take a batch: ``ticks`` TICK_DTYPE (k,), ``slots`` int64 (k,), ``ts`` epoch s (k,).

        Keeps the batch's full-mode ticks searchable for :meth:`at_close` until the next
        call, and moves each slot's stored book to its last full tick of the batch.
        """
        full = (ticks["mode"] == MODE_FULL) & ticks["tradable"]
        if not full.any():
            self._keys = np.empty(0, np.int64)
            return
        t = ticks[full]
        rows = np.column_stack(
            [
                t["total_buy_quantity"].astype(np.float64),
                t["total_sell_quantity"].astype(np.float64),
                t["depth_buy_quantity"].sum(axis=1).astype(np.float64),
                t["depth_sell_quantity"].sum(axis=1).astype(np.float64),
            ]
        )
        keys = (slots[full].astype(np.int64) << _TS_BITS) | ts[full].astype(np.int64)
        order = np.argsort(keys, kind="stable")
        self._prev_values = self.values.copy()
        self._prev_ts = self.ts.copy()
        self._keys, self._rows = keys[order], rows[order]
        last = np.r_[np.flatnonzero(np.diff(self._keys >> _TS_BITS)), self._keys.size - 1]
        s_last = self._keys[last] >> _TS_BITS
        self.values[s_last] = self._rows[last]
        self.ts[s_last] = self._keys[last] & ((1 << _TS_BITS) - 1)

    def at_close(self, slot: int, bar_end: int) -> dict[str, float]:
        """The book of ``slot`` from its last full tick before ``bar_end`` (epoch s); {} if none.

        Searches the current batch first, then the book stored before that batch.
        """
        if self._keys.size:
            i = int(np.searchsorted(self._keys, (slot << _TS_BITS) | bar_end, "left")) - 1
            if i >= 0 and int(self._keys[i] >> _TS_BITS) == slot:
                return dict(zip(BOOK_FIELDS, self._rows[i].tolist(), strict=True))
            vals, when = self._prev_values[slot], self._prev_ts[slot]
        else:
            vals, when = self.values[slot], self.ts[slot]
        if when == 0 or when >= bar_end or np.isnan(vals[0]):
            return {}
        return dict(zip(BOOK_FIELDS, vals.tolist(), strict=True))
