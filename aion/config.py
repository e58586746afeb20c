"""Configuration: ``config/aion.yaml`` and ``config/patterns.yaml``, validated at start-up.

Every section is a frozen dataclass; unknown keys, wrong types and out-of-range
values raise :class:`ConfigError` whose message is one line naming the key and
the fix. Environment variables override endpoints and secrets:
``REDIS_URL`` (redis.url), ``AION_DATA_DIR`` (paths.data_dir),
``KITE_API_KEY`` / ``KITE_ACCESS_TOKEN`` (never stored in the config file).

The config folder is ``--config DIR``, else ``AION_CONFIG_DIR``, else
``./config`` when it holds ``aion.yaml``, else the repository's ``config/``
beside the ``aion`` package (source and editable installs).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A bad configuration value; ``str()`` is one line naming the key and the fix."""


@dataclass(frozen=True)
class KiteConfig:
    ws_url: str = "wss://ws.kite.trade"
    default_mode: str = "full"

    def __post_init__(self) -> None:
        _choice("kite.default_mode", self.default_mode, ("ltp", "quote", "full"))
        if not self.ws_url.startswith(("ws://", "wss://")):
            raise ConfigError(f"kite.ws_url: {self.ws_url!r} must start with ws:// or wss://")


@dataclass(frozen=True)
class TtlDays:
    bars: int = 8
    state: int = 2
    alerts: int = 8
    runs: int = 30

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _positive(f"redis.ttl_days.{f.name}", getattr(self, f.name))


@dataclass(frozen=True)
class RedisConfig:
    url: str | None = None
    flush_interval_ms: int = 200
    max_buffered_commands: int = 500_000
    ttl_days: TtlDays = field(default_factory=TtlDays)
    alerts_maxlen: int = 100_000

    def __post_init__(self) -> None:
        _positive("redis.flush_interval_ms", self.flush_interval_ms)
        _positive("redis.max_buffered_commands", self.max_buffered_commands)
        _positive("redis.alerts_maxlen", self.alerts_maxlen)
        if self.url is not None and not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                "redis.url: must start with redis://, rediss:// or unix:// (or be null to let "
                "aion run its own redis-server)"
            )


@dataclass(frozen=True)
class PathsConfig:
    data_dir: str | None = None


@dataclass(frozen=True)
class QueuesConfig:
    raw_maxsize: int = 20_000
    out_maxsize: int = 20_000
    block_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        _positive("queues.raw_maxsize", self.raw_maxsize)
        _positive("queues.out_maxsize", self.out_maxsize)
        _positive("queues.block_timeout_s", self.block_timeout_s)


@dataclass(frozen=True)
class UniverseConfig:
    symbols: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for s in self.symbols:
            if ":" not in s:
                raise ConfigError(
                    f"universe.symbols: {s!r} must be EXCHANGE:TRADINGSYMBOL, e.g. NSE:RELIANCE"
                )


@dataclass(frozen=True)
class VolumeConfig:
    regular_session_minutes: int = 375
    average_days: int = 20
    daily_history_dir: str | None = None
    adjustment_factors: str | None = None

    def __post_init__(self) -> None:
        _positive("volume.regular_session_minutes", self.regular_session_minutes)
        _positive("volume.average_days", self.average_days)


@dataclass(frozen=True)
class IndicatorsConfig:
    ema_periods: tuple[int, ...] = (20, 50)
    rsi_period: int = 14
    atr_period: int = 14

    def __post_init__(self) -> None:
        if not self.ema_periods:
            raise ConfigError("indicators.ema_periods: give at least one period, e.g. [20, 50]")
        for p in self.ema_periods:
            if p < 2:
                raise ConfigError(f"indicators.ema_periods: period {p} must be >= 2")
        _at_least("indicators.rsi_period", self.rsi_period, 2)
        _at_least("indicators.atr_period", self.atr_period, 1)


@dataclass(frozen=True)
class RiskConfig:
    capital: float = 1_000_000.0
    risk_per_trade: float = 0.01
    atr_stop_multiple: float = 1.5
    reward_multiple: float = 2.0

    def __post_init__(self) -> None:
        _positive("risk.capital", self.capital)
        if not 0 < self.risk_per_trade <= 0.1:
            raise ConfigError("risk.risk_per_trade: must be in (0, 0.1], a fraction of capital")
        _positive("risk.atr_stop_multiple", self.atr_stop_multiple)
        _positive("risk.reward_multiple", self.reward_multiple)


@dataclass(frozen=True)
class AlertsConfig:
    min_confidence: float = 0.6
    market_hours_only: bool = True

    def __post_init__(self) -> None:
        _unit("alerts.min_confidence", self.min_confidence)


@dataclass(frozen=True)
class AionConfig:
    """The whole of ``aion.yaml`` after validation and environment overrides."""

    kite: KiteConfig = field(default_factory=KiteConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    queues: QueuesConfig = field(default_factory=QueuesConfig)
    universe: UniverseConfig = field(default_factory=UniverseConfig)
    volume: VolumeConfig = field(default_factory=VolumeConfig)
    indicators: IndicatorsConfig = field(default_factory=IndicatorsConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)

    def data_dir(self) -> Path:
        """Folder for aion's own redis-server data, caches and the archive."""
        if self.paths.data_dir:
            return Path(self.paths.data_dir).expanduser()
        xdg = os.environ.get("XDG_DATA_HOME")
        return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "aion"


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
            _unit(f"{self.name}.min_confidence", self.min_confidence)
        if self.cooldown_s < 0:
            raise ConfigError(f"{self.name}.cooldown_s: must be >= 0 seconds")


# -- validation helpers --------------------------------------------------------------------


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(allowed)}")


def _positive(key: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{key}: must be > 0, got {value!r}")


def _at_least(key: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"{key}: must be >= {low}, got {value!r}")


def _unit(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key}: must be within [0, 1], got {value!r}")


def _check_type(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a simple type hint; returns the value coerced (int -> float)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(key, value, a)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} has the wrong type (expected {hint})")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1]
        return tuple(_check_type(f"{key}[{i}]", v, item) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    return value


def _build(cls: Any, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for k in data:
        if k not in known:
            where = f"{prefix}.{k}" if prefix else str(k)
            raise ConfigError(f"{where}: unknown key (known: {', '.join(sorted(known))})")
    kwargs = {}
    for k, v in data.items():
        kwargs[k] = _check_type(f"{prefix}.{k}" if prefix else k, v, hints[k])
    return cls(**kwargs)


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found; pass --config DIR holding it") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML; fix the syntax there") from exc


def default_config_dir() -> Path:
    """``AION_CONFIG_DIR`` if set, else ``./config`` if it holds aion.yaml, else the repo's."""
    env = os.environ.get("AION_CONFIG_DIR")
    if env:
        return Path(env)
    local = Path("config")
    if (local / "aion.yaml").exists():
        return local
    return Path(__file__).resolve().parent.parent / "config"


def load_config(config_dir: Path | None = None) -> AionConfig:
    """Load and validate ``aion.yaml`` from ``config_dir``; apply environment overrides.

    Raises:
        ConfigError: one line naming the bad key and the fix.
    """
    cdir = config_dir or default_config_dir()
    raw = _read_yaml(cdir / "aion.yaml") or {}
    cfg: AionConfig = _build(AionConfig, raw, "")
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        cfg = dataclasses.replace(cfg, redis=dataclasses.replace(cfg.redis, url=redis_url))
    data_dir = os.environ.get("AION_DATA_DIR")
    if data_dir:
        cfg = dataclasses.replace(cfg, paths=PathsConfig(data_dir=data_dir))
    return cfg


def load_patterns(config_dir: Path | None = None) -> list[PatternConfig]:
    """Load ``patterns.yaml``: one :class:`PatternConfig` per entry (registry checks names).

    Raises:
        ConfigError: one line naming the bad entry and the fix.
    """
    cdir = config_dir or default_config_dir()
    raw = _read_yaml(cdir / "patterns.yaml") or {}
    if not isinstance(raw, dict):
        raise ConfigError("patterns.yaml: expected a mapping of detector name -> settings")
    out = []
    for name, body in raw.items():
        if body is not None and not isinstance(body, dict):
            raise ConfigError(f"{name}: expected a mapping of settings, got {body!r}")
        body = dict(body or {})
        out.append(_build(PatternConfig, {"name": str(name), **body}, str(name)))
    return out
