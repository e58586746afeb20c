"""``kite:``: the Kite connection, its watchdog and backoff, secrets and the instrument master."""

from __future__ import annotations

from dataclasses import dataclass

from aion.config_checks import ConfigError, check_choice, check_positive


@dataclass(frozen=True)
class KiteConfig:
    """Kite connection: endpoint, watchdog, reconnect backoff, secrets and instrument master."""

    ws_url: str = "wss://ws.kite.trade"
    default_mode: str = "full"
    watchdog_s: float = 5.0  # no frame (data or heartbeat) for this long: reconnect
    ping_interval_s: float = 10.0  # WebSocket ping cadence (0: off)
    backoff_initial_s: float = 1.0  # first reconnect backoff ceiling (full jitter)
    backoff_cap_s: float = 60.0
    max_attempts_off_hours: int = 30  # give up after this many failures outside market hours
    secrets_file: str | None = None  # NAME=VALUE file, owner-only (mode 0600)
    api_url: str = "https://api.kite.trade"  # REST root (instruments dump, LTP)
    instruments_csv: tuple[str, ...] = ()  # local instrument master CSVs: no download
    instruments_cache_dir: str | None = None  # null: <data_dir>/instruments

    def __post_init__(self) -> None:
        check_choice("kite.default_mode", self.default_mode, ("ltp", "quote", "full"))
        if not self.ws_url.startswith(("ws://", "wss://")):
            raise ConfigError(f"kite.ws_url: {self.ws_url!r} must start with ws:// or wss://")
        check_positive("kite.watchdog_s", self.watchdog_s)
        if self.ping_interval_s < 0:
            raise ConfigError("kite.ping_interval_s: must be >= 0 seconds (0 turns pings off)")
        check_positive("kite.backoff_initial_s", self.backoff_initial_s)
        if self.backoff_cap_s < self.backoff_initial_s:
            raise ConfigError("kite.backoff_cap_s: must be >= kite.backoff_initial_s")
        if self.max_attempts_off_hours < 0:
            raise ConfigError("kite.max_attempts_off_hours: must be >= 0 (0: never give up)")
        if not self.api_url.startswith(("http://", "https://")):
            raise ConfigError(f"kite.api_url: {self.api_url!r} must start with https://")
