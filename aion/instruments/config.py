"""``universe:``: the instruments a scan subscribes, with futures and options selectors."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from aion.config_checks import ConfigError, check_choice


@dataclass(frozen=True)
class FuturesSelector:
    """Futures of one underlying, resolved from the instrument master at start-up."""

    underlying: str = ""  # the master's ``name`` column, e.g. NIFTY, RELIANCE
    exchange: str = "NFO"
    months: tuple[str, ...] = ("near", "next")  # near = nearest expiry, next = the one after
    mode: str | None = None  # ltp | quote | full; null: kite.default_mode

    def __post_init__(self) -> None:
        if not self.underlying:
            raise ConfigError("universe.futures[].underlying: give the underlying, e.g. NIFTY")
        for m in self.months:
            check_choice("universe.futures[].months", m, ("near", "next", "far"))
        if self.mode is not None:
            check_choice("universe.futures[].mode", self.mode, ("ltp", "quote", "full"))


@dataclass(frozen=True)
class OptionsSelector:
    """Options of one underlying within +/- ``strikes`` strikes of at-the-money."""

    underlying: str = ""  # the master's ``name`` column, e.g. NIFTY
    exchange: str = "NFO"
    expiry: str = "near"  # near | next | far | YYYY-MM-DD
    strikes: int = 10  # strikes each side of the ATM strike (CE and PE of each)
    spot: str | None = None  # symbol whose price sets ATM, e.g. "NSE:NIFTY 50"
    atm_strike: float | None = None  # fixed ATM strike in rupees (else from spot)
    mode: str | None = None

    def __post_init__(self) -> None:
        if not self.underlying:
            raise ConfigError("universe.options[].underlying: give the underlying, e.g. NIFTY")
        if self.expiry not in ("near", "next", "far"):
            try:
                dt.date.fromisoformat(self.expiry)
            except ValueError:
                raise ConfigError(
                    f"universe.options[].expiry: {self.expiry!r} is not near, next, far "
                    "or YYYY-MM-DD"
                ) from None
        if self.strikes < 0:
            raise ConfigError("universe.options[].strikes: must be >= 0")
        if self.spot is None and self.atm_strike is None:
            raise ConfigError(
                "universe.options[]: set spot (e.g. 'NSE:NIFTY 50') or atm_strike to locate ATM"
            )
        if self.mode is not None:
            check_choice("universe.options[].mode", self.mode, ("ltp", "quote", "full"))


@dataclass(frozen=True)
class UniverseConfig:
    symbols: tuple[str, ...] = ()
    indices: tuple[str, ...] = ()
    modes: dict[str, str] = field(default_factory=dict)  # symbol -> ltp | quote | full
    futures: tuple[FuturesSelector, ...] = ()
    options: tuple[OptionsSelector, ...] = ()

    def __post_init__(self) -> None:
        for key, group in (("symbols", self.symbols), ("indices", self.indices)):
            for s in group:
                if ":" not in s:
                    raise ConfigError(
                        f"universe.{key}: {s!r} must be EXCHANGE:TRADINGSYMBOL, e.g. NSE:RELIANCE"
                    )
        for sym, mode in self.modes.items():
            check_choice(f"universe.modes.{sym}", str(mode), ("ltp", "quote", "full"))
