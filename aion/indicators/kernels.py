"""Numba kernels for the incremental indicator core.

Every kernel is a pure function of numpy arrays: per-instrument state arrays
(indexed by an integer instrument *slot*) plus the inputs of one batch of
closed 1-minute bars.  ``update_bars`` mutates the state arrays in place;
``peek_bar`` evaluates the same arithmetic for one hypothetical bar without
writing any state.  Both go through :func:`_bar_step`, so a forming bar and a
closed bar can never disagree.

State layout (``n`` = number of slots, ``m`` = number of EMA periods):

========== ================ ==========================================================
array      dtype / shape    meaning
========== ================ ==========================================================
count      int64 (n,)       closed bars applied to the slot
prev_close float64 (n,)     close of the previous closed bar (NaN before the first)
ema_acc    float64 (n, m)   running sum of closes during warm-up, the EMA afterwards
rsi_gain   float64 (n,)     sum of gains during warm-up, Wilder average gain afterwards
rsi_loss   float64 (n,)     sum of losses during warm-up, Wilder average loss afterwards
atr_acc    float64 (n,)     sum of true ranges during warm-up, the ATR afterwards
vwap_date  int64 (n,)       session date (YYYYMMDD) of the VWAP sums, -1 before any bar
vwap_pv    float64 (n,)     session sum of typical_price * volume (rupees * shares)
vwap_v     float64 (n,)     session sum of volume (shares)
out        float64 (n, m+3) current outputs: the EMAs, then RSI, ATR, VWAP (NaN = not ready)
========== ================ ==========================================================

Formulas follow TA-Lib's C sources (``ta_EMA.c``, ``ta_RSI.c``, ``ta_ATR.c``,
``ta_TRANGE.c``), which implement J. Welles Wilder, *New Concepts in Technical
Trading Systems* (1978) for RSI and ATR, with TA-Lib's default unstable period 0
and classic (non-Metastock) compatibility:

* EMA(p): seed = simple mean of the first ``p`` closes (first output at bar
  ``p``), then ``ema = (close - ema) * k + ema`` with ``k = 2 / (p + 1)``.
* RSI(p): changes start at bar 2; seed averages = sum of the first ``p`` gains
  and losses divided by ``p`` (first output at bar ``p + 1``), then Wilder
  smoothing ``avg = (avg * (p - 1) + x) / p``; ``rsi = 100 * g / (g + l)``, and
  0 when ``g + l == 0`` (a flat series), as TA-Lib returns.
* ATR(p): true range ``max(h - l, |h - prev_c|, |l - prev_c|)`` starts at bar 2;
  seed = mean of the first ``p`` true ranges (first output at bar ``p + 1``),
  then ``atr = (atr * (p - 1) + tr) / p``.
* VWAP: ``sum(tp * v) / sum(v)`` over the session with ``tp = (h + l + c) / 3``;
  the sums reset when the bar's session date differs from the stored one; NaN
  while the session volume is 0 (indices carry no volume).

Inputs are expected finite (prices in rupees, volume in shares, >= 0).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True, inline="always")
def _bar_step(
    s,
    date,
    high,
    low,
    close,
    volume,
    count,
    prev_close,
    ema_periods,
    ema_acc,
    rsi_period,
    rsi_gain,
    rsi_loss,
    atr_period,
    atr_acc,
    vwap_date,
    vwap_pv,
    vwap_v,
    out_row,
    commit,
):
    """Apply one bar to slot ``s``; write outputs to ``out_row``; write state iff ``commit``."""
    n = count[s] + 1  # bars seen including this one
    pc = prev_close[s]
    m = ema_periods.shape[0]

    # --- EMA (ta_EMA.c) ---
    for j in range(m):
        p = ema_periods[j]
        acc = ema_acc[s, j]
        if n < p:
            acc = acc + close
            val = np.nan
        elif n == p:
            acc = (acc + close) / p
            val = acc
        else:
            acc = (close - acc) * (2.0 / (p + 1.0)) + acc
            val = acc
        out_row[j] = val
        if commit:
            ema_acc[s, j] = acc

    # --- RSI (ta_RSI.c) and ATR (ta_ATR.c / ta_TRANGE.c) ---
    gain = rsi_gain[s]
    loss = rsi_loss[s]
    atr = atr_acc[s]
    rsi_val = np.nan
    atr_val = np.nan
    if n >= 2:
        diff = close - pc
        rp = rsi_period
        if n <= rp + 1:
            if diff < 0.0:
                loss = loss - diff
            else:
                gain = gain + diff
            if n == rp + 1:
                loss = loss / rp
                gain = gain / rp
        else:
            loss = loss * (rp - 1)
            gain = gain * (rp - 1)
            if diff < 0.0:
                loss = loss - diff
            else:
                gain = gain + diff
            loss = loss / rp
            gain = gain / rp
        if n >= rp + 1:
            tot = gain + loss
            rsi_val = 100.0 * (gain / tot) if tot != 0.0 else 0.0

        tr = high - low
        v2 = abs(pc - high)
        if v2 > tr:
            tr = v2
        v3 = abs(low - pc)
        if v3 > tr:
            tr = v3
        ap = atr_period
        if n <= ap + 1:
            atr = atr + tr
            if n == ap + 1:
                atr = atr / ap
                atr_val = atr
        else:
            atr = atr * (ap - 1)
            atr = atr + tr
            atr = atr / ap
            atr_val = atr
    out_row[m] = rsi_val
    out_row[m + 1] = atr_val

    # --- session VWAP ---
    pv = vwap_pv[s]
    vv = vwap_v[s]
    if vwap_date[s] != date:
        pv = 0.0
        vv = 0.0
    if volume > 0.0:
        pv = pv + (high + low + close) / 3.0 * volume
        vv = vv + volume
    out_row[m + 2] = pv / vv if vv > 0.0 else np.nan

    if commit:
        count[s] = n
        prev_close[s] = close
        rsi_gain[s] = gain
        rsi_loss[s] = loss
        atr_acc[s] = atr
        vwap_date[s] = date
        vwap_pv[s] = pv
        vwap_v[s] = vv


@njit(nogil=True, cache=True)
def update_bars(
    slots,
    session_date,
    high,
    low,
    close,
    volume,
    count,
    prev_close,
    ema_periods,
    ema_acc,
    rsi_period,
    rsi_gain,
    rsi_loss,
    atr_period,
    atr_acc,
    vwap_date,
    vwap_pv,
    vwap_v,
    out,
):
    """Apply a batch of closed bars in array order, updating state and ``out`` in place.

    ``slots`` int64 (k,), ``session_date`` int64 YYYYMMDD (k,), ``high``/``low``/``close``
    float64 rupees (k,), ``volume`` float64 shares (k,). A slot may repeat; its bars are
    applied in order. State arrays are described in the module docstring. O(k).
    """
    for i in range(slots.shape[0]):
        s = slots[i]
        _bar_step(
            s,
            session_date[i],
            high[i],
            low[i],
            close[i],
            volume[i],
            count,
            prev_close,
            ema_periods,
            ema_acc,
            rsi_period,
            rsi_gain,
            rsi_loss,
            atr_period,
            atr_acc,
            vwap_date,
            vwap_pv,
            vwap_v,
            out[s],
            True,
        )


@njit(nogil=True, cache=True)
def peek_bar(
    s,
    date,
    high,
    low,
    close,
    volume,
    count,
    prev_close,
    ema_periods,
    ema_acc,
    rsi_period,
    rsi_gain,
    rsi_loss,
    atr_period,
    atr_acc,
    vwap_date,
    vwap_pv,
    vwap_v,
    out_row,
):
    """Outputs slot ``s`` would have if this bar closed now, written to ``out_row`` (m+3,).

    Reads the state arrays only; nothing else is modified. Same arithmetic as
    :func:`update_bars`.
    """
    _bar_step(
        s,
        date,
        high,
        low,
        close,
        volume,
        count,
        prev_close,
        ema_periods,
        ema_acc,
        rsi_period,
        rsi_gain,
        rsi_loss,
        atr_period,
        atr_acc,
        vwap_date,
        vwap_pv,
        vwap_v,
        out_row,
        False,
    )
