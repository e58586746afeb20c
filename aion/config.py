"""Configuration: ``config/aion.yaml`` and ``config/patterns.yaml``, validated at start-up.

Every section is a frozen dataclass; unknown keys, wrong types and out-of-range
values raise :class:`ConfigError` whose message is one line naming the key and
the fix. Environment variables override endpoints and secrets:
``REDIS_URL`` (redis.url), ``AION_DATA_DIR`` (paths.data_dir),
``KITE_API_KEY`` / ``KITE_ACCESS_TOKEN`` (never stored in the config file).

The config folder is ``--config DIR``, else ``AION_CONFIG_DIR``, else
``./config`` when it holds ``aion.yaml``, else the repository's ``config/``
beside the ``aion`` package (source and editable installs).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import types
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from aion.market.calendar import MarketCalendar, SpecialSession


class ConfigError(ValueError):
    """A bad configuration value; ``str()`` is one line naming the key and the fix."""


@dataclass(frozen=True)
class KiteConfig:
    """Kite connection: endpoint, watchdog, reconnect backoff, secrets and instrument master."""

    ws_url: str = "wss://ws.kite.trade"
    default_mode: str = "full"
    watchdog_s: float = 5.0  # no frame (data or heartbeat) for this long: reconnect
    ping_interval_s: float = 10.0  # WebSocket ping cadence (0: off)
    backoff_initial_s: float = 1.0  # first reconnect backoff ceiling (full jitter)
    backoff_cap_s: float = 60.0
    max_attempts_off_hours: int = 30  # give up after this many failures outside market hours
    secrets_file: str | None = None  # NAME=VALUE file, owner-only (mode 0600)
    api_url: str = "https://api.kite.trade"  # REST root (instruments dump, LTP)
    instruments_csv: tuple[str, ...] = ()  # local instrument master CSVs: no download
    instruments_cache_dir: str | None = None  # null: <data_dir>/instruments

    def __post_init__(self) -> None:
        _choice("kite.default_mode", self.default_mode, ("ltp", "quote", "full"))
        if not self.ws_url.startswith(("ws://", "wss://")):
            raise ConfigError(f"kite.ws_url: {self.ws_url!r} must start with ws:// or wss://")
        _positive("kite.watchdog_s", self.watchdog_s)
        if self.ping_interval_s < 0:
            raise ConfigError("kite.ping_interval_s: must be >= 0 seconds (0 turns pings off)")
        _positive("kite.backoff_initial_s", self.backoff_initial_s)
        if self.backoff_cap_s < self.backoff_initial_s:
            raise ConfigError("kite.backoff_cap_s: must be >= kite.backoff_initial_s")
        if self.max_attempts_off_hours < 0:
            raise ConfigError("kite.max_attempts_off_hours: must be >= 0 (0: never give up)")
        if not self.api_url.startswith(("http://", "https://")):
            raise ConfigError(f"kite.api_url: {self.api_url!r} must start with https://")


@dataclass(frozen=True)
class FeedConfig:
    """``feed:``: how the scan merges its connections (:mod:`aion.pipeline.merge`).

    ``close_wait_ms``: a minute closes when every active connection's exchange clock has
    passed it; a connection silent for more than this (receive time, ms: no timed frame)
    whose clock also trails the leading one by more than this (exchange time) no longer holds
    the close back, and what it sends later of a closed minute is late. 2,500 ms: Kite stamps
    ticks to the second and a liquid instrument ticks every second, so a live connection
    silent for 2.5 s is stuck, not slow; the wait is what a stuck connection can delay every
    minute's alerts by.
    """

    close_wait_ms: int = 2500

    def __post_init__(self) -> None:
        _at_least("feed.close_wait_ms", self.close_wait_ms, 0)


@dataclass(frozen=True)
class TtlDays:
    bars: int = 8
    state: int = 2
    alerts: int = 8
    runs: int = 30

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _positive(f"redis.ttl_days.{f.name}", getattr(self, f.name))


@dataclass(frozen=True)
class RedisTlsConfig:
    """Files for a ``rediss://`` connection (PEM paths; None: system CAs, no client cert)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def __post_init__(self) -> None:
        for name in ("ca_file", "cert_file", "key_file"):
            value = getattr(self, name)
            if value is not None and not Path(value).expanduser().is_file():
                raise ConfigError(
                    f"redis.tls.{name}: {value!r} is not a readable file; give the PEM path or null"
                )
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError(
                "redis.tls.cert_file: a client certificate needs both cert_file and key_file"
            )


@dataclass(frozen=True)
class RedisConfig:
    url: str | None = None
    flush_interval_ms: int = 200
    max_buffered_commands: int = 500_000
    ttl_days: TtlDays = field(default_factory=TtlDays)
    alerts_maxlen: int = 100_000
    tls: RedisTlsConfig = field(default_factory=RedisTlsConfig)

    def __post_init__(self) -> None:
        _positive("redis.flush_interval_ms", self.flush_interval_ms)
        _positive("redis.max_buffered_commands", self.max_buffered_commands)
        _positive("redis.alerts_maxlen", self.alerts_maxlen)
        if self.url is not None and not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                "redis.url: must start with redis://, rediss:// or unix:// (or be null to let "
                "aion run its own redis-server)"
            )


@dataclass(frozen=True)
class PathsConfig:
    data_dir: str | None = None


@dataclass(frozen=True)
class QueuesConfig:
    raw_maxsize: int = 20_000
    raw_max_mb: int = 32
    compute_batch_mb: int = 32
    out_maxsize: int = 20_000
    out_max_mb: int = 128
    block_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        _positive("queues.raw_maxsize", self.raw_maxsize)
        _positive("queues.raw_max_mb", self.raw_max_mb)
        _positive("queues.compute_batch_mb", self.compute_batch_mb)
        _positive("queues.out_maxsize", self.out_maxsize)
        _positive("queues.out_max_mb", self.out_max_mb)
        _positive("queues.block_timeout_s", self.block_timeout_s)


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
            _choice("universe.futures[].months", m, ("near", "next", "far"))
        if self.mode is not None:
            _choice("universe.futures[].mode", self.mode, ("ltp", "quote", "full"))


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
            _choice("universe.options[].mode", self.mode, ("ltp", "quote", "full"))


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
            _choice(f"universe.modes.{sym}", str(mode), ("ltp", "quote", "full"))


@dataclass(frozen=True)
class BaselineConfig:
    """``volume.baseline``: the time-of-day volume curve (:mod:`aion.volume.baseline`)."""

    intraday_history_dir: str | None = None
    sessions: int = 60
    min_sessions: int = 20

    def __post_init__(self) -> None:
        _positive("volume.baseline.sessions", self.sessions)
        _positive("volume.baseline.min_sessions", self.min_sessions)
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
        _positive("volume.profile.bin_ticks", self.bin_ticks)
        _positive("volume.profile.fallback_tick_size", self.fallback_tick_size)
        _at_least("volume.profile.max_bins", self.max_bins, 16)
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
        _positive("volume.profile.max_nodes", self.max_nodes)
        _positive("volume.profile.bins_interval_min", self.bins_interval_min)


@dataclass(frozen=True)
class VolumeConfig:
    average_days: int = 20
    long_average_days: int = 55
    daily_history_dir: str | None = None
    adjustment_factors: str | None = None
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)

    def __post_init__(self) -> None:
        _positive("volume.average_days", self.average_days)
        _positive("volume.long_average_days", self.long_average_days)


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
        _positive(f"{key}.multiplier", self.multiplier)
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
            _positive(f"{key}.multiplier", r.multiplier)
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
            _positive(f"fno.expiry_multipliers[{i}]", m)
        _positive("fno.moneyness_scale_pct", self.moneyness_scale_pct)
        if not 0.0 < self.moneyness_floor <= 1.0:
            raise ConfigError("fno.moneyness_floor: must be in (0, 1]")


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
                _at_least(f"indicators.{key}[{p}]", p, 2)
        for name in ("rsi", "bb", "adx", "willr", "cci", "mfi", "keltner"):
            _at_least(f"indicators.{name}_period", getattr(self, f"{name}_period"), 2)
        for name in ("atr", "roc", "cmf", "keltner_atr", "donchian"):
            _at_least(f"indicators.{name}_period", getattr(self, f"{name}_period"), 1)
        for key in ("macd_fast", "macd_signal"):
            _at_least(f"indicators.{key}", getattr(self, key), 2)
        for key in ("stoch_fastk", "stoch_slowk", "stoch_slowd"):
            _at_least(f"indicators.{key}", getattr(self, key), 1)
        if self.macd_slow <= self.macd_fast:
            raise ConfigError(
                f"indicators.macd_slow: {self.macd_slow} must exceed macd_fast {self.macd_fast}"
            )
        _positive("indicators.bb_nbdev", self.bb_nbdev)
        _positive("indicators.keltner_multiplier", self.keltner_multiplier)
        labels = [f"{m:g}" for m in self.vwap_band_multipliers]
        if len(set(labels)) != len(labels):
            raise ConfigError("indicators.vwap_band_multipliers: multipliers must be distinct")
        for m in self.vwap_band_multipliers:
            _positive("indicators.vwap_band_multipliers[]", m)
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
            merged: IndicatorsConfig = _build(IndicatorsConfig, {**base, **override}, key)
        except ConfigError as exc:
            msg = str(exc)
            raise ConfigError(msg if msg.startswith(key) else f"{key}: {msg}") from exc
        return merged


@dataclass(frozen=True)
class RiskConfig:
    capital: float = 1_000_000.0
    risk_per_trade: float = 0.01
    atr_stop_multiple: float = 1.5
    reward_multiple: float = 2.0

    def __post_init__(self) -> None:
        _positive("risk.capital", self.capital)
        if not 0 < self.risk_per_trade <= 0.1:
            raise ConfigError("risk.risk_per_trade: must be in (0, 0.1], a fraction of capital")
        _positive("risk.atr_stop_multiple", self.atr_stop_multiple)
        _positive("risk.reward_multiple", self.reward_multiple)


@dataclass(frozen=True)
class AlertsConfig:
    """Alert policy (:mod:`aion.alerts.manager` documents each rule)."""

    min_confidence: float = 0.85
    market_hours_only: bool = True
    max_alerts_per_minute: int = 10
    conflict_policy: str = "keep_stronger"

    def __post_init__(self) -> None:
        _unit("alerts.min_confidence", self.min_confidence)
        _at_least("alerts.max_alerts_per_minute", self.max_alerts_per_minute, 1)
        _choice("alerts.conflict_policy", self.conflict_policy, ("keep_stronger", "drop_all"))


@dataclass(frozen=True)
class ValidationConfig:
    """Forward validation (:mod:`aion.validation`): windows in minutes, random baseline."""

    windows_min: tuple[int, ...] = (1, 2, 5, 10, 30, 60)
    baseline_draws: int = 10
    baseline_jitter_min: int = 30
    seed: int = 20221111

    def __post_init__(self) -> None:
        if not self.windows_min:
            raise ConfigError("validation.windows_min: give at least one window, e.g. [1, 5, 30]")
        for w in self.windows_min:
            if w < 1:
                raise ConfigError(f"validation.windows_min: window {w} must be >= 1 minute")
        _at_least("validation.baseline_draws", self.baseline_draws, 1)
        _at_least("validation.baseline_jitter_min", self.baseline_jitter_min, 0)


@dataclass(frozen=True)
class MemoryConfig:
    """``memory:``: glibc allocator settings (see :mod:`aion.pipeline.allocator`) and
    CPython's cyclic garbage collector during a scan.

    ``gc_thresholds``: :func:`gc.set_threshold` ``(gen0, gen1, gen2)`` while a scan runs
    (restored by :meth:`aion.app.Scanner.stop`; CPython's default is ``(700, 10, 10)``). A
    minute close of 9,000 instruments allocates on the order of 10^5 short-lived containers,
    so the default runs a generation-0 collection every 700 of them and periodically a full
    one over every tracked object; the default ``(50000, 20, 20)`` collects far less often
    (decision and measurements: ``docs/decisions/0001-gc-thresholds.md``).
    """

    mmap_threshold_mb: int = 1
    trim_threshold_mb: int = 64
    trim_interval_s: float = 1.0
    gc_thresholds: tuple[int, ...] = (50_000, 20, 20)

    def __post_init__(self) -> None:
        if len(self.gc_thresholds) != 3 or any(t < 1 for t in self.gc_thresholds):
            raise ConfigError(
                "memory.gc_thresholds: must be three integers >= 1 (gen0, gen1, gen2; "
                f"CPython's default is [700, 10, 10]), got {list(self.gc_thresholds)!r}"
            )
        _positive("memory.mmap_threshold_mb", self.mmap_threshold_mb)
        _positive("memory.trim_threshold_mb", self.trim_threshold_mb)
        if self.trim_interval_s < 0:
            raise ConfigError(
                f"memory.trim_interval_s: must be >= 0 seconds (0 = never), "
                f"got {self.trim_interval_s!r}"
            )


@dataclass(frozen=True)
class ThreadsConfig:
    """``threads:``: CPython thread scheduling of a scan (set by :meth:`aion.app.Scanner.start`).

    ``gil_switch_interval_ms``: :func:`sys.setswitchinterval` in milliseconds, how long a
    thread waiting for the GIL lets the running one keep it before asking it to drop it
    (CPython's default is 5). A thread coming back from a call that released the GIL (numpy,
    Numba ``nogil`` kernels, socket I/O) waits up to this long while another thread runs
    Python code, per call; the default 0.5 ms keeps the compute thread's minute close from
    waiting on the feed and store threads (decision and measurements:
    ``docs/decisions/0002-gil-hand-offs.md``).
    """

    gil_switch_interval_ms: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.gil_switch_interval_ms <= 100.0:
            raise ConfigError(
                "threads.gil_switch_interval_ms: must be > 0 and <= 100 milliseconds "
                f"(CPython's default is 5), got {self.gil_switch_interval_ms!r}"
            )


@dataclass(frozen=True)
class ArchiveConfig:
    """``archive:``: the Parquet archive (see :mod:`aion.archive`)."""

    enabled: bool = True
    path: str | None = None  # null: <data_dir>/archive
    flush_interval_s: float = 2.0
    queue_maxsize: int = 10_000
    retention_days: int = 400
    max_pending_rows: int = 10_000

    def __post_init__(self) -> None:
        _positive("archive.flush_interval_s", self.flush_interval_s)
        _positive("archive.max_pending_rows", self.max_pending_rows)
        _positive("archive.queue_maxsize", self.queue_maxsize)
        _positive("archive.retention_days", self.retention_days)


@dataclass(frozen=True)
class ReportsConfig:
    """``reports:``: where ``aion audit`` writes its dated reports, and how many it keeps."""

    path: str | None = None  # null: <data_dir>/reports
    keep_last: int = 30

    def __post_init__(self) -> None:
        _positive("reports.keep_last", self.keep_last)


@dataclass(frozen=True)
class LoggingConfig:
    """``logging:``: structured logs (see :mod:`aion.ops.logging`)."""

    level: str = "INFO"
    format: str = "text"
    file: bool = True
    max_bytes: int = 10_000_000
    backup_count: int = 5

    def __post_init__(self) -> None:
        _choice("logging.level", self.level, ("DEBUG", "INFO", "WARNING", "ERROR"))
        _choice("logging.format", self.format, ("text", "json"))
        _positive("logging.max_bytes", self.max_bytes)
        _at_least("logging.backup_count", self.backup_count, 1)


@dataclass(frozen=True)
class HealthConfig:
    """``health:``: thresholds of ``aion health`` (see :mod:`aion.ops.health`)."""

    memory_degraded_fraction: float = 0.9
    tick_stale_s: float = 60.0
    min_free_disk_mb: int = 1024
    averages_max_age_days: int = 4

    def __post_init__(self) -> None:
        _unit("health.memory_degraded_fraction", self.memory_degraded_fraction)
        _positive("health.tick_stale_s", self.tick_stale_s)
        _positive("health.min_free_disk_mb", self.min_free_disk_mb)
        _positive("health.averages_max_age_days", self.averages_max_age_days)


@dataclass(frozen=True)
class SpecialSessionConfig:
    """A ``calendar.special_sessions`` entry: ``date`` YYYY-MM-DD, ``open``/``close`` HH:MM IST."""

    date: str = ""
    open: str = ""
    close: str = ""
    name: str = ""


@dataclass(frozen=True)
class CalendarConfig:
    """``calendar:``: sessions the XNSE calendar lacks (e.g. a weekend Muhurat session)."""

    special_sessions: tuple[SpecialSessionConfig, ...] = ()
    scan_lead_minutes: int = 15

    def __post_init__(self) -> None:
        _at_least("calendar.scan_lead_minutes", self.scan_lead_minutes, 0)
        self.market_calendar()  # validates every entry

    def market_calendar(self) -> MarketCalendar:
        """The XNSE calendar with the configured special sessions.

        Raises:
            ConfigError: a bad date/time, naming ``calendar.special_sessions[i].<key>``.
        """
        out = []
        for i, s in enumerate(self.special_sessions):
            key = f"calendar.special_sessions[{i}]"
            try:
                day = dt.datetime.strptime(s.date, "%Y-%m-%d").date()
            except ValueError as exc:
                raise ConfigError(f"{key}.date: {s.date!r} must be YYYY-MM-DD") from exc
            times = []
            for name, text in (("open", s.open), ("close", s.close)):
                try:
                    times.append(dt.datetime.strptime(text, "%H:%M").time())
                except ValueError as exc:
                    raise ConfigError(f"{key}.{name}: {text!r} must be HH:MM (IST)") from exc
            if times[1] <= times[0]:
                raise ConfigError(f"{key}.close: {s.close} must be after open {s.open}")
            out.append(SpecialSession(day, times[0], times[1], s.name))
        return MarketCalendar(out)


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


@dataclass(frozen=True)
class DashboardConfig:
    """``dashboard:``: where ``aion dashboard`` listens and its bearer token.

    ``auth_token`` (env ``AION_DASHBOARD_TOKEN`` overrides) is required to bind anywhere but
    loopback; it is kept out of ``repr`` so it never reaches a log line.
    """

    host: str = "127.0.0.1"
    port: int = 8050
    auth_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"dashboard.port: {self.port} must be in 1..65535")


NOTIFY_FORMATS = ("json", "discord", "slack")
"""Webhook payloads: ``json`` (the alert's fields), ``discord`` (``{"content": text}``),
``slack`` (``{"text": text}``); see :mod:`aion.notify.message`."""


@dataclass(frozen=True)
class TelegramConfig:
    """``notify.telegram``: Bot API ``sendMessage`` to ``chat_ids``.

    The bot token is never in the config file: env ``AION_TELEGRAM_BOT_TOKEN``, else the
    same name in ``kite.secrets_file`` (mode 0600). ``chat_ids`` are Telegram chat ids as
    strings (negative for groups, or ``@channelusername``). Pacing follows Telegram's
    published limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
    ``per_chat_interval_s`` between two messages to one chat (1 s), ``per_group_per_min``
    messages a minute to one group (20), ``global_per_s`` messages a second in all (30).
    """

    enabled: bool = False
    chat_ids: tuple[str, ...] = ()
    api_url: str = "https://api.telegram.org"
    per_chat_interval_s: float = 1.0
    per_group_per_min: int = 20
    global_per_s: int = 30

    def __post_init__(self) -> None:
        if self.enabled and not self.chat_ids:
            raise ConfigError("notify.telegram.chat_ids: give at least one chat id when enabled")
        for i, c in enumerate(self.chat_ids):
            if not (c.lstrip("-").isdigit() or (c.startswith("@") and len(c) > 1)):
                raise ConfigError(
                    f"notify.telegram.chat_ids[{i}]: {c!r} must be a numeric chat id "
                    '(quoted, e.g. "-1001234567890") or @channelusername'
                )
        if not self.api_url.startswith(("http://", "https://")):
            raise ConfigError(f"notify.telegram.api_url: {self.api_url!r} must start with https://")
        _positive("notify.telegram.per_chat_interval_s", self.per_chat_interval_s)
        _positive("notify.telegram.per_group_per_min", self.per_group_per_min)
        _positive("notify.telegram.global_per_s", self.global_per_s)


@dataclass(frozen=True)
class WebhookConfig:
    """One ``notify.webhooks`` entry: JSON POST of each alert to ``url``.

    ``format``: ``json`` (the alert's stream fields), ``discord`` or ``slack`` (a message
    text those services render). The URL often carries a secret (Discord, Slack): it is
    kept out of ``repr`` and logs show only its host.
    """

    url: str = field(default="", repr=False)
    format: str = "json"

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError("notify.webhooks[].url: must start with http:// or https://")
        _choice("notify.webhooks[].format", self.format, NOTIFY_FORMATS)


@dataclass(frozen=True)
class NotifyConfig:
    """``notify:``: Telegram and webhook notifications of the day's alerts (:mod:`aion.notify`).

    Off by default. ``patterns`` (empty: all) and ``min_confidence`` (in [0, 1]) filter the
    alerts sent; ``daily_cap_per_chat`` bounds the messages one chat (or webhook) receives
    per trading day (0: no cap). ``dashboard_url`` is the base of the instrument-view link
    in each message (null: no link). ``group``/``consumer`` name the Redis consumer group
    and this notifier in it. Retries: HTTP 429 waits the server's ``retry_after``; 5xx and
    connection errors back off exponentially from ``backoff_initial_s`` to ``backoff_cap_s``;
    after ``max_attempts`` a message fails for good (counted, logged, acknowledged).
    ``timeout_s`` bounds one HTTP request. ``in_scan`` runs the notifier as a thread of
    ``aion scan``.
    """

    enabled: bool = False
    in_scan: bool = False
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    webhooks: tuple[WebhookConfig, ...] = ()
    patterns: tuple[str, ...] = ()
    min_confidence: float = 0.0
    daily_cap_per_chat: int = 200
    dashboard_url: str | None = "http://127.0.0.1:8050/"
    group: str = "notify"
    consumer: str = "notify-1"
    timeout_s: float = 10.0
    backoff_initial_s: float = 1.0
    backoff_cap_s: float = 60.0
    max_attempts: int = 8

    def __post_init__(self) -> None:
        _unit("notify.min_confidence", self.min_confidence)
        _at_least("notify.daily_cap_per_chat", self.daily_cap_per_chat, 0)
        if self.dashboard_url is not None and not self.dashboard_url.startswith(
            ("http://", "https://")
        ):
            raise ConfigError(
                f"notify.dashboard_url: {self.dashboard_url!r} must start with http:// or "
                "https:// (or be null for no link)"
            )
        for key in ("group", "consumer"):
            value = getattr(self, key)
            if not value or any(c.isspace() for c in value):
                raise ConfigError(f"notify.{key}: must be a non-empty name without spaces")
        _positive("notify.timeout_s", self.timeout_s)
        _positive("notify.backoff_initial_s", self.backoff_initial_s)
        if self.backoff_cap_s < self.backoff_initial_s:
            raise ConfigError("notify.backoff_cap_s: must be >= notify.backoff_initial_s")
        _positive("notify.max_attempts", self.max_attempts)
        if self.enabled and not (self.telegram.enabled or self.webhooks):
            raise ConfigError(
                "notify.enabled: enable notify.telegram or list notify.webhooks (or set "
                "enabled: false)"
            )


@dataclass(frozen=True)
class AionConfig:
    """The whole of ``aion.yaml`` after validation and environment overrides."""

    kite: KiteConfig = field(default_factory=KiteConfig)
    feed: FeedConfig = field(default_factory=FeedConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    queues: QueuesConfig = field(default_factory=QueuesConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    threads: ThreadsConfig = field(default_factory=ThreadsConfig)
    universe: UniverseConfig = field(default_factory=UniverseConfig)
    volume: VolumeConfig = field(default_factory=VolumeConfig)
    sessions: SessionsConfig = field(default_factory=SessionsConfig)
    vix_regimes: VixRegimesConfig = field(default_factory=VixRegimesConfig)
    fno: FnoConfig = field(default_factory=FnoConfig)
    indicators: IndicatorsConfig = field(default_factory=IndicatorsConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    calendar: CalendarConfig = field(default_factory=CalendarConfig)
    options: OptionsConfig = field(default_factory=OptionsConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)

    def data_dir(self) -> Path:
        """Folder for aion's own redis-server data, caches and the archive."""
        if self.paths.data_dir:
            return Path(self.paths.data_dir).expanduser()
        xdg = os.environ.get("XDG_DATA_HOME")
        return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "aion"


@dataclass(frozen=True)
class PatternConfig:
    """One entry of ``patterns.yaml``: a registered detector and its settings."""

    name: str
    enabled: bool = True
    min_confidence: float | None = None
    cooldown_s: int = 900
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.min_confidence is not None:
            _unit(f"{self.name}.min_confidence", self.min_confidence)
        if self.cooldown_s < 0:
            raise ConfigError(f"{self.name}.cooldown_s: must be >= 0 seconds")


# -- validation helpers --------------------------------------------------------------------


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(allowed)}")


def _positive(key: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{key}: must be > 0, got {value!r}")


def _at_least(key: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"{key}: must be >= {low}, got {value!r}")


def _unit(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key}: must be within [0, 1], got {value!r}")


def _check_type(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a simple type hint; returns the value coerced (int -> float)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(key, value, a)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} has the wrong type (expected {hint})")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1]
        return tuple(_check_type(f"{key}[{i}]", v, item) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    return value


def _build(cls: Any, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for k in data:
        if k not in known:
            where = f"{prefix}.{k}" if prefix else str(k)
            raise ConfigError(f"{where}: unknown key (known: {', '.join(sorted(known))})")
    kwargs = {}
    for k, v in data.items():
        kwargs[k] = _check_type(f"{prefix}.{k}" if prefix else k, v, hints[k])
    return cls(**kwargs)


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found; pass --config DIR holding it") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML; fix the syntax there") from exc


def default_config_dir() -> Path:
    """``AION_CONFIG_DIR`` if set, else ``./config`` if it holds aion.yaml, else the repo's."""
    env = os.environ.get("AION_CONFIG_DIR")
    if env:
        return Path(env)
    local = Path("config")
    if (local / "aion.yaml").exists():
        return local
    return Path(__file__).resolve().parent.parent / "config"


def load_config(config_dir: Path | None = None) -> AionConfig:
    """Load and validate ``aion.yaml`` from ``config_dir``; apply environment overrides.

    Raises:
        ConfigError: one line naming the bad key and the fix.
    """
    cdir = config_dir or default_config_dir()
    raw = _read_yaml(cdir / "aion.yaml") or {}
    cfg: AionConfig = _build(AionConfig, raw, "")
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        cfg = dataclasses.replace(cfg, redis=dataclasses.replace(cfg.redis, url=redis_url))
    data_dir = os.environ.get("AION_DATA_DIR")
    if data_dir:
        cfg = dataclasses.replace(cfg, paths=PathsConfig(data_dir=data_dir))
    return cfg


PATTERNS_ENV = "AION_PATTERNS"
"""Environment variable choosing which ``patterns.yaml`` entries run (see
:func:`select_patterns`); ``aion scan --patterns`` overrides it."""


def select_patterns(configs: list[PatternConfig], selection: str | None) -> list[PatternConfig]:
    """The entries of ``configs`` that run under ``selection``.

    ``"enabled"`` (or None): the file's ``enabled`` flags. ``"all"``: every entry with its
    settings, the disabled ones too: research runs (``aion evaluate``, the demo, the test
    suite), since the shipped file enables only patterns with evidence of an edge over random
    entries (issue 23, README Evidence). Otherwise a comma-separated list of entry names:
    exactly those run.

    Raises:
        ConfigError: a name that is not an entry of ``patterns.yaml``.
    """
    sel = (selection or "enabled").strip()
    if sel == "enabled":
        return configs
    if sel == "all":
        return [replace(c, enabled=True) for c in configs]
    names = {n.strip() for n in sel.split(",") if n.strip()}
    unknown = sorted(names - {c.name for c in configs})
    if unknown or not names:
        raise ConfigError(
            f"patterns {', '.join(unknown) or repr(selection)}: not in patterns.yaml "
            "(use enabled, all, or entry names separated by commas)"
        )
    return [replace(c, enabled=c.name in names) for c in configs]


def load_patterns(
    config_dir: Path | None = None, selection: str | None = None
) -> list[PatternConfig]:
    """Load ``patterns.yaml``: one :class:`PatternConfig` per entry (registry checks names),
    enabled as ``selection`` says (:func:`select_patterns`; None: ``$AION_PATTERNS``, else
    the file's flags).

    Raises:
        ConfigError: one line naming the bad entry and the fix.
    """
    cdir = config_dir or default_config_dir()
    raw = _read_yaml(cdir / "patterns.yaml") or {}
    if not isinstance(raw, dict):
        raise ConfigError("patterns.yaml: expected a mapping of detector name -> settings")
    out = []
    for name, body in raw.items():
        if body is not None and not isinstance(body, dict):
            raise ConfigError(f"{name}: expected a mapping of settings, got {body!r}")
        body = dict(body or {})
        out.append(_build(PatternConfig, {"name": str(name), **body}, str(name)))
    return select_patterns(out, selection or os.environ.get(PATTERNS_ENV))
