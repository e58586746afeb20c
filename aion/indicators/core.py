"""Incremental per-instrument indicator core (state arrays + kernel dispatch).

:class:`IndicatorCore` owns the per-slot state arrays and hands them to the Numba
kernels in :mod:`aion.indicators.kernels`; the arithmetic, its sources and the first
bar of every output live there. Periods come from :class:`aion.indicators.config.IndicatorsConfig`
(``indicators:`` in ``config/aion.yaml``, per timeframe via ``for_timeframe``).

Output names (the keys of :meth:`IndicatorCore.values` and of ``view.indicators``),
with the default periods in brackets; prices in rupees unless stated:

=============================== ==========================================================
name                            value
=============================== ==========================================================
``ema_<p>`` [5 10 20 50 100 200] EMA of close
``sma_<p>`` [20 50]             SMA of close
``rsi_<p>`` [14]                Wilder RSI, 0..100
``atr_<p>`` [14]                Wilder average true range
``macd``, ``macd_signal``,      MACD line EMA(12) - EMA(26) of close, its EMA(9) signal,
``macd_hist``                   line - signal
``bb_upper``, ``bb_middle``,    Bollinger: SMA(20) +/- 2 population standard deviations
``bb_lower``
``adx_<p>``, ``plus_di_<p>``,   Wilder ADX and directional indicators [14], 0..100
``minus_di_<p>``
``stoch_k``, ``stoch_d``        slow Stochastic %K(14, 3) and %D(3), 0..100
``willr_<p>`` [14]              Williams %R, -100..0
``cci_<p>`` [20]                Commodity Channel Index (unitless)
``roc_<p>`` [10]                rate of change of close, percent
``obv``                         on-balance volume, shares, cumulative since the first bar
``ad``                          Chaikin accumulation/distribution line, shares, cumulative
``cmf_<p>`` [20]                Chaikin Money Flow, -1..1 (0 while the window volume is 0)
``mfi_<p>`` [14]                Money Flow Index, 0..100
``vwap``, ``vwap_sd``           session VWAP of typical price and its volume-weighted
                                standard deviation (NaN while session volume is 0)
``vwap_upper_<k>``,             VWAP +/- k x ``vwap_sd`` for each band multiplier
``vwap_lower_<k>`` [1 2]        (``k`` printed with ``:g``, e.g. ``vwap_upper_1.5``)
``kc_upper``, ``kc_middle``,    Keltner: EMA(20) of close +/- 2 x ATR(10)
``kc_lower``
``donchian_upper``,             highest high / lowest low of 20 bars and their mean
``donchian_middle``,
``donchian_lower``
=============================== ==========================================================
"""

from __future__ import annotations

import numpy as np

from aion.indicators import kernels as K
from aion.indicators.config import IndicatorsConfig

# fixed outputs in kernel column order (kernels.O_*); "{x}" takes the period named x
_FIXED_OUTPUTS = (
    ("rsi_{rsi}", K.O_RSI),
    ("atr_{atr}", K.O_ATR),
    ("macd", K.O_MACD),
    ("macd_signal", K.O_MACD_SIGNAL),
    ("macd_hist", K.O_MACD_HIST),
    ("bb_upper", K.O_BB_UPPER),
    ("bb_middle", K.O_BB_MIDDLE),
    ("bb_lower", K.O_BB_LOWER),
    ("adx_{adx}", K.O_ADX),
    ("plus_di_{adx}", K.O_PLUS_DI),
    ("minus_di_{adx}", K.O_MINUS_DI),
    ("stoch_k", K.O_STOCH_K),
    ("stoch_d", K.O_STOCH_D),
    ("willr_{willr}", K.O_WILLR),
    ("cci_{cci}", K.O_CCI),
    ("roc_{roc}", K.O_ROC),
    ("obv", K.O_OBV),
    ("ad", K.O_AD),
    ("cmf_{cmf}", K.O_CMF),
    ("mfi_{mfi}", K.O_MFI),
    ("vwap", K.O_VWAP),
    ("vwap_sd", K.O_VWAP_SD),
    ("kc_upper", K.O_KC_UPPER),
    ("kc_middle", K.O_KC_MIDDLE),
    ("kc_lower", K.O_KC_LOWER),
    ("donchian_upper", K.O_DON_UPPER),
    ("donchian_middle", K.O_DON_MIDDLE),
    ("donchian_lower", K.O_DON_LOWER),
)


def _f64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _i64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


def _layout(cfg: IndicatorsConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Kernel ``params`` (int64), ``fparams`` (float64) and the output names of ``cfg``."""
    p = np.zeros(K.N_PARAMS, dtype=np.int64)
    for idx, value in (
        (K.P_RSI, cfg.rsi_period),
        (K.P_ATR, cfg.atr_period),
        (K.P_MACD_FAST, cfg.macd_fast),
        (K.P_MACD_SLOW, cfg.macd_slow),
        (K.P_MACD_SIGNAL, cfg.macd_signal),
        (K.P_BB, cfg.bb_period),
        (K.P_ADX, cfg.adx_period),
        (K.P_STOCH_K, cfg.stoch_fastk),
        (K.P_STOCH_SK, cfg.stoch_slowk),
        (K.P_STOCH_SD, cfg.stoch_slowd),
        (K.P_WILLR, cfg.willr_period),
        (K.P_CCI, cfg.cci_period),
        (K.P_ROC, cfg.roc_period),
        (K.P_CMF, cfg.cmf_period),
        (K.P_MFI, cfg.mfi_period),
        (K.P_KC, cfg.keltner_period),
        (K.P_KC_ATR, cfg.keltner_atr_period),
        (K.P_DON, cfg.donchian_period),
    ):
        p[idx] = value
    rc_len = max((*cfg.sma_periods, cfg.bb_period, cfg.roc_period + 1))
    rhl_len = max(cfg.stoch_fastk, cfg.willr_period, cfg.donchian_period)
    width = 0
    for off_idx, length in (
        (K.P_RC_OFF, rc_len),
        (K.P_RH_OFF, rhl_len),
        (K.P_RL_OFF, rhl_len),
        (K.P_RTP_OFF, cfg.cci_period),
        (K.P_RFK_OFF, cfg.stoch_slowk),
        (K.P_RSK_OFF, cfg.stoch_slowd),
        (K.P_RMP_OFF, cfg.mfi_period),
        (K.P_RMN_OFF, cfg.mfi_period),
        (K.P_RCM_OFF, cfg.cmf_period),
        (K.P_RCV_OFF, cfg.cmf_period),
    ):
        p[off_idx] = width
        width += length
    p[K.P_RC_LEN] = rc_len
    p[K.P_RHL_LEN] = rhl_len
    p[K.P_RING_WIDTH] = width
    fp = np.array(
        [cfg.bb_nbdev, cfg.keltner_multiplier, *cfg.vwap_band_multipliers], dtype=np.float64
    )
    periods = {
        "rsi": cfg.rsi_period,
        "atr": cfg.atr_period,
        "adx": cfg.adx_period,
        "willr": cfg.willr_period,
        "cci": cfg.cci_period,
        "roc": cfg.roc_period,
        "cmf": cfg.cmf_period,
        "mfi": cfg.mfi_period,
    }
    fixed = [""] * K.N_FIXED_OUT
    for template, col in _FIXED_OUTPUTS:
        fixed[col] = template.format(**periods)
    names = [f"ema_{q}" for q in cfg.ema_periods] + [f"sma_{q}" for q in cfg.sma_periods]
    names += fixed
    for mult in cfg.vwap_band_multipliers:
        names += [f"vwap_upper_{mult:g}", f"vwap_lower_{mult:g}"]
    return p, fp, names


class IndicatorCore:
    """Per-instrument incremental indicators, O(1) per instrument per closed bar.

    Instruments are integer slots ``0..n_slots-1``; every slot has one row in each state
    array (see :mod:`aion.indicators.kernels`). Outputs are float64 and NaN until their
    warm-up is complete, the first value on the same bar as TA-Lib's first output (its
    lookback), see :meth:`names` and the module docstring. Not thread-safe: one thread
    (the compute thread) calls all methods.

    Args:
        n_slots: number of instrument slots (>= 0); :meth:`grow` adds more.
        config: periods and sets, normally ``config.indicators.for_timeframe("1m")``.
    """

    def __init__(self, n_slots: int, config: IndicatorsConfig | None = None) -> None:
        self.config = config if config is not None else IndicatorsConfig()
        cfg = self.config
        self._params, self._fparams, self._names = _layout(cfg)
        self._ema_periods = np.asarray(cfg.ema_periods, dtype=np.int64)
        self._sma_periods = np.asarray(cfg.sma_periods, dtype=np.int64)
        n_f = K.N_FSTATE_FIXED + len(cfg.ema_periods) + len(cfg.sma_periods)
        n_r = int(self._params[K.P_RING_WIDTH])
        self._scratch = (
            np.zeros(K.N_ISTATE, np.int64),
            np.zeros(n_f, np.float64),
            np.zeros(n_r, np.float64),
        )
        self.n_slots = 0
        self.istate = np.zeros((0, K.N_ISTATE), dtype=np.int64)
        self.fstate = np.zeros((0, n_f), dtype=np.float64)
        self.ring = np.zeros((0, n_r), dtype=np.float64)
        self.out = np.zeros((0, len(self._names)), dtype=np.float64)
        self.grow(n_slots)

    def grow(self, n_slots: int) -> None:
        """Enlarge the state to ``n_slots`` slots, keeping existing slots' state.

        New slots start empty (no bars, all outputs NaN). Shrinking raises ``ValueError``.
        """
        n_slots = int(n_slots)
        old = self.n_slots
        if n_slots < old:
            raise ValueError(f"cannot shrink from {old} to {n_slots} slots")
        if n_slots == old:
            return

        def ext(a: np.ndarray, fill: float) -> np.ndarray:
            new = np.full((n_slots, *a.shape[1:]), fill, dtype=a.dtype)
            new[:old] = a
            return new

        self.istate = ext(self.istate, 0)
        self.istate[old:, K.I_VWAP_DATE] = -1
        self.fstate = ext(self.fstate, 0.0)
        self.fstate[old:, K.F_PREV_CLOSE] = np.nan
        self.ring = ext(self.ring, 0.0)
        self.out = ext(self.out, np.nan)
        self.n_slots = n_slots

    def _check(self, slots: np.ndarray, arrays: tuple[np.ndarray, ...]) -> int:
        k = slots.shape[0]
        if slots.ndim != 1 or any(np.shape(a) != (k,) for a in arrays):
            raise ValueError("all inputs must have shape (k,) like slots")
        if k and (slots.min() < 0 or slots.max() >= self.n_slots):
            raise IndexError(f"slot out of range 0..{self.n_slots - 1}")
        return k

    def update(
        self,
        slots: np.ndarray,
        session_date: np.ndarray,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
    ) -> None:
        """Apply a batch of closed bars.

        ``slots`` int64 (k,) in ``0..n_slots-1``; ``session_date`` int64 YYYYMMDD (k,);
        ``open_``/``high``/``low``/``close`` float64 rupees (k,); ``volume`` float64
        shares (k,). A slot may appear several times; its bars are applied in array
        order. ``open_`` is accepted for API stability (no current indicator uses it).
        Raises ``ValueError`` on mismatched lengths, ``IndexError`` on a bad slot.
        """
        slots = _i64(slots)
        if not self._check(slots, (session_date, open_, high, low, close, volume)):
            return
        K.update_bars(
            slots,
            _i64(session_date),
            _f64(high),
            _f64(low),
            _f64(close),
            _f64(volume),
            self.istate,
            self.fstate,
            self.ring,
            self.out,
            self._params,
            self._fparams,
            self._ema_periods,
            self._sma_periods,
        )

    def forming_values(
        self,
        slots: np.ndarray,
        session_date: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Values each slot's indicators would take if its forming bar closed now.

        Inputs as :meth:`update` (the forming bar's high/low/close so far in rupees,
        its volume so far in shares); every row is evaluated independently against the
        slot's closed-bar state, which is left unchanged. Same kernel step as
        :meth:`update`, so a forming bar that closes unchanged gives the same values.
        Returns ``{name: float64 (k,)}``.
        """
        slots = _i64(slots)
        k = self._check(slots, (session_date, high, low, close, volume))
        result = np.empty((k, len(self._names)), dtype=np.float64)
        K.peek_bars(
            slots,
            _i64(session_date),
            _f64(high),
            _f64(low),
            _f64(close),
            _f64(volume),
            self.istate,
            self.fstate,
            self.ring,
            self._params,
            self._fparams,
            self._ema_periods,
            self._sma_periods,
            *self._scratch,
            result,
        )
        cols = result.T
        return {name: cols[i] for i, name in enumerate(self._names)}

    def forming(
        self, slot: int, high: float, low: float, close: float, volume: float, session_date: int
    ) -> dict[str, float]:
        """One slot's :meth:`forming_values` as ``{name: float}`` (state unchanged)."""
        vals = self.forming_values(
            np.array([slot]),
            np.array([session_date]),
            np.array([high]),
            np.array([low]),
            np.array([close]),
            np.array([volume]),
        )
        return {name: float(v[0]) for name, v in vals.items()}

    def names(self) -> list[str]:
        """Output names in column order of the kernels' ``out`` array.

        EMAs, SMAs, then ``rsi_<p>`` ... ``donchian_lower`` (see the module docstring),
        then ``vwap_upper_<k>``/``vwap_lower_<k>`` per VWAP band multiplier.
        """
        return list(self._names)

    def values(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """Current values for ``slots`` (int64 (k,)): ``{name: float64 (k,)}``.

        The arrays are views of one fresh (names x k) block, not of the state; NaN means
        not warmed up yet (or, for VWAP, no session volume).
        """
        cols = np.ascontiguousarray(self.out[_i64(slots)].T)
        return {name: cols[i] for i, name in enumerate(self._names)}

    def bar_count(self, slots: np.ndarray) -> np.ndarray:
        """Closed bars applied per slot, int64 (k,)."""
        return self.istate[_i64(slots), K.I_COUNT].copy()
