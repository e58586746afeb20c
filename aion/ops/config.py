"""``reports:``, ``logging:``, ``health:``: settings of aion audit, logs and aion health."""

from __future__ import annotations

from dataclasses import dataclass

from aion.config_checks import check_at_least, check_choice, check_positive, check_unit


@dataclass(frozen=True)
class ReportsConfig:
    """``reports:``: where ``aion audit`` writes its dated reports, and how many it keeps."""

    path: str | None = None  # null: <data_dir>/reports
    keep_last: int = 30

    def __post_init__(self) -> None:
        check_positive("reports.keep_last", self.keep_last)


@dataclass(frozen=True)
class LoggingConfig:
    """``logging:``: structured logs (see :mod:`aion.ops.logging`)."""

    level: str = "INFO"
    format: str = "text"
    file: bool = True
    max_bytes: int = 10_000_000
    backup_count: int = 5

    def __post_init__(self) -> None:
        check_choice("logging.level", self.level, ("DEBUG", "INFO", "WARNING", "ERROR"))
        check_choice("logging.format", self.format, ("text", "json"))
        check_positive("logging.max_bytes", self.max_bytes)
        check_at_least("logging.backup_count", self.backup_count, 1)


@dataclass(frozen=True)
class HealthConfig:
    """``health:``: thresholds of ``aion health`` (see :mod:`aion.ops.health`)."""

    memory_degraded_fraction: float = 0.9
    tick_stale_s: float = 60.0
    min_free_disk_mb: int = 1024
    averages_max_age_days: int = 4

    def __post_init__(self) -> None:
        check_unit("health.memory_degraded_fraction", self.memory_degraded_fraction)
        check_positive("health.tick_stale_s", self.tick_stale_s)
        check_positive("health.min_free_disk_mb", self.min_free_disk_mb)
        check_positive("health.averages_max_age_days", self.averages_max_age_days)
