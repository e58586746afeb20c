"""Determinism of the option chain at bar closes: a derived option-chain session
(`aion session build --option-chain 2`) run through the compute engine with different
batchings (one frame per batch, seeded random batch sizes, the whole session at once) gives
the same chain view and option view at every bar close and the same alerts; and every view
only holds ticks from before the bar's end (checked against the session's own frames)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from aion.config import load_config, load_patterns
from aion.kite.decode import decode_frame
from aion.market.time import from_ist
from aion.patterns.frame import MinuteFrame
from aion.patterns.registry import InstrumentView, PatternEngine, Signal
from aion.pipeline.compute import ComputeEngine
from aion.replay.builder import build_session
from aion.replay.session_file import Session, read_session

DATA = Path(__file__).resolve().parents[2] / "aion" / "data" / "intraday_1min_2022-11-11"
DAY = dt.date(2022, 11, 11)

Record = tuple[str, int, str, tuple[tuple[str, object], ...]]


def _plain(x: object) -> object:
    """``x`` (a float or a list of floats) with NaN as the text "nan", so == compares it."""
    if isinstance(x, list):
        return [_plain(v) for v in x]
    return "nan" if isinstance(x, float) and x != x else x


class RecordingEngine(PatternEngine):
    """The pattern engine, recording what each bar close shows: the chain view of every
    underlying row and the option view of every option row."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.records: list[Record] = []

    def detect_minute(
        self, frame: MinuteFrame, view_of: Callable[[int], InstrumentView]
    ) -> list[tuple[InstrumentView, Signal]]:
        views: dict[int, InstrumentView] = {}

        def once(j: int) -> InstrumentView:
            if j not in views:
                views[j] = view_of(j)
            return views[j]

        for j in range(len(frame)):
            start = int(frame.bar_start[j])
            chain = frame.chains.get(j)
            if chain is not None:
                items = tuple((k, _plain(v.tolist())) for k, v in sorted(chain.items()))
                self.records.append((once(j).symbol, start, "chain", items))
            view = once(j)
            if view.option:
                items = tuple((k, _plain(v)) for k, v in sorted(view.option.items()))
                self.records.append((view.symbol, start, "option", items))
        return super().detect_minute(frame, once)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    out = tmp_path_factory.mktemp("chain") / "chain.aion.gz"
    files = ["NIFTY", "BANKNIFTY", "INDIAVIX"]
    build_session([DATA / f"{f}.txt.gz" for f in files], DAY, out, option_chain=2)
    return read_session(out)


def run(session: Session, sizes: list[int]) -> tuple[list[Record], list[dict[str, str]]]:
    """Replay ``session`` through a fresh engine in batches of ``sizes`` frames (the last
    batch takes the rest); the recorded views and the alerts' fields."""
    insts = {i.instrument_token: i for i in session.instruments()}
    patterns = RecordingEngine(load_patterns())
    eng = ComputeEngine(insts, load_config(), patterns, {}, {})
    items = [(int(t), "c0", f) for t, f in zip(session.ts_ns, session.frames, strict=True)]
    i = 0
    for k in sizes:
        if i >= len(items):
            break
        eng.process(items[i : i + k])
        i += k
    if i < len(items):
        eng.process(items[i:])
    eng.finish()
    return patterns.records, [a.fields() for a in eng.alerts]


@pytest.fixture(scope="module")
def whole(session: Session) -> tuple[list[Record], list[dict[str, str]]]:
    """The session processed as one batch."""
    return run(session, [len(session.frames)])


def test_views_and_alerts_do_not_depend_on_batching(
    session: Session, whole: tuple[list[Record], list[dict[str, str]]]
) -> None:
    n = len(session.frames)
    rng = np.random.default_rng(20221111)
    one, one_alerts = run(session, [1] * n)
    rand, rand_alerts = run(session, rng.integers(1, 200, n).tolist())
    chains = [r for r in one if r[2] == "chain"]
    options = [r for r in one if r[2] == "option"]
    # NIFTY 50 and NIFTY BANK: a chain at each of the 375 regular bars; 20 options' bars
    assert len(chains) == 2 * 375, len(chains)
    assert len(options) >= 20 * 370
    assert one == rand
    assert one == whole[0]
    assert one_alerts == rand_alerts == whole[1]
    fired = {a["pattern"] for a in one_alerts}
    assert {"kow_signal_straddle", "premium_collection_strategy"} <= fired  # chain-driven


def test_views_hold_only_ticks_before_the_bar_end(
    session: Session, whole: tuple[list[Record], list[dict[str, str]]]
) -> None:
    """Reference: the last tick of each instrument with exchange time before the bar end,
    straight from the decoded frames (the derived session is in time order)."""
    master = session.instruments()
    ticks = np.concatenate([decode_frame(f) for f in session.frames])
    symbol = {i.instrument_token: i.symbol for i in master}
    ts = ticks["exchange_timestamp"].astype(np.int64)
    assert np.all(np.diff(ts) >= 0)
    records = whole[0]
    by_token: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for tok in np.unique(ticks["instrument_token"]).tolist():
        sel = ticks["instrument_token"] == tok
        by_token[symbol[tok]] = (ts[sel], ticks["last_price"][sel].astype(np.float64))

    def price_before(sym: str, end: int) -> float:
        t, p = by_token[sym]
        i = int(np.searchsorted(t, end, "left")) - 1
        return float(p[i]) if i >= 0 else float("nan")

    strikes_by_symbol = {
        (i.name, i.strike, i.instrument_type): i.symbol for i in master if i.strike > 0
    }
    checked = 0
    for sym, start, kind, items in records:
        if kind != "chain":
            continue
        view = dict(items)
        end = start + 60
        assert view["spot"] == price_before(sym, end)
        name = "NIFTY" if sym == "NSE:NIFTY 50" else "BANKNIFTY"
        for j, k in enumerate(view["strike"]):
            if k == "nan":  # padding at the grid's edge
                continue
            for side in ("CE", "PE"):
                opt = strikes_by_symbol[(name, k, side)]
                assert view[f"{side.lower()}_last_price"][j] == price_before(opt, end)
                checked += 1
    assert checked > 2 * 375 * 2 * 3


def test_mid_session_start_weights_the_straddle_vwap_only_with_volume_after_it(
    session: Session,
) -> None:
    """A scan that starts at 11:00:30 IST (its first frames are the session's from then on)
    sees every option first at the day's ``volume_traded`` so far. The VolumeStateManager
    yields 0 for that first tick, so the straddle VWAP of NIFTY 50 and NIFTY BANK, bar by
    bar, equals a reference computed from the decoded frames alone: each bar's ATM straddle
    weighted by the ATM legs' cumulative volume as of the bar's close minus the cumulative
    at the previous bar's close, where before the first bar it is the leg's first tick after
    the start. Weighting with the day's volume instead moves the VWAP away from it."""
    start = from_ist(DAY, 11, 0) + 30
    stamps = [int(decode_frame(f)["exchange_timestamp"].max()) for f in session.frames]
    first = next(i for i, t in enumerate(stamps) if t >= start)
    frames = session.frames[first:]
    insts = {i.instrument_token: i for i in session.instruments()}
    patterns = RecordingEngine(load_patterns())
    eng = ComputeEngine(insts, load_config(), patterns, {}, {})
    ts_ns = session.ts_ns[first:]
    eng.process([(int(t), "c0", f) for t, f in zip(ts_ns, frames, strict=True)])
    eng.finish()

    ticks = np.concatenate([decode_frame(f) for f in frames])
    ts = ticks["exchange_timestamp"].astype(np.int64)
    assert np.all(np.diff(ts) >= 0) and ts[0] >= start
    by_symbol = {}
    for tok in np.unique(ticks["instrument_token"]).tolist():
        sel = ticks["instrument_token"] == tok
        by_symbol[insts[tok].symbol] = (ts[sel], ticks["volume_traded"][sel].astype(np.int64))

    def cumulative_before(sym: str, end: int) -> int | None:
        """The leg's ``volume_traded`` at its last tick before ``end``; None before any."""
        t, v = by_symbol[sym]
        i = int(np.searchsorted(t, end, "left")) - 1
        return int(v[i]) if i >= 0 else None

    leg = {(i.name, i.strike, i.instrument_type): i.symbol for i in insts.values() if i.strike}
    checked = 0
    for under, name in (("NSE:NIFTY 50", "NIFTY"), ("NSE:NIFTY BANK", "BANKNIFTY")):
        views = [(s, dict(items)) for sym, s, kind, items in patterns.records
                 if kind == "chain" and sym == under]  # fmt: skip
        assert views and views[0][0] == start - 30  # the first bar: the minute of the start
        legs = {sym for (n, _k, _side), sym in leg.items() if n == name}
        first_cum = {sym: int(by_symbol[sym][1][0]) for sym in legs if sym in by_symbol}
        assert min(first_cum.values()) > 0  # the legs traded before the start
        used = dict.fromkeys(legs, 0)  # seen volume at the previous bar's close
        used_day = dict.fromkeys(legs, 0)  # the same from the day's volume_traded
        num = den = num_day = den_day = 0.0
        for bar_start, view in views:
            end = bar_start + 60
            seen, day = {}, {}
            for sym in legs:
                cum = cumulative_before(sym, end) if sym in by_symbol else None
                seen[sym] = 0 if cum is None else cum - first_cum[sym]
                day[sym] = 0 if cum is None else cum
            atm = view["strike"][2]
            pair = [leg[(name, atm, "CE")], leg[(name, atm, "PE")]]
            straddle = view["ce_last_price"][2] + view["pe_last_price"][2]
            assert view["atm_straddle"] == straddle
            dv = sum(seen[s] - used[s] for s in pair)
            dv_day = sum(day[s] - used_day[s] for s in pair)
            if dv > 0:
                num, den = num + straddle * dv, den + dv
            if dv_day > 0:
                num_day, den_day = num_day + straddle * dv_day, den_day + dv_day
            used, used_day = seen, day
            got = view["atm_straddle_vwap"]
            if den == 0:
                assert got == "nan", bar_start
                continue
            assert got == pytest.approx(num / den, rel=1e-12), bar_start
            checked += 1
        # the reference tells the two weightings apart: the day's volume drags the VWAP to
        # the first bar's straddle
        last = views[-1][1]["atm_straddle_vwap"]
        assert abs(num_day / den_day - last) > 1e-3 * last
    assert checked > 2 * 250
