"""``alerts:``: the alert policy."""

from __future__ import annotations

from dataclasses import dataclass

from aion.config_checks import check_at_least, check_choice, check_unit


@dataclass(frozen=True)
class AlertsConfig:
    """Alert policy (:mod:`aion.alerts.manager` documents each rule)."""

    min_confidence: float = 0.85
    market_hours_only: bool = True
    max_alerts_per_minute: int = 10
    conflict_policy: str = "keep_stronger"

    def __post_init__(self) -> None:
        check_unit("alerts.min_confidence", self.min_confidence)
        check_at_least("alerts.max_alerts_per_minute", self.max_alerts_per_minute, 1)
        check_choice("alerts.conflict_policy", self.conflict_policy, ("keep_stronger", "drop_all"))
