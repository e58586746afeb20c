"""``options:``: Black-Scholes-Merton inputs for option Greeks."""

from __future__ import annotations

from dataclasses import dataclass

from aion.config_checks import ConfigError


@dataclass(frozen=True)
class OptionsConfig:
    """``options:``: Black-Scholes-Merton inputs for option Greeks (see :mod:`aion.options`).

    ``rate`` and ``dividend_yield`` are continuously compounded fractions per year;
    ``trading_days_per_year`` converts trading days to expiry into years; ``iv_min``/``iv_max``
    bound the implied-volatility search (annualised fractions).
    """

    rate: float = 0.065
    dividend_yield: float = 0.0
    trading_days_per_year: float = 252.0
    iv_min: float = 0.0001
    iv_max: float = 5.0

    def __post_init__(self) -> None:
        if not -0.05 <= self.rate <= 0.5:
            raise ConfigError(
                f"options.rate: {self.rate!r} must be a fraction per year in [-0.05, 0.5], "
                "e.g. 0.065 for 6.5 %"
            )
        if not 0.0 <= self.dividend_yield <= 0.5:
            raise ConfigError(
                f"options.dividend_yield: {self.dividend_yield!r} must be a fraction per year "
                "in [0, 0.5], e.g. 0.013 for 1.3 %"
            )
        if not 200 <= self.trading_days_per_year <= 366:
            raise ConfigError(
                "options.trading_days_per_year: must be in [200, 366] (252 is Hull's convention)"
            )
        if not 0.0 < self.iv_min < self.iv_max <= 20.0:
            raise ConfigError(
                "options.iv_min/iv_max: need 0 < iv_min < iv_max <= 20 (fractions, 0.2 = 20 %)"
            )
