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
        cum_share: float64 (n, 376) cumulative time-of-day share per slot.
    """

    def __init__(self, avg_volume: np.ndarray, cum_share: np.ndarray) -> None:
        n = avg_volume.shape[0]
        self.avg = avg_volume.astype(np.float64)
        self.cum_share = cum_share
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
        """
        dates = session_dates(starts)
        minutes = session_minute(starts)
        for s, d, reg, m in zip(
            slots.tolist(), dates.tolist(), regular.tolist(), minutes.tolist(), strict=True
        ):
            if self.date[s] != d:
                self.date[s] = d
                late = reg and m > 0
                self.cum[s] = int(first_cumulative[s]) if late else 0

    def update(
        self, slot: int, date: int, minute: int, volume: int, fno: float = 1.0
    ) -> tuple[float, float, float]:
        """Add a closed regular bar; returns ``(rvol_cum, rvol_bar, expected_bar_volume)``.

        ``minute`` is the session minute (0..374), ``volume`` the bar's shares, ``fno`` the
        F&O multiplier of the slot on ``date``.
        """
        if self.date[slot] != date:
            self.date[slot] = date
            self.cum[slot] = 0
        self.cum[slot] += volume
        a = self.avg[slot] * fno
        c = self.cum_share[slot]
        exp_bar = a * (c[minute + 1] - c[minute])
        exp_cum = a * c[minute + 1]
        self.last_expected_cum[slot] = exp_cum
        rvol_bar = volume / exp_bar if exp_bar > 0 else math.nan
        rvol_cum = float(self.cum[slot]) / exp_cum if exp_cum > 0 else math.nan
        return rvol_cum, rvol_bar, float(exp_bar)
