"""The Parquet archive: bars, alerts, validations, gaps, runs and volume state by date.

:mod:`aion.archive.schema` documents the tables, :mod:`aion.archive.store` the
on-disk layout (``<root>/<table>/date=YYYY-MM-DD/part-*.parquet``) and
:mod:`aion.archive.writer` the thread that appends to it during a scan;
:mod:`aion.archive.config` holds the ``archive:`` settings and the archive folder.
"""
