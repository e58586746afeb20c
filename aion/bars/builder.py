"""1-minute OHLCV bars from ticks and incremental volume, keyed by exchange time.

Bars are start-labelled (Kite's convention): the bar ``09:15`` holds ticks with
exchange timestamps 09:15:00-09:15:59 IST. The regular session is the bars
09:15-15:29; bars before (pre-open call auction at 09:08) and after
(closing/post-close sessions) are built the same way but carry their segment
(:mod:`aion.market.time`), so consumers keep them apart.

A bar closes when its instrument ticks in a later minute, or when the exchange
clock (the latest exchange timestamp seen on any instrument) enters a later
minute, whichever comes first; so an instrument that stops ticking still gets
its bar closed on time. The clock advances tick by tick inside the kernel, so
the bars do not depend on how ticks were split into batches. With several feed connections
the compute engine hands the ticks on through :class:`aion.pipeline.merge.FeedMerge`, so the
clock enters a minute only once every active connection has (a minute closes when every
active connection's exchange clock has passed it). A tick older than
the instrument's forming bar (or of an already closed minute) is *late*: its
volume is kept, added to the instrument's forming or next bar, and counted in
``late_ticks``; its price is ignored. Late volume still waiting when the
session ends (:meth:`BarBuilder.close_all`) is added to the instrument's last
bar, which is emitted again with ``revision`` 1 (the store overwrites the bar
by minute; detectors do not run on revisions). Volume is never dropped: per
instrument, the sum of the final bar volumes equals the sum of incremental
volumes fed in.

Feed gaps: a tick flagged ``gap`` (the first tick of an instrument after its
connection came back, which carries the volume traded during the gap in one
increment) sets the ``gap`` flag of the bar its volume lands in (the forming
bar, or for a late tick the bar that receives its carried volume).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from aion.market.time import segment_of

BAR_DTYPE = np.dtype(
    [
        ("slot", np.int64),
        ("start", np.int64),  # bar start, epoch seconds (UTC epoch; IST label via to_ist)
        ("open", np.float64),  # rupees
        ("high", np.float64),
        ("low", np.float64),
        ("close", np.float64),
        ("volume", np.int64),  # shares / units, from VolumeStateManager
        ("oi", np.int64),  # last open interest seen in the bar (0 when none)
        ("ticks", np.int32),
        ("segment", np.int8),  # 0 pre-open, 1 regular, 2 post-close
        ("revision", np.int8),  # 0 first emission; 1 re-emitted with late volume at close_all
        ("gap", np.bool_),  # holds the first tick after a feed gap (and the gap's volume)
    ]
)


@njit(nogil=True, cache=True)
def _emit(
    s, start, vol, b_open, b_high, b_low, b_close, b_oi, b_ticks, b_gap, revision, n_out,
    out_slot, out_start, out_ohlc, out_vol, out_oi, out_ticks, out_rev, out_gap,
):  # fmt: skip  # pragma: no cover - compiled
    out_slot[n_out] = s
    out_start[n_out] = start
    out_ohlc[n_out, 0] = b_open[s]
    out_ohlc[n_out, 1] = b_high[s]
    out_ohlc[n_out, 2] = b_low[s]
    out_ohlc[n_out, 3] = b_close[s]
    out_vol[n_out] = vol
    out_oi[n_out] = b_oi[s]
    out_ticks[n_out] = b_ticks[s]
    out_rev[n_out] = revision
    out_gap[n_out] = b_gap[s]
    return n_out + 1


@njit(nogil=True, cache=True)
def bars_kernel(slots, ts, price, volume, oi, gap, clock, st, final, out):  # pragma: no cover
    """Ticks in arrival order into the forming bars; returns ``(closed bars, late ticks)``.

    ``slots`` int64, ``ts`` int64 epoch s (> 0), ``price`` float64 rupees, ``volume`` int64
    incremental, ``oi`` int64, ``gap`` bool, all (n,); ``clock`` int64 (1,) the exchange clock
    (updated); ``st`` the state tuple (:meth:`BarBuilder.state`); ``out`` the output tuple
    (:meth:`BarBuilder.outputs`). With ``final`` (no ticks), closes every forming bar and
    re-emits bars holding late volume. Numba: :class:`BarBuilder` and the compute thread's
    fused pass (:mod:`aion.pipeline.ticks`) call it.
    """
    cur_start, last_closed, b_open, b_high, b_low, b_close, b_vol, b_oi, b_ticks, b_gap, \
        carry, carry_gap = st  # fmt: skip
    out_slot, out_start, out_ohlc, out_vol, out_oi, out_ticks, out_rev, out_gap = out
    n_out = 0
    n_late = 0
    n_slots = cur_start.shape[0]
    for i in range(slots.shape[0]):
        t = ts[i]
        if t > clock[0]:
            old_minute = clock[0] - clock[0] % 60
            clock[0] = t
            minute = t - t % 60
            if minute > old_minute:
                for s in range(n_slots):
                    if cur_start[s] != 0 and cur_start[s] < minute:
                        n_out = _emit(s, cur_start[s], b_vol[s], b_open, b_high, b_low,
                                      b_close, b_oi, b_ticks, b_gap, 0, n_out, out_slot,
                                      out_start, out_ohlc, out_vol, out_oi, out_ticks,
                                      out_rev, out_gap)  # fmt: skip
                        last_closed[s] = cur_start[s]
                        cur_start[s] = 0
        s = slots[i]
        m = t - t % 60
        p = price[i]
        v = volume[i]
        if cur_start[s] != 0 and m > cur_start[s]:
            n_out = _emit(s, cur_start[s], b_vol[s], b_open, b_high, b_low, b_close, b_oi,
                          b_ticks, b_gap, 0, n_out, out_slot, out_start, out_ohlc, out_vol,
                          out_oi, out_ticks, out_rev, out_gap)  # fmt: skip
            last_closed[s] = cur_start[s]
            cur_start[s] = 0
        if cur_start[s] == 0:
            if m <= last_closed[s]:
                carry[s] += v
                carry_gap[s] = carry_gap[s] or gap[i]
                n_late += 1
                continue
            cur_start[s] = m
            b_open[s] = p
            b_high[s] = p
            b_low[s] = p
            b_close[s] = p
            b_vol[s] = v + carry[s]
            b_gap[s] = gap[i] or carry_gap[s]
            carry[s] = 0
            carry_gap[s] = False
            b_oi[s] = oi[i]
            b_ticks[s] = 1
        elif m == cur_start[s]:
            if p > b_high[s]:
                b_high[s] = p
            if p < b_low[s]:
                b_low[s] = p
            b_close[s] = p
            b_vol[s] += v
            if oi[i] != 0:
                b_oi[s] = oi[i]
            b_ticks[s] += 1
            if gap[i]:
                b_gap[s] = True
        else:
            b_vol[s] += v
            if gap[i]:
                b_gap[s] = True
            n_late += 1
    if final:
        for s in range(n_slots):
            if cur_start[s] != 0:
                n_out = _emit(s, cur_start[s], b_vol[s], b_open, b_high, b_low, b_close, b_oi,
                              b_ticks, b_gap, 0, n_out, out_slot, out_start, out_ohlc, out_vol,
                              out_oi, out_ticks, out_rev, out_gap)  # fmt: skip
                last_closed[s] = cur_start[s]
                cur_start[s] = 0
            if carry[s] != 0 and last_closed[s] != 0:
                b_vol[s] += carry[s]
                b_gap[s] = b_gap[s] or carry_gap[s]
                carry[s] = 0
                carry_gap[s] = False
                n_out = _emit(s, last_closed[s], b_vol[s], b_open, b_high, b_low, b_close,
                              b_oi, b_ticks, b_gap, 1, n_out, out_slot, out_start, out_ohlc,
                              out_vol, out_oi, out_ticks, out_rev, out_gap)  # fmt: skip
    return n_out, n_late


_PACKED_FIELDS: tuple[str, ...] = BAR_DTYPE.names or ()


class BarOutputs(NamedTuple):
    """Buffers for the bars closed by one call (:meth:`BarBuilder.outputs`).

    Attributes:
        raw: :func:`bars_kernel` outputs in emission order: slot, start, OHLC (k, 4) rupees,
            volume, oi, ticks, revision, gap.
        bars: ``BAR_DTYPE`` (k,), what :func:`pack_kernel` writes (sorted).
        fields: views of ``bars``' fields (slot ... gap, ``BAR_DTYPE`` order).
        segment_by_minute: int8 (1440,), the segment of each UTC minute of the day.
    """

    raw: tuple[np.ndarray, ...]
    bars: np.ndarray
    fields: tuple[np.ndarray, ...]
    segment_by_minute: np.ndarray


@njit(nogil=True, cache=True)
def pack_kernel(raw, n, segment_by_minute, fields):  # pragma: no cover - compiled
    """Write the first ``n`` bars of ``raw`` into ``fields`` (:class:`BarOutputs`) sorted by
    (start, slot, revision), with their segment; returns how many have revision 0. Slots
    below 2**28 (the sort key packs start, slot and revision into one int64)."""
    out_slot, out_start, out_ohlc, out_vol, out_oi, out_ticks, out_rev, out_gap = raw
    f_slot, f_start, f_open, f_high, f_low, f_close, f_vol, f_oi, f_ticks, f_seg, f_rev, \
        f_gap = fields  # fmt: skip
    key = np.empty(n, np.int64)
    for i in range(n):
        key[i] = (out_start[i] << 29) | (out_slot[i] << 1) | out_rev[i]
    order = np.argsort(key, kind="mergesort")
    n_first = 0
    for j in range(n):
        i = order[j]
        f_slot[j] = out_slot[i]
        f_start[j] = out_start[i]
        f_open[j] = out_ohlc[i, 0]
        f_high[j] = out_ohlc[i, 1]
        f_low[j] = out_ohlc[i, 2]
        f_close[j] = out_ohlc[i, 3]
        f_vol[j] = out_vol[i]
        f_oi[j] = out_oi[i]
        f_ticks[j] = out_ticks[i]
        f_seg[j] = segment_by_minute[(out_start[i] % 86_400) // 60]
        f_rev[j] = out_rev[i]
        f_gap[j] = out_gap[i]
        if out_rev[i] == 0:
            n_first += 1
    return n_first


class BarBuilder:
    """Forming 1-minute bars for every instrument slot, closed into ``BAR_DTYPE`` arrays.

    Args:
        capacity: initial number of slots; grows on demand.
    """

    _STATE = ("cur_start", "last_closed", "b_open", "b_high", "b_low", "b_close", "b_vol", "b_oi")

    def __init__(self, capacity: int = 1024) -> None:
        self.late_ticks = 0
        self.bars_closed = 0
        self.clock = 0  # latest exchange timestamp seen, epoch seconds
        self._outputs: BarOutputs | None = None  # see outputs()
        self._alloc(max(1, capacity))
        # segment by UTC minute of day (the IST offset is whole minutes): no per-bar date math
        self._segment_by_minute = segment_of(np.arange(1440, dtype=np.int64) * 60)

    def _alloc(self, n: int) -> None:
        self.cur_start = np.zeros(n, np.int64)
        self.last_closed = np.zeros(n, np.int64)
        self.b_open = np.zeros(n, np.float64)
        self.b_high = np.zeros(n, np.float64)
        self.b_low = np.zeros(n, np.float64)
        self.b_close = np.zeros(n, np.float64)
        self.b_vol = np.zeros(n, np.int64)
        self.b_oi = np.zeros(n, np.int64)
        self.b_ticks = np.zeros(n, np.int32)
        self.b_gap = np.zeros(n, np.bool_)
        self.carry = np.zeros(n, np.int64)
        self.carry_gap = np.zeros(n, np.bool_)

    def ensure_capacity(self, n: int) -> None:
        """Grow state arrays to at least ``n`` slots, keeping forming bars."""
        cap = self.cur_start.shape[0]
        if n <= cap:
            return
        names = (*self._STATE, "b_ticks", "b_gap", "carry", "carry_gap")
        old = {k: getattr(self, k) for k in names}
        self._alloc(max(n, 2 * cap))
        for k, arr in old.items():
            getattr(self, k)[:cap] = arr

    def state(self) -> tuple[np.ndarray, ...]:
        """The forming-bar state arrays (slots,) in :func:`bars_kernel` order."""
        return (self.cur_start, self.last_closed, self.b_open, self.b_high, self.b_low,
                self.b_close, self.b_vol, self.b_oi, self.b_ticks, self.b_gap, self.carry,
                self.carry_gap)  # fmt: skip

    def restore(
        self,
        slot: int,
        start: int,
        ohlc: tuple[float, float, float, float],
        volume: int,
        oi: int,
        ticks: int,
        gap: bool,
    ) -> None:
        """Reopen the last bar a previous process handed to the store for ``slot`` (after a
        restart, before the slot's first tick): ``start`` epoch s, ``ohlc`` rupees, ``volume``
        shares. It counts as closed: a later tick of its minute is late (its volume goes to
        the next bar, or revises this one at :meth:`close_all` with the stored volume kept),
        never a new bar that would replace the stored one.

        Raises:
            ValueError: when ``start`` is not a minute start or a bar is forming for ``slot``.
        """
        if start <= 0 or start % 60:
            raise ValueError(f"bar start {start} of slot {slot} is not a minute start")
        self.ensure_capacity(slot + 1)
        if self.cur_start[slot] != 0:
            raise ValueError(f"slot {slot} has a forming bar: restore before its first tick")
        self.last_closed[slot] = start
        self.b_open[slot], self.b_high[slot], self.b_low[slot], self.b_close[slot] = ohlc
        self.b_vol[slot] = volume
        self.b_oi[slot] = oi
        self.b_ticks[slot] = ticks
        self.b_gap[slot] = gap

    def unbarred(self, slots: np.ndarray) -> np.ndarray:
        """Volume of each of ``slots`` (int64 (k,)) not in a bar handed out yet: its forming
        bar's and its late volume waiting for a bar; int64 (k,) shares."""
        forming = np.where(self.cur_start[slots] != 0, self.b_vol[slots], 0)
        return forming + self.carry[slots]

    def outputs(self, n_ticks: int) -> BarOutputs:
        """Output buffers for the bars ``n_ticks`` ticks can close (see :class:`BarOutputs`),
        at least that long. The same buffers serve every call (grown when too small; their
        contents are valid until the next call, :meth:`closed` copies what it returns): a
        9,000-instrument chunk needs about 10 MB of them, which a fresh allocation per chunk
        paid for in page faults once glibc serves such blocks by ``mmap`` (see
        :mod:`aion.pipeline.allocator`)."""
        n = n_ticks + 2 * int(self.cur_start.shape[0])
        if self._outputs is None or self._outputs.bars.shape[0] < n:
            self._outputs = self._new_outputs(n + n // 4)
        return self._outputs

    def _new_outputs(self, n: int) -> BarOutputs:
        raw = (
            np.empty(n, np.int64),
            np.empty(n, np.int64),
            np.empty((n, 4), np.float64),
            np.empty(n, np.int64),
            np.empty(n, np.int64),
            np.empty(n, np.int32),
            np.empty(n, np.int8),
            np.empty(n, np.bool_),
        )
        bars = np.empty(n, BAR_DTYPE)
        fields = tuple(bars[f] for f in _PACKED_FIELDS)
        return BarOutputs(raw, bars, fields, self._segment_by_minute)

    def closed(self, out: BarOutputs, n_out: int, n_first: int, n_late: int) -> np.ndarray:
        """The ``n_out`` bars :func:`pack_kernel` wrote to ``out``, ``n_first`` of them with
        revision 0, closed by ticks of which ``n_late`` were late: counted, returned
        (``BAR_DTYPE`` sorted by (start, slot, revision))."""
        self.late_ticks += n_late
        self.bars_closed += n_first
        return out.bars[:n_out].copy()  # the buffers are reused by the next call

    def _run(
        self,
        slots: np.ndarray,
        exchange_ts: np.ndarray,
        last_price: np.ndarray,
        incremental_volume: np.ndarray,
        oi: np.ndarray,
        gap: np.ndarray | None,
        final: bool,
    ) -> np.ndarray:
        n = int(slots.shape[0])
        if n:
            self.ensure_capacity(int(slots.max()) + 1)
        out = self.outputs(n)
        gap_flags = np.zeros(n, np.bool_) if gap is None else np.ascontiguousarray(gap, np.bool_)
        clock = np.array([self.clock], np.int64)
        n_out, n_late = bars_kernel(
            np.ascontiguousarray(slots, np.int64),
            np.ascontiguousarray(exchange_ts, np.int64),
            np.ascontiguousarray(last_price, np.float64),
            np.ascontiguousarray(incremental_volume, np.int64),
            np.ascontiguousarray(oi, np.int64),
            gap_flags,
            clock,
            self.state(),
            final,
            out.raw,
        )
        self.clock = int(clock[0])
        n_first = pack_kernel(out.raw, n_out, out.segment_by_minute, out.fields)
        return self.closed(out, n_out, n_first, n_late)

    def update(
        self,
        slots: np.ndarray,
        exchange_ts: np.ndarray,
        last_price: np.ndarray,
        incremental_volume: np.ndarray,
        oi: np.ndarray,
        gap: np.ndarray | None = None,
    ) -> np.ndarray:
        """Feed ticks (in arrival order) and return the bars they closed.

        Args:
            slots: int64 (n,) instrument slots.
            exchange_ts: int64 (n,) exchange timestamps, epoch seconds (> 0).
            last_price: float64 (n,) rupees.
            incremental_volume: int64 (n,) from :class:`VolumeStateManager`.
            oi: int64 (n,) open interest (0 when the packet has none).
            gap: bool (n,), True for the first tick of an instrument after a feed gap; None
                means no such tick (see the module doc).

        Returns:
            ``BAR_DTYPE`` array of closed bars, sorted by (start, slot).
        """
        return self._run(slots, exchange_ts, last_price, incremental_volume, oi, gap, False)

    def close_all(self) -> np.ndarray:
        """Close every forming bar and flush late volume (end of session, shutdown).

        Returns ``BAR_DTYPE`` sorted by (start, slot, revision); bars re-emitted with late
        volume have ``revision`` 1.
        """
        e64 = np.empty(0, np.int64)
        return self._run(e64, e64, np.empty(0, np.float64), e64, e64, None, True)
