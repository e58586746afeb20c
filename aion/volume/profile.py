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

Statistics (:meth:`VolumeProfiles.stats`, all instruments of a minute in one Numba call,
:func:`profile_stats_kernel`), over the traded range (first to last non-empty bin;
empty bins inside the range count as price levels with 0 volume). Prices are the lower
edge of a bin (the traded price itself when a bin is one tick), rounded to 6 decimals:

* **POC** (point of control): the bin with the most volume; ties go to the bin nearest
  the middle of the traded range, then to the lower one (Market Profile convention,
  CBOT *Market Profile* handbook, 1991).
* **Value area** (CBOT expansion from the POC): start with the POC; compare the volume
  of the next two bins above the area with the next two below; add the larger pair
  (on a tie, both pairs); when one side is exhausted, add from the other (fewer than two
  bins left: what is left); stop as soon as the area holds ``value_area`` (70 %) of the
  session volume. VAH / VAL are the highest / lowest bins of the area.
* **HVN / LVN**: smooth with a centred moving average of ``smoothing_bins`` bins (the
  sum of the bins within ``smoothing_bins // 2`` of a bin, bins outside the traded range
  counting 0, divided by ``smoothing_bins``; compared as exact integer sums); local maxima
  (above the left neighbour, at least the right one) >= ``hvn_ratio`` x the mean volume per
  bin of the traded range are high-volume nodes, local minima (below the left, at most the
  right) <= ``lvn_ratio`` x that mean, never the range's edges, are low-volume nodes; at
  most ``max_nodes`` of each, the largest (smallest) first, ties to the lower price.
* **strength** = 1 - (value-area width / traded-range width), widths in bins: 0 when the
  value area spans the whole range, towards 1 when 70 % of the volume sits at few prices.
* **poc_shift** = POC now - the session's first POC (rupees), the drift of value.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from aion.volume.config import ProfileConfig


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


@njit(nogil=True, cache=True)
def _top(idx: np.ndarray, n: int, key: np.ndarray, sign: int, out: np.ndarray) -> int:
    """Write into ``out`` up to ``out.shape[0]`` of ``idx[:n]`` by ``sign * key`` descending,
    ties to the earlier index (a stable sort); returns how many."""
    taken = 0
    while taken < out.shape[0] and taken < n:
        best = -1
        for t in range(n):
            i = idx[t]
            if i < 0:
                continue
            if best < 0 or sign * key[i] > sign * key[idx[best]]:
                best = t
        out[taken] = idx[best]
        idx[best] = -1
        taken += 1
    return taken


@njit(nogil=True, cache=True)
def profile_stats_kernel(
    slots: np.ndarray,
    vol: np.ndarray,
    value_area: float,
    smoothing_bins: int,
    hvn_ratio: float,
    lvn_ratio: float,
    max_nodes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Statistics of the profiles of ``slots`` (rules in the module docstring), in bins.

    Args:
        slots: int64 (n,) rows of ``vol``.
        vol: int64 (slots, bins) volume per bin (shares).
        value_area, smoothing_bins, hvn_ratio, lvn_ratio, max_nodes: ``volume.profile``.

    Returns:
        ``(bins, volumes, counts, hvn, lvn)``: ``bins`` int64 (n, 4) column indices into the
        row of the first traded bin, the POC, VAL and VAH (-1 for an empty row); ``volumes``
        int64 (n, 4) traded-range bins, total, POC and value-area volume (shares);
        ``counts`` int64 (n, 2) HVN and LVN found; ``hvn``/``lvn`` int64 (n, max_nodes) their
        column indices, largest (smallest) smoothed volume first, -1 padded.
    """
    n = slots.shape[0]
    cap = vol.shape[1]
    bins = np.full((n, 4), -1, np.int64)
    volumes = np.zeros((n, 4), np.int64)
    counts = np.zeros((n, 2), np.int64)
    hvn = np.full((n, max_nodes), -1, np.int64)
    lvn = np.full((n, max_nodes), -1, np.int64)
    sums = np.zeros(cap, np.int64)
    peaks = np.zeros(cap, np.int64)
    troughs = np.zeros(cap, np.int64)
    half = smoothing_bins // 2
    for i in range(n):
        row = vol[slots[i]]
        first = -1
        last = -1
        for k in range(cap):
            if row[k] != 0:
                if first < 0:
                    first = k
                last = k
        if first < 0:
            continue
        v = row[first : last + 1]
        k = last - first + 1
        poc, lo, hi = value_area_bins(v, value_area)
        total = np.int64(0)
        for t in range(k):
            total += v[t]
        area = np.int64(0)
        for t in range(lo, hi + 1):
            area += v[t]
        bins[i, 0] = first
        bins[i, 1] = first + poc
        bins[i, 2] = first + lo
        bins[i, 3] = first + hi
        volumes[i, 0] = k
        volumes[i, 1] = total
        volumes[i, 2] = v[poc]
        volumes[i, 3] = area
        if k < 3:
            continue
        # centred moving sums over smoothing_bins bins, zero outside the traded range
        acc = np.int64(0)
        for u in range(min(k, half + 1)):
            acc += v[u]
        for t in range(k):  # slide: bin t + half enters, bin t - half - 1 leaves
            sums[t] = acc
            if t + half + 1 < k:
                acc += v[t + half + 1]
            if t - half >= 0:
                acc -= v[t - half]
        mean = total / k
        n_peaks = 0
        n_troughs = 0
        for t in range(1, k - 1):
            c = sums[t]
            if c > sums[t - 1] and c >= sums[t + 1] and c / smoothing_bins >= hvn_ratio * mean:
                peaks[n_peaks] = t
                n_peaks += 1
            if c < sums[t - 1] and c <= sums[t + 1] and c / smoothing_bins <= lvn_ratio * mean:
                troughs[n_troughs] = t
                n_troughs += 1
        counts[i, 0] = _top(peaks, n_peaks, sums, 1, hvn[i])
        counts[i, 1] = _top(troughs, n_troughs, sums, -1, lvn[i])
        for t in range(counts[i, 0]):
            hvn[i, t] += first
        for t in range(counts[i, 1]):
            lvn[i, t] += first
    return bins, volumes, counts, hvn, lvn


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
        # written once so every page is resident from the start (np.zeros maps lazily zeroed
        # pages that would fault in one by one as price ranges widen: RSS creeping for an hour)
        self.vol = np.empty((n, cfg.max_bins), np.int64)
        self.vol.fill(0)
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

    def stat_names(self) -> tuple[str, ...]:
        """The column names of :meth:`stats`, in a fixed order."""
        k = self.cfg.max_nodes
        return (
            "poc", "vah", "val", "poc_volume", "total_volume", "value_area_volume",
            "strength", "bin_width", "hvn_count", "lvn_count",
            *(f"hvn_{i}" for i in range(1, k + 1)), *(f"lvn_{i}" for i in range(1, k + 1)),
            "poc_shift",
        )  # fmt: skip

    def stats(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """Statistics of the profiles of ``slots`` (int64 (n,), distinct), as float64 (n,) columns.

        Columns (:meth:`stat_names`; NaN for a slot without traded volume): ``poc``, ``vah``,
        ``val`` and the node prices ``hvn_1``.. / ``lvn_1``.. (rupees: the price of the bin as
        in :meth:`arrays`, ``numpy.round(bin * width, 6)``; NaN past ``hvn_count`` /
        ``lvn_count``), ``poc_volume``, ``total_volume``, ``value_area_volume`` (shares),
        ``strength`` in [0, 1), ``bin_width`` (rupees), ``hvn_count``, ``lvn_count`` and
        ``poc_shift`` (rupees, the POC minus the slot's first POC of its session as seen by
        this method, rounded to 6 decimals). One :func:`profile_stats_kernel` call.
        """
        cfg = self.cfg
        slots = np.ascontiguousarray(slots, np.int64)
        bins, vols, counts, hvn, lvn = profile_stats_kernel(
            slots, self.vol, cfg.value_area, cfg.smoothing_bins, cfg.hvn_ratio,
            cfg.lvn_ratio, cfg.max_nodes,
        )  # fmt: skip
        has = bins[:, 0] >= 0
        width = self.ticks_per_bin[slots] * self.tick[slots]
        lo = self.lo[slots]

        def price(idx: np.ndarray) -> np.ndarray:
            if idx.ndim == 1:
                return np.where(idx >= 0, np.round((lo + idx) * width, 6), math.nan)
            p = np.round((lo[:, None] + idx) * width[:, None], 6)
            return np.where(idx >= 0, p, math.nan)

        def num(x: np.ndarray) -> np.ndarray:
            return np.where(has, x.astype(np.float64), math.nan)

        poc = price(bins[:, 1])
        d = self.date[slots]
        new = has & (self._first_poc_date[slots] != d)
        self._first_poc_date[slots[new]] = d[new]
        self.first_poc[slots[new]] = poc[new]
        span = bins[:, 3] - bins[:, 2] + 1
        out = {
            "poc": poc,
            "vah": price(bins[:, 3]),
            "val": price(bins[:, 2]),
            "poc_volume": num(vols[:, 2]),
            "total_volume": num(vols[:, 1]),
            "value_area_volume": num(vols[:, 3]),
            "strength": num(1.0 - span / np.maximum(vols[:, 0], 1)),
            "bin_width": num(width),
            "hvn_count": num(counts[:, 0]),
            "lvn_count": num(counts[:, 1]),
        }
        hp, lp = price(hvn), price(lvn)
        for i in range(cfg.max_nodes):
            out[f"hvn_{i + 1}"] = hp[:, i]
        for i in range(cfg.max_nodes):
            out[f"lvn_{i + 1}"] = lp[:, i]
        out["poc_shift"] = np.round(poc - self.first_poc[slots], 6)
        return out
