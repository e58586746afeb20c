"""Alert manager: confidence threshold, cooldown, dedupe and market-hours guard.

An alert's identity is ``<YYYYMMDD>:<SYMBOL>:<pattern>:<HH:MM>`` (the IST start
of the bar that raised it), so replaying a session yields the same ids. The
Redis stream entry id is ``<bar end, exchange ms>-<seq>``, strictly increasing
within the run, so re-publishing an alert is rejected by Redis (idempotent).
Cooldowns run on exchange time, never the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from aion.market.time import session_date, to_ist
from aion.patterns.registry import InstrumentView, Signal
from aion.risk.manager import TradePlan


@dataclass(frozen=True)
class Alert:
    """A published alert (one Redis stream entry)."""

    alert_id: str
    stream_id: str
    date: int
    symbol: str
    pattern: str
    direction: str
    confidence: float
    bar_start: int
    plan: TradePlan
    evidence: dict[str, float]

    def fields(self) -> dict[str, str]:
        """Flat string fields for the Redis stream (canonical names)."""
        f = {
            "alert_id": self.alert_id,
            "symbol": self.symbol,
            "pattern": self.pattern,
            "direction": self.direction,
            "confidence": f"{self.confidence:.4f}",
            "bar_time": to_ist(self.bar_start).strftime("%Y-%m-%dT%H:%M:%S%z"),
            "entry": f"{self.plan.entry:.2f}",
            "stop": f"{self.plan.stop:.2f}",
            "target": f"{self.plan.target:.2f}",
            "quantity": str(self.plan.quantity),
            "risk_reward": f"{self.plan.risk_reward:.2f}",
            "stop_basis": self.plan.stop_basis,
        }
        for k, v in self.evidence.items():
            f[f"evidence.{k}"] = f"{v:.6g}"
        return f


@dataclass
class AlertCounters:
    """Why signals did or did not become alerts."""

    signals: int = 0
    published: int = 0
    below_confidence: int = 0
    cooldown: int = 0
    duplicate: int = 0
    outside_hours: int = 0
    unsized: int = 0


class AlertManager:
    """Decides which signals become alerts.

    Args:
        default_min_confidence: threshold for patterns without their own.
        market_hours_only: reject signals from non-regular bars.
    """

    def __init__(self, default_min_confidence: float, market_hours_only: bool = True) -> None:
        self.default_min_confidence = default_min_confidence
        self.market_hours_only = market_hours_only
        self.counters = AlertCounters()
        self._last_fire: dict[tuple[str, str], int] = {}
        self._ids: set[str] = set()
        self._last_ms = 0
        self._seq = 0

    def consider(
        self,
        signal: Signal,
        view: InstrumentView,
        plan: TradePlan | None,
        min_confidence: float | None,
        cooldown_s: int,
        regular: bool,
    ) -> Alert | None:
        """Apply the policy to one signal; returns the alert to publish or None."""
        c = self.counters
        c.signals += 1
        if self.market_hours_only and not regular:
            c.outside_hours += 1
            return None
        threshold = self.default_min_confidence if min_confidence is None else min_confidence
        if signal.confidence < threshold:
            c.below_confidence += 1
            return None
        if plan is None or plan.quantity <= 0:
            c.unsized += 1
            return None
        key = (view.symbol, signal.pattern)
        last = self._last_fire.get(key)
        if last is not None and view.bar_start - last < cooldown_s:
            c.cooldown += 1
            return None
        date = session_date(view.bar_start)
        alert_id = f"{date}:{view.symbol}:{signal.pattern}:{to_ist(view.bar_start):%H:%M}"
        if alert_id in self._ids:
            c.duplicate += 1
            return None
        self._ids.add(alert_id)
        self._last_fire[key] = view.bar_start
        ms = (view.bar_start + 60) * 1000
        if ms > self._last_ms:
            self._last_ms, self._seq = ms, 0
        else:
            self._seq += 1
        c.published += 1
        return Alert(
            alert_id=alert_id,
            stream_id=f"{self._last_ms}-{self._seq}",
            date=date,
            symbol=view.symbol,
            pattern=signal.pattern,
            direction=signal.direction,
            confidence=signal.confidence,
            bar_start=view.bar_start,
            plan=plan,
            evidence=signal.evidence,
        )
