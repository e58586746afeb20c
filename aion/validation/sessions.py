"""Sessions for the evaluation: built from vendor 1-minute bars, replayed in-process.

:func:`bundled_sessions` lists every trading day the bundled data can build (``aion/data``,
see ``aion/data/PROVENANCE.md``): 2022-11-11 from ``intraday_1min_2022-11-11`` (27 stocks,
2 indices, 2 futures, INDIA VIX) and each other day of ``index_1min`` (NIFTY 50 and NIFTY
BANK only, no volume). :func:`run_session` builds one day's session file
(:func:`aion.replay.builder.build_session`), replays it through the very
:class:`~aion.pipeline.compute.ComputeEngine`, pattern engine, risk manager and alert
manager a scan builds (:class:`aion.app.Scanner` resolves the universe, modes and
averages exactly as ``aion scan --replay`` does), and returns the alerts with the
session's regular 1-minute bars (from the vendor rows the session was built from) for
:mod:`aion.validation.forward`. No Redis is involved: the engine's writes are dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aion.alerts.manager import Alert, Candidate
from aion.config import AionConfig
from aion.instruments.master import InstrumentMaster
from aion.market.time import from_ist
from aion.replay.resolve import resolve_vendor_symbol
from aion.replay.vendor_bars import VendorBar, read_vendor_bars
from aion.store.batch import AlertRecord, StoreBatch
from aion.validation.forward import Bars


@dataclass(frozen=True)
class SessionSpec:
    """One trading day to evaluate: its date and the vendor bar files holding it."""

    date: dt.date
    bar_paths: tuple[Path, ...]
    source: str
    """Short description of the data (``"32 instruments"``, ``"index_1min"``...)."""


def _bundled_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "data"


def bundled_sessions(data_dir: Path | None = None) -> list[SessionSpec]:
    """Every day buildable from the bundled bars, ascending by date (see module docstring)."""
    root = data_dir if data_dir is not None else _bundled_dir()
    intraday = root / "intraday_1min_2022-11-11"
    index_files = tuple(sorted((root / "index_1min").glob("*.txt*")))
    specs: dict[dt.date, SessionSpec] = {}
    for f in index_files:
        for d in sorted({b.date for b in read_vendor_bars(f)}):
            specs[d] = SessionSpec(d, index_files, "NIFTY 50 + NIFTY BANK 1-minute (no volume)")
    if intraday.is_dir():
        d = dt.date(2022, 11, 11)
        specs[d] = SessionSpec(d, (intraday,), "27 stocks, 2 indices, 2 futures, INDIA VIX")
    return [specs[d] for d in sorted(specs)]


def sessions_from_paths(paths: Sequence[Path]) -> list[SessionSpec]:
    """Every day found in the vendor bar files/folders ``paths`` (all files of a folder).

    Raises:
        ValueError: a path does not exist, holds no file, or a row is malformed.
    """
    files: list[Path] = []
    for p in paths:
        if not p.exists():
            raise ValueError(f"bars path {p} does not exist")
        files += sorted(x for x in p.iterdir() if x.is_file()) if p.is_dir() else [p]
    if not files:
        raise ValueError(f"no vendor bar files in {', '.join(map(str, paths))}")
    days: set[dt.date] = set()
    for f in files:
        days |= {b.date for b in read_vendor_bars(f)}
    return [SessionSpec(d, tuple(files), ", ".join(p.name for p in paths)) for d in sorted(days)]


class _AlertsOnly:
    """:class:`~aion.pipeline.outputs.Outputs` keeping the alert records, dropping writes."""

    def __init__(self) -> None:
        self.records: list[AlertRecord] = []

    def alerts(self, records: list[AlertRecord]) -> None:
        self.records += records

    def writes(self, batch: StoreBatch) -> None:
        pass


@dataclass
class SessionRun:
    """What one replayed session produced.

    Attributes:
        alerts: published alerts in publication order.
        bars: symbol -> regular 1-minute bars of the day.
        suppressed: alert manager suppression counts by rule (signals not published).
        signals: signals offered to the alert manager.
        signals_by_pattern: signals offered to the alert manager, per pattern (a pattern
            without any never fired on this data, whatever its threshold).
        has_volume: symbols whose bars carry volume (indices do not).
        tick_size: symbol -> tick, rupees (the instrument master's).
    """

    spec: SessionSpec
    alerts: list[Alert]
    bars: dict[str, Bars]
    suppressed: dict[str, int]
    signals: int
    signals_by_pattern: dict[str, int] = field(default_factory=dict)
    has_volume: dict[str, bool] = field(default_factory=dict)
    tick_size: dict[str, float] = field(default_factory=dict)


def _day_bars(spec: SessionSpec) -> dict[str, list[VendorBar]]:
    out: dict[str, list[VendorBar]] = {}
    for p in spec.bar_paths:
        files = sorted(x for x in p.iterdir() if x.is_file()) if p.is_dir() else [p]
        for f in files:
            for b in read_vendor_bars(f):
                if b.date == spec.date and b.regular:
                    out.setdefault(b.symbol, []).append(b)
    return out


def run_session(
    spec: SessionSpec,
    config: AionConfig,
    workdir: Path,
    config_dir: Path | None = None,
    patterns: str = "all",
) -> SessionRun:
    """Build ``spec``'s session into ``workdir`` and replay it in-process (module docstring).

    ``patterns`` selects the ``patterns.yaml`` entries that run
    (:func:`aion.config.select_patterns`); by default every entry, enabled or not: the
    evaluation is what decides which ones the shipped file enables.

    Raises:
        ValueError: the bars do not hold that day, or the builder rejects them.
        aion.app.ScanError: the scan set-up fails (bad universe or config).
    """
    from aion.app import Scanner, ScanOptions
    from aion.kite.encode import filter_frame
    from aion.pipeline.compute import ComputeEngine
    from aion.replay.builder import build_session

    out = workdir / f"{spec.date.isoformat()}.session"
    build_session(list(spec.bar_paths), spec.date, out)
    scanner = Scanner(config, ScanOptions(replay=out, patterns=patterns), config_dir)
    assert scanner.session is not None
    sink = _AlertsOnly()
    engine = ComputeEngine(
        scanner.universe,
        config,
        scanner.patterns,
        scanner.averages(),
        {},
        outputs=sink,
    )
    by_pattern: dict[str, int] = {}
    consider = engine.alert_manager.consider_many

    def counted(bar_start: int, candidates: Sequence[Candidate]) -> list[Alert]:
        for c in candidates:
            by_pattern[c.signal.pattern] = by_pattern.get(c.signal.pattern, 0) + 1
        return consider(bar_start, candidates)

    engine.alert_manager.consider_many = counted  # type: ignore[method-assign]
    session = scanner.session
    frames = session.frames
    batch: list[tuple[int, str, bytes]] = []
    for i in range(len(frames)):
        f = filter_frame(frames[i], scanner.modes)
        if f is not None:
            batch.append((int(session.ts_ns[i]), "conn0", f))
        if len(batch) >= 64:
            engine.process(batch)
            batch = []
    if batch:
        engine.process(batch)
    engine.finish()
    counters = engine.alert_manager.counters
    vendor = _day_bars(spec)
    master = InstrumentMaster.bundled().merge(session.instruments())
    bars: dict[str, Bars] = {}
    has_volume: dict[str, bool] = {}
    for vsym, rows in vendor.items():
        inst, _ = resolve_vendor_symbol(vsym, spec.date, master)
        rows.sort(key=lambda b: b.stamp)
        # end-labelled vendor rows: the bar stamped HH:MM starts a minute earlier
        start = np.array([from_ist(spec.date, *divmod(b.stamp - 1, 60), 0) for b in rows])
        bars[inst.symbol] = Bars(
            start.astype(np.int64),
            np.array([b.high for b in rows], np.float64),
            np.array([b.low for b in rows], np.float64),
            np.array([b.close for b in rows], np.float64),
        )
        has_volume[inst.symbol] = any(b.volume > 0 for b in rows)
    ticks = {i.symbol: i.tick_size if i.tick_size > 0 else 0.05 for i in scanner.universe.values()}
    return SessionRun(
        spec,
        list(engine.alerts),
        bars,
        counters.suppressed(),
        counters.signals,
        by_pattern,
        has_volume,
        ticks,
    )
