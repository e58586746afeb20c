"""``indicators:``: periods and sets of the indicator core, per timeframe."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from aion.config_checks import ConfigError, build_section, check_at_least, check_positive


@dataclass(frozen=True)
class IndicatorsConfig:
    """``indicators:``: periods (in bars) and sets of the indicator core, see
    :mod:`aion.indicators.core` for the output names and formulas.

    The top-level keys apply to every timeframe; ``timeframes`` maps a bar timeframe
    (``1m``, ``5m``, ``15m``, ``30m``, ``60m``) to overrides of any of them, read with
    :meth:`for_timeframe`.
    """

    ema_periods: tuple[int, ...] = (5, 10, 20, 50, 100, 200)
    sma_periods: tuple[int, ...] = (20, 50)
    rsi_period: int = 14
    atr_period: int = 14
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    bb_period: int = 20
    bb_nbdev: float = 2.0
    adx_period: int = 14
    stoch_fastk: int = 14
    stoch_slowk: int = 3
    stoch_slowd: int = 3
    willr_period: int = 14
    cci_period: int = 20
    roc_period: int = 10
    cmf_period: int = 20
    mfi_period: int = 14
    vwap_band_multipliers: tuple[float, ...] = (1.0, 2.0)
    keltner_period: int = 20
    keltner_atr_period: int = 10
    keltner_multiplier: float = 2.0
    donchian_period: int = 20
    timeframes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("ema_periods", "sma_periods"):
            periods = getattr(self, key)
            if key == "ema_periods" and not periods:
                raise ConfigError(f"indicators.{key}: give at least one period, e.g. [20, 50]")
            if len(set(periods)) != len(periods):
                raise ConfigError(f"indicators.{key}: periods must be distinct, got {periods}")
            for p in periods:
                check_at_least(f"indicators.{key}[{p}]", p, 2)
        for name in ("rsi", "bb", "adx", "willr", "cci", "mfi", "keltner"):
            check_at_least(f"indicators.{name}_period", getattr(self, f"{name}_period"), 2)
        for name in ("atr", "roc", "cmf", "keltner_atr", "donchian"):
            check_at_least(f"indicators.{name}_period", getattr(self, f"{name}_period"), 1)
        for key in ("macd_fast", "macd_signal"):
            check_at_least(f"indicators.{key}", getattr(self, key), 2)
        for key in ("stoch_fastk", "stoch_slowk", "stoch_slowd"):
            check_at_least(f"indicators.{key}", getattr(self, key), 1)
        if self.macd_slow <= self.macd_fast:
            raise ConfigError(
                f"indicators.macd_slow: {self.macd_slow} must exceed macd_fast {self.macd_fast}"
            )
        check_positive("indicators.bb_nbdev", self.bb_nbdev)
        check_positive("indicators.keltner_multiplier", self.keltner_multiplier)
        labels = [f"{m:g}" for m in self.vwap_band_multipliers]
        if len(set(labels)) != len(labels):
            raise ConfigError("indicators.vwap_band_multipliers: multipliers must be distinct")
        for m in self.vwap_band_multipliers:
            check_positive("indicators.vwap_band_multipliers[]", m)
        for tf in self.timeframes:
            self.for_timeframe(tf)  # validates every override

    def for_timeframe(self, timeframe: str) -> IndicatorsConfig:
        """The settings for bars of ``timeframe`` (``1m`` ... ``60m``): top level + overrides.

        Raises:
            ConfigError: an unknown timeframe or a bad override, naming
                ``indicators.timeframes.<tf>``.
        """
        key = f"indicators.timeframes.{timeframe}"
        if timeframe not in ("1m", "5m", "15m", "30m", "60m"):
            raise ConfigError(f"{key}: unknown timeframe (known: 1m, 5m, 15m, 30m, 60m)")
        override = self.timeframes.get(timeframe) or {}
        if not isinstance(override, dict) or "timeframes" in override:
            raise ConfigError(f"{key}: expected a mapping of indicator keys, e.g. rsi_period: 9")
        base = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        base["timeframes"] = {}
        try:
            merged: IndicatorsConfig = build_section(IndicatorsConfig, {**base, **override}, key)
        except ConfigError as exc:
            msg = str(exc)
            raise ConfigError(msg if msg.startswith(key) else f"{key}: {msg}") from exc
        return merged
