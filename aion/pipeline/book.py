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
from numba import njit

BOOK_FIELDS = ("total_buy_quantity", "total_sell_quantity", "bid_quantity_5", "ask_quantity_5")
"""Names of :attr:`aion.patterns.registry.InstrumentView.book` (shares)."""

_TS_BITS = 34  # epoch seconds < 2**34 (year 2514)


@njit(nogil=True, cache=True)
def sort_book(
    slots, ts, rows, n, keys, rows_out, values, when, prev_values, prev_when
):  # pragma: no cover - compiled
    """Order the first ``n`` rows by (slot, ts, arrival) into ``keys``/``rows_out`` (a stable
    counting sort by slot, then a stable sort by time of each slot's rows that are not in
    time order already) and move each slot's ``values``/``when`` to its last row, after
    copying them to ``prev_values``/``prev_when``.

    Numba-only: :meth:`BookTracker.on_ticks` and the compute thread's fused pass
    (:mod:`aion.pipeline.ticks`, between :meth:`BookTracker.begin` and
    :meth:`BookTracker.end`) call it.
    """
    n_slots = values.shape[0]
    prev_values[:] = values
    prev_when[:] = when
    start = np.zeros(n_slots + 1, np.int64)
    for i in range(n):
        start[slots[i] + 1] += 1
    for s in range(n_slots):
        start[s + 1] += start[s]
    fill = start[:-1].copy()
    order = np.empty(n, np.int64)
    for i in range(n):
        s = slots[i]
        order[fill[s]] = i
        fill[s] += 1
    for s in range(n_slots):
        lo, hi = start[s], start[s + 1]
        if lo == hi:
            continue
        ordered = True
        for j in range(lo + 1, hi):
            if ts[order[j]] < ts[order[j - 1]]:
                ordered = False
                break
        if not ordered:  # stable: equal times keep arrival order
            group = order[lo:hi].copy()
            order[lo:hi] = group[np.argsort(ts[group], kind="mergesort")]
        last = order[hi - 1]
        for f in range(4):
            values[s, f] = rows[last, f]
        when[s] = ts[last]
    for j in range(n):
        i = order[j]
        keys[j] = (slots[i] << _TS_BITS) | ts[i]
        for f in range(4):
            rows_out[j, f] = rows[i, f]


class BookTracker:
    """Per-slot book (float64 (n, 4) in :data:`BOOK_FIELDS` order) with its tick time.

    Args:
        n_slots: number of instrument slots.
    """

    def __init__(self, n_slots: int) -> None:
        self.values = np.full((n_slots, len(BOOK_FIELDS)), np.nan)
        self.ts = np.zeros(n_slots, np.int64)
        self._keys_buf = np.empty(0, np.int64)
        self._rows_buf = np.empty((0, len(BOOK_FIELDS)))
        self._keys = self._keys_buf
        self._rows = self._rows_buf
        self._prev_values = self.values
        self._prev_ts = self.ts

    def on_ticks(self, slots: np.ndarray, ts: np.ndarray, rows: np.ndarray) -> None:
        """Take the full-mode ticks of a batch in arrival order: ``slots`` int64 (k,),
        ``ts`` int64 epoch s (k,), ``rows`` float64 (k, 4) in :data:`BOOK_FIELDS` order
        (``total_buy_quantity``, ``total_sell_quantity`` and the 5 depth quantities summed per
        side).

        Keeps them searchable for :meth:`at_close` until the next call, and moves each slot's
        stored book to its last full tick of the batch (latest time, then latest arrival).
        """
        k = int(slots.shape[0])
        keys, rows_out, prev_values, prev_when = self.begin(k)
        sort_book(
            np.ascontiguousarray(slots, np.int64),
            np.ascontiguousarray(ts, np.int64),
            np.ascontiguousarray(rows, np.float64),
            k,
            keys,
            rows_out,
            self.values,
            self.ts,
            prev_values,
            prev_when,
        )
        self.end(k)

    def begin(self, k_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Start a batch of at most ``k_max`` full ticks: return the buffers
        :func:`sort_book` fills, the (k_max,) keys and (k_max, 4) rows in search order and
        the (slots, 4) / (slots,) copies of the book before the batch."""
        self._prev_values = np.empty_like(self.values)
        self._prev_ts = np.empty_like(self.ts)
        if self._keys_buf.shape[0] < k_max:  # reused by every batch (no page faults per batch)
            self._keys_buf = np.empty(k_max + k_max // 4, np.int64)
            self._rows_buf = np.empty((self._keys_buf.shape[0], len(BOOK_FIELDS)))
        self._keys = self._keys_buf[:k_max]
        self._rows = self._rows_buf[:k_max]
        return self._keys, self._rows, self._prev_values, self._prev_ts

    def end(self, k: int) -> None:
        """End the batch begun by :meth:`begin`: it held ``k`` full ticks."""
        self._keys = self._keys[:k]
        self._rows = self._rows[:k]

    def at_close(self, slot: int, bar_end: int) -> dict[str, float]:
        """The book of ``slot`` from its last full tick before ``bar_end`` (epoch s); {} if none.

        Searches the current batch first, then the book stored before that batch.
        """
        row = self.at_close_many(np.array([slot], np.int64), np.array([bar_end], np.int64))[0]
        return {} if np.isnan(row[0]) else dict(zip(BOOK_FIELDS, row.tolist(), strict=True))

    def at_close_many(self, slots: np.ndarray, bar_ends: np.ndarray) -> np.ndarray:
        """:meth:`at_close` of many bars at once: ``slots`` and ``bar_ends`` (epoch s) int64
        (n,) -> float64 (n, 4) in :data:`BOOK_FIELDS` order, NaN rows where there is none."""
        slots, bar_ends = slots.astype(np.int64), bar_ends.astype(np.int64)
        if self._keys.size:
            i = np.searchsorted(self._keys, (slots << _TS_BITS) | bar_ends, "left") - 1
            ic = np.maximum(i, 0)
            hit = (i >= 0) & ((self._keys[ic] >> _TS_BITS) == slots)
            vals, when = self._prev_values[slots], self._prev_ts[slots]
        else:
            hit = np.zeros(slots.shape[0], np.bool_)
            vals, when = self.values[slots], self.ts[slots]
        none = (when == 0) | (when >= bar_ends) | np.isnan(vals[:, 0])
        out = np.where(none[:, None], np.nan, vals)
        if hit.any():
            out[hit] = self._rows[ic[hit]]
        return out
