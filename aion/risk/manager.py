"""Risk manager: expected move, ATR stop, target, position size and risk:reward for a signal.

The rules (all prices in rupees, quantities in shares/contract units):

- **entry** = the closed bar's close (the alert is known when the bar closes);
- **volatility basis** = ATR(14) of the 1-minute bars (Wilder, :mod:`aion.indicators`); while
  ATR warms up (NaN or 0) the closed bar's range ``high - low`` stands in (``stop_basis``
  says which was used);
- **stop distance** = ``atr_stop_multiple`` x basis; **expected move** = ``reward_multiple``
  x stop distance (``atr_stop_multiple x reward_multiple`` ATRs: 3 ATR with the defaults);
- **direction**: a long (BUY) has its stop below and its target above the entry, a short
  (SELL) the reverse: ``stop = entry -/+ stop distance``, ``target = entry +/- expected move``;
- **rounding** to the instrument's tick: the stop is rounded *away* from the entry (never a
  smaller risk than the rule says) and the target *towards* it (never a larger reward);
- **size**: ``floor(capital x risk_per_trade / |entry - stop|)`` units, capped so the
  position's notional ``quantity x entry`` never exceeds ``capital`` (no leverage, also for
  futures), rounded down to whole lots (``lot_size`` from Kite's instrument master: 50 for
  NIFTY futures in Nov 2022, 1 for equities);
- **risk:reward** = ``|target - entry| / |entry - stop|`` after rounding.

A signal is **refused** (a :class:`RiskRefusal` with a reason code, counted by the alert
manager) when the entry is not a positive finite price (``invalid_entry``), when the stop
distance is zero or undefined (``zero_stop_distance``: flat bar during ATR warm-up), when the
rounded target does not lie beyond the entry (``zero_target_distance``), or when the size
rounds down to zero lots (``size_rounds_to_zero``: one lot risks more than the budget or costs
more than the capital).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aion.patterns.registry import InstrumentView, Signal
from aion.risk.config import RiskConfig

REFUSAL_REASONS = (
    "invalid_entry",
    "zero_stop_distance",
    "zero_target_distance",
    "size_rounds_to_zero",
)
"""Every reason code :meth:`RiskManager.plan` can give."""


@dataclass(frozen=True)
class TradePlan:
    """Sizing of one signal. Prices in rupees; quantities in shares/contract units.

    Attributes:
        entry: the closed bar's close.
        stop: entry -/+ stop distance, rounded away from the entry to the tick.
        target: entry +/- expected move, rounded towards the entry to the tick.
        quantity: units to trade, ``lots x lot_size`` (> 0).
        lots: whole lots (equal to ``quantity`` for equities, lot size 1).
        lot_size: units per lot (instrument master).
        expected_move: ``reward_multiple`` x stop distance before rounding, rupees per unit.
        risk_amount: ``quantity x |entry - stop|``, rupees lost if the stop is hit (no costs).
        risk_reward: ``|target - entry| / |entry - stop|``.
        stop_basis: ``atr`` or ``bar_range``.
    """

    entry: float
    stop: float
    target: float
    quantity: int
    lots: int
    lot_size: int
    expected_move: float
    risk_amount: float
    risk_reward: float
    stop_basis: str


@dataclass(frozen=True)
class RiskRefusal:
    """Why a signal got no trade plan.

    Attributes:
        reason: one of :data:`REFUSAL_REASONS`.
        detail: one human-readable line with the numbers behind the reason.
    """

    reason: str
    detail: str


def round_to_tick(price: float, tick: float, up: bool) -> float:
    """``price`` (rupees) rounded to a multiple of ``tick`` (rupees, > 0), up or down, as a
    4-decimal float; a price within 1e-9 ticks of a multiple counts as on it."""
    q = price / tick
    n = math.ceil(q - 1e-9) if up else math.floor(q + 1e-9)
    return round(n * tick, 4)


class RiskManager:
    """Turns signals into trade plans with the limits in ``config.risk``.

    Args:
        config: capital (rupees), risk per trade (fraction of capital), ATR stop multiple,
            reward multiple.
    """

    def __init__(self, config: RiskConfig) -> None:
        self.config = config

    def plan(self, signal: Signal, view: InstrumentView) -> TradePlan | RiskRefusal:
        """The trade plan of ``signal`` on the bar in ``view``, or the reason there is none.

        Reads ``view.close`` (entry), ``view.indicators["atr_14"]``, ``view.high``/``low``
        (warm-up basis), ``view.lot_size`` and ``view.tick_size``. Never raises for market
        data; see the module docstring for the rules.
        """
        cfg = self.config
        entry = view.close
        if not (math.isfinite(entry) and entry > 0):
            return RiskRefusal("invalid_entry", f"entry {entry!r} is not a positive price")
        atr = view.indicators.get("atr_14", math.nan)
        if math.isfinite(atr) and atr > 0:
            basis, stop_basis = atr, "atr"
        else:
            basis, stop_basis = view.high - view.low, "bar_range"
        dist = cfg.atr_stop_multiple * basis
        if not (math.isfinite(dist) and dist > 0):
            return RiskRefusal(
                "zero_stop_distance", f"no volatility: ATR {atr:g}, bar range {basis:g}"
            )
        move = cfg.reward_multiple * dist
        long = signal.direction == "long"
        tick = view.tick_size if view.tick_size > 0 else 0.05
        # long: stop down (away), target down (towards); short: both up
        stop = round_to_tick(entry - dist if long else entry + dist, tick, up=not long)
        target = round_to_tick(entry + move if long else entry - move, tick, up=not long)
        risk_ps = abs(entry - stop)
        if risk_ps <= 0:
            return RiskRefusal("zero_stop_distance", f"stop {stop} rounds onto entry {entry}")
        reward_ps = (target - entry) if long else (entry - target)
        if reward_ps <= 0:
            return RiskRefusal(
                "zero_target_distance", f"target {target} is not beyond entry {entry}"
            )
        lot = max(1, int(view.lot_size))
        budget = cfg.capital * cfg.risk_per_trade
        units = min(budget / risk_ps, cfg.capital / entry)
        lots = int(units // lot)
        if lots <= 0:
            return RiskRefusal(
                "size_rounds_to_zero",
                f"one lot of {lot} risks {lot * risk_ps:.2f} (budget {budget:.2f}) and costs "
                f"{lot * entry:.2f} (capital {cfg.capital:.2f})",
            )
        qty = lots * lot
        return TradePlan(
            entry=entry,
            stop=stop,
            target=target,
            quantity=qty,
            lots=lots,
            lot_size=lot,
            expected_move=move,
            risk_amount=qty * risk_ps,
            risk_reward=reward_ps / risk_ps,
            stop_basis=stop_basis,
        )
