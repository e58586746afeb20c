"""``risk:``: capital and the stop/target/size rules of the risk manager."""

from __future__ import annotations

from dataclasses import dataclass

from aion.config_checks import ConfigError, check_positive


@dataclass(frozen=True)
class RiskConfig:
    capital: float = 1_000_000.0
    risk_per_trade: float = 0.01
    atr_stop_multiple: float = 1.5
    reward_multiple: float = 2.0

    def __post_init__(self) -> None:
        check_positive("risk.capital", self.capital)
        if not 0 < self.risk_per_trade <= 0.1:
            raise ConfigError("risk.risk_per_trade: must be in (0, 0.1], a fraction of capital")
        check_positive("risk.atr_stop_multiple", self.atr_stop_multiple)
        check_positive("risk.reward_multiple", self.reward_multiple)
