"""How aion's data is laid out in Redis beyond the key names (:mod:`aion.store.keys`): which
key each typed record goes to, its hash field names and its value text.

The compute side hands the store typed records (:mod:`aion.store.batch`); the functions here
map them, and nothing outside :mod:`aion.store` builds a key, a field name or a value's text:

- closed 1-minute bars (:class:`~aion.store.batch.BarColumns`, :func:`bar_hashes`): per
  instrument and session day one hash (regular session, or pre-open/post-close), field
  ``HH:MM`` (the bar's IST start, :func:`minute_fields`) -> the bar as compact JSON with sorted
  keys (:func:`encode_bars`);
- roll-ups (:class:`~aion.store.batch.RollupColumns`, :func:`rollup_hashes`): per instrument,
  timeframe and day one hash, field ``HH:MM`` (IST start) -> compact JSON;
- RVOL entries (:class:`~aion.store.batch.RvolColumns`, :func:`rvol_hashes`): per instrument
  and day one hash, field ``HH:MM`` -> JSON of the minute's volume statistics;
- latest tick, volume state, indicators (:class:`~aion.store.batch.TickRows`,
  :class:`~aion.store.batch.VolumeRows`, :class:`~aion.store.batch.IndicatorRows`,
  :func:`state_columns`): one hash per instrument, field per quantity, numbers rendered in one
  compiled pass (:mod:`aion.store.encode`);
- options, feed gaps, feed progress (:class:`~aion.store.batch.OptionRows`,
  :class:`~aion.store.batch.GapRow`, :class:`~aion.store.batch.FeedProgress`,
  :func:`state_hashes`): a few hashes per step, built as dicts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from aion.market.time import SEGMENT_NAMES, SEGMENT_REGULAR, minute_of_day_ist, session_dates
from aion.store import keys
from aion.store.batch import (
    VOLUME_FAMILY,
    BarColumns,
    FeedProgress,
    GapRow,
    IndicatorRows,
    OptionRows,
    RollupColumns,
    RvolColumns,
    StateColumns,
    StateRecord,
    TickRows,
    VolumeRows,
)
from aion.store.encode import encode_rollups, int_cells, render_cells, render_rows

_HHMM = [f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)]


def minute_labels() -> list[str]:
    """The 1,440 ``HH:MM`` labels of a day, minute of day -> label (a copy)."""
    return list(_HHMM)


def minute_fields(start_s: np.ndarray) -> list[str]:
    """The ``HH:MM`` field (IST, 24-hour, zero-padded) of each bar start ``start_s`` (int64
    epoch s): the field of a bar in its day's bar, roll-up and RVOL hashes."""
    hhmm = _HHMM
    return [hhmm[m] for m in minute_of_day_ist(np.asarray(start_s, np.int64)).tolist()]


def minute_field(start_s: int) -> str:
    """:func:`minute_fields` of one bar start (epoch s)."""
    return minute_fields(np.array([start_s], np.int64))[0]


def bar_hashes(cols: BarColumns) -> list[tuple[str, dict[str, str]]]:
    """The 1-minute bar hash fields of closed bars: per key (:func:`aion.store.keys.bars_1m` of
    a regular-session bar, :func:`aion.store.keys.bars_1m_ext` of a pre-open or post-close one,
    on the bar's session date) ``{HH:MM: JSON}`` (:func:`encode_bars`), keys in first-seen
    order, a later bar of the same minute (a revision) replacing an earlier one."""
    closed = cols.bars
    texts = encode_bars(closed, SEGMENT_NAMES)  # columnar: no per-bar dict or json call
    hhmm = minute_fields(closed["start"])
    regular = (closed["segment"] == SEGMENT_REGULAR).tolist()
    symbols = cols.symbols
    per_key: dict[str, dict[str, str]] = {}
    for slot, d, reg_bar, field_, text in zip(
        closed["slot"].tolist(), cols.dates.tolist(), regular, hhmm, texts, strict=True
    ):
        sym = symbols[slot]
        k = keys.bars_1m(sym, d) if reg_bar else keys.bars_1m_ext(sym, d)
        f = per_key.get(k)
        if f is None:
            per_key[k] = {field_: text}
        else:
            f[field_] = text
    return list(per_key.items())


def _rvol_literals(names: Sequence[str], regime: str) -> list[str]:
    """The JSON text around the numbers of one RVOL entry: keys ``names`` plus ``regime``
    (whose value is ``regime``), sorted, ``json.dumps``' default separators."""
    order = sorted([*names, "regime"])
    if [k for k in order if k != "regime"] != list(names):
        raise ValueError(f"RVOL names must be sorted: {list(names)}")
    r = order.index("regime")
    regime_item = f'"regime": {json.dumps(regime)}'
    lits = []
    for j, name in enumerate(names):
        head = "{" if j == 0 else ", "
        if j == r:  # regime sorts just before this name
            head += regime_item + ", "
        lits.append(f'{head}"{name}": ')
    lits.append(f", {regime_item}}}" if r == len(names) else "}")
    return lits


def rvol_hashes(cols: RvolColumns) -> list[tuple[str, dict[str, str]]]:
    """The RVOL hash fields of one minute's entries: per entry ``(key, {HH:MM: JSON})``, key
    :func:`aion.store.keys.rvol` of its instrument and session date, field its bar's IST start,
    value a JSON object with sorted keys (``cols.names`` plus ``regime``; numbers rendered
    with ``cols.decimals`` by :func:`aion.store.encode.render_rows`, NaN as ``null``).

    Raises:
        ValueError: ``cols.names`` is not sorted (the JSON keys must be).
    """
    n = cols.slot.shape[0]
    if n == 0:
        return []
    texts: list[str] = [""] * n
    regimes = list(cols.regime)
    distinct = sorted(set(regimes))  # one regime per minute in practice
    for regime in distinct:
        rows = np.flatnonzero(np.array(regimes) == regime) if len(distinct) > 1 else np.arange(n)
        lit = _rvol_literals(cols.names, regime)
        rendered = render_rows(lit, cols.values[rows], list(cols.decimals), "null")
        for j, t in zip(rows.tolist(), rendered, strict=True):
            texts[j] = t
    hhmm = minute_fields(cols.start)
    symbols = cols.symbols
    return [
        (keys.rvol(symbols[s], d), {f: t})
        for s, d, f, t in zip(cols.slot.tolist(), cols.dates.tolist(), hhmm, texts, strict=True)
    ]


def rollup_hashes(cols: RollupColumns) -> list[tuple[str, dict[str, str]]]:
    """The roll-up hash fields of rolled-up bars: per bar ``(key, {HH:MM: JSON})``, key
    :func:`aion.store.keys.bars` of its timeframe (``5m``...) and session date, field its IST
    start, value :func:`aion.store.encode.encode_rollups` JSON."""
    rolled = cols.bars
    if rolled.shape[0] == 0:
        return []
    starts = rolled["start"]
    symbols = cols.symbols
    return [
        (keys.bars(symbols[s], f"{tf}m", d), {f: text})
        for s, tf, d, f, text in zip(
            rolled["slot"].tolist(),
            rolled["timeframe"].tolist(),
            session_dates(starts).tolist(),
            minute_fields(starts),
            encode_rollups(rolled),
            strict=True,
        )
    ]


TICK_DECIMALS = (2, -1, -1, -1, -1, 2, -1)
"""Decimals of the latest tick hash's fields in :class:`~aion.store.batch.TickRows` order
(-1: an integer); prices as ``f"{x:.2f}"``."""

INDICATOR_DECIMALS = 6
"""Indicator values are written with 6 decimals, trailing zeros dropped (``nan`` undefined)."""


def _row_keys(key_of: Any, slot: np.ndarray, symbols: Sequence[str]) -> list[str]:
    return [key_of(symbols[s]) for s in slot.tolist()]


def state_columns(rec: TickRows | VolumeRows | IndicatorRows) -> StateColumns:
    """One record of per-instrument latest state as the key family the store writes:

    - :class:`~aion.store.batch.TickRows` -> family ``tick``, keys
      :func:`aion.store.keys.tick`, fields ``rec.names``, prices with 2 decimals and the rest
      as integers (:data:`TICK_DECIMALS`); a row without volume writes its first three fields
      only;
    - :class:`~aion.store.batch.VolumeRows` -> family ``volume``, keys
      :func:`aion.store.keys.volume_state`, integers (the int64 values travel along for the
      archive);
    - :class:`~aion.store.batch.IndicatorRows` -> family ``indicators``, keys
      :func:`aion.store.keys.indicators`, fields ``rec.names`` plus ``bar_start``, values with
      :data:`INDICATOR_DECIMALS` decimals (``nan`` when undefined), ``bar_start`` an integer.
    """
    if isinstance(rec, TickRows):
        cells = render_cells(
            rec.values.astype(np.float64, copy=False),
            list(TICK_DECIMALS),
            "nan",
            fixed=[d == 2 for d in TICK_DECIMALS],  # f"{x:.2f}" prices
        )
        no_vol = np.zeros(cells.shape, np.bool_)
        no_vol[~rec.has_volume, 3:] = True  # a tick without volume: price, time and mode only
        row_keys = _row_keys(keys.tick, rec.slot, rec.symbols)
        return StateColumns("tick", rec.names, row_keys, cells.absent(no_vol))
    if isinstance(rec, VolumeRows):
        row_keys = _row_keys(keys.volume_state, rec.slot, rec.symbols)
        return StateColumns(VOLUME_FAMILY, rec.names, row_keys, int_cells(rec.values), rec.values)
    values = np.column_stack([rec.values, rec.bar_start])
    cells = render_cells(values, [INDICATOR_DECIMALS] * len(rec.names) + [-1], "nan")
    row_keys = _row_keys(keys.indicators, rec.slot, rec.symbols)
    return StateColumns("indicators", (*rec.names, "bar_start"), row_keys, cells)


def _fixed(x: float, digits: int) -> str:
    return f"{x:.{digits}f}" if np.isfinite(x) else "nan"


def state_hashes(rec: OptionRows | GapRow | FeedProgress) -> dict[str, dict[str, str]]:
    """One record of latest state as ``{key: {field: text}}``:

    - :class:`~aion.store.batch.OptionRows` -> :func:`aion.store.keys.option` per option:
      ``strike`` (``%g``), ``option_type``, ``expiry`` (ISO), ``underlying``,
      ``exchange_timestamp``, ``last_price`` and ``underlying_price`` (2 decimals), ``iv``
      (6), ``iv_reason``, ``dte_days`` (6), ``dte_years`` (8), the Greeks by name (8);
      ``nan`` when undefined;
    - :class:`~aion.store.batch.GapRow` -> :func:`aion.store.keys.gaps` of its date, field
      ``<connection>:<disconnected_ns>``, value the JSON of its record (sorted keys): a gap
      first written open is overwritten when a later record of the same start closes it;
    - :class:`~aion.store.batch.FeedProgress` -> :func:`aion.store.keys.feed` of its node:
      ``last_frame_wall`` (epoch s, 3 decimals), ``last_exchange_timestamp``, ``frames``.
    """
    if isinstance(rec, GapRow):
        field_ = f"{rec.connection}:{rec.disconnected_ns}"
        return {keys.gaps(rec.date): {field_: json.dumps(rec.record, sort_keys=True)}}
    if isinstance(rec, FeedProgress):
        return {
            keys.feed(rec.node): {
                "last_frame_wall": f"{rec.last_frame_wall_ns / 1e9:.3f}",
                "last_exchange_timestamp": str(rec.exchange_clock_s),
                "frames": str(rec.frames),
            }
        }
    out: dict[str, dict[str, str]] = {}
    for i, sym in enumerate(rec.symbols):
        strike, option_type, expiry, underlying = rec.facts[i]
        h = {
            "strike": f"{strike:g}",
            "option_type": option_type,
            "expiry": expiry.isoformat(),
            "underlying": underlying,
            "exchange_timestamp": str(int(rec.exchange_timestamp[i])),
            "last_price": _fixed(float(rec.last_price[i]), 2),
            "underlying_price": _fixed(float(rec.underlying_price[i]), 2),
            "iv": _fixed(float(rec.iv[i]), 6),
            "iv_reason": rec.iv_reason[i],
            "dte_days": _fixed(float(rec.dte_days[i]), 6),
            "dte_years": _fixed(float(rec.dte_years[i]), 8),
        }
        for r, name in enumerate(rec.greek_names):
            h[name] = _fixed(float(rec.greeks[r, i]), 8)
        out[keys.option(sym)] = h
    return out


def state_writes(rec: StateRecord) -> StateColumns | dict[str, dict[str, str]]:
    """:func:`state_columns` or :func:`state_hashes` of ``rec``, by its type."""
    if isinstance(rec, TickRows | VolumeRows | IndicatorRows):
        return state_columns(rec)
    return state_hashes(rec)


def encode_bar(bar: dict[str, Any]) -> str:
    """JSON text of one bar (compact, key order fixed)."""
    return json.dumps(bar, separators=(",", ":"), sort_keys=True)


def encode_bars(bars: np.ndarray, segment_names: dict[int, str]) -> list[str]:
    """:func:`encode_bar` of every row of a closed-bar array, built from columns.

    ``bars``: the bar builder's structured rows (fields ``start`` epoch s, ``open``/``high``/
    ``low``/``close`` rupees, ``volume`` shares, ``oi``, ``ticks``, ``segment`` code, ``gap``);
    prices are rounded to 4 decimals with Python's ``round`` and ``gap`` appears only when
    true, exactly as the compute thread's dict form. The text equals ``encode_bar`` of that
    dict byte for byte (float ``repr`` is what ``json`` writes for finite floats; rows with a
    non-finite price take ``encode_bar`` itself), at a fraction of the per-bar cost.
    """
    px = [[round(x, 4) for x in bars[f].tolist()] for f in ("open", "high", "low", "close")]
    finite = np.isfinite(bars["open"]) & np.isfinite(bars["high"])
    finite &= np.isfinite(bars["low"]) & np.isfinite(bars["close"])
    seg_json = {k: json.dumps(v) for k, v in segment_names.items()}
    out = []
    rows = zip(
        *px,
        bars["start"].tolist(),
        bars["volume"].tolist(),
        bars["oi"].tolist(),
        bars["ticks"].tolist(),
        bars["segment"].tolist(),
        bars["gap"].tolist(),
        finite.tolist(),
        strict=True,
    )
    for o, h, lo, c, start, vol, oi, ticks, seg, gap, ok in rows:
        if not ok:
            bar = {"start": start, "open": o, "high": h, "low": lo, "close": c, "volume": vol,
                   "oi": oi, "ticks": ticks, "segment": segment_names[seg]}  # fmt: skip
            out.append(encode_bar({**bar, "gap": True} if gap else bar))
            continue
        g = '"gap":true,' if gap else ""
        out.append(
            f'{{"close":{c!r},{g}"high":{h!r},"low":{lo!r},'
            f'"oi":{oi},"open":{o!r},"segment":{seg_json[seg]},"start":{start},'
            f'"ticks":{ticks},"volume":{vol}}}'
        )
    return out
