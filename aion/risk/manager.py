"""Risk manager: entry, ATR stop, target, position size and risk:reward for a signal."""

from __future__ import annotations

import math
from dataclasses import dataclass

from aion.config import RiskConfig
from aion.patterns.registry import InstrumentView, Signal


@dataclass(frozen=True)
class TradePlan:
    """Sizing of one signal. Prices in rupees; ``quantity`` in shares/units (a multiple of the lot).

    Attributes:
        entry: the closed bar's close.
        stop: entry -/+ ``atr_stop_multiple`` x ATR(14) (the bar's range while ATR warms up).
        target: entry +/- ``reward_multiple`` x stop distance.
        quantity: floor(capital x risk_per_trade / stop distance), capped so the position's
            notional (quantity x entry) never exceeds capital, rounded down to whole lots.
        risk_reward: |target - entry| / |entry - stop|.
        stop_basis: ``atr`` or ``bar_range``.
    """

    entry: float
    stop: float
    target: float
    quantity: int
    risk_reward: float
    stop_basis: str


class RiskManager:
    """Turns signals into trade plans with the limits in ``config.risk``."""

    def __init__(self, config: RiskConfig, tick_size: float = 0.05) -> None:
        self.config = config
        self.tick_size = tick_size

    def _round(self, price: float) -> float:
        return round(round(price / self.tick_size) * self.tick_size, 2)

    def plan(self, signal: Signal, view: InstrumentView) -> TradePlan | None:
        """A trade plan, or None when no positive stop distance exists (flat bar, no ATR)."""
        atr = view.indicators.get("atr_14", math.nan)
        if atr > 0:
            dist, basis = self.config.atr_stop_multiple * atr, "atr"
        else:
            dist, basis = view.high - view.low, "bar_range"
        dist = max(dist, self.tick_size)
        if not dist > 0:
            return None
        entry = view.close
        sign = 1.0 if signal.direction == "long" else -1.0
        stop = self._round(entry - sign * dist)
        target = self._round(entry + sign * self.config.reward_multiple * dist)
        risk_ps = abs(entry - stop)
        if risk_ps <= 0:
            return None
        lot = max(1, view.lot_size)
        by_risk = self.config.capital * self.config.risk_per_trade / risk_ps
        by_capital = self.config.capital / entry
        qty = int(min(by_risk, by_capital)) // lot * lot
        return TradePlan(entry, stop, target, qty, abs(target - entry) / risk_ps, basis)
