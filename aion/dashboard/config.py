"""``dashboard:``: where aion dashboard listens and its bearer token."""

from __future__ import annotations

from dataclasses import dataclass, field

from aion.config_checks import ConfigError


@dataclass(frozen=True)
class DashboardConfig:
    """``dashboard:``: where ``aion dashboard`` listens and its bearer token.

    ``auth_token`` (env ``AION_DASHBOARD_TOKEN`` overrides) is required to bind anywhere but
    loopback; it is kept out of ``repr`` so it never reaches a log line.
    """

    host: str = "127.0.0.1"
    port: int = 8050
    auth_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"dashboard.port: {self.port} must be in 1..65535")
