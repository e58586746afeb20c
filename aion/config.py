"""Configuration: ``config/aion.yaml`` and ``config/patterns.yaml``, validated at start-up.

Every section is a frozen dataclass next to its subsystem (``aion/<subsystem>/config.py``,
e.g. :class:`aion.store.config.RedisConfig`); this module assembles them into
:class:`AionConfig` and loads ``patterns.yaml``. Unknown keys, wrong types and out-of-range
values raise :class:`ConfigError` (:mod:`aion.config_checks`) whose message is one line
naming the key and the fix. Environment variables override endpoints and secrets:
``REDIS_URL`` (redis.url), ``AION_DATA_DIR`` (paths.data_dir),
``KITE_API_KEY`` / ``KITE_ACCESS_TOKEN`` (never stored in the config file).

The config folder is ``--config DIR``, else ``AION_CONFIG_DIR``, else
``./config`` when it holds ``aion.yaml``, else the repository's ``config/``
beside the ``aion`` package (source and editable installs).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from aion.alerts.config import AlertsConfig
from aion.archive.config import ArchiveConfig
from aion.config_checks import ConfigError, build_section
from aion.dashboard.config import DashboardConfig
from aion.feed.config import FeedConfig
from aion.indicators.config import IndicatorsConfig
from aion.instruments.config import UniverseConfig
from aion.kite.config import KiteConfig
from aion.market.config import CalendarConfig
from aion.notify.config import NotifyConfig
from aion.ops.config import HealthConfig, LoggingConfig, ReportsConfig
from aion.options.config import OptionsConfig
from aion.patterns.config import PatternConfig
from aion.pipeline.config import MemoryConfig, QueuesConfig, ThreadsConfig
from aion.risk.config import RiskConfig
from aion.store.config import RedisConfig
from aion.validation.config import ValidationConfig
from aion.volume.config import FnoConfig, SessionsConfig, VixRegimesConfig, VolumeConfig

__all__ = [
    "PATTERNS_ENV",
    "AionConfig",
    "ConfigError",
    "PathsConfig",
    "default_config_dir",
    "load_config",
    "load_patterns",
    "select_patterns",
]


@dataclass(frozen=True)
class PathsConfig:
    data_dir: str | None = None


@dataclass(frozen=True)
class AionConfig:
    """The whole of ``aion.yaml`` after validation and environment overrides."""

    kite: KiteConfig = field(default_factory=KiteConfig)
    feed: FeedConfig = field(default_factory=FeedConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    queues: QueuesConfig = field(default_factory=QueuesConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    threads: ThreadsConfig = field(default_factory=ThreadsConfig)
    universe: UniverseConfig = field(default_factory=UniverseConfig)
    volume: VolumeConfig = field(default_factory=VolumeConfig)
    sessions: SessionsConfig = field(default_factory=SessionsConfig)
    vix_regimes: VixRegimesConfig = field(default_factory=VixRegimesConfig)
    fno: FnoConfig = field(default_factory=FnoConfig)
    indicators: IndicatorsConfig = field(default_factory=IndicatorsConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    calendar: CalendarConfig = field(default_factory=CalendarConfig)
    options: OptionsConfig = field(default_factory=OptionsConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)

    def data_dir(self) -> Path:
        """Folder for aion's own redis-server data, caches and the archive."""
        if self.paths.data_dir:
            return Path(self.paths.data_dir).expanduser()
        xdg = os.environ.get("XDG_DATA_HOME")
        return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "aion"


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
    cfg: AionConfig = build_section(AionConfig, raw, "")
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        cfg = dataclasses.replace(cfg, redis=dataclasses.replace(cfg.redis, url=redis_url))
    data_dir = os.environ.get("AION_DATA_DIR")
    if data_dir:
        cfg = dataclasses.replace(cfg, paths=PathsConfig(data_dir=data_dir))
    return cfg


PATTERNS_ENV = "AION_PATTERNS"
"""Environment variable choosing which ``patterns.yaml`` entries run (see
:func:`select_patterns`); ``aion scan --patterns`` overrides it."""


def select_patterns(configs: list[PatternConfig], selection: str | None) -> list[PatternConfig]:
    """The entries of ``configs`` that run under ``selection``.

    ``"enabled"`` (or None): the file's ``enabled`` flags. ``"all"``: every entry with its
    settings, the disabled ones too: research runs (``aion evaluate``, the demo, the test
    suite), since the shipped file enables only patterns with evidence of an edge over random
    entries (issue 23, README Evidence). Otherwise a comma-separated list of entry names:
    exactly those run.

    Raises:
        ConfigError: a name that is not an entry of ``patterns.yaml``.
    """
    sel = (selection or "enabled").strip()
    if sel == "enabled":
        return configs
    if sel == "all":
        return [replace(c, enabled=True) for c in configs]
    names = {n.strip() for n in sel.split(",") if n.strip()}
    unknown = sorted(names - {c.name for c in configs})
    if unknown or not names:
        raise ConfigError(
            f"patterns {', '.join(unknown) or repr(selection)}: not in patterns.yaml "
            "(use enabled, all, or entry names separated by commas)"
        )
    return [replace(c, enabled=c.name in names) for c in configs]


def load_patterns(
    config_dir: Path | None = None, selection: str | None = None
) -> list[PatternConfig]:
    """Load ``patterns.yaml``: one :class:`PatternConfig` per entry (registry checks names),
    enabled as ``selection`` says (:func:`select_patterns`; None: ``$AION_PATTERNS``, else
    the file's flags).

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
        out.append(build_section(PatternConfig, {"name": str(name), **body}, str(name)))
    return select_patterns(out, selection or os.environ.get(PATTERNS_ENV))
