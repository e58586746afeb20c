"""What the compute thread hands the store thread: one :class:`StoreBatch` per compute step.

A batch carries the step's writes as typed records: alerts (:class:`AlertRecord`), run
summaries, whole key families of latest state as columns (:class:`StateColumns`), the closed
bars and RVOL entries as numbers (:class:`BarColumns`, :class:`RvolColumns`, which the archive
reads) and the mappings of the few keys written per instrument or per process. It travels on
the bounded ``out`` queue (:mod:`aion.pipeline.queues`), whose bound is the batches'
:meth:`StoreBatch.nbytes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aion.store.encode import Cells

VOLUME_FAMILY = "volume"
"""The :class:`StateColumns` family of the volume state hashes (``keys.volume_state``)."""


@dataclass
class StateColumns:
    """Latest-state hashes of one key family written by one compute step.

    Attributes:
        family: the family's name (``"indicators"``, ``"profile"``, ``"tick"``,
            ``"volume"``...); one name always comes with the same ``fields``.
        fields: the m hash field names, in the order they are written.
        keys: the n distinct Redis keys (row i is ``keys[i]``).
        cells: (n, m) value text; an absent cell leaves that field of that key untouched.
        values: the numbers ``cells`` render, int64 (n, m)
            (:func:`aion.store.encode.int_cells`), for readers that want numbers rather
            than text (the archive reads the ``volume`` family from it); None when the
            family travels as text only.
    """

    family: str
    fields: tuple[str, ...]
    keys: list[str]
    cells: Cells
    values: np.ndarray | None = None

    def mappings(self) -> dict[str, dict[str, str]]:
        """``key -> {field: value}`` of the present cells (the dict form, for tests and
        readers; the store never builds it)."""
        out: dict[str, dict[str, str]] = {}
        for i, key in enumerate(self.keys):
            row = {}
            for j, f in enumerate(self.fields):
                v = self.cells.value(i, j)
                if v is not None:
                    row[f] = v
            out[key] = row
        return out


@dataclass
class BarColumns:
    """The 1-minute bars one compute step closed, as the bar builder made them: the store
    writes their JSON (:func:`aion.store.layout.bar_hashes`), the archive its ``bars_1m``
    rows (:mod:`aion.archive.writer`) from these numbers (no text parsed back per bar).

    Attributes:
        bars: ``aion.bars.builder.BAR_DTYPE`` (n,), a copy owned by the batch: ``slot``,
            ``start`` epoch s, ``open``/``high``/``low``/``close`` rupees, ``volume``
            shares, ``oi``, ``ticks``, ``segment`` code (``aion.market.time.SEGMENT_NAMES``),
            ``revision``, ``gap``.
        dates: int64 (n,) IST session date YYYYMMDD of each bar.
        symbols: slot -> instrument symbol (the compute engine's, shared and read only).
    """

    bars: np.ndarray
    dates: np.ndarray
    symbols: Sequence[str]


@dataclass
class RollupColumns:
    """Rolled-up bars (5/15/30/60 minutes) one compute step completed.

    Attributes:
        bars: ``aion.bars.rollup.ROLLUP_DTYPE`` (k,), a copy owned by the batch: ``slot``,
            ``timeframe`` minutes, ``start`` epoch s, ``open``/``high``/``low``/``close``
            rupees, ``volume``, ``oi``, ``ticks``, ``minutes`` (1-minute bars held).
        symbols: slot -> instrument symbol (shared, read only).
    """

    bars: np.ndarray
    symbols: Sequence[str]


@dataclass
class RvolColumns:
    """The RVOL entries of one minute's closed regular bars as the numbers their JSON text
    (``keys.rvol``, :meth:`aion.volume.analytics.VolumeAnalytics.record_bars`) renders: the
    archive's ``rvol_1m`` rows.

    Attributes:
        slot: int64 (n,) instrument slots; ``symbols[slot]`` is the instrument.
        dates: int64 (n,) IST session date YYYYMMDD.
        start: int64 (n,) bar start, epoch s.
        names: the m entry keys of ``values``' columns.
        values: float64 (n, m) the numbers as handed to
            :func:`aion.store.encode.render_rows` (NaN: ``null``).
        decimals: (m,) decimals each column is rendered with (-1: an integer).
        regime: (n,) the VIX regime text of each entry.
        symbols: slot -> instrument symbol (shared, read only).
    """

    slot: np.ndarray
    dates: np.ndarray
    start: np.ndarray
    names: tuple[str, ...]
    values: np.ndarray
    decimals: tuple[int, ...]
    regime: Sequence[str]
    symbols: Sequence[str]


@dataclass
class InstrumentRows:
    """Latest values of one kind for some instruments, as numbers: one row per instrument.

    Attributes:
        slot: int64 (n,) distinct instrument slots; ``symbols[slot[i]]`` is row i's instrument.
        names: the m quantities of ``values``' columns (Kite's / aion's canonical names).
        values: (n, m) the numbers (float64; int64 for :class:`VolumeRows`), NaN undefined.
        symbols: slot -> instrument symbol (the producer's table, shared and read only).
    """

    slot: np.ndarray
    names: tuple[str, ...]
    values: np.ndarray
    symbols: Sequence[str]


@dataclass
class TickRows(InstrumentRows):
    """The latest tick of each instrument that ticked in a step (``names``: ``last_price``,
    ``exchange_timestamp``, ``mode``, ``volume_traded``, ``last_traded_quantity``,
    ``average_traded_price``, ``oi``; prices in rupees, float64).

    Attributes:
        has_volume: bool (n,) the row's tick carries volume; without it only the price, time
            and mode are written (the volume fields keep their earlier value).
    """

    has_volume: np.ndarray = field(default_factory=lambda: np.zeros(0, np.bool_))


@dataclass
class VolumeRows(InstrumentRows):
    """The VolumeStateManager's persisted state of some instruments, int64 (``names``: its
    snapshot fields plus ``bar_cumulative`` and ``bar_start`` epoch s, see
    :meth:`aion.pipeline.compute.ComputeEngine._volume_rows`): what a restart resumes from,
    written with the instrument's bars (one MULTI block) and archived."""


@dataclass
class IndicatorRows(InstrumentRows):
    """The indicator values of a minute group's instruments after their bar closed
    (float64, NaN until warmed up; ``names`` the indicator core's), and ``bar_start`` int64 (n,)
    epoch s of that bar."""

    bar_start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass
class OptionRows:
    """The latest state of some option contracts: contract facts, last tick, IV and Greeks.

    Attributes:
        symbols: (n,) the options' symbols (``NFO:NIFTY22N1718000CE``).
        facts: (n,) per option ``strike`` (float), ``option_type`` (``CE``/``PE``), ``expiry``
            (``datetime.date``), ``underlying`` (symbol).
        exchange_timestamp: int64 (n,) epoch s of the last tick.
        last_price, underlying_price: float64 (n,) rupees (NaN: none yet).
        iv: float64 (n,) implied volatility (annualised fraction, NaN when undefined) and
            ``iv_reason`` (n,) why not (:data:`aion.options.greeks.IV_REASONS` text).
        greek_names: the Greeks of ``greeks``' rows (``delta``, ``gamma``, ``theta``, ``vega``,
            ``rho``).
        greeks: float64 (g, n), one row per Greek.
        dte_days, dte_years: float64 (n,) time to expiry (trading days, years).
    """

    symbols: list[str]
    facts: list[tuple[float, str, Any, str]]
    exchange_timestamp: np.ndarray
    last_price: np.ndarray
    underlying_price: np.ndarray
    iv: np.ndarray
    iv_reason: list[str]
    greek_names: tuple[str, ...]
    greeks: np.ndarray
    dte_days: np.ndarray
    dte_years: np.ndarray


@dataclass
class GapRow:
    """One feed gap (an interruption of one connection) to record.

    Attributes:
        date: trading date YYYYMMDD (IST) it belongs to.
        connection: the feed connection's name.
        disconnected_ns: wall ns the connection was lost (the gap's identity with
            ``connection``).
        record: the gap's flat description (:meth:`aion.feed.client.Gap.record`).
    """

    date: int
    connection: str
    disconnected_ns: int
    record: dict[str, str]


@dataclass
class FeedProgress:
    """How far this process's feed got (``aion health`` reads it).

    Attributes:
        node: the process name.
        last_frame_wall_ns: wall ns of the latest frame received.
        exchange_clock_s: the latest exchange timestamp seen, epoch s.
        frames: frames received since start.
    """

    node: str
    last_frame_wall_ns: int
    exchange_clock_s: int
    frames: int


StateRecord = TickRows | VolumeRows | IndicatorRows | OptionRows | GapRow | FeedProgress
"""A typed latest-state record; :mod:`aion.store.layout` maps it to keys, fields and text."""


@dataclass
class AlertRecord:
    """One alert as written to the day's stream.

    Attributes:
        date: trading date YYYYMMDD (IST), picks the stream key.
        stream_id: ``"<ms>-<seq>"`` derived from the bar end's exchange time.
        fields: flat str -> str mapping (Kite/aion canonical names).
    """

    date: int
    stream_id: str
    fields: dict[str, str]


ENTRY_BYTES = 160
"""Rough size of one dict entry of a :class:`StoreBatch` (a key or field name, its value text,
the dict slot): the compute -> store queue bound is in MiB, not exact."""


@dataclass
class StoreBatch:
    """Writes produced by one compute step, as typed records the store maps to Redis
    (:mod:`aion.store.layout`) and the archive reads as numbers (:mod:`aion.archive.writer`).

    Attributes:
        bar_columns: the step's closed 1-minute bars (:class:`BarColumns`).
        records: latest state (:data:`StateRecord`: ticks, volume state, indicators,
            options, feed gaps, feed progress).
        rvol_columns: the RVOL entries of closed regular bars, as numbers.
        alerts: the step's alerts, in order.
        runs: ``(date YYYYMMDD, summary fields)`` run summaries.
        rollup_columns: the rolled-up bars the step completed (:class:`RollupColumns`).
        bars: pre-rendered per-minute hashes ``(key, {HH:MM: JSON})``.
        state: key -> latest mapping of keys written as dicts (field -> str/number).
        columns: whole key families of latest state already rendered (:class:`StateColumns`).
    """

    bars: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (key, {HH:MM: json})
    state: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> latest mapping
    alerts: list[AlertRecord] = field(default_factory=list)
    runs: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (date, summary)
    columns: list[StateColumns] = field(default_factory=list)  # state of whole key families
    bar_columns: list[BarColumns] = field(default_factory=list)
    rvol_columns: list[RvolColumns] = field(default_factory=list)
    records: list[StateRecord] = field(default_factory=list)
    rollup_columns: list[RollupColumns] = field(default_factory=list)

    def state_mappings(self) -> dict[str, dict[str, str]]:
        """Every state key's fields as the store writes them: ``state``, ``columns`` then
        ``records`` (mapped by :func:`aion.store.layout.state_writes`) merged in order (later
        writes win per field). For readers and tests; the store never builds it."""
        from aion.store.layout import state_writes  # the layout module imports this one

        out = {k: dict(v) for k, v in self.state.items()}
        cols = [*self.columns]
        for rec in self.records:
            w = state_writes(rec)
            if isinstance(w, StateColumns):
                cols.append(w)
            else:
                for key, mapping in w.items():
                    out.setdefault(key, {}).update(mapping)
        for c in cols:
            for key, mapping in c.mappings().items():
                out.setdefault(key, {}).update(mapping)
        return out

    def bar_mappings(self) -> list[tuple[str, dict[str, str]]]:
        """Every per-minute hash's fields as the store writes them, in its order: the RVOL
        entries (:func:`aion.store.layout.rvol_hashes`), the closed 1-minute bars
        (:func:`aion.store.layout.bar_hashes`), then ``bars``. For readers and tests."""
        from aion.store.layout import bar_hashes, rollup_hashes, rvol_hashes  # imports this

        out = [kv for rv in self.rvol_columns for kv in rvol_hashes(rv)]
        out += [kv for cols in self.bar_columns for kv in bar_hashes(cols)]
        out += [kv for ru in self.rollup_columns for kv in rollup_hashes(ru)]
        return out + list(self.bars)

    def nbytes(self) -> int:
        """Approximate memory the batch holds, bytes: its arrays exactly, plus
        :data:`ENTRY_BYTES` per dict entry (key, field or value text and the dict slot; per
        option or gap record one entry per field it writes). Bounds the compute -> store
        queue (``queues.out_max_mb``); deterministic for one batch."""
        arrays = 0
        for cols in self.columns:
            c = cols.cells
            arrays += c.text.nbytes + c.start.nbytes + c.end.nbytes
            if cols.values is not None:
                arrays += cols.values.nbytes
        for b in self.bar_columns:
            arrays += b.bars.nbytes + b.dates.nbytes
        for ru in self.rollup_columns:
            arrays += ru.bars.nbytes
        for r in self.rvol_columns:
            arrays += r.values.nbytes + r.slot.nbytes + r.dates.nbytes + r.start.nbytes
        entries = sum(1 + len(f) for _, f in self.bars) + sum(
            1 + len(f) for f in self.state.values()
        )
        entries += sum(1 + len(a.fields) for a in self.alerts) + sum(
            1 + len(f) for _, f in self.runs
        )
        for rec in self.records:
            if isinstance(rec, InstrumentRows):
                arrays += rec.slot.nbytes + rec.values.nbytes
                if isinstance(rec, TickRows):
                    arrays += rec.has_volume.nbytes
                elif isinstance(rec, IndicatorRows):
                    arrays += rec.bar_start.nbytes
            elif isinstance(rec, OptionRows):
                entries += 17 * len(rec.symbols)
            elif isinstance(rec, GapRow):
                entries += 2 + len(rec.record)
            else:
                entries += 4
        return arrays + entries * ENTRY_BYTES
