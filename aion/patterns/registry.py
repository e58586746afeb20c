"""The detector registry and the pattern engine.

A detector is one function ``(view: InstrumentView, **params) -> Signal | None``
registered by name with :func:`register`; ``config/patterns.yaml`` enables it
and sets its parameters, minimum confidence and cooldown. Unknown names or
parameters stop start-up with a message listing what is known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aion.config import ConfigError, PatternConfig


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


@dataclass(frozen=True)
class Detector:
    """A registered detector: its function, one-line description and parameters.

    ``params`` maps parameter name -> (default, one-line description).
    """

    name: str
    fn: DetectorFn
    description: str
    params: dict[str, tuple[Any, str]]


REGISTRY: dict[str, Detector] = {}


def register(
    name: str, description: str, params: dict[str, tuple[Any, str]]
) -> Callable[[DetectorFn], DetectorFn]:
    """Decorator registering a detector under ``name``.

    Raises:
        ValueError: ``name`` is already registered.
    """

    def deco(fn: DetectorFn) -> DetectorFn:
        if name in REGISTRY:
            raise ValueError(f"detector {name!r} registered twice")
        REGISTRY[name] = Detector(name, fn, description, params)
        return fn

    return deco


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
            params = {k: v[0] for k, v in det.params.items()} | dict(cfg.params)
            if cfg.enabled:
                self.active.append(ActivePattern(det, params, cfg.min_confidence, cfg.cooldown_s))

    def settings(self, name: str) -> ActivePattern:
        """The active pattern ``name``; KeyError when not enabled."""
        for a in self.active:
            if a.detector.name == name:
                return a
        raise KeyError(name)

    def detect(self, view: InstrumentView) -> list[Signal]:
        """Signals of every enabled detector for this bar, in config order."""
        out = []
        for a in self.active:
            sig = a.detector.fn(view, **a.params)
            if sig is not None:
                out.append(sig)
        return out
