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

KIND_NORMAL, KIND_FIRST, KIND_BAD, KIND_INVALID, KIND_RESET = 0, 1, 2, 3, 4
"""Indices of the per-kind tick counts of :func:`apply_kernel`: rules 2, 1, 3, 5 and 4 of the
module docstring."""


@njit(nogil=True, cache=True)
def apply_kernel(slots, session_date, cumulative, use, st, out, kinds):  # pragma: no cover
    """Apply the rules above tick by tick in array order.

    ``slots``/``session_date``/``cumulative`` int64 (n,), ``use`` bool (n,) ticks that carry a
    cumulative volume (the others yield 0 and touch nothing), ``st`` the state tuple
    (:meth:`VolumeStateManager.state`), ``out`` int64 (n,) incremental volume, ``kinds`` int64
    (5,) += ticks per ``KIND_*``. Numba: :meth:`VolumeStateManager.apply` and the compute
    thread's fused pass (:mod:`aion.pipeline.ticks`) call it.
    """
    seen, state_session, last_cum, first_cum, total, bad = st
    for i in range(slots.shape[0]):
        if not use[i]:
            out[i] = 0
            continue
        s = slots[i]
        d = session_date[i]
        c = cumulative[i]
        if c < 0:
            out[i] = 0
            kinds[KIND_INVALID] += 1
        elif not seen[s]:
            seen[s] = True
            state_session[s] = d
            last_cum[s] = c
            first_cum[s] = c
            total[s] = 0
            out[i] = 0
            kinds[KIND_FIRST] += 1
        elif d > state_session[s]:
            state_session[s] = d
            first_cum[s] = 0
            last_cum[s] = c
            total[s] = c
            out[i] = c
            kinds[KIND_RESET] += 1
        elif d < state_session[s] or c < last_cum[s]:
            bad[s] += 1
            out[i] = 0
            kinds[KIND_BAD] += 1
        else:
            inc = c - last_cum[s]
            last_cum[s] = c
            total[s] += inc
            out[i] = inc
            kinds[KIND_NORMAL] += 1


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
        self,
        slots: np.ndarray,
        session_date: np.ndarray,
        cumulative: np.ndarray,
        use: np.ndarray | None = None,
    ) -> np.ndarray:
        """Turn cumulative volume into incremental volume, tick by tick in array order.

        Args:
            slots: int64 (n,) instrument slots; a slot may repeat (applied in order).
            session_date: int64 (n,) IST trading date ``YYYYMMDD`` of each tick.
            cumulative: int64 (n,) ``volume_traded`` of each tick.
            use: bool (n,) ticks that carry a cumulative volume (the others yield 0 and touch
                no state); None means all.

        Returns:
            int64 (n,) incremental volume per tick (>= 0).
        """
        slots = np.ascontiguousarray(slots, dtype=np.int64)
        if slots.shape[0] and int(slots.max()) >= self.capacity:
            self.ensure_capacity(int(slots.max()) + 1)
        out = np.empty(slots.shape[0], dtype=np.int64)
        kinds = np.zeros(5, np.int64)
        apply_kernel(
            slots,
            np.ascontiguousarray(session_date, dtype=np.int64),
            np.ascontiguousarray(cumulative, dtype=np.int64),
            np.ones(slots.shape[0], np.bool_) if use is None else np.ascontiguousarray(use),
            self.state(),
            out,
            kinds,
        )
        self.count(kinds)
        return out

    def state(self) -> tuple[np.ndarray, ...]:
        """The state arrays (slots,) in :func:`apply_kernel` order."""
        return (self.seen, self.session, self.last_cumulative, self.first_cumulative,
                self.incremental_total, self.bad_ticks)  # fmt: skip

    def count(self, kinds: np.ndarray) -> None:
        """Add ticks applied by :func:`apply_kernel` to the counters: ``kinds`` int64 (5,), the
        number of ticks of each ``KIND_*``."""
        n_normal, n_first, n_bad, n_invalid, n_reset = (int(k) for k in kinds)
        c = self.counters
        c.ticks += n_normal + n_first + n_bad + n_invalid + n_reset
        c.first_seen += n_first
        c.bad_ticks += n_bad
        c.invalid_ticks += n_invalid
        c.session_resets += n_reset

    _SNAPSHOT = (
        ("session_date", "session"),
        ("first_cumulative", "first_cumulative"),
        ("last_cumulative", "last_cumulative"),
        ("incremental_total", "incremental_total"),
        ("bad_ticks", "bad_ticks"),
    )

    def snapshot(self, slot: int) -> dict[str, int]:
        """Persistable state of one slot (what the store writes and :meth:`restore` reads)."""
        return {name: int(getattr(self, attr)[slot]) for name, attr in self._SNAPSHOT}

    SNAPSHOT_FIELDS = tuple(name for name, _ in _SNAPSHOT)
    """The persisted fields, in :meth:`snapshot` / :meth:`snapshot_columns` order."""

    def snapshot_columns(self, slots: np.ndarray) -> np.ndarray:
        """:meth:`snapshot` of each of ``slots`` (int64 (k,)) as int64 (k, 5) columns in
        :data:`SNAPSHOT_FIELDS` order (no dict per slot)."""
        return np.column_stack([getattr(self, attr)[slots] for _, attr in self._SNAPSHOT])
