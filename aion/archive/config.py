"""``archive:``: the Parquet archive."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aion.config_checks import check_positive

if TYPE_CHECKING:
    from aion.config import AionConfig


@dataclass(frozen=True)
class ArchiveConfig:
    """``archive:``: the Parquet archive (see :mod:`aion.archive`)."""

    enabled: bool = True
    path: str | None = None  # null: <data_dir>/archive
    flush_interval_s: float = 2.0
    queue_maxsize: int = 10_000
    retention_days: int = 400
    max_pending_rows: int = 10_000

    def __post_init__(self) -> None:
        check_positive("archive.flush_interval_s", self.flush_interval_s)
        check_positive("archive.max_pending_rows", self.max_pending_rows)
        check_positive("archive.queue_maxsize", self.queue_maxsize)
        check_positive("archive.retention_days", self.retention_days)


def archive_root(config: AionConfig) -> Path:
    """The archive folder: ``archive.path``, else ``<data_dir>/archive``."""
    if config.archive.path:
        return Path(config.archive.path).expanduser()
    return config.data_dir() / "archive"
