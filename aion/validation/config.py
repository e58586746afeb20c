"""``validation:``: forward-validation windows and the random-entry baseline."""

from __future__ import annotations

from dataclasses import dataclass

from aion.config_checks import ConfigError, check_at_least


@dataclass(frozen=True)
class ValidationConfig:
    """Forward validation (:mod:`aion.validation`): windows in minutes, random baseline."""

    windows_min: tuple[int, ...] = (1, 2, 5, 10, 30, 60)
    baseline_draws: int = 10
    baseline_jitter_min: int = 30
    seed: int = 20221111

    def __post_init__(self) -> None:
        if not self.windows_min:
            raise ConfigError("validation.windows_min: give at least one window, e.g. [1, 5, 30]")
        for w in self.windows_min:
            if w < 1:
                raise ConfigError(f"validation.windows_min: window {w} must be >= 1 minute")
        check_at_least("validation.baseline_draws", self.baseline_draws, 1)
        check_at_least("validation.baseline_jitter_min", self.baseline_jitter_min, 0)
