"""The archive's tables: columns, dtypes, units, row keys.

Every table is partitioned by IST trading date (``date=YYYY-MM-DD`` folders,
see :mod:`aion.archive.store`) and every row carries ``written_ns`` (Int64,
wall-clock epoch ns of the write; the latest row per key wins).

``bars_1m`` (key ``symbol, start``): the 1-minute bars exactly as stored in
Redis (``aion bars``), regular session and pre-open/post-close.
    symbol Utf8 (``NSE:HDFCBANK``); time Utf8 (``HH:MM`` IST bar start);
    start Int64 (epoch s, bar start); open/high/low/close Float64 (rupees);
    volume Int64 (shares/units, incremental); oi Int64; ticks Int64;
    segment Utf8 (``preopen``/``regular``/``postclose``); extra Utf8 (JSON of
    any further bar fields, e.g. a gap flag; ``{}`` when none).

``rvol_1m`` (key ``symbol, start``): per-minute volume statistics of each
regular bar (``aion:{SYM}:rvol:YYYYMMDD``, :mod:`aion.volume.analytics`).
    symbol, time, start as above; volume, cum_volume Int64 (shares);
    expected_bar, expected_cum Float64 (shares expected by the time-of-day
    baseline); rvol_bar, rvol_cum Float64 (actual / expected); vix Float64
    (INDIA VIX level); regime Utf8; multiplier Float64 (threshold multiplier).

``alerts`` (key ``alert_id``): the alert stream.
    stream_id Utf8 (Redis entry id ``<bar end ms>-<seq>``); alert_id Utf8
    (``YYYYMMDD:SYMBOL:pattern:HH:MM``); symbol, pattern, direction Utf8;
    bar_time Utf8 (IST ISO-8601); bar_start Int64 (epoch s); confidence
    Float64 [0, 1]; entry/stop/target Float64 (rupees); quantity Int64;
    risk_reward Float64; fields Utf8 (JSON of every stream field, evidence
    included).

``validations`` (key ``alert_id, window_min`` when present): the frame
returned by :func:`aion.validation.forward.validate_alerts` for the day's alerts,
one row per alert x window; its columns are documented there.

``gaps`` (key ``node, connection, disconnected_ns``): feed interruptions.
    node, connection Utf8; disconnected_ns Int64 (wall epoch ns);
    reconnected_ns Int64 (null: the feed stopped before it came back);
    duration_s Float64 (null when open-ended); reason Utf8; attempts Int64.

``runs`` (key ``node, started_ns``): one row per scan.
    node Utf8; started_ns, ended_ns Int64 (wall epoch ns); stop_reason Utf8;
    summary Utf8 (JSON of the scan summary: frames, ticks, bars, alerts, queue
    drops, bad_cumulative_ticks, late_ticks, feed_reconnects, ...).

``volume_state`` (key ``symbol``): the VolumeStateManager state per
instrument at the end of the day (``aion:{SYM}:volume`` in Redis).
    symbol Utf8; first_cumulative, last_cumulative Int64 (Kite
    ``volume_traded``, shares); incremental_total Int64 (sum of increments);
    bad_ticks Int64 (lower cumulative within the session).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

WRITTEN_NS = "written_ns"


@dataclass(frozen=True)
class TableSpec:
    """Columns (None: free-form), row key and sort order of one table."""

    columns: dict[str, pl.DataType] | None
    key: tuple[str, ...]
    order: tuple[str, ...]

    def conform(self, df: pl.DataFrame) -> pl.DataFrame:
        """``df`` with exactly the table's columns and dtypes (missing ones null) + written_ns.

        Raises:
            polars.exceptions.InvalidOperationError: a value cannot be cast.
        """
        if self.columns is None:
            return df
        cols = {**self.columns, WRITTEN_NS: pl.Int64()}
        return df.select(
            [
                (pl.col(c) if c in df.columns else pl.lit(None)).cast(t, strict=True).alias(c)
                for c, t in cols.items()
            ]
        )

    def empty(self) -> pl.DataFrame:
        """An empty frame with the table's columns (plus written_ns)."""
        cols = dict(self.columns or {})
        cols[WRITTEN_NS] = pl.Int64()
        return pl.DataFrame(schema=cols)


TABLES: dict[str, TableSpec] = {
    "bars_1m": TableSpec(
        {
            "symbol": pl.Utf8(),
            "time": pl.Utf8(),
            "start": pl.Int64(),
            "open": pl.Float64(),
            "high": pl.Float64(),
            "low": pl.Float64(),
            "close": pl.Float64(),
            "volume": pl.Int64(),
            "oi": pl.Int64(),
            "ticks": pl.Int64(),
            "segment": pl.Utf8(),
            "extra": pl.Utf8(),
        },
        key=("symbol", "start"),
        order=("symbol", "start"),
    ),
    "alerts": TableSpec(
        {
            "stream_id": pl.Utf8(),
            "alert_id": pl.Utf8(),
            "symbol": pl.Utf8(),
            "pattern": pl.Utf8(),
            "direction": pl.Utf8(),
            "bar_time": pl.Utf8(),
            "bar_start": pl.Int64(),
            "confidence": pl.Float64(),
            "entry": pl.Float64(),
            "stop": pl.Float64(),
            "target": pl.Float64(),
            "quantity": pl.Int64(),
            "risk_reward": pl.Float64(),
            "fields": pl.Utf8(),
        },
        key=("alert_id",),
        order=("bar_start", "alert_id"),
    ),
    "rvol_1m": TableSpec(
        {
            "symbol": pl.Utf8(),
            "time": pl.Utf8(),
            "start": pl.Int64(),
            "volume": pl.Int64(),
            "cum_volume": pl.Int64(),
            "expected_bar": pl.Float64(),
            "expected_cum": pl.Float64(),
            "rvol_bar": pl.Float64(),
            "rvol_cum": pl.Float64(),
            "vix": pl.Float64(),
            "regime": pl.Utf8(),
            "multiplier": pl.Float64(),
        },
        key=("symbol", "start"),
        order=("symbol", "start"),
    ),
    "validations": TableSpec(None, key=(), order=()),
    "gaps": TableSpec(
        {
            "node": pl.Utf8(),
            "connection": pl.Utf8(),
            "disconnected_ns": pl.Int64(),
            "reconnected_ns": pl.Int64(),
            "duration_s": pl.Float64(),
            "reason": pl.Utf8(),
            "attempts": pl.Int64(),
        },
        key=("node", "connection", "disconnected_ns"),
        order=("disconnected_ns",),
    ),
    "runs": TableSpec(
        {
            "node": pl.Utf8(),
            "started_ns": pl.Int64(),
            "ended_ns": pl.Int64(),
            "stop_reason": pl.Utf8(),
            "summary": pl.Utf8(),
        },
        key=("node", "started_ns"),
        order=("started_ns",),
    ),
    "volume_state": TableSpec(
        {
            "symbol": pl.Utf8(),
            "first_cumulative": pl.Int64(),
            "last_cumulative": pl.Int64(),
            "incremental_total": pl.Int64(),
            "bad_ticks": pl.Int64(),
        },
        key=("symbol",),
        order=("symbol",),
    ),
}
"""Every archive table by name."""
