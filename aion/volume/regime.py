"""Session windows and INDIA VIX regimes: multipliers applied to detector volume thresholds.

Both come from configuration (``sessions`` and ``vix_regimes`` in ``config/aion.yaml``),
never from code:

* session window: a bar starting inside ``sessions.opening`` or ``sessions.closing``
  (IST, ``[start, end)``) takes that window's multiplier, any other bar 1.0;
* VIX regime: the INDIA VIX level (``last_price`` of the ``NSE:INDIA VIX`` index ticks, in
  index points = annualised implied volatility in percent, NSE's VIX methodology) picks the
  first regime whose ``below`` bound exceeds it (the last regime has no bound).

The threshold multiplier of a bar is the product of the two; before any VIX tick is seen
the regime is ``""`` and its multiplier 1.0.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from aion.volume.config import SessionsConfig, VixRegimesConfig


class RegimeClassifier:
    """Maps (IST minute of day, VIX level) to ``(regime, threshold multiplier)``.

    Args:
        sessions: validated ``sessions`` config.
        vix: validated ``vix_regimes`` config.
    """

    def __init__(self, sessions: SessionsConfig, vix: VixRegimesConfig) -> None:
        self._windows = [
            (*sessions.opening.check("sessions.opening"), sessions.opening.multiplier),
            (*sessions.closing.check("sessions.closing"), sessions.closing.multiplier),
        ]
        self._regimes = vix.regimes

    def session_multiplier(self, minute_of_day: int) -> float:
        """Multiplier of the session window holding IST ``minute_of_day`` (1.0 outside)."""
        for lo, hi, mult in self._windows:
            if lo <= minute_of_day < hi:
                return mult
        return 1.0

    def vix_regime(self, vix: float) -> tuple[str, float]:
        """``(name, multiplier)`` of VIX level ``vix`` (points); ``("", 1.0)`` for NaN."""
        if not math.isfinite(vix):
            return "", 1.0
        for r in self._regimes:
            if r.below is None or vix < r.below:
                return r.name, r.multiplier
        raise AssertionError("the last regime has no bound")  # pragma: no cover

    def classify(self, minute_of_day: int, vix: float) -> tuple[str, float]:
        """``(regime, session multiplier x regime multiplier)`` for one bar."""
        name, mult = self.vix_regime(vix)
        return name, mult * self.session_multiplier(minute_of_day)


class VixTracker:
    """INDIA VIX levels by exchange time, so a bar sees the VIX of its own close.

    Keeps the last ``capacity`` (epoch seconds, level) observations in arrival order;
    lookups return the latest level observed strictly before a given time.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._obs: deque[tuple[int, float]] = deque(maxlen=capacity)

    def observe(self, ts: np.ndarray, level: np.ndarray) -> None:
        """Record VIX ticks: int64 epoch seconds (n,) and float64 levels (n,), time order."""
        for t, v in zip(ts.tolist(), level.tolist(), strict=True):
            if v > 0 and math.isfinite(v) and (not self._obs or t >= self._obs[-1][0]):
                self._obs.append((int(t), float(v)))

    def level_before(self, epoch_s: int) -> float:
        """Latest VIX level observed before ``epoch_s`` (NaN when none)."""
        for t, v in reversed(self._obs):
            if t < epoch_s:
                return v
        return math.nan
