"""The minute close decides alerts before its store writes (issue 8, frame-to-alert latency):
the alerts leave the compute step through the output port the moment a minute's alert
manager decided them, before that minute's indicator and analytics writes, and never inside
a writes batch; the indicator hash is the independently rounded indicator values; cutting
a step into chunks changes no write."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest

from aion.config import load_config, load_patterns
from aion.market.time import minute_of_day_ist
from aion.patterns.registry import PatternEngine
from aion.pipeline.compute import ComputeEngine
from aion.pipeline.outputs import CollectedOutputs
from aion.replay.builder import build_session
from aion.replay.session_file import Session, read_session
from aion.store import keys
from aion.store.batch import AlertRecord, StoreBatch
from aion.volume.averages import (
    bundled_adjustment_factors,
    bundled_daily_dir,
    daily_averages,
    read_adjustment_factors,
)

DATA = Path(__file__).resolve().parents[3] / "aion" / "data" / "intraday_1min_2022-11-11"
FILES = ["HDFCBANK", "RELIANCE", "SBIN", "TATAMOTORS", "NIFTY", "INDIAVIX"]
DAY = dt.date(2022, 11, 11)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    out = tmp_path_factory.mktemp("close") / "s.session.gz"
    build_session([DATA / f"{f}.txt.gz" for f in FILES], DAY, out)
    return read_session(out)


def _engine(session: Session, outputs: CollectedOutputs | None = None) -> ComputeEngine:
    insts = {i.instrument_token: i for i in session.instruments()}
    cfg = load_config()
    wanted = {i.tradingsymbol for i in insts.values() if i.exchange == "NSE"}
    factors = read_adjustment_factors(bundled_adjustment_factors())
    avgs = daily_averages(bundled_daily_dir(), DAY, cfg.volume.average_days, factors, wanted)
    avg = {k: a.avg_volume for k, a in avgs.items()}
    return ComputeEngine(insts, cfg, PatternEngine(load_patterns()), avg, {}, outputs=outputs)


def _run(eng: ComputeEngine, session: Session) -> list[StoreBatch]:
    """Everything the engine output over the session (50 frames a step), in call order."""
    out = eng.outputs
    assert isinstance(out, CollectedOutputs)
    for i in range(0, len(session.frames), 50):
        part = zip(session.ts_ns[i : i + 50], session.frames[i : i + 50], strict=True)
        eng.process([(int(t), "c0", f) for t, f in part])
    eng.finish()
    return out.received


class _Recording(CollectedOutputs):
    """Also notes the bar minute of each alerts call."""

    def __init__(self, events: list[tuple[str, int]]) -> None:
        super().__init__()
        self.events = events

    def alerts(self, records: list[AlertRecord]) -> None:
        super().alerts(records)
        (minute,) = {int(r.stream_id.split("-")[0]) // 1000 - 60 for r in records}
        self.events.append(("alerts", int(minute_of_day_ist(np.array([minute]))[0])))


def test_alerts_leave_first_and_only_through_the_alerts_port(session: Session) -> None:
    events: list[tuple[str, int]] = []  # ("alerts" | "indicators", minute of day IST)
    out = _Recording(events)
    eng = _engine(session, out)
    write_indicators = eng._write_indicators

    def recorded(group: np.ndarray, ind: dict[str, np.ndarray], batch: StoreBatch) -> None:
        events.append(("indicators", int(minute_of_day_ist(group["start"][:1])[0])))
        write_indicators(group, ind, batch)

    eng._write_indicators = recorded  # type: ignore[method-assign]
    _run(eng, session)
    sunk = out.alert_records
    assert len(sunk) >= 5  # the session raises alerts: the checks below are not vacuous
    assert all(not b.alerts for b in out.batches)  # no alert inside a writes batch
    assert [r.stream_id for r in sunk] == [a.stream_id for a in eng.alerts]
    assert any(what == "alerts" for what, _ in events)
    for i, (what, minute) in enumerate(events):
        if what == "alerts":  # the same minute's indicator hashes come right after
            assert events[i + 1] == ("indicators", minute)
            assert ("indicators", minute) not in events[:i]


def _reference_text(x: float) -> str:
    """``repr`` of the value rounded to 6 decimals ("nan" when undefined)."""
    return "nan" if math.isnan(x) else repr(float(np.round(x, 6)))


def test_indicator_hash_holds_the_rounded_latest_values(session: Session) -> None:
    eng = _engine(session, CollectedOutputs())
    state: dict[str, dict[str, str]] = {}
    bars: dict[str, dict[str, str]] = {}
    for b in _run(eng, session):
        for k, v in b.state_mappings().items():
            state.setdefault(k, {}).update(v)
        for k, v in b.bar_mappings():
            bars.setdefault(k, {}).update(v)
    checked = 0
    for s, inst in enumerate(eng.slot_inst):
        h = state.get(keys.indicators(inst.symbol))
        if h is None:
            continue
        values = eng.indicators.values(np.array([s], np.int64))
        assert set(h) == {*values, "bar_start"}
        last = max(bars[keys.bars_1m(inst.symbol, 20221111)])  # the last regular bar, HH:MM
        mod = int(minute_of_day_ist(np.array([int(h["bar_start"])]))[0])
        assert f"{mod // 60:02d}:{mod % 60:02d}" == last
        for name, col in values.items():
            x = float(col[0])
            if math.isnan(x) or 1e-4 <= abs(x) < 1e9 or x == 0:
                assert h[name] == _reference_text(x), (inst.symbol, name, x, h[name])
            else:  # fixed notation for tiny numbers: the same number
                assert float(h[name]) == float(np.round(x, 6)), (inst.symbol, name)
            checked += 1
    assert checked >= 5 * 20


def _merged(batches: list[StoreBatch]) -> tuple[dict, dict, list, list]:
    """What a run's batches write, applied in order: state fields, bar fields, alert ids and
    the closed bars handed to the archive."""
    state: dict[str, dict[str, str]] = {}
    bars: dict[str, dict[str, str]] = {}
    for b in batches:
        for k, v in b.state_mappings().items():
            state.setdefault(k, {}).update(v)
        for k, v in b.bar_mappings():
            bars.setdefault(k, {}).update(v)
    alerts = [r.stream_id for b in batches for r in b.alerts]
    closed = [row for b in batches for c in b.bar_columns for row in c.bars.tolist()]
    return state, bars, alerts, closed


def test_a_step_cut_at_minute_closes_writes_the_same(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``process(frames)`` hands the writes so far to the outputs after each chunk that
    closed bars: a step spanning many minutes becomes batches of a chunk's closes each, and
    together they write exactly what the same steps write in one chunk each."""
    import aion.pipeline.compute as compute

    steps = [
        [(int(t), "c0", f) for t, f in zip(session.ts_ns[i : i + 400],
                                             session.frames[i : i + 400], strict=True)]
        for i in range(0, len(session.frames), 400)
    ]  # fmt: skip

    def run() -> list[StoreBatch]:
        out = CollectedOutputs()
        eng = _engine(session, out)
        for frames in steps:
            eng.process(frames)
        eng.finish()
        return out.received

    whole = run()  # a step of 400 frames is one chunk
    monkeypatch.setattr(compute, "MAX_CHUNK_PACKETS", 40)  # many chunks per step
    cut = run()

    assert len(cut) > 3 * len(whole)  # the steps were cut
    per_batch = [len({r[1] for c in b.bar_columns for r in c.bars.tolist()}) for b in cut]
    assert max(per_batch) < max(  # fewer minutes closed per batch than per uncut step
        len({r[1] for c in b.bar_columns for r in c.bars.tolist()}) for b in whole
    )
    assert _merged(cut) == _merged(whole)
    assert _merged(whole)[1] and _merged(whole)[3] and _merged(whole)[2]  # not vacuous
