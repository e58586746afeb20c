"""``volume:``, ``sessions:``, ``vix_regimes:``, ``fno:``: settings of the volume analytics."""

from __future__ import annotations

from dataclasses import dataclass, field

from aion.config_checks import ConfigError, check_at_least, check_positive


@dataclass(frozen=True)
class BaselineConfig:
    """``volume.baseline``: the time-of-day volume curve (:mod:`aion.volume.baseline`)."""

    intraday_history_dir: str | None = None
    sessions: int = 60
    min_sessions: int = 20

    def __post_init__(self) -> None:
        check_positive("volume.baseline.sessions", self.sessions)
        check_positive("volume.baseline.min_sessions", self.min_sessions)
        if self.min_sessions > self.sessions:
            raise ConfigError("volume.baseline.min_sessions: must be <= volume.baseline.sessions")


@dataclass(frozen=True)
class ProfileConfig:
    """``volume.profile``: the session volume profile (:mod:`aion.volume.profile`)."""

    bin_ticks: int = 1
    fallback_tick_size: float = 0.05
    max_bins: int = 512
    value_area: float = 0.70
    smoothing_bins: int = 5
    hvn_ratio: float = 1.5
    lvn_ratio: float = 0.5
    max_nodes: int = 5
    bins_interval_min: int = 5

    def __post_init__(self) -> None:
        check_positive("volume.profile.bin_ticks", self.bin_ticks)
        check_positive("volume.profile.fallback_tick_size", self.fallback_tick_size)
        check_at_least("volume.profile.max_bins", self.max_bins, 16)
        if not 0.0 < self.value_area < 1.0:
            raise ConfigError(
                f"volume.profile.value_area: must be in (0, 1), e.g. 0.70, got {self.value_area!r}"
            )
        if self.smoothing_bins < 1 or self.smoothing_bins % 2 == 0:
            raise ConfigError("volume.profile.smoothing_bins: must be an odd integer >= 1")
        if not self.hvn_ratio > 1.0:
            raise ConfigError("volume.profile.hvn_ratio: must be > 1 (x the mean bin volume)")
        if not 0.0 <= self.lvn_ratio < 1.0:
            raise ConfigError("volume.profile.lvn_ratio: must be in [0, 1) (x the mean bin volume)")
        check_positive("volume.profile.max_nodes", self.max_nodes)
        check_positive("volume.profile.bins_interval_min", self.bins_interval_min)


@dataclass(frozen=True)
class VolumeConfig:
    average_days: int = 20
    long_average_days: int = 55
    daily_history_dir: str | None = None
    adjustment_factors: str | None = None
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)

    def __post_init__(self) -> None:
        check_positive("volume.average_days", self.average_days)
        check_positive("volume.long_average_days", self.long_average_days)


def _hhmm(key: str, text: str) -> int:
    """``HH:MM`` (IST) -> minute of day; ConfigError naming ``key`` otherwise."""
    try:
        hh, mm = (int(x) for x in text.split(":"))
    except ValueError:
        hh, mm = -1, -1
    if not (0 <= hh < 24 and 0 <= mm < 60):
        raise ConfigError(f"{key}: {text!r} must be an IST time HH:MM, e.g. 09:30")
    return hh * 60 + mm


@dataclass(frozen=True)
class SessionWindow:
    """A window ``[start, end)`` of the regular session (IST ``HH:MM``) and its multiplier.

    ``multiplier`` (dimensionless, > 0) scales detector volume thresholds for bars
    starting inside the window. Checked by :class:`SessionsConfig`.
    """

    start: str
    end: str
    multiplier: float = 1.0

    def check(self, key: str) -> tuple[int, int]:
        """Validate; returns ``(start, end)`` as IST minutes of day. Raises ConfigError."""
        lo = _hhmm(f"{key}.start", self.start)
        hi = _hhmm(f"{key}.end", self.end)
        if not 9 * 60 + 15 <= lo < hi <= 15 * 60 + 30:
            raise ConfigError(
                f"{key}: start {self.start} must be before end {self.end}, both within 09:15-15:30"
            )
        check_positive(f"{key}.multiplier", self.multiplier)
        return lo, hi


@dataclass(frozen=True)
class SessionsConfig:
    """``sessions``: opening and closing windows with their threshold multipliers."""

    opening: SessionWindow = field(default_factory=lambda: SessionWindow("09:15", "09:30", 1.5))
    closing: SessionWindow = field(default_factory=lambda: SessionWindow("15:15", "15:30", 1.25))

    def __post_init__(self) -> None:
        if self.opening.check("sessions.opening")[1] > self.closing.check("sessions.closing")[0]:
            raise ConfigError("sessions.opening: must end before sessions.closing starts")


@dataclass(frozen=True)
class VixRegime:
    """One INDIA VIX regime: VIX (index points, annualised %) below ``below`` (None: no bound)."""

    name: str
    below: float | None
    multiplier: float


def _default_regimes() -> tuple[VixRegime, ...]:
    return (
        VixRegime("LOW", 12.0, 0.9),
        VixRegime("NORMAL", 18.0, 1.0),
        VixRegime("HIGH", 25.0, 1.25),
        VixRegime("PANIC", None, 1.5),
    )


@dataclass(frozen=True)
class VixRegimesConfig:
    """``vix_regimes``: INDIA VIX regimes, ascending, read from the VIX index ticks."""

    symbol: str = "NSE:INDIA VIX"
    regimes: tuple[VixRegime, ...] = field(default_factory=_default_regimes)

    def __post_init__(self) -> None:
        if not self.regimes:
            raise ConfigError("vix_regimes.regimes: give at least one regime")
        names = [r.name for r in self.regimes]
        if len(set(names)) != len(names) or not all(names):
            raise ConfigError("vix_regimes.regimes: names must be unique and non-empty")
        prev = 0.0
        for i, r in enumerate(self.regimes):
            key = f"vix_regimes.regimes[{i}]"
            check_positive(f"{key}.multiplier", r.multiplier)
            last = i == len(self.regimes) - 1
            if last and r.below is not None:
                raise ConfigError(f"{key}.below: the last regime must have below: null")
            if not last and (r.below is None or not r.below > prev):
                raise ConfigError(
                    f"{key}.below: must be a VIX level above the previous regime's ({prev})"
                )
            prev = r.below if r.below is not None else prev


@dataclass(frozen=True)
class FnoConfig:
    """``fno``: expected-volume adjustments for futures and options (:mod:`aion.volume.fno`)."""

    expiry_days: tuple[int, ...] = (0, 1, 3)
    expiry_multipliers: tuple[float, ...] = (1.5, 1.25, 1.1)
    moneyness_scale_pct: float = 2.0
    moneyness_floor: float = 0.1

    def __post_init__(self) -> None:
        if len(self.expiry_days) != len(self.expiry_multipliers):
            raise ConfigError("fno.expiry_multipliers: one multiplier per fno.expiry_days entry")
        if list(self.expiry_days) != sorted(set(self.expiry_days)) or any(
            d < 0 for d in self.expiry_days
        ):
            raise ConfigError("fno.expiry_days: must be distinct, ascending trading days >= 0")
        for i, m in enumerate(self.expiry_multipliers):
            check_positive(f"fno.expiry_multipliers[{i}]", m)
        check_positive("fno.moneyness_scale_pct", self.moneyness_scale_pct)
        if not 0.0 < self.moneyness_floor <= 1.0:
            raise ConfigError("fno.moneyness_floor: must be in (0, 1]")
