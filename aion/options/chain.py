"""Option state, Greeks and per-underlying chains for the scan (:class:`ChainTracker`).

The tracker follows, for every option slot of the compute engine's universe and every slot
that is an option's underlying, the Kite tick fields ``last_price``, day ``volume_traded`` and
``oi``, and the tick's incremental volume from the
:class:`~aion.volume.state.VolumeStateManager` (the only place cumulative volume becomes
per-tick volume; the straddle VWAP is weighted with it, so a scan that starts mid-session
weights its first bar only with volume traded after its start). Options are recognised from
the instrument master rows (:func:`aion.options.symbols.option_contract`) and attached to their
underlying when that underlying (``NSE:NIFTY 50`` for ``NIFTY`` options, ``NSE:<NAME>`` for
stock options) is a slot of the same universe; an option whose underlying is not subscribed
gets no Greeks (IV reason ``bad input``).

Two views of that state:

* *latest* (:meth:`ChainTracker.option_rows`, written by the store): each option's last
  tick and its IV and Greeks (:mod:`aion.options.greeks`) against the underlying's last price
  at the feed's exchange clock, recomputed for the options that ticked in a batch;
* *as of a bar's close* (:meth:`ChainTracker.chain_view`, :meth:`ChainTracker.option_view`,
  :meth:`ChainTracker.advance_straddle_vwap`): what detectors see at the close of a bar ending
  at ``end``. A bar closes at the first tick whose exchange time reaches ``end`` (the
  exchange clock of :mod:`aion.bars.builder`), so the state at the close is each instrument's
  last tick that arrived *before* that tick: all of them have ``exchange_timestamp < end``,
  and an out-of-order tick arriving after the close is left out as the bar builder leaves out
  its price. IV, Greeks and time to expiry are computed at ``end``. A batch may run past
  ``end`` before its bars close, so the tracker keeps the batch's tracked ticks ordered by
  (row, exchange clock at arrival) and finds the tick per close time with one sorted search
  (as :mod:`aion.pipeline.book` does for the order book): the views do not depend on how
  frames were batched (deterministic replay, and live equal to replay). The clock is the
  running maximum of the ticks as the compute engine hands them on, after the merge of the
  feed's connections (:mod:`aion.pipeline.merge`): it enters a minute only once every active
  connection has, which is the per-connection close rule of the bars, so it needs no clock
  of its own per connection.

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

from aion.instruments.master import Instrument
from aion.market.calendar import MarketCalendar
from aion.market.time import session_date
from aion.options.config import OptionsConfig
from aion.options.expiry import expiry_epoch, time_to_expiry
from aion.options.greeks import IV_REASONS, greeks_batch, implied_vol_batch
from aion.options.symbols import OptionContract, option_contract
from aion.store.batch import OptionRows

__all__ = ["CHAIN_ARRAY_KEYS", "CHAIN_WIDTH", "ChainTracker"]

_TS_BITS = 34  # epoch seconds < 2**34 (year 2514): search key = row << _TS_BITS | clock

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

    def __init__(
        self, e: int, expiry: dt.date, strikes: np.ndarray, ce: np.ndarray, pe: np.ndarray
    ):
        self.e = e  # index in ChainTracker.expiries
        self.expiry = expiry
        self.expiry_ts = expiry_epoch(expiry)
        self.strikes = strikes  # float64 (k,), ascending
        self.ce = ce  # int64 (k,), option index or -1
        self.pe = pe


class ChainTracker:
    """Option state and chains of a universe whose slot ``s`` is ``slot_inst[s]``.

    Tracked instruments get a *row*: option index ``i`` (in :attr:`contracts` order) is row
    ``i``, the underlyings of options follow. Only ticks of tracked slots are kept per batch.

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

        # rows: options 0..m-1, then their underlyings; -1 = slot not tracked
        unders = np.unique(self.underlying_slot[self.underlying_slot >= 0])
        self._row = self.option_index.copy()
        self._row[unders] = m + np.arange(unders.shape[0])
        self._under_row = np.where(
            self.underlying_slot >= 0, self._row[np.maximum(self.underlying_slot, 0)], -1
        )
        rows = m + unders.shape[0]
        # latest tick per row (arrival order) and the exchange clock (running max, epoch s)
        self._price = np.full(rows, math.nan, np.float64)
        self._volume = np.zeros(rows, np.int64)
        self._oi = np.zeros(rows, np.int64)
        self._ts = np.zeros(rows, np.int64)
        # incremental volume summed per row and session date (reset when the date changes)
        self._seen_volume = np.zeros(rows, np.int64)
        self._date = np.zeros(rows, np.int64)
        self._clock = np.zeros(1, np.int64)
        # the last batch's tracked ticks by (row, clock at arrival), see _index_batch
        self._keys = np.zeros(0, np.int64)
        self._b_price = np.zeros(0, np.float64)
        self._b_volume = np.zeros(0, np.int64)
        self._b_oi = np.zeros(0, np.int64)
        self._b_seen_volume = np.zeros(0, np.int64)
        self._b_date = np.zeros(0, np.int64)

        # latest state of the options (option_rows): views of the row arrays, then results
        self.last_price = self._price[:m]
        self.volume = self._volume[:m]
        self.oi = self._oi[:m]
        self.ts = self._ts[:m]
        self.underlying_price = np.full(m, math.nan, np.float64)
        self.iv = np.full(m, math.nan, np.float64)
        self.iv_code = np.zeros(m, np.int8)
        self.greeks = np.full((5, m), math.nan, np.float64)  # rows: _GREEK_ROWS
        self.dte_days = np.full(m, math.nan, np.float64)
        self.dte_years = np.full(m, math.nan, np.float64)

        self._chains: dict[int, list[_Chain]] = {}
        for u in unders.tolist():
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
                per_expiry.append(_Chain(e_i, expiry, strikes, ce, pe))
            self._chains[u] = per_expiry
        # straddle VWAP accumulators per underlying slot, reset each session date
        self._vwap_date = np.zeros(n, np.int64)
        self._vwap_num = np.zeros(n, np.float64)
        self._vwap_den = np.zeros(n, np.float64)
        self._vol_used = np.zeros(m, np.int64)  # each leg's seen volume at the last advance
        self._tte_now = 0
        self._tte_memo: dict[int, tuple[float, float]] = {}

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
        date: np.ndarray,
        price: np.ndarray,
        volume_traded: np.ndarray,
        incremental: np.ndarray,
        oi: np.ndarray,
    ) -> np.ndarray:
        """Take one batch of kept ticks in arrival order: int64 ``slots``, int64 epoch-second
        ``ts`` (exchange time, > 0), int64 IST session ``date`` (YYYYMMDD), float64 ``price``
        rupees, cumulative ``volume_traded``, ``incremental`` volume (the
        :class:`~aion.volume.state.VolumeStateManager`'s, 0 for the first tick of a session
        seen) and ``oi`` units, all (n,): the compute engine's
        :class:`~aion.pipeline.ticks.TickColumns`. Every kept tick of the feed must come
        through here, in order: the exchange clock (running maximum of ``ts``) decides which
        ticks a bar close sees.

        Keeps the batch's ticks of tracked slots searchable by the as-of-close views until the
        next call (one compiled pass; untracked slots cost a table look-up), moves each
        tracked slot to its last tick, and recomputes the latest IV and Greeks of the options
        that ticked against their underlying's latest price at the exchange clock.

        Returns the option indices updated, int64 (k,) ascending.
        """
        keys_, b_price, b_volume, b_oi, b_seen, b_date, touched = _index_batch(
            np.ascontiguousarray(slots, np.int64),
            np.ascontiguousarray(ts, np.int64),
            np.ascontiguousarray(date, np.int64),
            np.ascontiguousarray(price, np.float64),
            np.ascontiguousarray(volume_traded, np.int64),
            np.ascontiguousarray(incremental, np.int64),
            np.ascontiguousarray(oi, np.int64),
            self._row,
            self._clock,
            self._price,
            self._volume,
            self._oi,
            self._ts,
            self._seen_volume,
            self._date,
        )
        self._keys = keys_
        self._b_price, self._b_volume, self._b_oi = b_price, b_volume, b_oi
        self._b_seen_volume, self._b_date = b_seen, b_date
        o = touched[touched < len(self.contracts)]
        if o.shape[0]:
            spot = self._spot(o, self._price)
            days, years = self._time_to_expiry(o, int(self._clock[0]))
            iv, code, g = self._greeks(o, self.last_price[o], spot, years)
            self.underlying_price[o] = spot
            self.iv[o] = iv
            self.iv_code[o] = code
            self.greeks[:, o] = g
            self.dte_days[o] = days
            self.dte_years[o] = years
        return o

    def _at(self, rows: np.ndarray, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``last_price`` (float64), ``volume_traded`` and ``oi`` (int64) of tracked ``rows``
        (int64 (k,), >= 0) as of the close of a bar ending at ``end`` (epoch s): each row's
        last tick that arrived while the exchange clock was before ``end``. A row without such
        a tick in the last batch keeps its state from before the batch (every earlier batch
        arrived before the close: a bar closes in the batch holding its closing tick)."""
        price, volume, oi = self._price[rows], self._volume[rows], self._oi[rows]
        found = self._in_batch(rows, end)
        if found is not None:
            ic, hit = found
            price = np.where(hit, self._b_price[ic], price)
            volume = np.where(hit, self._b_volume[ic], volume)
            oi = np.where(hit, self._b_oi[ic], oi)
        return price, volume, oi

    def _seen_at(self, rows: np.ndarray, end: int, date: int) -> np.ndarray:
        """Incremental volume (int64 (k,), units) of tracked ``rows`` summed over session
        ``date`` (YYYYMMDD) up to their tick as of the close of a bar ending at ``end`` (as
        :meth:`_at`); 0 for a row whose tick as of that close is of another session."""
        seen, day = self._seen_volume[rows], self._date[rows]
        found = self._in_batch(rows, end)
        if found is not None:
            ic, hit = found
            seen = np.where(hit, self._b_seen_volume[ic], seen)
            day = np.where(hit, self._b_date[ic], day)
        return np.where(day == date, seen, 0)

    def _in_batch(self, rows: np.ndarray, end: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Where the last batch holds the tick of ``rows`` as of the close at ``end``: key
        positions (int64 (k,)) and whether each row has one there (bool (k,)); None for an
        empty batch."""
        if self._keys.shape[0] == 0:
            return None
        i = np.searchsorted(self._keys, (rows << _TS_BITS) | end, "left") - 1
        ic = np.maximum(i, 0)
        return ic, (i >= 0) & ((self._keys[ic] >> _TS_BITS) == rows)

    def _spot(self, o: np.ndarray, row_price: np.ndarray) -> np.ndarray:
        """Underlying price of options ``o`` from ``row_price`` (float64 by row), NaN when the
        underlying is not subscribed."""
        u = self._under_row[o]
        return np.where(u >= 0, row_price[np.maximum(u, 0)], math.nan)

    def _time_to_expiry(self, o: np.ndarray, now: int) -> tuple[np.ndarray, np.ndarray]:
        """Trading days and years (float64 (k,)) from ``now`` (epoch s) to the expiry of
        options ``o`` (:meth:`_expiry_time`)."""
        e_o = self.expiry_idx[o]
        days = np.empty(len(self.expiries), np.float64)
        years = np.empty(len(self.expiries), np.float64)
        for e in np.unique(e_o).tolist():
            days[e], years[e] = self._expiry_time(e, now)
        return days[e_o], years[e_o]

    def _expiry_time(self, e: int, now: int) -> tuple[float, float]:
        """Trading days and years from ``now`` (epoch s) to expiry ``self.expiries[e]``
        (:func:`aion.options.expiry.time_to_expiry`), remembered for the latest ``now`` (the
        bars of a minute share their close time)."""
        if now != self._tte_now:
            self._tte_now, self._tte_memo = now, {}
        got = self._tte_memo.get(e)
        if got is None:
            tte = time_to_expiry(
                now, self.expiries[e], self.calendar, self.settings.trading_days_per_year
            )
            got = self._tte_memo[e] = (tte.dte_days, tte.dte_years)
        return got

    def _greeks(
        self, o: np.ndarray, price: np.ndarray, spot: np.ndarray, years: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """IV (float64 (k,)), its reason code (int8 (k,)) and Greeks (float64 (5, k), rows
        ``_GREEK_ROWS``) of options ``o`` priced ``price`` with the underlying at ``spot``
        (rupees) and ``years`` to expiry."""
        st = self.settings
        iv, code = implied_vol_batch(
            price,
            spot,
            self.strike[o],
            years,
            self.is_call[o],
            rate=st.rate,
            dividend_yield=st.dividend_yield,
            sigma_min=st.iv_min,
            sigma_max=st.iv_max,
        )
        g = greeks_batch(
            spot,
            self.strike[o],
            years,
            iv,
            self.is_call[o],
            rate=st.rate,
            dividend_yield=st.dividend_yield,
        )
        return iv, code, g[1:]

    # -- views -------------------------------------------------------------------------------

    def option_rows(self, updated: np.ndarray) -> OptionRows:
        """The latest state of option indices ``updated`` (int64 (k,)) for the store
        (:class:`~aion.store.batch.OptionRows`): contract facts, last tick, underlying price,
        IV (and why not), Greeks and time to expiry."""
        idx = updated.astype(np.int64)
        cs = [self.contracts[i] for i in idx.tolist()]
        return OptionRows(
            symbols=[c.symbol for c in cs],
            facts=[(float(c.strike), c.option_type, c.expiry, c.underlying) for c in cs],
            exchange_timestamp=self.ts[idx].astype(np.int64),
            last_price=self.last_price[idx].astype(np.float64),
            underlying_price=self.underlying_price[idx],
            iv=self.iv[idx],
            iv_reason=[IV_REASONS[int(k)] for k in self.iv_code[idx].tolist()],
            greek_names=_GREEK_ROWS,
            greeks=self.greeks[:, idx],
            dte_days=self.dte_days[idx],
            dte_years=self.dte_years[idx],
        )

    def option_view(self, slot: int, end: int) -> dict[str, float]:
        """:attr:`InstrumentView.option` of ``slot`` at the close of its bar ending at ``end``
        (epoch s): ``strike``, ``iv``, ``delta``, ``gamma``, ``theta``, ``vega``, ``rho``,
        ``dte_days``, ``dte_years`` (floats, NaN when undefined), from the option's and its
        underlying's prices as of that close, at time ``end``; ``{}`` when the slot is not an
        option."""
        i = int(self.option_index[slot])
        if i < 0:
            return {}
        o = np.array([i], np.int64)
        price = self._at(o, end)[0]
        u = int(self._under_row[i])
        spot = self._at(np.array([u], np.int64), end)[0] if u >= 0 else np.array([math.nan])
        days, years = self._time_to_expiry(o, end)
        iv, _code, g = self._greeks(o, price, spot, years)
        out = {"strike": float(self.strike[i]), "iv": float(iv[0])}
        for r, name in enumerate(_GREEK_ROWS):
            out[name] = float(g[r, 0])
        out["dte_days"] = float(days[0])
        out["dte_years"] = float(years[0])
        return out

    def _locate(self, slot: int, end: int) -> tuple[_Chain, float, int] | None:
        """The chain of underlying ``slot`` at ``end`` (nearest expiry not expired), the spot
        as of the close at ``end`` and the ATM position in the chain's strikes (the strike
        nearest the spot, ties to the lower); None without a chain or a spot."""
        chains = self._chains.get(slot)
        if not chains:
            return None
        spot = float(self._at(self._row[slot : slot + 1], end)[0][0])
        chain = next((c for c in chains if c.expiry_ts > end), None)
        if chain is None or math.isnan(spot):
            return None
        return chain, spot, int(np.argmin(np.abs(chain.strikes - spot)))

    def chain_view(self, slot: int, end: int) -> dict[str, np.ndarray]:
        """:attr:`InstrumentView.chain` of underlying ``slot`` at the close of its bar ending
        at ``end`` (epoch s). A pure read: prices, volumes and OI as of that close, IV and
        Greeks computed at ``end`` against the spot as of that close.

        The chain is the nearest expiry not expired at ``end``; the 5 strikes are the ATM
        strike (nearest the spot, ties to the lower strike) at index 2 and two on each side,
        NaN-padded at the grid's edge. Arrays (float64, (5,)): see :data:`CHAIN_ARRAY_KEYS`;
        ``gamma``/``vega`` are the mean of the CE's and PE's (each at its own IV);
        ``ce_volume``/``pe_volume`` are day volumes (units). 0-d arrays: ``spot``,
        ``dte_days`` (trading days), ``atm_straddle`` (ATM CE + PE last prices, rupees),
        ``atm_straddle_vwap`` (the session's straddle VWAP as last advanced by
        :meth:`advance_straddle_vwap`, which the engine calls first for the same bar; NaN
        before any volume of the session).
        ``{}`` when the slot has no unexpired chain or no spot yet.
        """
        found = self._locate(slot, end)
        if found is None:
            return {}
        chain, spot, atm = found
        k = chain.strikes
        pos = np.arange(atm - CHAIN_WIDTH // 2, atm + CHAIN_WIDTH // 2 + 1)
        inside = (pos >= 0) & (pos < k.shape[0])
        pc = np.clip(pos, 0, k.shape[0] - 1)
        legs = np.concatenate(
            [np.where(inside, chain.ce[pc], -1), np.where(inside, chain.pe[pc], -1)]
        )
        has = legs >= 0
        o = legs[has]
        price, volume, oi = self._at(o, end)
        dte_days, dte_years = self._expiry_time(chain.e, end)
        iv, _code, g = self._greeks(
            o, price, np.full(o.shape[0], spot), np.full(o.shape[0], dte_years)
        )

        def legs_of(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            out = np.full(2 * CHAIN_WIDTH, math.nan)
            out[has] = values
            return out[:CHAIN_WIDTH], out[CHAIN_WIDTH:]

        ce_price, pe_price = legs_of(price)
        ce_iv, pe_iv = legs_of(iv)
        ce_delta, pe_delta = legs_of(g[0])
        ce_gamma, pe_gamma = legs_of(g[1])
        ce_theta, pe_theta = legs_of(g[2])
        ce_vega, pe_vega = legs_of(g[3])
        ce_oi, pe_oi = legs_of(oi)
        ce_volume, pe_volume = legs_of(volume)
        return {
            "strike": np.where(inside, k[pc], math.nan),
            "ce_last_price": ce_price,
            "pe_last_price": pe_price,
            "ce_iv": ce_iv,
            "pe_iv": pe_iv,
            "ce_delta": ce_delta,
            "pe_delta": pe_delta,
            "gamma": _mean2(ce_gamma, pe_gamma),
            "ce_theta": ce_theta,
            "pe_theta": pe_theta,
            "vega": _mean2(ce_vega, pe_vega),
            "ce_oi": ce_oi,
            "pe_oi": pe_oi,
            "ce_volume": ce_volume,
            "pe_volume": pe_volume,
            "spot": np.array(spot),
            "dte_days": np.array(dte_days),
            "atm_straddle": np.array(float(ce_price[2] + pe_price[2])),
            "atm_straddle_vwap": np.array(self._straddle_vwap(slot, end)),
        }

    # -- straddle VWAP -----------------------------------------------------------------------

    def advance_straddle_vwap(self, slot: int, end: int) -> None:
        """Add the close of underlying ``slot``'s bar ending at ``end`` (epoch s) to its
        session straddle VWAP. Call once per closed bar of the underlying, in bar order, before
        :meth:`chain_view` of that bar.

        The VWAP is the session mean of the ATM straddle (ATM CE + PE ``last_price`` as of
        each bar's close, rupees), weighted by the ATM CE + PE incremental volume since the
        previous bar's close (the VolumeStateManager's, so a scan that starts mid-session
        weights its first bar only with volume traded after its start, never with the day's
        ``volume_traded``); it restarts at each session date (IST). Bars without a chain or
        spot add nothing.
        """
        found = self._locate(slot, end)
        if found is None:
            return
        chain, _spot, atm = found
        date = session_date(end)
        legs = np.concatenate([chain.ce[chain.ce >= 0], chain.pe[chain.pe >= 0]])
        if self._vwap_date[slot] != date:
            self._vwap_date[slot] = date
            self._vwap_num[slot] = self._vwap_den[slot] = 0.0
            self._vol_used[legs] = 0
        seen = self._seen_at(legs, end, date)
        ce, pe = int(chain.ce[atm]), int(chain.pe[atm])
        if ce >= 0 and pe >= 0:
            pair = np.array([ce, pe], np.int64)
            price = self._at(pair, end)[0]
            dv = int((self._seen_at(pair, end, date) - self._vol_used[pair]).sum())
            straddle = float(price[0] + price[1])
            if dv > 0 and math.isfinite(straddle):
                self._vwap_num[slot] += straddle * dv
                self._vwap_den[slot] += dv
        self._vol_used[legs] = seen

    def _straddle_vwap(self, slot: int, end: int) -> float:
        """The straddle VWAP of ``slot``'s session at ``end`` as last advanced (rupees, NaN
        before any volume)."""
        den = self._vwap_den[slot]
        if self._vwap_date[slot] != session_date(end) or den <= 0:
            return math.nan
        return float(self._vwap_num[slot] / den)


@njit(nogil=True, cache=True)
def _index_batch(
    slots, ts, date, price, volume, incremental, oi, row, clock,
    cur_price, cur_volume, cur_oi, cur_ts, cur_seen, cur_date,
):  # fmt: skip  # pragma: no cover - compiled
    """Order a batch's ticks of tracked slots by (row, exchange clock at arrival).

    ``slots``/``ts``/``date``/``price``/``volume``/``incremental``/``oi`` (n,) in arrival
    order, ``row`` int64 by slot (-1 untracked), ``clock`` int64 (1,) the exchange clock
    before the batch (updated), and the latest state by row ``cur_*`` (updated to each row's
    last tick; ``cur_seen`` sums ``incremental`` per row over the session ``cur_date``,
    restarting at 0 when a tick of another date arrives). Returns search keys int64
    ``row << _TS_BITS | clock at arrival`` ascending, the ticks' ``price``/``volume``/``oi``/
    seen volume/``date`` in key order, and the rows that ticked. Each touched row's group
    starts with its state before the batch under clock 0 (found when no tick of the batch
    arrived before a close); the clock is a running maximum, so arrival order within a row
    is key order.
    """
    n_rows = cur_price.shape[0]
    count = np.zeros(n_rows, np.int64)
    for i in range(slots.shape[0]):
        r = row[slots[i]]
        if r >= 0:
            count[r] += 1
    fill = np.zeros(n_rows, np.int64)
    k = 0
    for r in range(n_rows):
        fill[r] = k
        if count[r]:
            k += count[r] + 1
    keys = np.empty(k, np.int64)
    b_price = np.empty(k, np.float64)
    b_volume = np.empty(k, np.int64)
    b_oi = np.empty(k, np.int64)
    b_seen = np.empty(k, np.int64)
    b_date = np.empty(k, np.int64)
    for r in range(n_rows):
        if count[r]:
            j = fill[r]
            keys[j] = r << _TS_BITS
            b_price[j] = cur_price[r]
            b_volume[j] = cur_volume[r]
            b_oi[j] = cur_oi[r]
            b_seen[j] = cur_seen[r]
            b_date[j] = cur_date[r]
            fill[r] = j + 1
    c = clock[0]
    for i in range(slots.shape[0]):
        t = ts[i]
        if t > c:
            c = t
        r = row[slots[i]]
        if r < 0:
            continue
        if date[i] != cur_date[r]:
            cur_date[r] = date[i]
            cur_seen[r] = 0
        cur_seen[r] += incremental[i]
        j = fill[r]
        keys[j] = (r << _TS_BITS) | c
        b_price[j] = price[i]
        b_volume[j] = volume[i]
        b_oi[j] = oi[i]
        b_seen[j] = cur_seen[r]
        b_date[j] = date[i]
        fill[r] = j + 1
        cur_price[r] = price[i]
        cur_volume[r] = volume[i]
        cur_oi[r] = oi[i]
        cur_ts[r] = t
    clock[0] = c
    return keys, b_price, b_volume, b_oi, b_seen, b_date, np.flatnonzero(count > 0)


def _mean2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    both = np.isfinite(a) & np.isfinite(b)
    return np.where(both, 0.5 * (a + b), np.where(np.isfinite(a), a, b))
