"""VolumeStateManager: the one place cumulative ``volume_traded`` becomes per-tick volume.

Kite's quote/full packets carry ``volume_traded``, the instrument's cumulative
traded quantity for the day (shares, or units for F&O). Every other part of
aion consumes the *incremental* volume computed here, exactly once per tick.

Rules (DESIGN.md, "Incremental volume"), per instrument slot:

1. First sight of an instrument seeds the state with the tick's cumulative and
   yields 0: volume traded before aion saw the instrument is never attributed to
   a bar. (A scanner subscribed before the open first sees the pre-open snapshot
   with cumulative 0, so every share of the session is then counted once.)
   State restored from Redis for the same session counts as seen: the first
   tick after a restart yields ``cumulative - restored last_cumulative``.
2. Equal cumulative yields 0.
3. A lower cumulative within the same session is a bad or out-of-order tick:
   counted in ``bad_ticks``, yields 0, state unchanged.
4. A tick of a later session (IST trading date) resets the state: the session
   started while aion was watching, so the new cumulative is all new volume.
   A tick of an earlier session than the state's is counted bad and yields 0.
5. A negative cumulative is invalid: counted in ``invalid_ticks``, yields 0.

Invariant, always: per slot and session, ``sum(incremental) == last_cumulative -
first_cumulative`` (``first_cumulative`` is the seed, or 0 after a session reset).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def _apply_kernel(
    slots: np.ndarray,
    session_date: np.ndarray,
    cumulative: np.ndarray,
    seen: np.ndarray,
    state_session: np.ndarray,
    last_cum: np.ndarray,
    first_cum: np.ndarray,
    total: np.ndarray,
    bad: np.ndarray,
    out: np.ndarray,
) -> tuple[int, int, int, int]:
    n_first = 0
    n_bad = 0
    n_invalid = 0
    n_reset = 0
    for i in range(slots.shape[0]):
        s = slots[i]
        d = session_date[i]
        c = cumulative[i]
        if c < 0:
            out[i] = 0
            n_invalid += 1
            continue
        if not seen[s]:
            seen[s] = True
            state_session[s] = d
            last_cum[s] = c
            first_cum[s] = c
            total[s] = 0
            out[i] = 0
            n_first += 1
        elif d > state_session[s]:
            state_session[s] = d
            first_cum[s] = 0
            last_cum[s] = c
            total[s] = c
            out[i] = c
            n_reset += 1
        elif d < state_session[s] or c < last_cum[s]:
            bad[s] += 1
            out[i] = 0
            n_bad += 1
        else:
            inc = c - last_cum[s]
            last_cum[s] = c
            total[s] += inc
            out[i] = inc
    return n_first, n_bad, n_invalid, n_reset


@dataclass
class VolumeCounters:
    """Counts since start: ticks applied, first sightings, bad and invalid ticks, session resets."""

    ticks: int = 0
    first_seen: int = 0
    bad_ticks: int = 0
    invalid_ticks: int = 0
    session_resets: int = 0
    restored: int = 0


class VolumeStateManager:
    """Per-instrument cumulative volume state in arrays indexed by instrument slot.

    Args:
        capacity: initial number of slots; grows on demand.

    Units: volumes are int64 shares (equities) or units (F&O); session dates are
    int64 ``YYYYMMDD`` IST trading dates.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.counters = VolumeCounters()
        self._alloc(max(1, capacity))

    def _alloc(self, n: int) -> None:
        self.seen = np.zeros(n, dtype=np.bool_)
        self.session = np.zeros(n, dtype=np.int64)
        self.last_cumulative = np.zeros(n, dtype=np.int64)
        self.first_cumulative = np.zeros(n, dtype=np.int64)
        self.incremental_total = np.zeros(n, dtype=np.int64)
        self.bad_ticks = np.zeros(n, dtype=np.int64)

    @property
    def capacity(self) -> int:
        return int(self.seen.shape[0])

    _STATE = (
        "seen",
        "session",
        "last_cumulative",
        "first_cumulative",
        "incremental_total",
        "bad_ticks",
    )

    def ensure_capacity(self, n: int) -> None:
        """Grow the state arrays to hold at least ``n`` slots, keeping existing state."""
        cap = self.capacity
        if n <= cap:
            return
        old = {k: getattr(self, k) for k in self._STATE}
        self._alloc(max(n, 2 * cap))
        for k, arr in old.items():
            getattr(self, k)[:cap] = arr

    def restore(
        self,
        slot: int,
        session_date: int,
        first_cumulative: int,
        last_cumulative: int,
        bad_ticks: int = 0,
    ) -> None:
        """Seed one slot from persisted state of the same session (after a restart).

        Raises:
            ValueError: when ``last_cumulative < first_cumulative`` or either is negative.
        """
        if first_cumulative < 0 or last_cumulative < first_cumulative:
            raise ValueError(
                f"volume state for slot {slot}: need 0 <= first ({first_cumulative}) "
                f"<= last ({last_cumulative})"
            )
        self.ensure_capacity(slot + 1)
        self.seen[slot] = True
        self.session[slot] = session_date
        self.first_cumulative[slot] = first_cumulative
        self.last_cumulative[slot] = last_cumulative
        self.incremental_total[slot] = last_cumulative - first_cumulative
        self.bad_ticks[slot] = bad_ticks
        self.counters.restored += 1

    def apply(
        self, slots: np.ndarray, session_date: np.ndarray, cumulative: np.ndarray
    ) -> np.ndarray:
        """Turn cumulative volume into incremental volume, tick by tick in array order.

        Args:
            slots: int64 (n,) instrument slots; a slot may repeat (applied in order).
            session_date: int64 (n,) IST trading date ``YYYYMMDD`` of each tick.
            cumulative: int64 (n,) ``volume_traded`` of each tick.

        Returns:
            int64 (n,) incremental volume per tick (>= 0).
        """
        slots = np.ascontiguousarray(slots, dtype=np.int64)
        if slots.shape[0] and int(slots.max()) >= self.capacity:
            self.ensure_capacity(int(slots.max()) + 1)
        out = np.zeros(slots.shape[0], dtype=np.int64)
        n_first, n_bad, n_invalid, n_reset = _apply_kernel(
            slots,
            np.ascontiguousarray(session_date, dtype=np.int64),
            np.ascontiguousarray(cumulative, dtype=np.int64),
            self.seen,
            self.session,
            self.last_cumulative,
            self.first_cumulative,
            self.incremental_total,
            self.bad_ticks,
            out,
        )
        c = self.counters
        c.ticks += int(slots.shape[0])
        c.first_seen += n_first
        c.bad_ticks += n_bad
        c.invalid_ticks += n_invalid
        c.session_resets += n_reset
        return out

    def snapshot(self, slot: int) -> dict[str, int]:
        """Persistable state of one slot (what the store writes and :meth:`restore` reads)."""
        return {
            "session_date": int(self.session[slot]),
            "first_cumulative": int(self.first_cumulative[slot]),
            "last_cumulative": int(self.last_cumulative[slot]),
            "incremental_total": int(self.incremental_total[slot]),
            "bad_ticks": int(self.bad_ticks[slot]),
        }
