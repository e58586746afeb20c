"""``redis:``: the Redis connection, flush cadence, TTLs and TLS files of the store."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from aion.config_checks import ConfigError, check_positive


@dataclass(frozen=True)
class TtlDays:
    bars: int = 8
    state: int = 2
    alerts: int = 8
    runs: int = 30

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check_positive(f"redis.ttl_days.{f.name}", getattr(self, f.name))


@dataclass(frozen=True)
class RedisTlsConfig:
    """Files for a ``rediss://`` connection (PEM paths; None: system CAs, no client cert)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def __post_init__(self) -> None:
        for name in ("ca_file", "cert_file", "key_file"):
            value = getattr(self, name)
            if value is not None and not Path(value).expanduser().is_file():
                raise ConfigError(
                    f"redis.tls.{name}: {value!r} is not a readable file; give the PEM path or null"
                )
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError(
                "redis.tls.cert_file: a client certificate needs both cert_file and key_file"
            )


@dataclass(frozen=True)
class RedisConfig:
    url: str | None = None
    flush_interval_ms: int = 200
    max_buffered_commands: int = 500_000
    ttl_days: TtlDays = field(default_factory=TtlDays)
    alerts_maxlen: int = 100_000
    tls: RedisTlsConfig = field(default_factory=RedisTlsConfig)

    def __post_init__(self) -> None:
        check_positive("redis.flush_interval_ms", self.flush_interval_ms)
        check_positive("redis.max_buffered_commands", self.max_buffered_commands)
        check_positive("redis.alerts_maxlen", self.alerts_maxlen)
        if self.url is not None and not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                "redis.url: must start with redis://, rediss:// or unix:// (or be null to let "
                "aion run its own redis-server)"
            )
