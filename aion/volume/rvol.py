"""Relative volume (RVOL) per instrument, updated on every closed regular 1-minute bar.

For session minute ``m`` (0 = the bar starting 09:15 IST), an average daily volume
``A`` (shares, traded scale, 20 sessions; :mod:`aion.volume.averages`) times the
F&O multiplier ``F`` (:mod:`aion.volume.fno`, 1 for cash) and the instrument's
cumulative time-of-day share ``C`` (:mod:`aion.volume.baseline`):

* expected bar volume ``E_bar(m) = A F (C(m+1) - C(m))``;
* expected cumulative volume after the bar ``E_cum(m) = A F C(m+1)``;
* bar RVOL = bar volume / ``E_bar(m)``;
* cumulative RVOL = regular-session volume of bars 0..m / ``E_cum(m)``.

The actual cumulative counts regular-session bars only (the pre-open auction and the
closing session are not in ``C``'s minutes either). An instrument first seen during the
regular session (aion started late) is seeded with Kite's ``volume_traded`` at first
sight, which also holds that day's pre-open volume (a small overstatement; the bars
before first sight cannot be known). RVOL is NaN without an average (no daily history,
indices) or with a zero expectation.
"""

from __future__ import annotations

import math

import numpy as np

from aion.bars.rollup import session_minute
from aion.market.time import session_dates


class RvolTracker:
    """Cumulative regular-session volume and RVOL per instrument slot.

    Args:
        avg_volume: float64 (n,) average daily volume per slot, shares (NaN: none).
        curves: float64 (k, 376) distinct cumulative time-of-day share curves.
        curve_of: int64 (n,) row of ``curves`` each slot uses (instruments without their own
            history share the market curve: one row, not one per slot).
    """

    def __init__(self, avg_volume: np.ndarray, curves: np.ndarray, curve_of: np.ndarray) -> None:
        n = avg_volume.shape[0]
        self.avg = avg_volume.astype(np.float64)
        self.curves = curves
        self.curve_of = curve_of
        self.fno = np.ones(n, np.float64)
        self.cum = np.zeros(n, np.int64)  # shares traded in the session's regular bars so far
        self.date = np.zeros(n, np.int64)
        self.last_expected_cum = np.full(n, math.nan)

    def on_first_bars(
        self,
        slots: np.ndarray,
        starts: np.ndarray,
        regular: np.ndarray,
        first_cumulative: np.ndarray,
    ) -> None:
        """Start a slot's session at its first closed bar of a new session date.

        slots int64 (k,), bar starts int64 epoch s (k,), ``regular`` bool (k,) in time
        order; ``first_cumulative`` int64 (slots,) Kite ``volume_traded`` at first sight.
        A slot whose rows span several new dates ends on the last one's session.
        """
        if slots.shape[0] == 0:
            return
        slots = slots.astype(np.int64)
        dates = session_dates(starts)
        order = np.argsort(slots, kind="stable")
        s, d = slots[order], dates[order]
        head = np.ones(s.shape[0], np.bool_)
        head[1:] = s[1:] != s[:-1]
        before = np.where(head, self.date[s], np.roll(d, 1))  # the slot's date before each row
        change = d != before
        if not change.any():
            return
        rows = order[change]  # the rows starting a session, per slot in time order
        tail = np.ones(rows.shape[0], np.bool_)  # the last session start of each slot wins
        tail[:-1] = slots[rows[1:]] != slots[rows[:-1]]
        rows = rows[tail]
        sl = slots[rows]
        late = regular[rows] & (session_minute(starts[rows]) > 0)
        self.date[sl] = dates[rows]
        self.cum[sl] = np.where(late, first_cumulative[sl], 0)

    def update(
        self,
        slots: np.ndarray,
        dates: np.ndarray,
        minute: int,
        volume: np.ndarray,
        fno: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Add the closed regular bars of one session minute.

        Args:
            slots: int64 (n,) distinct slots.
            dates: int64 (n,) session dates YYYYMMDD.
            minute: the session minute of the bars (0..374).
            volume: int64 (n,) the bars' shares.
            fno: float64 (n,) F&O multiplier of each slot on its date.

        Returns:
            ``(rvol_cum, rvol_bar, expected_bar_volume)``, float64 (n,) each (NaN without
            an expectation).
        """
        new = self.date[slots] != dates
        self.date[slots] = dates
        cum = np.where(new, 0, self.cum[slots]) + volume
        self.cum[slots] = cum
        a = self.avg[slots] * fno
        rows = self.curve_of[slots]
        c0 = self.curves[rows, minute]
        c1 = self.curves[rows, minute + 1]
        exp_bar = a * (c1 - c0)
        exp_cum = a * c1
        self.last_expected_cum[slots] = exp_cum
        with np.errstate(divide="ignore", invalid="ignore"):
            rvol_bar = np.where(exp_bar > 0, volume / exp_bar, math.nan)
            rvol_cum = np.where(exp_cum > 0, cum / exp_cum, math.nan)
        return rvol_cum, rvol_bar, exp_bar
