"""The Parquet archive: bars, alerts, validations, gaps, runs and volume state by date.

:mod:`aion.archive.schema` documents the tables, :mod:`aion.archive.store` the
on-disk layout (``<root>/<table>/date=YYYY-MM-DD/part-*.parquet``) and
:mod:`aion.archive.writer` the thread that appends to it during a scan.
"""

from __future__ import annotations

from pathlib import Path

from aion.archive.store import Archive
from aion.config import AionConfig


def archive_root(config: AionConfig) -> Path:
    """The archive folder: ``archive.path``, else ``<data_dir>/archive``."""
    if config.archive.path:
        return Path(config.archive.path).expanduser()
    return config.data_dir() / "archive"


__all__ = ["Archive", "archive_root"]
