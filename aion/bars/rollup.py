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


class RollupBuilder:
    """Forming rolled-up bars of every slot and timeframe.

    Args:
        n_slots: instrument slots.
        timeframes: bar lengths in minutes (each >= 2).
    """

    def __init__(self, n_slots: int, timeframes: tuple[int, ...] = TIMEFRAMES) -> None:
        if any(t < 2 for t in timeframes):
            raise ValueError("roll-up timeframes must be >= 2 minutes")
        self.timeframes = timeframes
        self._forming = np.zeros((max(1, n_slots), len(timeframes)), ROLLUP_DTYPE)
        self._forming["start"] = -1

    def update(self, bars: np.ndarray) -> np.ndarray:
        """Feed closed regular 1-minute bars (``BAR_DTYPE`` rows, time order per slot).

        Returns the rolled-up bars completed by them (``ROLLUP_DTYPE``, (k,)).
        """
        out: list[np.void] = []
        minutes = session_minute(bars["start"])
        for b, m in zip(bars, minutes.tolist(), strict=True):
            s = int(b["slot"])
            for j, tf in enumerate(self.timeframes):
                start = int(b["start"]) - (m % tf) * 60
                cur = self._forming[s, j]
                if cur["start"] != start:
                    if cur["start"] >= 0:
                        out.append(cur.copy())
                    cur["slot"], cur["timeframe"], cur["start"] = s, tf, start
                    cur["open"], cur["high"], cur["low"] = b["open"], b["high"], b["low"]
                    cur["volume"] = cur["ticks"] = cur["minutes"] = 0
                cur["high"] = max(cur["high"], b["high"])
                cur["low"] = min(cur["low"], b["low"])
                cur["close"] = b["close"]
                cur["volume"] += b["volume"]
                cur["oi"] = b["oi"]
                cur["ticks"] += b["ticks"]
                cur["minutes"] += 1
                if m % tf == tf - 1 or m == _LAST_MINUTE:
                    out.append(cur.copy())
                    cur["start"] = -1
        return np.array(out, ROLLUP_DTYPE) if out else np.empty(0, ROLLUP_DTYPE)

    def finish(self) -> np.ndarray:
        """Emit every forming bar (session end or shutdown) and clear the state."""
        flat = self._forming.reshape(-1)
        out = flat[flat["start"] >= 0].copy()
        self._forming["start"] = -1
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
