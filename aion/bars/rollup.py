"""5, 15, 30 and 60-minute bars rolled up from closed regular 1-minute bars.

Buckets are aligned to the 09:15 IST session start (Kite's convention for its
intraday candles): an ``N``-minute bar starts at 09:15 + k x N and holds the
1-minute bars starting in ``[start, start + N)``, so the 60-minute bars start at
09:15, 10:15, ... 15:15 and the last one (15:15-15:29) holds 15 minutes, like the
30-minute bar starting 15:15. Bars are start-labelled, OHLC from the first open,
the highest high, the lowest low and the last close, volume summed, ``oi`` the last.

A rolled-up bar is emitted as soon as its last minute closes (the bar starting
``start + N - 1``, or 15:29), when a 1-minute bar of a later bucket (or session)
arrives for the instrument, or at :meth:`RollupBuilder.finish`; its ``minutes``
field says how many 1-minute bars it holds. Only regular-session bars roll up;
1-minute revisions (late volume at the session's end) are not rolled up again.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from aion.market.time import IST_OFFSET_S, REGULAR_CLOSE_MINUTE, REGULAR_OPEN_MINUTE

TIMEFRAMES = (5, 15, 30, 60)
"""Rolled-up bar lengths, minutes."""

_LAST_MINUTE = REGULAR_CLOSE_MINUTE - REGULAR_OPEN_MINUTE - 1  # 374: the 15:29 bar

ROLLUP_DTYPE = np.dtype(
    [
        ("slot", np.int64),
        ("timeframe", np.int64),  # minutes: 5, 15, 30 or 60
        ("start", np.int64),  # bucket start, epoch seconds (IST label via to_ist)
        ("open", np.float64),  # rupees
        ("high", np.float64),
        ("low", np.float64),
        ("close", np.float64),
        ("volume", np.int64),  # shares / units
        ("oi", np.int64),
        ("ticks", np.int64),
        ("minutes", np.int64),  # 1-minute bars held
    ]
)


def session_minute(start: np.ndarray) -> np.ndarray:
    """Minute of the regular session (0 = 09:15 IST) of bar starts, int64 epoch seconds (n,)."""
    mod = ((start.astype(np.int64) + IST_OFFSET_S) % 86_400) // 60
    return mod - REGULAR_OPEN_MINUTE


_I_FIELDS = ("slot", "timeframe", "start", "volume", "oi", "ticks", "minutes")
_F_FIELDS = ("open", "high", "low", "close")


@njit(nogil=True, cache=True)
def _rollup_kernel(
    slot: np.ndarray,
    start: np.ndarray,
    minute: np.ndarray,
    px: np.ndarray,
    qty: np.ndarray,
    tfs: np.ndarray,
    f_int: np.ndarray,
    f_px: np.ndarray,
    out_int: np.ndarray,
    out_px: np.ndarray,
) -> int:
    """Add bars to the forming state; completed roll-ups go to ``out_*``; returns how many.

    Bars: slot, start (epoch s), session minute int64 (n,), ``px`` float64 (n, 4) OHLC,
    ``qty`` int64 (n, 3) volume, oi, ticks. State ``f_int`` int64 (slots, T, 7) as
    :data:`_I_FIELDS` (start -1: nothing forming), ``f_px`` float64 (slots, T, 4).
    """
    k = 0
    for i in range(slot.shape[0]):
        s = slot[i]
        m = minute[i]
        for j in range(tfs.shape[0]):
            tf = tfs[j]
            b_start = start[i] - (m % tf) * 60
            cur = f_int[s, j]
            cp = f_px[s, j]
            if cur[2] != b_start:
                if cur[2] >= 0:
                    out_int[k] = cur
                    out_px[k] = cp
                    k += 1
                cur[0] = s
                cur[1] = tf
                cur[2] = b_start
                cp[0] = px[i, 0]
                cp[1] = px[i, 1]
                cp[2] = px[i, 2]
                cur[3] = 0
                cur[5] = 0
                cur[6] = 0
            cp[1] = max(cp[1], px[i, 1])
            cp[2] = min(cp[2], px[i, 2])
            cp[3] = px[i, 3]
            cur[3] += qty[i, 0]
            cur[4] = qty[i, 1]
            cur[5] += qty[i, 2]
            cur[6] += 1
            if m % tf == tf - 1 or m == _LAST_MINUTE:
                out_int[k] = cur
                out_px[k] = cp
                k += 1
                cur[2] = -1
    return k


def _as_rows(ints: np.ndarray, pxs: np.ndarray) -> np.ndarray:
    out = np.empty(ints.shape[0], ROLLUP_DTYPE)
    for c, name in enumerate(_I_FIELDS):
        out[name] = ints[:, c]
    for c, name in enumerate(_F_FIELDS):
        out[name] = pxs[:, c]
    return out


class RollupBuilder:
    """Forming rolled-up bars of every slot and timeframe (a Numba kernel over arrays).

    Args:
        n_slots: instrument slots.
        timeframes: bar lengths in minutes (each >= 2).
    """

    def __init__(self, n_slots: int, timeframes: tuple[int, ...] = TIMEFRAMES) -> None:
        if any(t < 2 for t in timeframes):
            raise ValueError("roll-up timeframes must be >= 2 minutes")
        self.timeframes = timeframes
        self._tfs = np.array(timeframes, np.int64)
        n = max(1, n_slots)
        self._int = np.zeros((n, len(timeframes), len(_I_FIELDS)), np.int64)
        self._int[:, :, 2] = -1  # start: nothing forming
        self._px = np.zeros((n, len(timeframes), len(_F_FIELDS)), np.float64)

    def update(self, bars: np.ndarray) -> np.ndarray:
        """Feed closed regular 1-minute bars (``BAR_DTYPE`` rows, time order per slot).

        Returns the rolled-up bars completed by them (``ROLLUP_DTYPE``, (k,)), in the
        order they completed (per bar, per timeframe).
        """
        n = bars.shape[0]
        if n == 0:
            return np.empty(0, ROLLUP_DTYPE)
        px = np.column_stack([bars[f].astype(np.float64) for f in _F_FIELDS])
        qty = np.column_stack([bars[f].astype(np.int64) for f in ("volume", "oi", "ticks")])
        cap = 2 * n * len(self.timeframes)  # a bar closes at most two roll-ups per timeframe
        out_int = np.empty((cap, len(_I_FIELDS)), np.int64)
        out_px = np.empty((cap, len(_F_FIELDS)), np.float64)
        starts = bars["start"].astype(np.int64)
        k = _rollup_kernel(bars["slot"].astype(np.int64), starts, session_minute(starts), px, qty,
                           self._tfs, self._int, self._px, out_int, out_px)  # fmt: skip
        return _as_rows(out_int[:k], out_px[:k])

    def finish(self) -> np.ndarray:
        """Emit every forming bar (session end or shutdown) and clear the state."""
        ints = self._int.reshape(-1, len(_I_FIELDS))
        pxs = self._px.reshape(-1, len(_F_FIELDS))
        live = ints[:, 2] >= 0
        out = _as_rows(ints[live], pxs[live])
        self._int[:, :, 2] = -1
        return np.sort(out, order=["start", "slot", "timeframe"])


def rollup_bars(bars: np.ndarray, timeframes: tuple[int, ...] = TIMEFRAMES) -> np.ndarray:
    """Roll up a whole array of regular 1-minute bars (``BAR_DTYPE``) at once.

    Same rules as :class:`RollupBuilder` (it runs one); rows sorted by start, slot,
    timeframe.
    """
    if bars.shape[0] == 0:
        return np.empty(0, ROLLUP_DTYPE)
    order = np.lexsort((bars["slot"], bars["start"]))
    rb = RollupBuilder(int(bars["slot"].max()) + 1, timeframes)
    out = np.concatenate((rb.update(bars[order]), rb.finish()))
    return np.sort(out, order=["start", "slot", "timeframe"])
