"""Session volume profile per instrument: volume by price, POC, value area, HVN/LVN, strength.

The profile covers the regular session (09:15-15:29 IST): the compute engine feeds it
regular-session ticks only, so the pre-open call-auction print (one price, often the
day's largest single volume) does not become the POC.

State (per instrument slot, reset when a new session date arrives) is a row of
``max_bins`` int64 volume bins over a window of prices. A bin is ``ticks_per_bin``
ticks of the instrument's tick size wide (``volume.profile.bin_ticks`` at the start of
a session); a tick at price ``p`` falls in bin ``floor(round(p / tick) / ticks_per_bin)``.
When a price falls outside the window, the window is re-centred on the traded range if
that range fits, else the bins are merged pairwise (width doubles) until it fits, so
memory stays bounded and no volume is ever dropped. The per-tick update is a Numba
``nogil`` kernel over the arrays (O(1) per tick, amortised).

Statistics (:func:`profile_stats`), over the traded range (first to last non-empty bin;
empty bins inside the range count as price levels with 0 volume). Prices are the lower
edge of a bin (the traded price itself when a bin is one tick):

* **POC** (point of control): the bin with the most volume; ties go to the bin nearest
  the middle of the traded range, then to the lower one (Market Profile convention,
  CBOT *Market Profile* handbook, 1991).
* **Value area** (CBOT expansion from the POC): start with the POC; compare the volume
  of the next two bins above the area with the next two below; add the larger pair
  (on a tie, both pairs); when one side is exhausted, add from the other (fewer than two
  bins left: what is left); stop as soon as the area holds ``value_area`` (70 %) of the
  session volume. VAH / VAL are the highest / lowest bins of the area.
* **HVN / LVN**: after a centred moving average of ``smoothing_bins`` bins, local maxima
  >= ``hvn_ratio`` x the mean volume per bin of the traded range are high-volume nodes,
  local minima <= ``lvn_ratio`` x that mean (not at the range's edges) are low-volume
  nodes; at most ``max_nodes`` of each, the largest (smallest) first.
* **strength** = 1 - (value-area width / traded-range width), widths in bins: 0 when the
  value area spans the whole range, towards 1 when 70 % of the volume sits at few prices.
* **poc_shift** = POC now - the session's first POC (rupees), the drift of value.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from aion.config import ProfileConfig


@njit(nogil=True, cache=True)
def _fit(s: int, b: int, vol: np.ndarray, lo: np.ndarray, f: np.ndarray, tmp: np.ndarray) -> int:
    """Make bin index ``b`` (in units of the row's width) fit row ``s``; returns the new ``b``."""
    cap = vol.shape[1]
    while True:
        j = b - lo[s]
        if 0 <= j < cap:
            return b
        first = -1
        last = -1
        for k in range(cap):
            if vol[s, k] != 0:
                if first < 0:
                    first = k
                last = k
        if first < 0:
            lo[s] = b - cap // 2
            continue
        need_lo = min(b, lo[s] + first)
        need_hi = max(b, lo[s] + last)
        span = need_hi - need_lo + 1
        if span <= cap:
            new_lo = need_lo - (cap - span) // 2
            for k in range(cap):
                tmp[k] = 0
            for k in range(first, last + 1):
                tmp[lo[s] + k - new_lo] = vol[s, k]
            for k in range(cap):
                vol[s, k] = tmp[k]
            lo[s] = new_lo
            continue
        # coarsen: merge bins pairwise (width doubles), floor division keeps alignment
        new_lo = lo[s] // 2
        for k in range(cap):
            tmp[k] = 0
        for k in range(first, last + 1):
            tmp[(lo[s] + k) // 2 - new_lo] += vol[s, k]
        for k in range(cap):
            vol[s, k] = tmp[k]
        lo[s] = new_lo
        f[s] *= 2
        b = b // 2


@njit(nogil=True, cache=True)
def _update_kernel(
    slots: np.ndarray,
    dates: np.ndarray,
    price: np.ndarray,
    incr: np.ndarray,
    tick: np.ndarray,
    bin_ticks: int,
    vol: np.ndarray,
    lo: np.ndarray,
    f: np.ndarray,
    date: np.ndarray,
    total: np.ndarray,
    tmp: np.ndarray,
) -> None:
    cap = vol.shape[1]
    for i in range(slots.shape[0]):
        q = incr[i]
        if q <= 0 or not price[i] > 0:
            continue
        s = slots[i]
        if date[s] != dates[i]:
            date[s] = dates[i]
            for k in range(cap):
                vol[s, k] = 0
            f[s] = bin_ticks
            total[s] = 0
            lo[s] = -(1 << 62)
        p_ticks = np.int64(np.round(price[i] / tick[s]))
        b = p_ticks // f[s]
        if lo[s] == -(1 << 62):
            lo[s] = b - cap // 2
        b = _fit(s, b, vol, lo, f, tmp)
        vol[s, b - lo[s]] += q
        total[s] += q


@njit(nogil=True, cache=True)
def value_area_bins(v: np.ndarray, fraction: float) -> tuple[int, int, int]:
    """POC and CBOT value area of one profile (rules in the module docstring).

    Args:
        v: int64 or float64 (k,) volumes of consecutive price bins (the traded range or
            wider; leading/trailing zero bins are ignored).
        fraction: value-area share of the total volume, in (0, 1).

    Returns:
        ``(poc, val, vah)`` bin indices into ``v``; ``(-1, -1, -1)`` when ``v`` sums to 0.
    """
    k = v.shape[0]
    first = -1
    last = -1
    total = 0.0
    for i in range(k):
        if v[i] > 0:
            if first < 0:
                first = i
            last = i
            total += v[i]
    if first < 0:
        return -1, -1, -1
    best = -1.0
    poc = first
    mid2 = first + last  # twice the middle, to compare distances in integers
    for i in range(first, last + 1):
        if v[i] > best:
            best = v[i]
            poc = i
        elif v[i] == best and abs(2 * i - mid2) < abs(2 * poc - mid2):
            poc = i
    target = fraction * total * (1.0 - 1e-12)
    area = float(v[poc])
    lo = poc
    hi = poc
    while area < target:
        up_n = min(2, last - hi)
        dn_n = min(2, lo - first)
        up = 0.0
        for j in range(1, up_n + 1):
            up += v[hi + j]
        dn = 0.0
        for j in range(1, dn_n + 1):
            dn += v[lo - j]
        if up_n > 0 and (dn_n == 0 or up >= dn):
            hi += up_n
            area += up
            if dn_n > 0 and up == dn:
                lo -= dn_n
                area += dn
        else:
            lo -= dn_n
            area += dn
    return poc, lo, hi


def _nodes(v: np.ndarray, cfg: ProfileConfig) -> tuple[np.ndarray, np.ndarray]:
    """Indices of HVN (descending volume) and LVN (ascending) in the traded range ``v``."""
    w = cfg.smoothing_bins
    sm = np.convolve(v.astype(np.float64), np.ones(w) / w, mode="same") if w > 1 else v * 1.0
    if sm.shape[0] < 3:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    mean = float(v.mean())
    c, left, right = sm[1:-1], sm[:-2], sm[2:]
    peak = np.flatnonzero((c > left) & (c >= right) & (c >= cfg.hvn_ratio * mean)) + 1
    trough = np.flatnonzero((c < left) & (c <= right) & (c <= cfg.lvn_ratio * mean)) + 1
    peak = peak[np.argsort(-sm[peak], kind="stable")][: cfg.max_nodes]
    trough = trough[np.argsort(sm[trough], kind="stable")][: cfg.max_nodes]
    return peak, trough


def profile_stats(
    v: np.ndarray, first_price: float, bin_width: float, cfg: ProfileConfig
) -> dict[str, float]:
    """Statistics of one profile given as its traded range.

    Args:
        v: int64 (k,) volumes of consecutive bins, ``v[0]`` and ``v[-1]`` non-zero.
        first_price: price (rupees) of bin 0's lower edge.
        bin_width: bin width, rupees.
        cfg: ``volume.profile`` settings.

    Returns:
        ``poc``, ``vah``, ``val`` (rupees), ``poc_volume`` (shares), ``total_volume``,
        ``value_area_volume``, ``strength`` in [0, 1), ``bin_width`` (rupees),
        ``hvn_count``/``lvn_count`` and ``hvn_1``.. / ``lvn_1``.. node prices; ``{}`` for
        an empty profile.
    """
    if v.shape[0] == 0 or v.sum() <= 0:
        return {}
    poc, lo, hi = value_area_bins(v, cfg.value_area)
    hvn, lvn = _nodes(v, cfg)
    out = {
        "poc": round(first_price + poc * bin_width, 6),
        "vah": round(first_price + hi * bin_width, 6),
        "val": round(first_price + lo * bin_width, 6),
        "poc_volume": float(v[poc]),
        "total_volume": float(v.sum()),
        "value_area_volume": float(v[lo : hi + 1].sum()),
        "strength": 1.0 - (hi - lo + 1) / v.shape[0],
        "bin_width": bin_width,
        "hvn_count": float(hvn.shape[0]),
        "lvn_count": float(lvn.shape[0]),
    }
    for name, idx in (("hvn", hvn), ("lvn", lvn)):
        for n, i in enumerate(idx.tolist(), 1):
            out[f"{name}_{n}"] = round(first_price + i * bin_width, 6)
    return out


class VolumeProfiles:
    """Session volume profiles of every instrument slot.

    Args:
        tick_size: float64 (n,) tick size per slot, rupees (0 -> ``cfg.fallback_tick_size``).
        cfg: ``volume.profile`` settings.
    """

    def __init__(self, tick_size: np.ndarray, cfg: ProfileConfig) -> None:
        n = tick_size.shape[0]
        self.cfg = cfg
        self.tick = np.where(tick_size > 0, tick_size, cfg.fallback_tick_size).astype(np.float64)
        self.vol = np.zeros((n, cfg.max_bins), np.int64)
        self.lo = np.zeros(n, np.int64)
        self.ticks_per_bin = np.full(n, cfg.bin_ticks, np.int64)
        self.date = np.zeros(n, np.int64)
        self.total = np.zeros(n, np.int64)
        self.first_poc = np.full(n, math.nan)
        self._first_poc_date = np.zeros(n, np.int64)
        self._tmp = np.zeros(cfg.max_bins, np.int64)

    def update(
        self, slots: np.ndarray, dates: np.ndarray, price: np.ndarray, incr: np.ndarray
    ) -> None:
        """Add ticks: slots int64 (n,), session dates int64 YYYYMMDD (n,), last_price
        float64 rupees (n,), incremental volume int64 shares (n,), in arrival order.
        Ticks with no volume or a non-positive price are ignored."""
        _update_kernel(
            slots.astype(np.int64),
            dates.astype(np.int64),
            price.astype(np.float64),
            incr.astype(np.int64),
            self.tick,
            self.cfg.bin_ticks,
            self.vol,
            self.lo,
            self.ticks_per_bin,
            self.date,
            self.total,
            self._tmp,
        )

    def arrays(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """The traded range of ``slot``: bin prices float64 (k,) rupees and volumes int64 (k,).

        Empty arrays before the slot's first traded volume of its session.
        """
        row = self.vol[slot]
        nz = np.flatnonzero(row)
        if nz.shape[0] == 0:
            return np.empty(0, np.float64), np.empty(0, np.int64)
        a, b = int(nz[0]), int(nz[-1]) + 1
        width = self.ticks_per_bin[slot] * self.tick[slot]
        prices = (self.lo[slot] + np.arange(a, b)) * width
        return np.round(prices, 6), row[a:b].copy()

    def stats(self, slot: int) -> dict[str, float]:
        """:func:`profile_stats` of ``slot`` plus ``poc_shift`` (rupees since its first POC)."""
        prices, v = self.arrays(slot)
        if v.shape[0] == 0:
            return {}
        width = float(self.ticks_per_bin[slot] * self.tick[slot])
        out = profile_stats(v, float(prices[0]), width, self.cfg)
        d = int(self.date[slot])
        if self._first_poc_date[slot] != d:
            self._first_poc_date[slot] = d
            self.first_poc[slot] = out["poc"]
        out["poc_shift"] = round(out["poc"] - float(self.first_poc[slot]), 6)
        return out
