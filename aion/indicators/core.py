"""Incremental per-instrument indicator core (state arrays + kernel dispatch).

:class:`IndicatorCore` owns the per-slot state arrays and hands them to the Numba
kernels in :mod:`aion.indicators.kernels`; the arithmetic lives there only.
TA-Lib is the reference: after warm-up every value equals ``talib.EMA``,
``talib.RSI`` and ``talib.ATR`` run on the same closed bars (default unstable
period 0), see the kernels module docstring for the formulas and sources.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aion.indicators import kernels


@dataclass(frozen=True)
class IndicatorConfig:
    """Indicator periods, in bars.

    ``ema_periods``: EMA periods on close (each >= 2, distinct), output ``ema_<p>``.
    ``rsi_period``: Wilder RSI period on close (>= 2), output ``rsi_<p>``.
    ``atr_period``: Wilder ATR period on high/low/close (>= 1), output ``atr_<p>``.
    Session VWAP (output ``vwap``) has no parameter.
    """

    ema_periods: tuple[int, ...] = (20, 50)
    rsi_period: int = 14
    atr_period: int = 14

    def __post_init__(self) -> None:
        periods = tuple(int(p) for p in self.ema_periods)
        object.__setattr__(self, "ema_periods", periods)
        if any(p < 2 for p in periods) or len(set(periods)) != len(periods):
            raise ValueError(f"ema_periods must be distinct ints >= 2, got {periods}")
        if self.rsi_period < 2:
            raise ValueError(f"rsi_period must be >= 2, got {self.rsi_period}")
        if self.atr_period < 1:
            raise ValueError(f"atr_period must be >= 1, got {self.atr_period}")


def _f64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _i64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


class IndicatorCore:
    """Per-instrument incremental indicators, O(1) per instrument per closed bar.

    Instruments are integer slots ``0..n_slots-1``. Outputs (see :meth:`names`):
    ``ema_<p>`` for each EMA period, ``rsi_<p>``, ``atr_<p>``, ``vwap``; all float64,
    prices in rupees (RSI in 0..100). A value is NaN until its warm-up is complete:
    EMA(p) from the ``p``-th bar, RSI(p) and ATR(p) from bar ``p + 1`` (the first
    output index of TA-Lib), VWAP from the first bar of the session with volume > 0.
    Not thread-safe: one thread (the compute thread) calls all methods.
    """

    def __init__(self, n_slots: int, config: IndicatorConfig = IndicatorConfig()) -> None:
        self.config = config
        self._ema_periods = np.asarray(config.ema_periods, dtype=np.int64)
        self._names = [f"ema_{p}" for p in config.ema_periods] + [
            f"rsi_{config.rsi_period}",
            f"atr_{config.atr_period}",
            "vwap",
        ]
        self._scratch = np.empty(len(self._names), dtype=np.float64)
        self.n_slots = 0
        m = len(config.ema_periods)
        self.count = np.zeros(0, dtype=np.int64)
        self.prev_close = np.zeros(0, dtype=np.float64)
        self.ema_acc = np.zeros((0, m), dtype=np.float64)
        self.rsi_gain = np.zeros(0, dtype=np.float64)
        self.rsi_loss = np.zeros(0, dtype=np.float64)
        self.atr_acc = np.zeros(0, dtype=np.float64)
        self.vwap_date = np.zeros(0, dtype=np.int64)
        self.vwap_pv = np.zeros(0, dtype=np.float64)
        self.vwap_v = np.zeros(0, dtype=np.float64)
        self.out = np.zeros((0, len(self._names)), dtype=np.float64)
        self.grow(n_slots)

    def grow(self, n_slots: int) -> None:
        """Enlarge the state to ``n_slots`` slots, keeping existing slots' state.

        New slots start empty (no bars, all outputs NaN). Shrinking raises ``ValueError``.
        """
        n_slots = int(n_slots)
        old = self.n_slots
        if n_slots < old:
            raise ValueError(f"cannot shrink from {old} to {n_slots} slots")
        if n_slots == old:
            return

        def ext(a: np.ndarray, fill: float) -> np.ndarray:
            new = np.full((n_slots, *a.shape[1:]), fill, dtype=a.dtype)
            new[:old] = a
            return new

        self.count = ext(self.count, 0)
        self.prev_close = ext(self.prev_close, np.nan)
        self.ema_acc = ext(self.ema_acc, 0.0)
        self.rsi_gain = ext(self.rsi_gain, 0.0)
        self.rsi_loss = ext(self.rsi_loss, 0.0)
        self.atr_acc = ext(self.atr_acc, 0.0)
        self.vwap_date = ext(self.vwap_date, -1)
        self.vwap_pv = ext(self.vwap_pv, 0.0)
        self.vwap_v = ext(self.vwap_v, 0.0)
        self.out = ext(self.out, np.nan)
        self.n_slots = n_slots

    def _state(self) -> tuple:
        return (
            self.count,
            self.prev_close,
            self._ema_periods,
            self.ema_acc,
            self.config.rsi_period,
            self.rsi_gain,
            self.rsi_loss,
            self.config.atr_period,
            self.atr_acc,
            self.vwap_date,
            self.vwap_pv,
            self.vwap_v,
        )

    def update(
        self,
        slots: np.ndarray,
        session_date: np.ndarray,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
    ) -> None:
        """Apply a batch of closed bars.

        ``slots`` int64 (k,) in ``0..n_slots-1``; ``session_date`` int64 YYYYMMDD (k,);
        ``open_``/``high``/``low``/``close`` float64 rupees (k,); ``volume`` float64
        shares (k,). A slot may appear several times; its bars are applied in array
        order. ``open_`` is accepted for API stability (no current indicator uses it).
        Raises ``ValueError`` on mismatched lengths, ``IndexError`` on a bad slot.
        """
        slots = _i64(slots)
        k = slots.shape[0]
        arrays = (session_date, open_, high, low, close, volume)
        if any(np.shape(a) != (k,) for a in arrays):
            raise ValueError("update(): all inputs must have shape (k,) like slots")
        if k == 0:
            return
        if slots.min() < 0 or slots.max() >= self.n_slots:
            raise IndexError(f"slot out of range 0..{self.n_slots - 1}")
        kernels.update_bars(
            slots,
            _i64(session_date),
            _f64(high),
            _f64(low),
            _f64(close),
            _f64(volume),
            *self._state(),
            self.out,
        )

    def forming(
        self, slot: int, high: float, low: float, close: float, volume: float, session_date: int
    ) -> dict[str, float]:
        """Values each indicator would take if the forming bar closed now (state unchanged).

        ``high``/``low``/``close`` rupees and ``volume`` shares of the forming bar so far,
        ``session_date`` YYYYMMDD. Returns ``{name: float}``; NaN where the bar would not
        complete warm-up. Identical arithmetic to :meth:`update` (same kernel step).
        """
        if not 0 <= slot < self.n_slots:
            raise IndexError(f"slot {slot} out of range 0..{self.n_slots - 1}")
        row = self._scratch
        kernels.peek_bar(
            int(slot),
            int(session_date),
            float(high),
            float(low),
            float(close),
            float(volume),
            *self._state(),
            row,
        )
        return {name: float(row[i]) for i, name in enumerate(self._names)}

    def names(self) -> list[str]:
        """Output names in column order, e.g. ``["ema_20", "ema_50", "rsi_14", "atr_14", "vwap"]``.

        Column order of the kernels' ``out`` array.
        """
        return list(self._names)

    def values(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """Current values for ``slots`` (int64 (k,)): ``{name: float64 (k,)}``.

        Arrays are copies; NaN means not warmed up yet (or, for VWAP, no session volume).
        """
        rows = self.out[_i64(slots)]
        return {name: rows[:, i].copy() for i, name in enumerate(self._names)}

    def bar_count(self, slots: np.ndarray) -> np.ndarray:
        """Closed bars applied per slot, int64 (k,)."""
        return self.count[_i64(slots)].copy()
