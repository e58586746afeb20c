"""One entry of ``patterns.yaml``: a registered detector and its settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aion.config_checks import ConfigError, check_unit


@dataclass(frozen=True)
class PatternConfig:
    """One entry of ``patterns.yaml``: a registered detector and its settings."""

    name: str
    enabled: bool = True
    min_confidence: float | None = None
    cooldown_s: int = 900
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.min_confidence is not None:
            check_unit(f"{self.name}.min_confidence", self.min_confidence)
        if self.cooldown_s < 0:
            raise ConfigError(f"{self.name}.cooldown_s: must be >= 0 seconds")
