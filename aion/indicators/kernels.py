"""Numba kernels of the incremental indicator core.

Every kernel is a pure function of numpy arrays: per-instrument state rows (one row
per instrument *slot*) plus one batch of closed bars. :func:`update_bars` applies the
bars and mutates the state in place; :func:`peek_bars` evaluates the same arithmetic
on a scratch copy of each slot's state, for a forming bar, without writing any state.
Both go through :func:`_bar_step`, so a forming bar and a closed bar cannot disagree.
No kernel allocates: per update the work is O(1) per indicator except the rolling
windows (SMA/Bollinger re-seed, CCI mean deviation, CMF, Stochastic/Williams/Donchian
extremes), which read their ring buffer of ``period`` values.

State layout (``n`` slots; column constants below, parameters in ``params``):

=========== ================ ==========================================================
array       dtype / shape    meaning
=========== ================ ==========================================================
istate      int64 (n, 4)     ``I_COUNT`` closed bars applied, ``I_VWAP_DATE`` session
                             (YYYYMMDD, -1 before any bar), ``I_BB_RESEED`` bars until
                             the Bollinger variance sums are rebuilt, ``I_MFI_NULL_RUN``
                             consecutive bars without money flow
fstate      float64 (n, F)   ``F_*`` scalars (previous bar, Wilder sums, running sums,
                             VWAP sums), then one EMA accumulator per EMA period, then
                             one running sum per SMA period
ring        float64 (n, R)   ring buffers, offsets in ``params[P_R*_OFF]``: closes
                             (length ``P_RC_LEN``), highs and lows (``P_RHL_LEN``),
                             typical prices (CCI period), fast %K (slow-K period),
                             slow %K (slow-D period), MFI positive / negative flows (MFI
                             period), CMF money-flow volume and volume (CMF period)
out         float64 (n, O)   current outputs: EMAs, SMAs, then ``O_*`` (offset by the
                             number of EMA + SMA periods), then VWAP bands upper/lower
                             per multiplier; NaN = not warmed up
=========== ================ ==========================================================

Formulas. TA-Lib (C library 0.8, the ``ta_*.c`` / ``*.c`` sources of
github.com/TA-Lib/ta-lib, default unstable period 0, classic compatibility) is the
reference for everything it has; the bar index ``n`` below counts from 1 and gives the
first bar with an output (TA-Lib's lookback + 1):

* EMA(p) (``ta_EMA.c``): seed = mean of the first ``p`` closes (``n = p``), then
  ``ema = (c - ema) * 2/(p+1) + ema``.
* SMA(p) (``ta_SMA.c``): running sum, ``+ c``, output ``sum/p``, ``- c[n-p+1]`` (n = p).
* RSI(p) and ATR(p) (``ta_RSI.c``, ``ta_ATR.c``), J. W. Wilder, *New Concepts in
  Technical Trading Systems* (1978): seed = mean of the first ``p`` changes / true
  ranges, then ``avg = (avg*(p-1) + x)/p``; RSI 0 when gains + losses = 0 (n = p+1).
* MACD(f, s, g) (``ta_MACD.c``): slow EMA(s) from bar 1; TA-Lib seeds the fast EMA(f)
  with the mean of closes ``s-f+1 .. s`` so both start at bar ``s``; line = fast - slow;
  signal = EMA(g) of the line; histogram = line - signal (all three from n = s+g-1).
* Bollinger(p, k) (``ta_BBANDS.c``, SMA path): middle = SMA(p); sigma = population
  standard deviation of the window from shifted running sums re-seeded on the window
  mean when cancellation grows (variance < 1e-6 x mean square of the shifted values, a
  dropped value > 1e6 x the sum) or every 32p bars; 0 when the variance < 1e-14;
  bands = middle +/- k sigma (n = p).
* ADX(p), +DI(p), -DI(p) (``ta_ADX.c``, ``ta_PLUS_DI.c``, ``ta_MINUS_DI.c``, Wilder):
  +DM = h - h_prev if it exceeds l_prev - l and 0, -DM symmetric; DM and TR summed over
  bars 2..p, then Wilder-smoothed ``x - x/p + new``; DI = 100 DM/TR (0 if TR = 0,
  n = p+1); DX = 100 |+DI - -DI| / (+DI + -DI); ADX = mean of the first ``p`` DX
  (n = 2p), then ``(adx*(p-1) + dx)/p``. A bar whose TR or DI sum is 0 adds no DX.
  TA-Lib 0.8 tests these two for exact zero (no 1e-14 band: an illiquid instrument's
  decaying TR keeps its DI), which the real-data and flat-stretch tests pin.
* Stochastic(k, sk, sd) (``ta_STOCH.c``, SMA smoothing): fast %K = 100 (c - LL)/(HH - LL)
  over ``k`` bars, 0 when HH - LL is ~0 relative to |HH| + |LL|; slow %K = SMA(sk) of
  fast %K; %D = SMA(sd) of slow %K (both from n = k+sk+sd-2).
* Williams %R(p) (``ta_WILLR.c``): -100 (HH - c)/(HH - LL), 0 on a flat window (n = p).
* CCI(p) (``ta_CCI.c``): typical price tp = (h+l+c)/3; (tp - mean)/(0.015 x mean
  absolute deviation) over ``p`` bars, 0 when either is ~0 relative to |mean| (n = p).
* ROC(p) (``ta_ROC.c``): (c / c[n-p] - 1) x 100, 0 if c[n-p] = 0 (n = p+1).
* OBV (``ta_OBV.c``): starts at the first bar's volume, +v on an up close, -v on a down.
* A/D (``ta_AD.c``): cumulative ((c-l) - (h-c))/(h-l) x v over bars with h > l.
* MFI(p) (``mfi.c``, TA-Lib 0.8): raw flow tp x v is positive/negative by the sign of
  the tp change, 0 when the change is ~0 relative to the two tps; 100 pos/(pos+neg)
  over ``p`` flows with pos clamped into [0, pos+neg], 0 when pos+neg <= 0; after
  ``p`` consecutive bars without flow the running sums are reset to exactly 0 (n = p+1).

Not in classic TA-Lib (checked against plain numpy in the tests):

* Session VWAP: sum(tp v)/sum(v) over the session (reset when the session date
  changes), NaN while the session volume is 0 (indices). Its standard deviation is the
  volume-weighted population deviation of tp about the VWAP, accumulated with West's
  weighted update (D. H. D. West, "Updating mean and variance estimates: an improved
  method", CACM 22(9), 1979) to avoid cancellation; bands = VWAP +/- m sigma.
* Keltner(p, a, m) (TA-Lib 0.8 ``KC``): middle = EMA(p) of the typical price, bands =
  middle +/- m x ATR(a); the first output is at bar n0 = max(p, a+1) and the ATR is
  seeded with the mean of the ``a`` true ranges ending there (bars n0-a+1 .. n0).
* Donchian(p): highest high and lowest low over ``p`` bars, middle = their mean (n = p).
* Chaikin Money Flow(p) (also TA-Lib 0.8 ``CMF``): sum of money-flow volume
  ((c-l) - (h-c))/(h-l) x v (0 when h = l) over sum of volume, ``p`` bars, summed
  oldest first (no drift); 0 while the window volume is 0, as TA-Lib (n = p).

Inputs are expected finite (prices in rupees, volume in shares, >= 0).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# ---- istate columns
I_COUNT = 0
I_VWAP_DATE = 1
I_BB_RESEED = 2
I_MFI_NULL_RUN = 3
N_ISTATE = 4

# ---- fstate columns (EMA accumulators then SMA sums follow N_FSTATE_FIXED)
F_PREV_CLOSE = 0
F_PREV_HIGH = 1
F_PREV_LOW = 2
F_RSI_GAIN = 3
F_RSI_LOSS = 4
F_ATR = 5
F_VWAP_PV = 6
F_VWAP_V = 7
F_VWAP_MEAN = 8
F_VWAP_M2 = 9
F_MACD_FAST = 10
F_MACD_SLOW = 11
F_MACD_SIGNAL = 12
F_BB_SUM = 13
F_BB_SHIFT = 14
F_BB_V1 = 15
F_BB_V2 = 16
F_DM_PLUS = 17
F_DM_MINUS = 18
F_DM_TR = 19
F_ADX = 20
F_STOCH_KSUM = 21
F_STOCH_DSUM = 22
F_OBV = 23
F_AD = 24
F_MFI_POS = 25
F_MFI_NEG = 26
F_MFI_PREV_TP = 27
F_KC_EMA = 28
F_KC_ATR = 29
N_FSTATE_FIXED = 30

# ---- int64 params: periods (bars), then ring-buffer layout
P_RSI = 0
P_ATR = 1
P_MACD_FAST = 2
P_MACD_SLOW = 3
P_MACD_SIGNAL = 4
P_BB = 5
P_ADX = 6
P_STOCH_K = 7
P_STOCH_SK = 8
P_STOCH_SD = 9
P_WILLR = 10
P_CCI = 11
P_ROC = 12
P_CMF = 13
P_MFI = 14
P_KC = 15
P_KC_ATR = 16
P_DON = 17
P_RC_OFF = 18  # closes, length P_RC_LEN >= max(SMA periods, Bollinger, ROC + 1)
P_RC_LEN = 19
P_RH_OFF = 20  # highs, length P_RHL_LEN >= max(Stochastic %K, Williams, Donchian)
P_RL_OFF = 21  # lows, same length
P_RHL_LEN = 22
P_RTP_OFF = 23  # CCI typical prices, length = CCI period (TA-Lib sums in buffer order)
P_RFK_OFF = 24  # fast %K, length = slow-K period
P_RSK_OFF = 25  # slow %K, length = slow-D period
P_RMP_OFF = 26  # MFI positive flows, length = MFI period
P_RMN_OFF = 27  # MFI negative flows
P_RCM_OFF = 28  # CMF money-flow volume, length = CMF period
P_RCV_OFF = 29  # CMF volume
P_RING_WIDTH = 30
N_PARAMS = 31

# ---- float64 params
FP_BB_NBDEV = 0
FP_KC_MULT = 1
FP_VWAP_BANDS = 2  # the VWAP band multipliers follow

# ---- output columns, relative to the first column after the EMAs and SMAs
O_RSI = 0
O_ATR = 1
O_MACD = 2
O_MACD_SIGNAL = 3
O_MACD_HIST = 4
O_BB_UPPER = 5
O_BB_MIDDLE = 6
O_BB_LOWER = 7
O_ADX = 8
O_PLUS_DI = 9
O_MINUS_DI = 10
O_STOCH_K = 11
O_STOCH_D = 12
O_WILLR = 13
O_CCI = 14
O_ROC = 15
O_OBV = 16
O_AD = 17
O_CMF = 18
O_MFI = 19
O_VWAP = 20
O_VWAP_SD = 21
O_KC_UPPER = 22
O_KC_MIDDLE = 23
O_KC_LOWER = 24
O_DON_UPPER = 25
O_DON_MIDDLE = 26
O_DON_LOWER = 27
N_FIXED_OUT = 28  # then (upper, lower) per VWAP band multiplier

TA_EPSILON = 1e-14  # TA-Lib 0.8 ta_utility.h: TA_IS_ZERO / TA_IS_ZERO_OR_NEG band


@njit(nogil=True, cache=True)
def _is_zero_scaled(v, scale):
    """TA-Lib ``TA_IS_ZERO_SCALED``: |v| <= 1e-14 x scale (a difference of like magnitudes)."""
    return abs(v) <= TA_EPSILON * scale


@njit(nogil=True, cache=True)
def _ema(acc, n, p, x):
    """EMA step for the ``n``-th input ``x``: returns (new accumulator, value or NaN)."""
    if n < p:
        return acc + x, np.nan
    if n == p:
        acc = (acc + x) / p
        return acc, acc
    acc = (x - acc) * (2.0 / (p + 1.0)) + acc
    return acc, acc


@njit(nogil=True, cache=True)
def _wilder(acc, n, p, x):
    """Wilder average of inputs starting at bar 2 (``n`` = bar number): (acc, value or NaN)."""
    if n <= p + 1:
        acc = acc + x
        if n == p + 1:
            acc = acc / p
            return acc, acc
        return acc, np.nan
    acc = acc * (p - 1)
    acc = acc + x
    acc = acc / p
    return acc, acc


@njit(nogil=True, cache=True)
def _true_range(high, low, prev_close):
    """TA-Lib ``TRUE_RANGE``: max(h - l, |h - prev_c|, |l - prev_c|)."""
    tr = high - low
    v = abs(prev_close - high)
    if v > tr:
        tr = v
    v = abs(low - prev_close)
    if v > tr:
        tr = v
    return tr


@njit(nogil=True, cache=True)
def _extremes(ring, hi_off, lo_off, length, k, p):
    """Highest high and lowest low of the ``p`` bars ending at bar index ``k`` (0-based)."""
    hh = -np.inf
    ll = np.inf
    for j in range(k - p + 1, k + 1):
        h = ring[hi_off + j % length]
        lo = ring[lo_off + j % length]
        if h > hh:
            hh = h
        if lo < ll:
            ll = lo
    return hh, ll


@njit(nogil=True, cache=True)
def _bar_step(ist, fs, ring, out, params, fparams, ema_periods, sma_periods, date, h, lo, c, v):
    """Apply one bar (``h``/``lo``/``c`` rupees, ``v`` shares, ``date`` YYYYMMDD) to one
    slot's state rows ``ist``/``fs``/``ring`` and write its outputs to ``out``."""
    nan = np.nan
    n = ist[I_COUNT] + 1  # bar number, 1-based
    k = n - 1  # bar index, 0-based
    pc = fs[F_PREV_CLOSE]
    ph = fs[F_PREV_HIGH]
    pl = fs[F_PREV_LOW]
    m = ema_periods.shape[0]
    q = sma_periods.shape[0]
    b = m + q
    tp = (h + lo + c) / 3.0

    rc = params[P_RC_OFF]
    rc_len = params[P_RC_LEN]
    rh = params[P_RH_OFF]
    rl = params[P_RL_OFF]
    rhl_len = params[P_RHL_LEN]
    ring[rc + k % rc_len] = c
    ring[rh + k % rhl_len] = h
    ring[rl + k % rhl_len] = lo

    # --- EMA, SMA
    for j in range(m):
        fs[N_FSTATE_FIXED + j], out[j] = _ema(fs[N_FSTATE_FIXED + j], n, ema_periods[j], c)
    for j in range(q):
        p = sma_periods[j]
        s = fs[N_FSTATE_FIXED + m + j] + c
        if n >= p:
            out[m + j] = s / p
            s -= ring[rc + (n - p) % rc_len]
        else:
            out[m + j] = nan
        fs[N_FSTATE_FIXED + m + j] = s

    # --- RSI, ATR (Wilder)
    rsi_val = nan
    atr_val = nan
    if n >= 2:
        diff = c - pc
        rp = params[P_RSI]
        gain = fs[F_RSI_GAIN]
        loss = fs[F_RSI_LOSS]
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
        fs[F_RSI_GAIN] = gain
        fs[F_RSI_LOSS] = loss
        tr = _true_range(h, lo, pc)
        fs[F_ATR], atr_val = _wilder(fs[F_ATR], n, params[P_ATR], tr)
    else:
        tr = 0.0
    out[b + O_RSI] = rsi_val
    out[b + O_ATR] = atr_val

    # --- MACD (fast EMA seeded on closes slow-fast+1 .. slow, as TA-Lib)
    fast_p = params[P_MACD_FAST]
    slow_p = params[P_MACD_SLOW]
    sig_p = params[P_MACD_SIGNAL]
    fs[F_MACD_SLOW], slow_val = _ema(fs[F_MACD_SLOW], n, slow_p, c)
    nf = n - (slow_p - fast_p)
    if nf >= 1:
        fs[F_MACD_FAST], fast_val = _ema(fs[F_MACD_FAST], nf, fast_p, c)
    else:
        fast_val = nan
    out[b + O_MACD] = nan
    out[b + O_MACD_SIGNAL] = nan
    out[b + O_MACD_HIST] = nan
    if n >= slow_p:
        line = fast_val - slow_val
        ns = n - slow_p + 1
        fs[F_MACD_SIGNAL], sig_val = _ema(fs[F_MACD_SIGNAL], ns, sig_p, line)
        if ns >= sig_p:
            out[b + O_MACD] = line
            out[b + O_MACD_SIGNAL] = sig_val
            out[b + O_MACD_HIST] = line - sig_val

    # --- Bollinger (TA-Lib SMA path: running sum + shifted variance sums with re-seed)
    bp = params[P_BB]
    inv = 1.0 / bp
    if n == 1:
        fs[F_BB_SHIFT] = c
        ist[I_BB_RESEED] = 32 * bp
    shift = fs[F_BB_SHIFT]
    bsum = fs[F_BB_SUM] + c
    t = c - shift
    v1 = fs[F_BB_V1] + t
    v2 = fs[F_BB_V2] + t * t
    out[b + O_BB_UPPER] = nan
    out[b + O_BB_MIDDLE] = nan
    out[b + O_BB_LOWER] = nan
    if n >= bp:
        mean1 = v1 * inv
        variance = v2 * inv - mean1 * mean1
        middle = bsum / bp
        old = ring[rc + (n - bp) % rc_len]
        bsum -= old
        t = old - shift
        v1 -= t
        t = t * t
        v2 -= t
        ist[I_BB_RESEED] -= 1
        if variance < 0.000001 * (v2 * inv) or t > 1000000.0 * v2 or ist[I_BB_RESEED] <= 0:
            ist[I_BB_RESEED] = 32 * bp
            acc = 0.0
            for j in range(n - bp, n):
                acc += ring[rc + j % rc_len]
            shift = acc * inv
            v1 = 0.0
            v2 = 0.0
            for j in range(n - bp, n):
                t = ring[rc + j % rc_len] - shift
                v1 += t
                v2 += t * t
            mean1 = v1 * inv
            variance = v2 * inv - mean1 * mean1
            t = old - shift
            v1 -= t
            v2 -= t * t
        sigma = math.sqrt(variance) if not variance < TA_EPSILON else 0.0
        dev = sigma * fparams[FP_BB_NBDEV]
        out[b + O_BB_UPPER] = middle + dev
        out[b + O_BB_MIDDLE] = middle
        out[b + O_BB_LOWER] = middle - dev
    fs[F_BB_SHIFT] = shift
    fs[F_BB_SUM] = bsum
    fs[F_BB_V1] = v1
    fs[F_BB_V2] = v2

    # --- ADX, +DI, -DI (Wilder)
    ap = params[P_ADX]
    out[b + O_ADX] = nan
    out[b + O_PLUS_DI] = nan
    out[b + O_MINUS_DI] = nan
    if n >= 2:
        diff_p = h - ph
        diff_m = pl - lo
        pdm = fs[F_DM_PLUS]
        mdm = fs[F_DM_MINUS]
        trs = fs[F_DM_TR]
        if n <= ap:
            if diff_m > 0.0 and diff_p < diff_m:
                mdm += diff_m
            elif diff_p > 0.0 and diff_p > diff_m:
                pdm += diff_p
            trs += tr
        else:
            mdm -= mdm / ap
            pdm -= pdm / ap
            if diff_m > 0.0 and diff_p < diff_m:
                mdm += diff_m
            elif diff_p > 0.0 and diff_p > diff_m:
                pdm += diff_p
            trs = trs - (trs / ap) + tr
            adx = fs[F_ADX]
            dx = nan
            if trs != 0.0:
                minus_di = 100.0 * (mdm / trs)
                plus_di = 100.0 * (pdm / trs)
                tot = minus_di + plus_di
                if tot != 0.0:
                    dx = 100.0 * (abs(minus_di - plus_di) / tot)
            else:
                minus_di = 0.0
                plus_di = 0.0
            out[b + O_PLUS_DI] = plus_di
            out[b + O_MINUS_DI] = minus_di
            if n <= 2 * ap:
                if not np.isnan(dx):
                    adx += dx
                if n == 2 * ap:
                    adx = adx / ap
                    out[b + O_ADX] = adx
            else:
                if not np.isnan(dx):
                    adx = ((adx * (ap - 1)) + dx) / ap
                out[b + O_ADX] = adx
            fs[F_ADX] = adx
        fs[F_DM_PLUS] = pdm
        fs[F_DM_MINUS] = mdm
        fs[F_DM_TR] = trs

    # --- Stochastic (fast %K, slow %K = SMA, %D = SMA of slow %K)
    kp = params[P_STOCH_K]
    skp = params[P_STOCH_SK]
    sdp = params[P_STOCH_SD]
    out[b + O_STOCH_K] = nan
    out[b + O_STOCH_D] = nan
    nk = n - kp + 1  # fast %K values so far
    if nk >= 1:
        hh, ll = _extremes(ring, rh, rl, rhl_len, k, kp)
        rng = hh - ll
        fastk = 0.0 if _is_zero_scaled(rng, abs(hh) + abs(ll)) else ((c - ll) / rng) * 100.0
        rfk = params[P_RFK_OFF]
        ring[rfk + (nk - 1) % skp] = fastk
        ks = fs[F_STOCH_KSUM] + fastk
        if nk >= skp:
            slowk = ks / skp
            ks -= ring[rfk + (nk - skp) % skp]
            nsk = nk - skp + 1
            rsk = params[P_RSK_OFF]
            ring[rsk + (nsk - 1) % sdp] = slowk
            ds = fs[F_STOCH_DSUM] + slowk
            if nsk >= sdp:
                out[b + O_STOCH_K] = slowk
                out[b + O_STOCH_D] = ds / sdp
                ds -= ring[rsk + (nsk - sdp) % sdp]
            fs[F_STOCH_DSUM] = ds
        fs[F_STOCH_KSUM] = ks

    # --- Williams %R
    wp = params[P_WILLR]
    out[b + O_WILLR] = nan
    if n >= wp:
        hh, ll = _extremes(ring, rh, rl, rhl_len, k, wp)
        rng = hh - ll
        willr = 0.0
        if not _is_zero_scaled(rng, abs(hh) + abs(ll)):
            willr = min(max(((hh - c) / rng) * (-100.0), -100.0), 0.0)
        out[b + O_WILLR] = willr

    # --- CCI (TA-Lib sums its circular buffer in slot order)
    cp = params[P_CCI]
    rtp = params[P_RTP_OFF]
    ring[rtp + k % cp] = tp
    out[b + O_CCI] = nan
    if n >= cp:
        avg = 0.0
        for j in range(cp):
            avg += ring[rtp + j]
        avg /= cp
        mad = 0.0
        for j in range(cp):
            mad += abs(ring[rtp + j] - avg)
        mad /= cp
        d = tp - avg
        scale = abs(avg)
        if not _is_zero_scaled(d, scale) and not _is_zero_scaled(mad, scale):
            out[b + O_CCI] = d / (0.015 * mad)
        else:
            out[b + O_CCI] = 0.0

    # --- ROC
    rp_ = params[P_ROC]
    out[b + O_ROC] = nan
    if n > rp_:
        prev = ring[rc + (k - rp_) % rc_len]
        out[b + O_ROC] = ((c / prev) - 1.0) * 100.0 if prev != 0.0 else 0.0

    # --- OBV, A/D
    if n == 1:
        obv = v
    else:
        obv = fs[F_OBV]
        if c > pc:
            obv += v
        elif c < pc:
            obv -= v
    fs[F_OBV] = obv
    out[b + O_OBV] = obv
    ad = fs[F_AD]
    hl = h - lo
    if hl > 0.0:
        ad += (((c - lo) - (h - c)) / hl) * v
    fs[F_AD] = ad
    out[b + O_AD] = ad

    # --- Chaikin Money Flow (window re-summed oldest first)
    mp = params[P_CMF]
    rcm = params[P_RCM_OFF]
    rcv = params[P_RCV_OFF]
    ring[rcm + k % mp] = (((c - lo) - (h - c)) / hl) * v if hl > 0.0 else 0.0
    ring[rcv + k % mp] = v
    out[b + O_CMF] = nan
    if n >= mp:
        smf = 0.0
        sv = 0.0
        for j in range(k + 1, k + 1 + mp):
            smf += ring[rcm + j % mp]
            sv += ring[rcv + j % mp]
        out[b + O_CMF] = smf / sv if sv > 0.0 else 0.0

    # --- MFI
    fp = params[P_MFI]
    out[b + O_MFI] = nan
    if n >= 2:
        km = n - 2  # index of this bar's money flow
        rmp = params[P_RMP_OFF] + km % fp
        rmn = params[P_RMN_OFF] + km % fp
        pos = fs[F_MFI_POS]
        neg = fs[F_MFI_NEG]
        if km >= fp:
            pos -= ring[rmp]
            neg -= ring[rmn]
        prev_tp = fs[F_MFI_PREV_TP]
        d = tp - prev_tp
        flow = 0.0 if _is_zero_scaled(d, abs(tp) + abs(prev_tp)) else tp * v
        ring[rmp] = 0.0 if d < 0.0 else flow
        ring[rmn] = flow if d < 0.0 else 0.0
        pos += ring[rmp]
        neg += ring[rmn]
        null_run = ist[I_MFI_NULL_RUN] + 1 if flow == 0.0 else 0
        if null_run >= fp:
            null_run = fp
            pos = 0.0
            neg = 0.0
        ist[I_MFI_NULL_RUN] = null_run
        if km >= fp - 1:
            tot = pos + neg
            pos_c = 0.0 if pos < 0.0 else (tot if pos > tot else pos)
            out[b + O_MFI] = 0.0 if tot <= 0.0 else 100.0 * (pos_c / tot)
        fs[F_MFI_POS] = pos
        fs[F_MFI_NEG] = neg
    fs[F_MFI_PREV_TP] = tp

    # --- session VWAP and its volume-weighted standard deviation (West 1979)
    pv = fs[F_VWAP_PV]
    vv = fs[F_VWAP_V]
    mean = fs[F_VWAP_MEAN]
    m2 = fs[F_VWAP_M2]
    if ist[I_VWAP_DATE] != date:
        pv = 0.0
        vv = 0.0
        mean = 0.0
        m2 = 0.0
    if v > 0.0:
        pv = pv + tp * v
        vv = vv + v
        d = tp - mean
        mean = mean + d * (v / vv)
        m2 = m2 + v * d * (tp - mean)
    nb = fparams.shape[0] - FP_VWAP_BANDS
    if vv > 0.0:
        vwap = pv / vv
        sd = math.sqrt(m2 / vv) if m2 > 0.0 else 0.0
        out[b + O_VWAP] = vwap
        out[b + O_VWAP_SD] = sd
        for j in range(nb):
            dev = fparams[FP_VWAP_BANDS + j] * sd
            out[b + N_FIXED_OUT + 2 * j] = vwap + dev
            out[b + N_FIXED_OUT + 2 * j + 1] = vwap - dev
    else:
        out[b + O_VWAP] = nan
        out[b + O_VWAP_SD] = nan
        for j in range(2 * nb):
            out[b + N_FIXED_OUT + j] = nan
    fs[F_VWAP_PV] = pv
    fs[F_VWAP_V] = vv
    fs[F_VWAP_MEAN] = mean
    fs[F_VWAP_M2] = m2

    # --- Keltner (EMA of typical price +/- multiplier x ATR seeded to end at bar n0)
    kp = params[P_KC]
    kap = params[P_KC_ATR]
    fs[F_KC_EMA], kc_mid = _ema(fs[F_KC_EMA], n, kp, tp)
    na = n - (max(kp, kap + 1) - kap - 1)  # bar number in the ATR's own series
    kc_atr = nan
    if na >= 2:
        fs[F_KC_ATR], kc_atr = _wilder(fs[F_KC_ATR], na, kap, tr)
    if np.isnan(kc_mid) or np.isnan(kc_atr):
        out[b + O_KC_UPPER] = nan
        out[b + O_KC_MIDDLE] = nan
        out[b + O_KC_LOWER] = nan
    else:
        dev = fparams[FP_KC_MULT] * kc_atr
        out[b + O_KC_UPPER] = kc_mid + dev
        out[b + O_KC_MIDDLE] = kc_mid
        out[b + O_KC_LOWER] = kc_mid - dev

    # --- Donchian
    dp = params[P_DON]
    if n >= dp:
        hh, ll = _extremes(ring, rh, rl, rhl_len, k, dp)
        out[b + O_DON_UPPER] = hh
        out[b + O_DON_MIDDLE] = (hh + ll) / 2.0
        out[b + O_DON_LOWER] = ll
    else:
        out[b + O_DON_UPPER] = nan
        out[b + O_DON_MIDDLE] = nan
        out[b + O_DON_LOWER] = nan

    fs[F_PREV_CLOSE] = c
    fs[F_PREV_HIGH] = h
    fs[F_PREV_LOW] = lo
    ist[I_COUNT] = n
    ist[I_VWAP_DATE] = date


@njit(nogil=True, cache=True)
def update_bars(
    slots,
    session_date,
    high,
    low,
    close,
    volume,
    istate,
    fstate,
    ring,
    out,
    params,
    fparams,
    ema_periods,
    sma_periods,
):
    """Apply a batch of closed bars in array order, updating state and ``out`` in place.

    ``slots`` int64 (k,), ``session_date`` int64 YYYYMMDD (k,), ``high``/``low``/``close``
    float64 rupees (k,), ``volume`` float64 shares (k,). A slot may repeat; its bars are
    applied in order. State, ``params`` (int64 (N_PARAMS,)), ``fparams`` (float64) and
    the period arrays (int64) are described in the module docstring. O(k).
    """
    for i in range(slots.shape[0]):
        s = slots[i]
        _bar_step(
            istate[s],
            fstate[s],
            ring[s],
            out[s],
            params,
            fparams,
            ema_periods,
            sma_periods,
            session_date[i],
            high[i],
            low[i],
            close[i],
            volume[i],
        )


@njit(nogil=True, cache=True)
def peek_bars(
    slots,
    session_date,
    high,
    low,
    close,
    volume,
    istate,
    fstate,
    ring,
    params,
    fparams,
    ema_periods,
    sma_periods,
    scratch_i,
    scratch_f,
    scratch_r,
    result,
):
    """Outputs each slot would have if its forming bar closed now; no state is written.

    Inputs as :func:`update_bars`; each bar is evaluated independently against its
    slot's current state (copied into the ``scratch_*`` rows, one slot's width each).
    Writes ``result`` float64 (k, O).
    """
    for i in range(slots.shape[0]):
        s = slots[i]
        scratch_i[:] = istate[s]
        scratch_f[:] = fstate[s]
        scratch_r[:] = ring[s]
        _bar_step(
            scratch_i,
            scratch_f,
            scratch_r,
            result[i],
            params,
            fparams,
            ema_periods,
            sma_periods,
            session_date[i],
            high[i],
            low[i],
            close[i],
            volume[i],
        )
