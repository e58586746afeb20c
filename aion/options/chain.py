"""Option state, Greeks and per-underlying chains for the scan (:class:`ChainTracker`).

The tracker holds, in arrays indexed like the compute engine's instrument slots, the latest
price of every slot (the spot of underlyings) and, for every option slot, its latest
``last_price``, day ``volume_traded`` and ``oi`` (Kite tick fields), its implied volatility and
Greeks (:mod:`aion.options.greeks`, computed vectorised for the options that ticked in a batch,
against the underlying's latest price) and its time to expiry (:mod:`aion.options.expiry`).

Options are recognised from the instrument master rows
(:func:`aion.options.symbols.option_contract`) and attached to their underlying when that
underlying (``NSE:NIFTY 50`` for ``NIFTY`` options, ``NSE:<NAME>`` for stock options) is a slot
of the same universe; an option whose underlying is not subscribed gets no Greeks (IV reason
``bad input``).

The chain of an underlying is its nearest unexpired expiry's strikes; the 5 strikes around ATM
(the strike nearest the spot, index 2) are shown to detectors as
:attr:`aion.patterns.registry.InstrumentView.chain`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import numpy as np
from numba import njit

from aion.config import OptionsConfig
from aion.instruments.master import Instrument
from aion.market.calendar import MarketCalendar
from aion.market.time import session_date
from aion.options.expiry import expiry_epoch, time_to_expiry
from aion.options.greeks import IV_REASONS, greeks_batch, implied_vol_batch
from aion.options.symbols import OptionContract, option_contract
from aion.store import keys

__all__ = ["CHAIN_ARRAY_KEYS", "CHAIN_WIDTH", "ChainTracker"]

CHAIN_WIDTH = 5
"""Strikes shown per chain: ATM and two on each side."""

CHAIN_ARRAY_KEYS: tuple[str, ...] = (
    "strike",
    "ce_last_price",
    "pe_last_price",
    "ce_iv",
    "pe_iv",
    "ce_delta",
    "pe_delta",
    "gamma",
    "ce_theta",
    "pe_theta",
    "vega",
    "ce_oi",
    "pe_oi",
    "ce_volume",
    "pe_volume",
)
"""Keys of the (5,) arrays of a chain view (see :meth:`ChainTracker.chain_view`)."""

_GREEK_ROWS = ("delta", "gamma", "theta", "vega", "rho")


class _Chain:
    """Strike grid of one (underlying, expiry): sorted strikes and option indices per side."""

    def __init__(self, expiry: dt.date, strikes: np.ndarray, ce: np.ndarray, pe: np.ndarray):
        self.expiry = expiry
        self.expiry_ts = expiry_epoch(expiry)
        self.strikes = strikes  # float64 (k,), ascending
        self.ce = ce  # int64 (k,), option index or -1
        self.pe = pe


class ChainTracker:
    """Option state and chains of a universe whose slot ``s`` is ``slot_inst[s]``.

    Args:
        slot_inst: the compute engine's instruments by slot.
        calendar: trading calendar for time to expiry.
        settings: ``options:`` config (rate, dividend yield, year basis, IV bounds).
    """

    def __init__(
        self,
        slot_inst: Sequence[Instrument],
        calendar: MarketCalendar,
        settings: OptionsConfig | None = None,
    ) -> None:
        self.calendar = calendar
        self.settings = settings or OptionsConfig()
        n = len(slot_inst)
        slot_of = {inst.symbol: s for s, inst in enumerate(slot_inst)}
        contracts: list[OptionContract] = []
        slots: list[int] = []
        for s, inst in enumerate(slot_inst):
            c = option_contract(inst, calendar)
            if c is not None:
                contracts.append(c)
                slots.append(s)
        m = len(contracts)
        self.contracts = contracts
        self.option_slots = np.asarray(slots, np.int64)
        self.option_index = np.full(n, -1, np.int64)
        self.option_index[self.option_slots] = np.arange(m)
        self.strike = np.array([c.strike for c in contracts], np.float64)
        self.is_call = np.array([c.is_call for c in contracts], np.bool_)
        self.underlying_slot = np.array(
            [slot_of.get(c.underlying, -1) for c in contracts], np.int64
        )
        self.expiries = sorted({c.expiry for c in contracts})
        self.expiry_idx = np.array([self.expiries.index(c.expiry) for c in contracts], np.int64)

        self.spot = np.full(n, math.nan, np.float64)  # latest price per slot
        self.last_price = np.full(m, math.nan, np.float64)
        self.volume = np.zeros(m, np.int64)
        self.oi = np.zeros(m, np.int64)
        self.ts = np.zeros(m, np.int64)
        self.underlying_price = np.full(m, math.nan, np.float64)
        self.iv = np.full(m, math.nan, np.float64)
        self.iv_code = np.zeros(m, np.int8)
        self.greeks = np.full((5, m), math.nan, np.float64)  # rows: _GREEK_ROWS
        self.dte_days = np.full(m, math.nan, np.float64)
        self.dte_years = np.full(m, math.nan, np.float64)

        self._chains: dict[int, list[_Chain]] = {}
        for u in sorted({int(x) for x in self.underlying_slot if x >= 0}):
            per_expiry = []
            for e_i, expiry in enumerate(self.expiries):
                sel = np.flatnonzero((self.underlying_slot == u) & (self.expiry_idx == e_i))
                if sel.shape[0] == 0:
                    continue
                strikes = np.unique(self.strike[sel])
                ce = np.full(strikes.shape[0], -1, np.int64)
                pe = np.full(strikes.shape[0], -1, np.int64)
                pos = np.searchsorted(strikes, self.strike[sel])
                for p, i in zip(pos.tolist(), sel.tolist(), strict=True):
                    (ce if self.is_call[i] else pe)[p] = i
                per_expiry.append(_Chain(expiry, strikes, ce, pe))
            self._chains[u] = per_expiry
        # straddle VWAP accumulators per underlying slot, reset each session date
        self._vwap_date = np.zeros(n, np.int64)
        self._vwap_num = np.zeros(n, np.float64)
        self._vwap_den = np.zeros(n, np.float64)
        self._vol_seen = np.zeros(m, np.int64)

    @property
    def has_options(self) -> bool:
        """True when the universe holds at least one option."""
        return bool(self.contracts)

    def has_chain(self, slot: int) -> bool:
        """True when ``slot`` is the underlying of at least one subscribed option."""
        return slot in self._chains

    # -- ticks -------------------------------------------------------------------------------

    def on_ticks(
        self,
        slots: np.ndarray,
        ts: np.ndarray,
        price: np.ndarray,
        volume_traded: np.ndarray,
        oi: np.ndarray,
    ) -> np.ndarray:
        """Take one batch of valid ticks (int64 slots, int64 epoch-second ``ts``, float64
        ``price`` rupees, cumulative ``volume_traded`` and ``oi`` units, all (n,), time order)
        and recompute IV and Greeks of the options that ticked, against the latest underlying
        prices, at the batch's latest exchange time.

        Returns the option indices updated, int64 (k,).
        """
        if slots.shape[0] == 0:
            return np.zeros(0, np.int64)
        uniq, last = _last_per_slot(np.ascontiguousarray(slots, np.int64), self.spot.shape[0])
        self.spot[uniq] = price[last]
        o = self.option_index[uniq]
        is_opt = o >= 0
        if not is_opt.any():
            return np.zeros(0, np.int64)
        o, last = o[is_opt], last[is_opt]
        self.last_price[o] = price[last]
        self.volume[o] = volume_traded[last]
        self.oi[o] = oi[last]
        self.ts[o] = ts[last]
        self._compute(o, int(ts.max()))
        return o

    def _compute(self, o: np.ndarray, now: int) -> None:
        st = self.settings
        days = np.empty(len(self.expiries), np.float64)
        years = np.empty(len(self.expiries), np.float64)
        for e in np.unique(self.expiry_idx[o]).tolist():
            tte = time_to_expiry(now, self.expiries[e], self.calendar, st.trading_days_per_year)
            days[e], years[e] = tte.dte_days, tte.dte_years
        e_o = self.expiry_idx[o]
        t = years[e_o]
        u = self.underlying_slot[o]
        spot = np.where(u >= 0, self.spot[np.maximum(u, 0)], math.nan)
        iv, code = implied_vol_batch(
            self.last_price[o],
            spot,
            self.strike[o],
            t,
            self.is_call[o],
            rate=st.rate,
            dividend_yield=st.dividend_yield,
            sigma_min=st.iv_min,
            sigma_max=st.iv_max,
        )
        g = greeks_batch(
            spot,
            self.strike[o],
            t,
            iv,
            self.is_call[o],
            rate=st.rate,
            dividend_yield=st.dividend_yield,
        )
        self.underlying_price[o] = spot
        self.iv[o] = iv
        self.iv_code[o] = code
        self.greeks[:, o] = g[1:]
        self.dte_days[o] = days[e_o]
        self.dte_years[o] = t

    # -- views -------------------------------------------------------------------------------

    def state(self, i: int) -> dict[str, str]:
        """Redis hash fields of option index ``i`` (``keys.option``): contract facts, latest
        price/underlying/IV/Greeks (``nan`` when undefined, ``iv_reason`` text) and DTE."""
        c = self.contracts[i]
        out = {
            "strike": f"{c.strike:g}",
            "option_type": c.option_type,
            "expiry": c.expiry.isoformat(),
            "underlying": c.underlying,
            "exchange_timestamp": str(int(self.ts[i])),
            "last_price": _fmt(self.last_price[i], 2),
            "underlying_price": _fmt(self.underlying_price[i], 2),
            "iv": _fmt(self.iv[i], 6),
            "iv_reason": IV_REASONS[int(self.iv_code[i])],
            "dte_days": _fmt(self.dte_days[i], 6),
            "dte_years": _fmt(self.dte_years[i], 8),
        }
        for r, name in enumerate(_GREEK_ROWS):
            out[name] = _fmt(self.greeks[r, i], 8)
        return out

    def store_writes(self, updated: np.ndarray) -> dict[str, dict[str, str]]:
        """``keys.option(symbol) -> state`` hashes of the option indices ``updated``."""
        return {keys.option(self.contracts[i].symbol): self.state(i) for i in updated.tolist()}

    def option_view(self, slot: int) -> dict[str, float]:
        """:attr:`InstrumentView.option` of ``slot``: ``strike``, ``iv``, ``delta``, ``gamma``,
        ``theta``, ``vega``, ``rho``, ``dte_days``, ``dte_years`` (floats, NaN when undefined);
        ``{}`` when the slot is not an option."""
        i = int(self.option_index[slot])
        if i < 0:
            return {}
        out = {"strike": float(self.strike[i]), "iv": float(self.iv[i])}
        for r, name in enumerate(_GREEK_ROWS):
            out[name] = float(self.greeks[r, i])
        out["dte_days"] = float(self.dte_days[i])
        out["dte_years"] = float(self.dte_years[i])
        return out

    def chain_view(self, slot: int, now: int) -> dict[str, np.ndarray]:
        """:attr:`InstrumentView.chain` of underlying ``slot`` at ``now`` (epoch seconds; the
        closed bar's end). Call once per closed bar of the underlying: it also advances the
        session's straddle VWAP.

        The chain is the nearest expiry not expired at ``now``; the 5 strikes are the ATM
        strike (nearest the spot, ties to the lower strike) at index 2 and two on each side,
        NaN-padded at the grid's edge. Arrays (float64, (5,)): see :data:`CHAIN_ARRAY_KEYS`;
        ``gamma``/``vega`` are the mean of the CE's and PE's (each at its own IV);
        ``ce_volume``/``pe_volume`` are day volumes (units). 0-d arrays: ``spot``,
        ``dte_days`` (trading days), ``atm_straddle`` (ATM CE + PE last prices, rupees),
        ``atm_straddle_vwap`` (session mean of the ATM straddle at bar closes, weighted by
        the ATM CE + PE volume traded since the previous bar; NaN before any volume).
        ``{}`` when the slot has no unexpired chain or no spot yet.
        """
        chains = self._chains.get(slot)
        spot = float(self.spot[slot])
        if not chains or math.isnan(spot):
            return {}
        chain = next((c for c in chains if c.expiry_ts > now), None)
        if chain is None:
            return {}
        k = chain.strikes
        atm = int(np.argmin(np.abs(k - spot)))
        pos = np.arange(atm - CHAIN_WIDTH // 2, atm + CHAIN_WIDTH // 2 + 1)
        inside = (pos >= 0) & (pos < k.shape[0])
        pc = np.clip(pos, 0, k.shape[0] - 1)
        ce = np.where(inside, chain.ce[pc], -1)
        pe = np.where(inside, chain.pe[pc], -1)

        def take(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
            return np.where(idx >= 0, values[np.maximum(idx, 0)], math.nan).astype(np.float64)

        g = self.greeks
        out: dict[str, np.ndarray] = {
            "strike": np.where(inside, k[pc], math.nan),
            "ce_last_price": take(self.last_price, ce),
            "pe_last_price": take(self.last_price, pe),
            "ce_iv": take(self.iv, ce),
            "pe_iv": take(self.iv, pe),
            "ce_delta": take(g[0], ce),
            "pe_delta": take(g[0], pe),
            "gamma": _mean2(take(g[1], ce), take(g[1], pe)),
            "ce_theta": take(g[2], ce),
            "pe_theta": take(g[2], pe),
            "vega": _mean2(take(g[3], ce), take(g[3], pe)),
            "ce_oi": take(self.oi, ce),
            "pe_oi": take(self.oi, pe),
            "ce_volume": take(self.volume, ce),
            "pe_volume": take(self.volume, pe),
        }
        straddle = float(out["ce_last_price"][2] + out["pe_last_price"][2])
        tte = time_to_expiry(now, chain.expiry, self.calendar, self.settings.trading_days_per_year)
        out["spot"] = np.array(spot)
        out["dte_days"] = np.array(tte.dte_days)
        out["atm_straddle"] = np.array(straddle)
        out["atm_straddle_vwap"] = np.array(self._straddle_vwap(slot, now, chain, ce[2], pe[2]))
        return out

    def _straddle_vwap(self, slot: int, now: int, chain: _Chain, ce: int, pe: int) -> float:
        date = session_date(now)
        legs = np.concatenate([chain.ce[chain.ce >= 0], chain.pe[chain.pe >= 0]])
        if self._vwap_date[slot] != date:
            self._vwap_date[slot] = date
            self._vwap_num[slot] = self._vwap_den[slot] = 0.0
            self._vol_seen[legs] = 0
        if ce >= 0 and pe >= 0:
            dv = max(0, int(self.volume[ce] - self._vol_seen[ce])) + max(
                0, int(self.volume[pe] - self._vol_seen[pe])
            )
            straddle = float(self.last_price[ce] + self.last_price[pe])
            if dv > 0 and math.isfinite(straddle):
                self._vwap_num[slot] += straddle * dv
                self._vwap_den[slot] += dv
        self._vol_seen[legs] = self.volume[legs]
        den = self._vwap_den[slot]
        return float(self._vwap_num[slot] / den) if den > 0 else math.nan


@njit(cache=True)
def _last_per_slot(slots: np.ndarray, n_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``slots`` ascending and the index of each one's last occurrence (one pass
    over a per-slot array instead of a sort)."""
    last = np.full(n_slots, -1, np.int64)
    for i in range(slots.shape[0]):
        last[slots[i]] = i
    uniq = np.flatnonzero(last >= 0)
    return uniq, last[uniq]


def _mean2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    both = np.isfinite(a) & np.isfinite(b)
    return np.where(both, 0.5 * (a + b), np.where(np.isfinite(a), a, b))


def _fmt(x: float, digits: int) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.{digits}f}"
