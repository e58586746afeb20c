"""The Parquet archive on disk: tables partitioned by trading date, append-only parts.

Layout (Hive-style, readable by polars ``scan_parquet(..., hive_partitioning=True)``
and duckdb ``read_parquet('<root>/<table>/*/*.parquet', hive_partitioning=true)``)::

    <root>/<table>/date=YYYY-MM-DD/part-<written_ns>-<pid>.parquet

``date`` is the IST trading date and lives in the folder name only (it becomes a
``date`` column when read with Hive partitioning). Every row carries
``written_ns`` (wall-clock epoch ns of the write, strictly increasing per
writer): a row written again later (a bar revised by a late tick, the volume
state of an instrument) supersedes the earlier one with the same key.
:meth:`Archive.read` applies that rule; :meth:`Archive.compact` rewrites a
partition as one file holding only the latest rows (done at every scan's
shutdown), so after a clean shutdown plain duckdb/polars reads see no
duplicates. Each part is written to a temporary name and renamed, so a reader
never sees a half-written file.

The tables and their columns are in :data:`aion.archive.schema.TABLES`.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from aion.archive.schema import TABLES, WRITTEN_NS

_PART_GLOB = "part-*.parquet"


def _date_dir(date: dt.date) -> str:
    return f"date={date.isoformat()}"


class Archive:
    """One archive root folder.

    Args:
        root: the archive folder (``archive.path``, default ``<data_dir>/archive``).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._last_ns = 0

    def partition(self, table: str, date: dt.date) -> Path:
        """Folder of one table's partition for IST trading ``date``."""
        if table not in TABLES:
            raise KeyError(f"unknown archive table {table!r} (known: {', '.join(TABLES)})")
        return self.root / table / _date_dir(date)

    def next_written_ns(self) -> int:
        """A wall-clock epoch ns strictly greater than any this object handed out before."""
        self._last_ns = max(time.time_ns(), self._last_ns + 1)
        return self._last_ns

    # -- writing -----------------------------------------------------------------------------

    def append(self, table: str, date: dt.date, df: pl.DataFrame) -> Path:
        """Write ``df`` as a new part of ``table`` on ``date``; returns the part's path.

        ``df`` must hold the table's columns (see :mod:`aion.archive.schema`);
        ``written_ns`` is added when missing. Raises OSError when the disk refuses.
        """
        ns = self.next_written_ns()
        if WRITTEN_NS not in df.columns:
            df = df.with_columns(pl.lit(ns, pl.Int64).alias(WRITTEN_NS))
        df = TABLES[table].conform(df)
        folder = self.partition(table, date)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"part-{ns:020d}-{os.getpid()}.parquet"
        tmp = final.with_name(final.name + ".tmp")
        df.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, final)
        return final

    def replace(self, table: str, date: dt.date, df: pl.DataFrame) -> Path:
        """Make ``df`` the whole partition: write it as one part, then delete the older parts."""
        folder = self.partition(table, date)
        old = sorted(folder.glob(_PART_GLOB)) if folder.exists() else []
        path = self.append(table, date, df)
        for p in old:
            if p != path:
                p.unlink(missing_ok=True)
        return path

    def compact(self, table: str, date: dt.date) -> Path | None:
        """Rewrite a partition as one part of its latest rows (keeping their ``written_ns``)."""
        parts = self.parts(table, date)
        if len(parts) <= 1:
            return parts[0] if parts else None
        return self.replace(table, date, self._read_partition(table, date, latest=True))

    def prune(self, retention_days: int) -> list[Path]:
        """Delete partitions older than ``retention_days`` before each table's newest one.

        Relative to the newest partition (not the wall clock), so archiving a
        replayed past session keeps it. Returns the folders deleted.
        """
        gone = []
        for table in TABLES:
            dates = self.dates(table)
            if not dates:
                continue
            cutoff = dates[-1] - dt.timedelta(days=retention_days)
            for d in dates:
                if d < cutoff:
                    folder = self.partition(table, d)
                    shutil.rmtree(folder)
                    gone.append(folder)
        return gone

    # -- reading -----------------------------------------------------------------------------

    def parts(self, table: str, date: dt.date) -> list[Path]:
        """Part files of one partition, oldest first."""
        folder = self.partition(table, date)
        return sorted(folder.glob(_PART_GLOB)) if folder.exists() else []

    def dates(self, table: str) -> list[dt.date]:
        """IST trading dates with a partition of ``table``, ascending."""
        base = self.root / table
        if not base.exists():
            return []
        out = []
        for p in base.iterdir():
            if p.is_dir() and p.name.startswith("date=") and any(p.glob(_PART_GLOB)):
                out.append(dt.date.fromisoformat(p.name.removeprefix("date=")))
        return sorted(out)

    def _read_partition(self, table: str, date: dt.date, latest: bool) -> pl.DataFrame:
        spec = TABLES[table]
        parts = self.parts(table, date)
        if not parts:
            return spec.empty()
        df = pl.concat([pl.read_parquet(p) for p in parts], how="diagonal_relaxed")
        if latest and spec.key:
            df = df.sort(WRITTEN_NS, maintain_order=True).unique(
                subset=list(spec.key), keep="last", maintain_order=True
            )
        return df.sort(list(spec.order)) if spec.order else df

    def read(self, table: str, dates: Iterable[dt.date] | None = None) -> pl.DataFrame:
        """Rows of ``table`` (latest version of each key), with a ``date`` column (pl.Date).

        Args:
            table: one of :data:`aion.archive.schema.TABLES`.
            dates: IST trading dates to read (default: every partition).
        """
        wanted = list(dates) if dates is not None else self.dates(table)
        frames = []
        for d in wanted:
            df = self._read_partition(table, d, latest=True)
            if df.height:
                frames.append(df.with_columns(pl.lit(d, pl.Date).alias("date")))
        spec = TABLES[table]
        if not frames:
            return spec.empty().with_columns(pl.lit(None, pl.Date).alias("date")).clear()
        out = pl.concat(frames, how="diagonal_relaxed").drop(WRITTEN_NS)
        return out.select(["date", *[c for c in out.columns if c != "date"]])
