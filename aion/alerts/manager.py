"""Alert manager: which signals become alerts.

The compute thread hands over every signal of one bar minute (all instruments, all
patterns) at once with :meth:`AlertManager.consider_many`. Each signal passes these
rules in this order; the first rule it fails is counted in :class:`AlertCounters`:

1. **market hours** (``outside_hours``): with ``market_hours_only``, the bar must start
   inside an XNSE continuous session (09:15-15:30 IST on trading days, special sessions
   included; :class:`aion.market.calendar.MarketCalendar`), on the bar's exchange time: the
   same in a live scan and a replay;
2. **confidence** (``below_confidence``): ``confidence >= min_confidence`` (the pattern's
   own from ``patterns.yaml``, else ``alerts.min_confidence``, default 0.85);
3. **risk** (``risk_refused``, by reason): the risk manager sized the signal
   (:class:`aion.risk.manager.RiskRefusal` otherwise);
4. **dedupe** (``duplicate``): an alert with the same id (instrument, pattern, bar) was
   already published or appears twice in the batch, or the signal repeats the last
   published alert of its (instrument, pattern) exactly (same direction, entry, stop and
   target);
5. **conflict** (``conflict``): when signals of opposite directions remain for one instrument
   in one bar, ``keep_stronger`` keeps the direction whose best confidence is strictly higher
   and drops the other direction's signals (a tie drops both); ``drop_all`` drops both;
6. **cooldown** (``cooldown``): at least ``cooldown_s`` seconds of exchange time since the
   last published alert of the same (instrument, pattern); an older bar than that alert is
   also refused;
7. **rate limit** (``rate_limited``): at most ``max_alerts_per_minute`` alerts per bar minute
   over all instruments; when more qualify, the highest confidences win (ties: symbol, then
   pattern, alphabetically).

Survivors are published in the order given. An alert's identity is
``<YYYYMMDD>:<SYMBOL>:<pattern>:<HH:MM>`` (the IST start of the bar that raised it), so
replaying a session yields the same ids. The Redis stream entry id is
``<bar end, exchange ms>-<seq>``, strictly increasing within the run, so re-publishing an
alert is rejected by Redis (idempotent). Everything runs on exchange time, never the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from aion.market.calendar import MarketCalendar
from aion.market.time import session_date, to_ist
from aion.patterns.registry import InstrumentView, Signal
from aion.risk.manager import RiskRefusal, TradePlan

CONFLICT_POLICIES = ("keep_stronger", "drop_all")


@dataclass(frozen=True)
class Alert:
    """A published alert (one Redis stream entry).

    Attributes:
        alert_id: ``YYYYMMDD:SYMBOL:pattern:HH:MM``.
        stream_id: ``<bar end ms>-<seq>``.
        date: trading date YYYYMMDD (IST).
        symbol: ``EXCHANGE:TRADINGSYMBOL``.
        pattern, direction, confidence, evidence: from the detector's signal.
        bar_start: start of the bar that raised it, epoch seconds.
        plan: the risk manager's trade plan.
    """

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
        p = self.plan
        f = {
            "alert_id": self.alert_id,
            "symbol": self.symbol,
            "pattern": self.pattern,
            "direction": self.direction,
            "confidence": f"{self.confidence:.4f}",
            "bar_time": to_ist(self.bar_start).strftime("%Y-%m-%dT%H:%M:%S%z"),
            "entry": f"{p.entry:.2f}",
            "stop": f"{p.stop:.2f}",
            "target": f"{p.target:.2f}",
            "quantity": str(p.quantity),
            "lots": str(p.lots),
            "lot_size": str(p.lot_size),
            "expected_move": f"{p.expected_move:.4f}",
            "risk_amount": f"{p.risk_amount:.2f}",
            "risk_reward": f"{p.risk_reward:.2f}",
            "stop_basis": p.stop_basis,
        }
        for k, v in self.evidence.items():
            f[f"evidence.{k}"] = f"{v:.6g}"
        return f


@dataclass(frozen=True)
class Candidate:
    """One signal offered to the alert manager.

    Attributes:
        signal: the detector's signal.
        view: the instrument at the bar that raised it.
        plan: the risk manager's answer for this signal.
        min_confidence: the pattern's own threshold, or None for the default.
        cooldown_s: the pattern's cooldown, seconds of exchange time.
    """

    signal: Signal
    view: InstrumentView
    plan: TradePlan | RiskRefusal
    min_confidence: float | None
    cooldown_s: int


@dataclass
class AlertCounters:
    """Why signals did or did not become alerts (each signal is counted once).

    ``signals == published + below_confidence + outside_hours + risk_refused + duplicate
    + conflict + cooldown + rate_limited`` always holds.
    """

    signals: int = 0
    published: int = 0
    below_confidence: int = 0
    outside_hours: int = 0
    risk_refused: int = 0
    duplicate: int = 0
    conflict: int = 0
    cooldown: int = 0
    rate_limited: int = 0
    risk_refused_reasons: dict[str, int] = field(default_factory=dict)
    published_by_pattern: dict[str, int] = field(default_factory=dict)
    minutes: int = 0
    """Distinct bar minutes handed to :meth:`AlertManager.consider_many`."""
    max_per_minute: int = 0
    """Most alerts published for one bar minute."""

    def suppressed(self) -> dict[str, int]:
        """Suppression counts by rule (names as in the module docstring)."""
        return {
            "below_confidence": self.below_confidence,
            "outside_hours": self.outside_hours,
            "risk_refused": self.risk_refused,
            "duplicate": self.duplicate,
            "conflict": self.conflict,
            "cooldown": self.cooldown,
            "rate_limited": self.rate_limited,
        }

    def rate_per_minute(self) -> float:
        """Published alerts per bar minute seen (0.0 before any minute)."""
        return self.published / self.minutes if self.minutes else 0.0


class AlertManager:
    """Decides which signals become alerts (rules in the module docstring).

    Args:
        default_min_confidence: threshold in [0, 1] for patterns without their own.
        market_hours_only: enforce the market-hours guard (rule 1).
        max_alerts_per_minute: global alerts per bar minute (>= 1).
        conflict_policy: ``keep_stronger`` or ``drop_all``.
        calendar: the XNSE calendar (with special sessions); default the library's.

    Raises:
        ValueError: an unknown conflict policy or a rate limit below 1.
    """

    def __init__(
        self,
        default_min_confidence: float = 0.85,
        market_hours_only: bool = True,
        max_alerts_per_minute: int = 10,
        conflict_policy: str = "keep_stronger",
        calendar: MarketCalendar | None = None,
    ) -> None:
        if conflict_policy not in CONFLICT_POLICIES:
            raise ValueError(f"conflict_policy {conflict_policy!r} not in {CONFLICT_POLICIES}")
        if max_alerts_per_minute < 1:
            raise ValueError("max_alerts_per_minute must be >= 1")
        self.default_min_confidence = default_min_confidence
        self.guard_hours = market_hours_only
        self.max_alerts_per_minute = max_alerts_per_minute
        self.conflict_policy = conflict_policy
        self.calendar = calendar if calendar is not None else MarketCalendar()
        self.counters = AlertCounters()
        self._last: dict[tuple[str, str], Alert] = {}
        self._ids: set[str] = set()
        self._per_minute: dict[int, int] = {}  # bar minute -> alerts published (last hour)
        self._last_ms = 0
        self._seq = 0

    def consider_many(self, bar_start: int, candidates: Sequence[Candidate]) -> list[Alert]:
        """Apply the policy to every signal of the bar minute starting at ``bar_start``.

        Args:
            bar_start: the bar minute's start, epoch seconds; call once per minute, in
                order (also with no candidates, so the rate per minute is honest).
            candidates: the minute's signals, all with ``view.bar_start == bar_start``.

        Returns:
            The alerts to publish, in candidate order.

        Raises:
            ValueError: a candidate of another bar minute.
        """
        c = self.counters
        if bar_start not in self._per_minute:
            c.minutes += 1
            self._per_minute = {m: n for m, n in self._per_minute.items() if m > bar_start - 3600}
            self._per_minute[bar_start] = 0
        open_now = (not self.guard_hours) or self.calendar.is_open(bar_start)
        passed: list[tuple[Candidate, TradePlan, str]] = []
        batch_ids: set[str] = set()
        for cand in candidates:
            sig, view = cand.signal, cand.view
            if view.bar_start != bar_start:
                raise ValueError(f"{view.symbol}: bar {view.bar_start} is not minute {bar_start}")
            c.signals += 1
            if not open_now:
                c.outside_hours += 1
                continue
            threshold = (
                self.default_min_confidence if cand.min_confidence is None else cand.min_confidence
            )
            if sig.confidence < threshold:
                c.below_confidence += 1
                continue
            plan = cand.plan
            if isinstance(plan, RiskRefusal):
                c.risk_refused += 1
                c.risk_refused_reasons[plan.reason] = c.risk_refused_reasons.get(plan.reason, 0) + 1
                continue
            alert_id = _alert_id(view, sig.pattern)
            last = self._last.get((view.symbol, sig.pattern))
            if alert_id in self._ids or alert_id in batch_ids or _same_trade(last, sig, plan):
                c.duplicate += 1
                continue
            batch_ids.add(alert_id)
            passed.append((cand, plan, alert_id))
        passed = self._resolve_conflicts(passed)
        cooled = []
        for cand, plan, alert_id in passed:
            last = self._last.get((cand.view.symbol, cand.signal.pattern))
            if last is not None and bar_start - last.bar_start < cand.cooldown_s:
                c.cooldown += 1
                continue
            if last is not None and bar_start < last.bar_start:
                c.cooldown += 1
                continue
            cooled.append((cand, plan, alert_id))
        return self._publish(bar_start, self._rate_limit(bar_start, cooled))

    def _resolve_conflicts(
        self, passed: list[tuple[Candidate, TradePlan, str]]
    ) -> list[tuple[Candidate, TradePlan, str]]:
        best: dict[str, dict[str, float]] = {}
        for cand, _plan, _id in passed:
            d = best.setdefault(cand.view.symbol, {})
            s = cand.signal
            d[s.direction] = max(d.get(s.direction, -1.0), s.confidence)
        keep: dict[str, str | None] = {}
        for sym, d in best.items():
            if len(d) < 2:
                continue
            if self.conflict_policy == "keep_stronger" and d["long"] != d["short"]:
                keep[sym] = "long" if d["long"] > d["short"] else "short"
            else:
                keep[sym] = None
        if not keep:
            return passed
        out = []
        for item in passed:
            sym = item[0].view.symbol
            if sym in keep and item[0].signal.direction != keep[sym]:
                self.counters.conflict += 1
                continue
            out.append(item)
        return out

    def _rate_limit(
        self, bar_start: int, items: list[tuple[Candidate, TradePlan, str]]
    ) -> list[tuple[Candidate, TradePlan, str]]:
        used = self._per_minute.get(bar_start, 0)
        room = max(0, self.max_alerts_per_minute - used)
        if len(items) <= room:
            return items
        order = sorted(
            range(len(items)),
            key=lambda i: (
                -items[i][0].signal.confidence,
                items[i][0].view.symbol,
                items[i][0].signal.pattern,
            ),
        )
        chosen = set(order[:room])
        self.counters.rate_limited += len(items) - room
        return [it for i, it in enumerate(items) if i in chosen]

    def _publish(
        self, bar_start: int, items: list[tuple[Candidate, TradePlan, str]]
    ) -> list[Alert]:
        c = self.counters
        out = []
        for cand, plan, alert_id in items:
            sig, view = cand.signal, cand.view
            ms = (bar_start + 60) * 1000
            if ms > self._last_ms:
                self._last_ms, self._seq = ms, 0
            else:
                self._seq += 1
            alert = Alert(
                alert_id=alert_id,
                stream_id=f"{self._last_ms}-{self._seq}",
                date=session_date(bar_start),
                symbol=view.symbol,
                pattern=sig.pattern,
                direction=sig.direction,
                confidence=sig.confidence,
                bar_start=bar_start,
                plan=plan,
                evidence=sig.evidence,
            )
            self._ids.add(alert_id)
            self._last[(view.symbol, sig.pattern)] = alert
            c.published += 1
            c.published_by_pattern[sig.pattern] = c.published_by_pattern.get(sig.pattern, 0) + 1
            out.append(alert)
        n = self._per_minute[bar_start] = self._per_minute[bar_start] + len(out)
        c.max_per_minute = max(c.max_per_minute, n)
        return out


def _alert_id(view: InstrumentView, pattern: str) -> str:
    date = session_date(view.bar_start)
    return f"{date}:{view.symbol}:{pattern}:{to_ist(view.bar_start):%H:%M}"


def _same_trade(last: Alert | None, sig: Signal, plan: TradePlan) -> bool:
    """True when ``sig``/``plan`` repeat ``last`` exactly (direction, entry, stop, target)."""
    return (
        last is not None
        and last.direction == sig.direction
        and (last.plan.entry, last.plan.stop, last.plan.target)
        == (plan.entry, plan.stop, plan.target)
    )


__all__ = ["CONFLICT_POLICIES", "Alert", "AlertCounters", "AlertManager", "Candidate"]
