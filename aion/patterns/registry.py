"""The detector registry and the pattern engine.

A detector is one function ``(view: InstrumentView, **params) -> Signal | None``
registered by name with :func:`register`; ``config/patterns.yaml`` enables it
and sets its parameters, minimum confidence and cooldown. Unknown names or
parameters stop start-up with a message listing what is known.

Every detector also registers a *gate*, a vectorised necessary condition
``(frame: MinuteFrame, **params) -> bool (n,)`` over all bars of one minute
(:mod:`aion.patterns.frame`); :meth:`PatternEngine.detect_minute` calls the detector
only on the rows whose gate passed, with the same result as running it on every row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aion.config import ConfigError
from aion.patterns.config import PatternConfig
from aion.patterns.frame import MinuteFrame


@dataclass(frozen=True)
class InstrumentView:
    """What a detector sees of one instrument when a regular 1-minute bar closes.

    Attributes:
        symbol: ``EXCHANGE:TRADINGSYMBOL``.
        bar_start: the closed bar's start, epoch seconds (IST label via ``to_ist``).
        open, high, low, close: the closed bar, rupees.
        volume: the closed bar's volume, shares/units.
        history: float64 arrays ``open, high, low, close, volume`` of the closed
            regular bars of the session *before* this one, oldest first, (m,) each.
        indicators: latest indicator values after this bar (``ema_20``, ``rsi_14``,
            ``atr_14``, ``vwap``...; NaN during warm-up).
        expected_bar_volume: expected volume of one regular minute (shares), NaN when
            no daily history exists for the instrument.
        lot_size: contract lot size (1 for equities).
        tick_size: minimum price step, rupees (instrument master; 0.05 on NSE/NFO).
        instrument_type: ``EQ``, ``FUT``, ``CE``, ``PE`` or ``INDEX`` (instrument master).
        underlying: for derivatives, the underlying's symbol (``NSE:NIFTY 50``); else "".
        minute_of_session: 0 for the 09:15 IST bar, 374 for 15:29; -1 outside the session.
        rvol_cum: cumulative RVOL at this bar's close (actual cumulative / expected
            cumulative volume at the same minute, time-of-day baseline); NaN without history.
        rvol_bar: bar RVOL (bar volume / expected bar volume at this minute); NaN without history.
        threshold_multiplier: product of the session-window and INDIA VIX regime
            multipliers (config) that detectors apply to their volume thresholds.
        regime: INDIA VIX regime name (``LOW``, ``NORMAL``, ``HIGH``, ``PANIC``) or "".
        profile: the session's volume profile so far: ``poc``, ``vah``, ``val`` (rupees),
            ``poc_shift`` (rupees since the first POC), ``strength`` and node prices
            as documented in :mod:`aion.volume.profile`; empty when unavailable.
        book: order book at the bar's close: ``total_buy_quantity``,
            ``total_sell_quantity``, ``bid_quantity_5``, ``ask_quantity_5`` (shares,
            summed over the 5 depth levels); empty for ltp/quote-only instruments.
        option: for CE/PE, the option's state as of the bar's close (its and its
            underlying's last ticks before the bar's end, IV/Greeks at the bar's end,
            :class:`aion.options.chain.ChainTracker`): ``strike``, ``iv``, ``delta``, ``gamma``,
            ``theta``, ``vega``, ``rho``, ``dte_days``, ``dte_years``; empty otherwise.
        chain: for an underlying with an option chain, as of the bar's close (same rule,
            whatever the batching), the 5 strikes around ATM
            (index 2 = ATM) as float64 arrays of shape (5,): ``strike``,
            ``ce_last_price``, ``pe_last_price``, ``ce_iv``, ``pe_iv``, ``ce_delta``,
            ``pe_delta``, ``gamma``, ``ce_theta``, ``pe_theta``, ``vega``, ``ce_oi``,
            ``pe_oi``, ``ce_volume``, ``pe_volume``; and 0-d arrays ``spot``,
            ``dte_days``, ``atm_straddle`` (ATM CE + PE premium, rupees) and
            ``atm_straddle_vwap`` (volume-weighted mean straddle premium of the
            session). Empty when no chain is subscribed.
        mean_range: mean of ``high - low`` over the history bars and this bar, rupees,
            precomputed for the minute (:attr:`MinuteFrame.mean_range`); NaN when not
            precomputed (hand-made views): :func:`~aion.patterns.scoring.atr_or_range`
            then computes it from ``history``.
    """

    symbol: str
    bar_start: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    history: dict[str, np.ndarray]
    indicators: dict[str, float]
    expected_bar_volume: float
    lot_size: int = 1
    tick_size: float = 0.05
    instrument_type: str = "EQ"
    underlying: str = ""
    minute_of_session: int = -1
    rvol_cum: float = float("nan")
    rvol_bar: float = float("nan")
    threshold_multiplier: float = 1.0
    regime: str = ""
    profile: dict[str, float] = field(default_factory=dict)
    book: dict[str, float] = field(default_factory=dict)
    option: dict[str, float] = field(default_factory=dict)
    chain: dict[str, np.ndarray] = field(default_factory=dict)
    mean_range: float = math.nan


@dataclass(frozen=True)
class Signal:
    """A detector's finding: ``direction`` is ``long`` or ``short``; ``confidence`` in [0, 1]."""

    pattern: str
    direction: str
    confidence: float
    evidence: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.direction not in ("long", "short"):
            raise ValueError(f"{self.pattern}: direction must be long or short")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"{self.pattern}: confidence {self.confidence} outside [0, 1]")


DetectorFn = Callable[..., Signal | None]

GateFn = Callable[..., np.ndarray]
"""``(frame: MinuteFrame, **params) -> bool (n,)``: rows where the detector may fire."""


ParamCheck = Callable[[dict[str, Any]], str | None]
"""Validates a detector's resolved parameters; returns a one-line problem or None."""

FAMILIES = ("core", "ict", "options", "volume_profile")


@dataclass(frozen=True)
class Detector:
    """A registered detector: its function, one-line description and parameters.

    ``params`` maps parameter name -> (default, one-line description); a configured
    value must have the default's type (an int is accepted for a float). ``family``
    is one of :data:`FAMILIES`; ``check`` validates the resolved parameters at start-up.
    ``gate`` is the vectorised necessary condition (:data:`GateFn`); None means the
    detector is evaluated on every bar.
    """

    name: str
    fn: DetectorFn
    description: str
    params: dict[str, tuple[Any, str]]
    family: str
    check: ParamCheck | None
    gate: GateFn | None


REGISTRY: dict[str, Detector] = {}


def register(
    name: str,
    description: str,
    params: dict[str, tuple[Any, str]],
    family: str = "core",
    check: ParamCheck | None = None,
    *,
    gate: GateFn | None,
) -> Callable[[DetectorFn], DetectorFn]:
    """Decorator registering a detector under ``name``.

    ``gate`` is required (keyword): the detector's vectorised necessary condition, or
    an explicit None for a detector evaluated on every bar.

    Raises:
        ValueError: ``name`` is already registered or ``family`` is unknown.
        TypeError: no ``gate`` given.
    """
    if family not in FAMILIES:
        raise ValueError(f"detector {name!r}: family {family!r} not in {FAMILIES}")

    def deco(fn: DetectorFn) -> DetectorFn:
        if name in REGISTRY:
            raise ValueError(f"detector {name!r} registered twice")
        REGISTRY[name] = Detector(name, fn, description, params, family, check, gate)
        return fn

    return deco


def _param_type_ok(default: Any, value: Any) -> bool:
    """``value`` may replace ``default``: same type, int for float, list for tuple."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple):
            return False
        return not default or all(_param_type_ok(default[0], v) for v in value)
    return isinstance(value, type(default))


def known_detectors() -> dict[str, Detector]:
    """Every registered detector (importing the detector modules registers them)."""
    from aion.patterns import detectors  # noqa: F401  (registers on import)

    return dict(REGISTRY)


@dataclass(frozen=True)
class ActivePattern:
    """A detector enabled by config, with its resolved parameters and alert settings."""

    detector: Detector
    params: dict[str, Any]
    min_confidence: float | None
    cooldown_s: int


class PatternEngine:
    """Runs every enabled detector on an :class:`InstrumentView`.

    Args:
        configs: entries of ``patterns.yaml``.

    Raises:
        ConfigError: unknown detector or parameter (message lists the known ones).
    """

    def __init__(self, configs: list[PatternConfig]) -> None:
        known = known_detectors()
        self.active: list[ActivePattern] = []
        for cfg in configs:
            if cfg.name not in known:
                raise ConfigError(
                    f"patterns.yaml: unknown detector {cfg.name!r} "
                    f"(known: {', '.join(sorted(known))})"
                )
            det = known[cfg.name]
            for p in cfg.params:
                if p not in det.params:
                    raise ConfigError(
                        f"patterns.yaml: {cfg.name}.params.{p} is unknown "
                        f"(known: {', '.join(sorted(det.params))})"
                    )
            for p, v in cfg.params.items():
                default = det.params[p][0]
                if not _param_type_ok(default, v):
                    raise ConfigError(
                        f"patterns.yaml: {cfg.name}.params.{p}: {v!r} has the wrong type "
                        f"(default {default!r})"
                    )
            params = {k: v[0] for k, v in det.params.items()} | {
                k: tuple(v) if isinstance(v, list) else v for k, v in cfg.params.items()
            }
            problem = det.check(params) if det.check is not None else None
            if problem:
                raise ConfigError(f"patterns.yaml: {cfg.name}.params: {problem}")
            if cfg.enabled:
                self.active.append(ActivePattern(det, params, cfg.min_confidence, cfg.cooldown_s))
        self.gate_stats = GateStats([a.detector.name for a in self.active])

    def settings(self, name: str) -> ActivePattern:
        """The active pattern ``name``; KeyError when not enabled."""
        for a in self.active:
            if a.detector.name == name:
                return a
        raise KeyError(name)

    def detect(self, view: InstrumentView) -> list[Signal]:
        """Signals of every enabled detector for this bar, in config order (ungated)."""
        out = []
        for a in self.active:
            sig = a.detector.fn(view, **a.params)
            if sig is not None:
                out.append(sig)
        return out

    def gates(self, frame: MinuteFrame) -> np.ndarray:
        """Gate of every enabled detector over the minute: bool (patterns, n), config order.

        Raises:
            ValueError: a gate returned something other than bool (n,) (a coding error).
        """
        n = len(frame)
        out = np.ones((len(self.active), n), np.bool_)
        for i, a in enumerate(self.active):
            gate = a.detector.gate
            if gate is None:
                continue
            g = gate(frame, **a.params)
            if not isinstance(g, np.ndarray) or g.shape != (n,) or g.dtype != np.bool_:
                raise ValueError(f"gate of {a.detector.name} must return bool ({n},)")
            out[i] = g
        return out

    def detect_minute(
        self, frame: MinuteFrame, view_of: Callable[[int], InstrumentView]
    ) -> list[tuple[InstrumentView, Signal]]:
        """Signals of every enabled detector for the n bars of one minute.

        Evaluates the gates over the frame, then runs each detector only on the rows its
        gate passed; ``view_of(j)`` builds row ``j``'s view, called at most once per row
        and only for rows some gate passed. The result is that of :meth:`detect` on every
        row's view: ``(view, signal)`` pairs, rows in frame order, config order per row.
        """
        passed = self.gates(frame)
        rows = np.flatnonzero(passed.any(axis=0))
        out: list[tuple[InstrumentView, Signal]] = []
        fired = np.zeros(len(self.active), np.int64)
        for j in rows.tolist():
            view = view_of(j)
            for i in np.flatnonzero(passed[:, j]).tolist():
                a = self.active[i]
                sig = a.detector.fn(view, **a.params)
                if sig is not None:
                    out.append((view, sig))
                    fired[i] += 1
        self.gate_stats.add(len(frame), passed.sum(axis=1), rows.shape[0], fired)
        return out


class GateStats:
    """Running counts of the gates of a :class:`PatternEngine` (bars, passes, signals).

    Args:
        names: the enabled detectors, config order.
    """

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.bars = 0
        self.viewed = 0  # bars for which a view was built (some gate passed)
        self.passed = np.zeros(len(names), np.int64)
        self.fired = np.zeros(len(names), np.int64)

    def add(self, bars: int, passed: np.ndarray, viewed: int, fired: np.ndarray) -> None:
        """Count one minute: n bars, passes and signals per detector (int64 (patterns,))."""
        self.bars += bars
        self.viewed += viewed
        self.passed += passed
        self.fired += fired

    def report(self) -> dict[str, dict[str, float]]:
        """``name -> {passed, fired, pass_rate}`` (pass_rate = passed / bars, 0 without bars)."""
        return {
            n: {
                "passed": int(p),
                "fired": int(f),
                "pass_rate": float(p) / self.bars if self.bars else 0.0,
            }
            for n, p, f in zip(self.names, self.passed, self.fired, strict=True)
        }
