"""The closed regular bars of one minute as columns, for the detectors' vectorised gates.

At every minute close thousands of bars close at once and almost every detector returns
None on almost every bar. Each detector therefore registers a *gate* (see
:func:`aion.patterns.registry.register`): a numpy function ``(frame: MinuteFrame,
**params) -> bool (n,)`` that is a **necessary condition** for the detector to fire,
evaluated over the whole minute at once. The pattern engine builds an
:class:`~aion.patterns.registry.InstrumentView` and calls the per-view detector (the one
definition of each rule and its confidence) only on the rows whose gate passed.

A gate may let through rows the detector then rejects, never the reverse. Gates mirror
the detectors' rejection tests with the same NaN semantics (a test ``x < t -> None``
becomes ``~(x < t)``), and thresholds compared against values that the vectorised code
computes in a different order (means over history) are loosened by :data:`SLACK`, so
rounding can only let a row through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from aion.market.time import REGULAR_OPEN_MINUTE, minute_of_day_ist

if TYPE_CHECKING:
    from aion.volume.analytics import BarAnalyticsColumns

HISTORY_FIELDS = ("open", "high", "low", "close", "volume")
"""Order of the first axis of :attr:`MinuteFrame.history`."""

SLACK = 1e-9
"""Relative tolerance by which gates loosen their thresholds (see the module docstring)."""

REGIME_LEVELS = {"LOW": 0, "NORMAL": 1, "HIGH": 2, "PANIC": 3}
"""INDIA VIX regime name -> level (as :data:`aion.patterns.scoring.REGIMES`)."""


def loosen(threshold: np.ndarray | float, up: bool = False) -> np.ndarray:
    """``threshold`` moved by :data:`SLACK` (relative, plus 1e-12 absolute) in the direction
    that admits more rows: down for a ``>=`` test, up (``up=True``) for a ``<=`` test."""
    t = np.asarray(threshold, np.float64)
    d = SLACK * np.abs(t) + 1e-12
    return t + d if up else t - d


def mean_ranges(
    high: np.ndarray, low: np.ndarray, hist: np.ndarray, lens: np.ndarray
) -> np.ndarray:
    """Mean bar range of each row's history and its own bar, rupees, float64 (n,).

    Args:
        high, low: the rows' bars, float64 (n,).
        hist: :attr:`MinuteFrame.history` layout, float64 (5, n, m), NaN-padded on the left.
        lens: bars of history per row, int64 (n,).

    Computed per distinct history length as ``np.mean`` over ``[high - low, *(h - l)]``
    with numpy's row reduction, which sums each row in the same (pairwise) order as
    ``np.mean`` of that row alone: the value is bit-identical to the per-view fallback
    of :func:`aion.patterns.scoring.atr_or_range`.
    """
    n, m = hist.shape[1], hist.shape[2]
    out = np.empty(n, np.float64)
    bar = high - low
    rng = hist[1] - hist[2]  # (n, m)
    for length in np.unique(lens).tolist():
        rows = np.flatnonzero(lens == length)
        a = np.empty((rows.shape[0], length + 1), np.float64)
        a[:, 0] = bar[rows]
        if length:
            a[:, 1:] = rng[rows, m - length :]
        out[rows] = np.mean(a, axis=1)
    return out


@dataclass
class MinuteFrame:
    """The n closed regular 1-minute bars of one minute (distinct instruments), as columns.

    Built once per minute by the compute engine (``ComputeEngine._detect``). Every array
    is indexed by row ``j`` in the minute group's order.

    Attributes:
        slot: instrument slot of the compute engine, int64 (n,).
        bar_start: bar start, epoch seconds, int64 (n,).
        open, high, low, close: the bars, rupees, float64 (n,).
        volume: bar volume, shares/units, float64 (n,).
        indicators: indicator name -> value after the bar, float64 (n,) (NaN in warm-up).
        expected_bar_volume, rvol_bar, rvol_cum, threshold_multiplier: float64 (n,) as the
            :class:`~aion.patterns.registry.InstrumentView` fields of the same names.
        regime: INDIA VIX regime name per row ("" unknown), list of n str.
        profile: volume-profile statistic -> float64 (n,), NaN where a row lacks it.
        history: float64 (5, n, m), fields in :data:`HISTORY_FIELDS` order: the last m
            closed regular bars of the session before each row's bar, oldest first,
            right-aligned and NaN-padded on the left (m = the longest history of the
            minute, at most 64).
        history_len: bars of history per row, int64 (n,) (<= m).
        book: order book at the bar's close, float64 (n, 4) in
            :data:`aion.pipeline.book.BOOK_FIELDS` order (shares), NaN rows without a book.
        chains: row -> option chain view of an underlying (as ``InstrumentView.chain``);
            only rows with a non-empty chain.

    Derived columns (computed at construction): ``range`` (high - low), ``body``
    (close - open), ``mean_range`` (:func:`mean_ranges`), ``atr`` (``atr_14`` when
    positive, else ``mean_range`` when positive, else NaN: the vectorised
    :func:`~aion.patterns.scoring.atr_or_range`), ``multiplier`` (the threshold
    multiplier, 1 when not finite and positive) and ``bar_ratio`` (the vectorised
    :func:`~aion.patterns.scoring.bar_volume_ratio`), all float64 (n,).
    """

    slot: np.ndarray
    bar_start: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    indicators: dict[str, np.ndarray]
    expected_bar_volume: np.ndarray
    rvol_bar: np.ndarray
    rvol_cum: np.ndarray
    threshold_multiplier: np.ndarray
    regime: list[str]
    profile: dict[str, np.ndarray]
    history: np.ndarray
    history_len: np.ndarray
    book: np.ndarray
    chains: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    range: np.ndarray = field(init=False, repr=False)
    body: np.ndarray = field(init=False, repr=False)
    mean_range: np.ndarray = field(init=False, repr=False)
    atr: np.ndarray = field(init=False, repr=False)
    multiplier: np.ndarray = field(init=False, repr=False)
    bar_ratio: np.ndarray = field(init=False, repr=False)
    _cache: dict[tuple[object, ...], np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = self.bar_start.shape[0]
        if self.history.ndim != 3 or self.history.shape[:2] != (5, n):
            raise ValueError(f"history must be (5, {n}, m), got {self.history.shape}")
        self._cache = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            self.range = self.high - self.low
            self.body = self.close - self.open
            self.mean_range = mean_ranges(self.high, self.low, self.history, self.history_len)
            atr = self.indicator("atr_14")
            mr = self.mean_range
            fallback = np.where(np.isfinite(mr) & (mr > 0), mr, np.nan)
            self.atr = np.where(np.isfinite(atr) & (atr > 0), atr, fallback)
            m = self.threshold_multiplier
            self.multiplier = np.where(np.isfinite(m) & (m > 0), m, 1.0)
            exp, vol = self.expected_bar_volume, self.volume
            own = np.where(np.isfinite(exp) & (exp > 0) & np.isfinite(vol), vol / exp, np.nan)
            self.bar_ratio = np.where(np.isfinite(self.rvol_bar), self.rvol_bar, own)

    @classmethod
    def of_minute(
        cls,
        bars: np.ndarray,
        indicators: dict[str, np.ndarray],
        analytics: BarAnalyticsColumns,
        history: np.ndarray,
        history_len: np.ndarray,
        book: np.ndarray,
        chains: dict[int, dict[str, np.ndarray]],
    ) -> MinuteFrame:
        """The frame of one minute group: ``bars`` ``BAR_DTYPE`` rows (n,) of distinct
        slots, indicator columns float64 (n,), the bars' volume analytics, history
        (5, n, m) with its lengths (n,), book (n, 4) and non-empty chains by row."""
        va = analytics
        return cls(
            slot=bars["slot"].astype(np.int64),
            bar_start=bars["start"].astype(np.int64),
            open=bars["open"].astype(np.float64),
            high=bars["high"].astype(np.float64),
            low=bars["low"].astype(np.float64),
            close=bars["close"].astype(np.float64),
            volume=bars["volume"].astype(np.float64),
            indicators=indicators,
            expected_bar_volume=va.expected_bar_volume,
            rvol_bar=va.rvol_bar,
            rvol_cum=va.rvol_cum,
            threshold_multiplier=va.threshold_multiplier,
            regime=va.regime,
            profile=va.profile,
            history=history,
            history_len=history_len,
            book=book,
            chains=chains,
        )

    def __len__(self) -> int:
        return int(self.bar_start.shape[0])

    @property
    def width(self) -> int:
        """m, the number of history columns."""
        return int(self.history.shape[2])

    # -- columns ---------------------------------------------------------------------------

    def indicator(self, name: str) -> np.ndarray:
        """Indicator ``name``, float64 (n,); all NaN when the indicator is not computed."""
        v = self.indicators.get(name)
        return v if v is not None else np.full(len(self), np.nan)

    def profile_col(self, name: str) -> np.ndarray:
        """Profile statistic ``name``, float64 (n,); all NaN when no row has it."""
        v = self.profile.get(name)
        return v if v is not None else np.full(len(self), np.nan)

    def hist(self, name: str, k: int | None = None) -> np.ndarray:
        """History field ``name`` over the last ``min(k, m)`` columns (all when None),
        float64 (n, <= k), NaN-padded on the left."""
        a = self.history[HISTORY_FIELDS.index(name)]
        if k is None or k >= a.shape[1]:
            return a
        return a[:, a.shape[1] - max(k, 0) :]

    def hist_col(self, name: str, back: int) -> np.ndarray:
        """History field ``name`` ``back`` bars before this one (1 = the previous bar),
        float64 (n,); NaN where a row has fewer bars or ``back`` is out of 1..m."""
        if not 1 <= back <= self.width:
            return np.full(len(self), np.nan)
        return self.history[HISTORY_FIELDS.index(name)][:, -back]

    def hist_max(self, name: str, k: int | None = None) -> np.ndarray:
        """Max of :meth:`hist` over its columns ignoring NaN, float64 (n,); NaN for a row
        without any bar there."""
        a = self.hist(name, k)
        if a.shape[1] == 0:
            return np.full(len(self), np.nan)
        return np.fmax.reduce(a, axis=1)

    def hist_min(self, name: str, k: int | None = None) -> np.ndarray:
        """Min of :meth:`hist` over its columns ignoring NaN (as :meth:`hist_max`)."""
        a = self.hist(name, k)
        if a.shape[1] == 0:
            return np.full(len(self), np.nan)
        return np.fmin.reduce(a, axis=1)

    def recent_volume_ratio(self, lookback: int) -> np.ndarray:
        """Vectorised :func:`~aion.patterns.scoring.recent_volume_ratio`: bar volume over
        the mean volume of the last ``lookback`` history bars, float64 (n,); NaN where a
        row has fewer bars, ``lookback <= 0`` or the mean is not positive. (The mean is
        summed in a different order than per view: compare with :func:`loosen`.)"""
        key = ("rvr", lookback)
        if key not in self._cache:
            out = np.full(len(self), np.nan)
            if 1 <= lookback <= self.width:
                ok = self.history_len >= lookback
                mean = np.mean(self.hist("volume", lookback)[ok], axis=1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[ok] = np.where(mean > 0, self.volume[ok] / mean, np.nan)
            self._cache[key] = out
        return self._cache[key]

    def minute_of_day(self) -> np.ndarray:
        """IST minute of day of each bar's start, int64 (n,) (555 = 09:15)."""
        key: tuple[object, ...] = ("mod",)
        if key not in self._cache:
            self._cache[key] = minute_of_day_ist(self.bar_start).astype(np.int64)
        return self._cache[key]

    def session_minute(self) -> np.ndarray:
        """Minutes since 09:15 IST of each bar's start, int64 (n,) (as
        :func:`aion.patterns.options.session_minute`)."""
        return self.minute_of_day() - REGULAR_OPEN_MINUTE

    def regime_level(self) -> np.ndarray:
        """INDIA VIX regime level per row (:data:`REGIME_LEVELS`), -1 when unknown, int64 (n,)."""
        key: tuple[object, ...] = ("regime",)
        if key not in self._cache:
            self._cache[key] = np.array(
                [REGIME_LEVELS.get(r, -1) for r in self.regime], np.int64
            ).reshape(len(self))
        return self._cache[key]

    def has_chain(self) -> np.ndarray:
        """Rows with a non-empty option chain, bool (n,)."""
        out = np.zeros(len(self), np.bool_)
        out[list(self.chains)] = True
        return out

    def chain_scalar(self, name: str) -> np.ndarray:
        """0-d chain value ``name`` per row (``dte_days``, ``atm_straddle_vwap``...),
        float64 (n,); NaN without a chain or the value."""
        out = np.full(len(self), np.nan)
        for j, chain in self.chains.items():
            a = chain.get(name)
            if a is not None and np.size(a) == 1:
                out[j] = float(np.asarray(a, np.float64).reshape(()))
        return out
