"""The archive builds its rows from columns (closed bars, RVOL numbers, the ``volume`` state
family), never from the Redis text, and the tables equal what parsing that text gives.

The reference is the archive's former algorithm, reimplemented here: ``json.loads`` of every
bar and RVOL entry the store writes for the batch (``StoreBatch.bar_mappings()``), the volume
state read from its hash text, the latest row per key, one ``polars.DataFrame`` of dict rows
per table and date. Both go through :class:`aion.archive.store.Archive` and are compared with
``DataFrame.equals`` (dtypes, nulls and NaNs included)."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from aion.archive.store import Archive
from aion.archive.writer import ArchiveWriter, _as_rendered, _round_like_python
from aion.bars.builder import BAR_DTYPE
from aion.config import load_config, load_patterns
from aion.market.time import SEGMENT_NAMES, minute_of_day_ist
from aion.patterns.registry import PatternEngine
from aion.pipeline.compute import ComputeEngine
from aion.pipeline.outputs import CollectedOutputs
from aion.queues import BoundedQueue
from aion.replay.builder import build_session
from aion.replay.session_file import Session, read_session
from aion.store import keys
from aion.store.batch import VOLUME_FAMILY, BarColumns, RvolColumns, StoreBatch, VolumeRows
from aion.store.encode import render_rows
from aion.store.layout import encode_bars
from aion.volume.averages import (
    bundled_adjustment_factors,
    bundled_daily_dir,
    daily_averages,
    read_adjustment_factors,
)

DATA = Path(__file__).resolve().parents[3] / "aion" / "data" / "intraday_1min_2022-11-11"
FILES = ["HDFCBANK", "RELIANCE", "SBIN", "TATAMOTORS", "NIFTY", "INDIAVIX"]
DAY = dt.date(2022, 11, 11)
TABLES = ("bars_1m", "rvol_1m", "volume_state", "alerts")
_BAR_FIELDS = ("start", "open", "high", "low", "close", "volume", "oi", "ticks", "segment")
_RVOL_FIELDS = ("volume", "cum_volume", "expected_bar", "expected_cum", "rvol_bar", "rvol_cum",
                "vix", "regime", "multiplier")  # fmt: skip


# -- the reference: rows parsed back from the Redis text -------------------------------------


def _classify(key: str) -> tuple[str, str, int] | None:
    """(table, symbol, YYYYMMDD) of an archived per-minute hash key, else None."""
    sym = key[key.find("{") + 1 : key.find("}")]
    tail = key.rsplit(":", 1)[-1]
    if "{" not in key or not tail.isdigit():
        return None
    for table, key_of in (("bars_1m", keys.bars_1m), ("bars_1m", keys.bars_1m_ext),
                          ("rvol_1m", keys.rvol)):  # fmt: skip
        if key == key_of(sym, int(tail)):
            return table, sym, int(tail)
    return None


def _ymd(d: int) -> dt.date:
    return dt.date(d // 10_000, d // 100 % 100, d % 100)


def _reference(batches: list[StoreBatch], root: Path) -> Archive:
    """The batches archived from their text, as the archive did before columns."""
    rows: dict[tuple[str, dt.date, str, int], dict[str, Any]] = {}
    volume: dict[tuple[dt.date, str], dict[str, Any]] = {}
    for b in batches:
        for key, fields in b.bar_mappings():
            kind = _classify(key)
            if kind is None:
                continue
            table, sym, ymd = kind
            for hhmm, text in fields.items():
                rec = json.loads(text)
                if table == "bars_1m":
                    row = {k: rec.get(k) for k in _BAR_FIELDS}
                    extra = {k: v for k, v in rec.items() if k not in _BAR_FIELDS}
                    row["extra"] = json.dumps(extra, sort_keys=True)
                else:
                    row = {k: rec.get(k) for k in _RVOL_FIELDS}
                row.update(symbol=sym, time=hhmm, start=int(rec["start"]))
                rows[(table, _ymd(ymd), sym, row["start"])] = row
        for key, mapping in b.state_mappings().items():
            sym = key[key.find("{") + 1 : key.find("}")]
            if "{" not in key or key != keys.volume_state(sym):
                continue
            row = {k: int(v) for k, v in mapping.items()}
            sdate = row.pop("session_date", 0)
            if sdate:
                volume[(_ymd(sdate), sym)] = {"symbol": sym, **row}
    by: dict[tuple[str, dt.date], list[dict[str, Any]]] = {}
    for (table, d, _s, _t), row in rows.items():
        by.setdefault((table, d), []).append(row)
    for (d, _s), row in volume.items():
        by.setdefault(("volume_state", d), []).append(row)
    ref = Archive(root)
    for (table, d), rs in by.items():
        ref.append(table, d, pl.DataFrame(rs, infer_schema_length=None))
    return ref


def _archived(batches: list[StoreBatch], root: Path, max_pending_rows: int) -> Archive:
    q: BoundedQueue[StoreBatch] = BoundedQueue("archive", 1_000_000)
    w = ArchiveWriter(Archive(root), q, flush_interval_s=0.01, max_pending_rows=max_pending_rows)
    w.start()
    for b in batches:
        assert w.submit(b)
    st = w.stop()
    assert st.errors == 0
    return Archive(root)


def _assert_same(got: Archive, ref: Archive, tables: tuple[str, ...]) -> None:
    for t in tables:
        a, b = got.read(t), ref.read(t)
        assert a.height == b.height > 0, t
        assert a.equals(b), (t, a.join(b, on=list(a.columns), how="anti").head())


# -- the real session through the compute engine ---------------------------------------------


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    out = tmp_path_factory.mktemp("archive_cols") / "s.session.gz"
    build_session([DATA / f"{f}.txt.gz" for f in FILES], DAY, out)
    return read_session(out)


def _engine_batches(session: Session) -> tuple[ComputeEngine, list[StoreBatch]]:
    insts = {i.instrument_token: i for i in session.instruments()}
    cfg = load_config()
    wanted = {i.tradingsymbol for i in insts.values() if i.exchange == "NSE"}
    factors = read_adjustment_factors(bundled_adjustment_factors())
    avgs = daily_averages(bundled_daily_dir(), DAY, cfg.volume.average_days, factors, wanted)
    avg = {k: a.avg_volume for k, a in avgs.items()}
    out = CollectedOutputs()
    eng = ComputeEngine(insts, cfg, PatternEngine(load_patterns()), avg, {}, outputs=out)
    for i in range(0, len(session.frames), 40):
        part = zip(session.ts_ns[i : i + 40], session.frames[i : i + 40], strict=True)
        eng.process([(int(t), "c0", f) for t, f in part])
    eng.finish()
    return eng, out.received


def test_replayed_session_archives_exactly_what_the_text_parses_to(
    session: Session, tmp_path: Path
) -> None:
    eng, batches = _engine_batches(session)
    # the volume state travels as typed int64 rows only, not as dicts or rendered columns
    assert not any(k.endswith(":volume") for b in batches for k in b.state)
    assert not any(c.family == VOLUME_FAMILY for b in batches for c in b.columns)
    assert sum(isinstance(r, VolumeRows) for b in batches for r in b.records) > 50
    got = _archived(batches, tmp_path / "got", max_pending_rows=700)  # early writes too
    ref = _reference(batches, tmp_path / "ref")
    _assert_same(got, ref, ("bars_1m", "rvol_1m", "volume_state"))
    bars = got.read("bars_1m", [DAY])
    assert bars.height == eng.counters.bars - int(  # every closed bar, revisions superseding
        sum(int((c.bars["revision"] > 0).sum()) for b in batches for c in b.bar_columns)
    )
    assert set(bars["segment"].unique()) >= {"regular"}
    assert got.read("rvol_1m", [DAY]).height == eng.counters.regular_bars
    state = got.read("volume_state", [DAY])
    for s, inst in enumerate(eng.slot_inst):  # the volume manager's final state
        if not eng.volume.seen[s]:
            continue
        row = state.filter(pl.col("symbol") == inst.symbol).row(0, named=True)
        snap = eng.volume.snapshot(s)
        names = ("first_cumulative", "last_cumulative", "incremental_total", "bad_ticks")
        assert {k: row[k] for k in names} == {k: snap[k] for k in names}
        assert row["last_cumulative"] > 0


# -- edge cases the session does not hold ----------------------------------------------------


def _bars(rows: list[tuple[int, int, float, float, float, float, int, int, bool]]) -> np.ndarray:
    out = np.zeros(len(rows), BAR_DTYPE)
    for i, (slot, start, o, h, lo, c, vol, seg, gap) in enumerate(rows):
        out[i] = (slot, start, o, h, lo, c, vol, 7 * i, 3 + i, seg, 0, gap)
    return out


T0 = 1_668_138_300  # 2022-11-11 09:15 IST


def test_bar_edge_cases_equal_the_parsed_text(tmp_path: Path) -> None:
    """Gap flags (``extra``), prices off the paise grid, NaN, pre-open bars, a revision that
    supersedes an earlier version, two sessions."""
    symbols = ["NSE:A", "NSE:B", "NFO:C"]
    first = _bars([
        (0, T0, 100.05, 101.1, 99.95, 100.5, 1000, 1, False),
        (1, T0, 0.123456789, 2.00005, 1e-5, 1.00015, 5, 1, True),
        (2, T0 - 600, 250.0, 250.0, 250.0, 250.0, 0, 0, False),
        (0, T0 + 60, float("nan"), 101.0, 99.0, 100.0, 7, 1, True),
        (1, T0 + 86_400, 3.14159265, 3.2, 3.1, 3.15, 9, 1, False),  # the next session
    ])  # fmt: skip
    revised = _bars([(0, T0, 100.05, 101.2, 99.95, 100.55, 1200, 1, True)])
    batches = []
    for bars in (first, revised):
        dates = np.array([int(_day(int(s)).strftime("%Y%m%d")) for s in bars["start"]])
        texts = encode_bars(bars, SEGMENT_NAMES)
        bar_keys = [
            (keys.bars_1m if seg == 1 else keys.bars_1m_ext)(symbols[slot], int(d))
            for slot, seg, d in zip(
                bars["slot"].tolist(), bars["segment"].tolist(), dates.tolist(), strict=True
            )
        ]
        hhmm = [f"{m // 60:02d}:{m % 60:02d}" for m in minute_of_day_ist(bars["start"]).tolist()]
        batches.append(StoreBatch(
            bars=[(k, {t: x}) for k, t, x in zip(bar_keys, hhmm, texts, strict=True)],
            bar_columns=[BarColumns(bars.copy(), dates, symbols)],
        ))  # fmt: skip
    got = _archived(batches, tmp_path / "got", max_pending_rows=10_000)
    ref = _reference(batches, tmp_path / "ref")
    _assert_same(got, ref, ("bars_1m",))
    day = got.read("bars_1m", [DAY]).sort("symbol", "start")
    a = day.filter(pl.col("symbol") == "NSE:A").row(0, named=True)
    assert (a["volume"], a["close"], a["extra"]) == (1200, 100.55, '{"gap": true}')
    assert math.isnan(day.filter(pl.col("time") == "09:16")["open"][0])
    assert got.dates("bars_1m") == [DAY, DAY + dt.timedelta(days=1)]


def _day(epoch_s: int) -> dt.date:
    return (dt.datetime.fromtimestamp(epoch_s, dt.UTC) + dt.timedelta(hours=5, minutes=30)).date()


def test_rvol_numbers_equal_their_json_text(tmp_path: Path) -> None:
    """NaN (null), negative zero, tiny, huge (whole units past 9e15 / 10**6) and integer
    columns: the archived numbers are what the entry's JSON text parses back to."""
    names = ("cum_volume", "expected_bar", "expected_cum", "multiplier", "rvol_bar", "rvol_cum",
             "start", "vix", "volume")  # fmt: skip
    decimals = (-1, 6, 6, 6, 6, 6, -1, 6, -1)
    rng = np.random.default_rng(3)
    n = 400
    values = np.column_stack([
        rng.integers(0, 10**9, n).astype(np.float64),
        rng.choice([np.nan, -0.0, -1e-7, 5e-5, 1234.5678915, 9.87654321e9, 1.5e10, 2.0], n),
        rng.uniform(0, 1e8, n),
        rng.choice([1.0, 0.85, 1.25, np.nan], n),
        rng.lognormal(0, 1, n),
        rng.choice([np.inf, 0.3333333333, 12.0000004999], n),
        np.full(n, T0, np.float64),
        rng.uniform(10, 40, n),
        rng.choice([np.nan, 0.0, 7.0, 12345678.0], n),
    ])  # fmt: skip
    slot = np.arange(n, dtype=np.int64)
    symbols = [f"NSE:S{i:03d}" for i in range(n)]
    regime = ["normal" if i % 3 else "high" for i in range(n)]
    lit = [f'{{"{names[0]}": ', *(f', "{k}": ' for k in names[1:]), "}"]
    lit[names.index("rvol_bar")] = ', "regime": "REGIME", "rvol_bar": '
    texts = [t.replace("REGIME", r) for t, r in
             zip(render_rows(lit, values, decimals, "null"), regime, strict=True)]  # fmt: skip
    batch = StoreBatch(
        bars=[(keys.rvol(s, 20221111), {"09:15": t}) for s, t in zip(symbols, texts, strict=True)],
        rvol_columns=[
            RvolColumns(
                slot, np.full(n, 20221111), np.full(n, T0), names, values, decimals, regime, symbols
            )
        ],
    )
    got = _archived([batch], tmp_path / "got", max_pending_rows=10_000)
    ref = _reference([batch], tmp_path / "ref")
    _assert_same(got, ref, ("rvol_1m",))
    df = got.read("rvol_1m", [DAY])
    assert df["expected_bar"].null_count() > 0 and df["rvol_cum"].null_count() > 0
    assert df["volume"].null_count() > 0 and df["volume"].dtype == pl.Int64


def test_python_round_and_rendered_numbers_match_their_definitions() -> None:
    rng = np.random.default_rng(11)
    x = np.concatenate([
        rng.integers(1, 10**7, 5000) / 100,  # paise prices
        rng.uniform(-1e6, 1e6, 5000),
        rng.lognormal(0, 8, 2000),
        [0.0, -0.0, 2.675, 1.00005, 0.00015, np.nan, np.inf, -np.inf, 1e15 + 0.3],
    ])  # fmt: skip
    got = _round_like_python(x.copy(), 4)
    want = np.array([round(v, 4) for v in x.tolist()])
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))
    for d in (-1, 6):
        texts = render_rows(["[", "]"], x[:, None], [d], "null")
        parsed = [json.loads(t)[0] for t in texts]
        assert _as_rendered(x, d).to_list() == parsed


def test_volume_family_sessions_and_unseen_rows(tmp_path: Path) -> None:
    """The latest row per (session, instrument); a new session keeps the earlier one's row;
    rows without a session are not archived."""
    fields = ("session_date", "first_cumulative", "last_cumulative", "incremental_total",
              "bad_ticks", "bar_cumulative")  # fmt: skip
    symbols = ["NSE:A", "NSE:B", "NSE:C"]
    slots = np.arange(3, dtype=np.int64)

    def batch(rows: list[list[int]]) -> StoreBatch:
        v = np.array(rows, np.int64)
        return StoreBatch(records=[VolumeRows(slots, fields, v, symbols)])

    batches = [
        batch([[20221111, 10, 50, 40, 0, 45], [20221111, 0, 9, 9, 1, 9], [0, 0, 0, 0, 0, 0]]),
        batch([[20221111, 10, 70, 60, 0, 70], [20221114, 0, 3, 3, 0, 0], [0, 0, 0, 0, 0, 0]]),
        batch([[20221111, 10, 80, 70, 2, 75], [20221114, 0, 5, 5, 0, 5], [0, 0, 0, 0, 0, 0]]),
    ]
    got = _archived(batches, tmp_path / "got", max_pending_rows=10_000)
    ref = _reference(batches, tmp_path / "ref")
    _assert_same(got, ref, ("volume_state",))
    rows = got.read("volume_state").sort("date", "symbol").rows()
    assert rows == [
        (DAY, "NSE:A", 10, 80, 70, 2),
        (DAY, "NSE:B", 0, 9, 9, 1),
        (dt.date(2022, 11, 14), "NSE:B", 0, 5, 5, 0),
    ]


def test_a_failed_write_keeps_its_rows_behind_newer_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = Archive(tmp_path)
    w = ArchiveWriter(archive, BoundedQueue("archive", 10), flush_interval_s=3600)
    real = Archive.append
    fail = {"n": 1}

    def append(self: Archive, table: str, d: dt.date, df: pl.DataFrame) -> Path:
        if fail["n"]:
            fail["n"] -= 1
            raise OSError("disk full")
        return real(self, table, d, df)

    monkeypatch.setattr(Archive, "append", append)
    sym = ["NSE:A"]
    old = _bars([(0, T0, 100.0, 100.0, 100.0, 100.0, 5, 1, False)])
    new = _bars([(0, T0, 100.0, 100.5, 100.0, 100.5, 8, 1, False)])
    w._merge(StoreBatch(bar_columns=[BarColumns(old, np.array([20221111]), sym)]))
    assert not w.flush() and w.stats.errors == 1
    w._merge(StoreBatch(bar_columns=[BarColumns(new, np.array([20221111]), sym)]))
    assert w.flush()
    assert archive.read("bars_1m").select("volume", "close").rows() == [(8, 100.5)]
