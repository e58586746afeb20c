"""The compute thread's tick path: frames -> volume, bars, book and latest ticks.

One compiled pass (:class:`TickPath`) over a chunk of frames
(:func:`aion.kite.decode.join_frames`) locates their packets
(:func:`aion.kite.decode.scan_packets`) and does, tick by tick in arrival order, what the
compute engine needs of every tick: decode the packet with the protocol's own decoder
(:func:`aion.kite.decode.packet_fields`, no :data:`~aion.kite.wire.TICK_DTYPE` rows),
fill in exchange time, validate, map the instrument token to its slot (an open-addressing hash
table), turn cumulative into incremental volume (:func:`aion.volume.state.apply_kernel`), flag
the first tick after a feed gap (:class:`aion.feed.gaps.GapTracker`), build the 1-minute bars
(:func:`aion.bars.builder.bars_kernel`), keep the latest tick per slot (:class:`LatestTicks`)
and order the full-mode ticks' book (:func:`aion.pipeline.book.sort_book`). The decode loop
writes the columns of the kept ticks; volume and bars then run over them inside the same call
(per-module kernels, each taking its state arrays once: a state tuple handed to a function
per tick costs a reference count per array per tick). One kernel call per chunk, which keeps
the GIL: every call that releases it may wait to get it back (up to the interpreter's switch
interval per other thread running Python).

Rules (the compute engine's, see :mod:`aion.pipeline.compute`):

* exchange time: a packet without ``exchange_timestamp`` (ltp, index quote) takes the running
  maximum of the exchange timestamps before it, starting from the engine's clock; 0 when none;
* ``untimed``: still 0; ``invalid``: timed but outside 2000-01-01 .. 2100-01-01 UTC, or
  ``last_price`` not finite or <= 0, or ``volume_traded`` < 0; ``unknown``: token not in the
  universe (counted independently of the other two); a tick is kept when none applies;
* volume: only quote/full packets of tradable instruments carry ``volume_traded``; the others
  have incremental volume 0 and leave the volume state alone;
* a tick of a new IST day needs its trading date (:func:`aion.market.time.session_dates`): the
  kernel returns to Python for it and resumes at that tick (once per day); slots whose volume
  state is restored from Redis at their first tick are restored by Python after the decode
  loop, before any volume of the chunk is applied (once per slot).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numba import njit

from aion.bars.builder import BarBuilder, bars_kernel, pack_kernel
from aion.kite.decode import JoinedFrames, depth_level, packet_fields, scan_packets
from aion.kite.wire import MODE_FULL, MODE_LTP
from aion.market.time import IST_OFFSET_S, session_dates
from aion.pipeline.book import BookTracker, sort_book
from aion.volume.state import VolumeStateManager, apply_kernel

__all__ = ["MAX_TS", "MIN_TS", "LatestTicks", "TickColumns", "TickCounts", "TickPath"]

MIN_TS = 946_684_800
"""Exchange timestamps before this (2000-01-01 UTC, epoch s) are rejected as absurd."""
MAX_TS = 4_102_444_800
"""Exchange timestamps after this (2100-01-01 UTC, epoch s) are rejected as absurd."""

_EMPTY = np.int64(-1)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing (Knuth, TAOCP vol. 3, 6.4)


@njit(nogil=True, cache=True, inline="always")
def _probe(tok, tab_keys, tab_vals, shift, mask):  # pragma: no cover - compiled
    """Slot of instrument token ``tok`` in the hash table, -1 when absent."""
    h = np.int64((np.uint64(tok) * _GOLDEN) >> np.uint64(shift))
    while True:
        k = tab_keys[h]
        if k == tok:
            return tab_vals[h]
        if k == _EMPTY:
            return np.int64(-1)
        h = (h + 1) & mask


@njit(nogil=True, cache=True)
def _fill_table(tokens, tab_keys, tab_vals, shift, mask):  # pragma: no cover - compiled
    """Insert each distinct token with its slot (its index) by linear probing."""
    for s in range(tokens.shape[0]):
        tok = tokens[s]
        h = np.int64((np.uint64(tok) * _GOLDEN) >> np.uint64(shift))
        while tab_keys[h] != _EMPTY:
            h = (h + 1) & mask
        tab_keys[h] = tok
        tab_vals[h] = s


# kernel state st[]: next packet, kept ticks, book rows, running exchange time, untimed,
# invalid, unknown, max kept time, closed bars, late ticks, restore requests, phase, packets
# scanned, closed bars of revision 0; then, kept across chunks, the cached IST day, its date
# and the day a return to Python asks the date of
_NEXT, _KEPT, _BOOK, _RUNNING, _UNTIMED, _INVALID, _UNKNOWN, _MAX_TS = 0, 1, 2, 3, 4, 5, 6, 7
_N_OUT, _LATE, _REQ, _PHASE, _PACKETS, _FIRST = 8, 9, 10, 11, 12, 13
_DAY, _DATE, _ASK_DAY = 14, 15, 16
_SCAN, _DECODE, _STATE = 0, 1, 2  # phases
_DONE, _NEED_RESTORE, _NEED_DATE = 0, 1, 2


@njit(nogil=True, cache=True)
def _decode_pass(
    buf, offsets, lengths, tokens, tab_keys, tab_vals, shift, mask,
    st, seen, has_restore, gap_pending, req_slot, req_date,
    slot, ts, date, price, volume, oi, has_volume, gap,
    book_slot, book_ts, book_rows, latest,
):  # fmt: skip  # pragma: no cover - compiled
    """Packets -> kept tick columns, gap flags, restore requests, latest ticks, book rows.
    Resumes at packet ``st[_NEXT]``; returns ``_NEED_DATE`` at a tick of an IST day other than
    the cached one (``st[_ASK_DAY]``), else ``_DONE``."""
    lt_touched, lt_ts, lt_has_volume, lt_price, lt_mode, lt_volume, lt_ltq, lt_atp, lt_oi = latest
    running = st[_RUNNING]
    k = st[_KEPT]
    n_book = st[_BOOK]
    day = st[_DAY]
    today = st[_DATE]
    max_ts = st[_MAX_TS]
    n_untimed = n_invalid = n_unknown = 0
    code = _DONE
    i = st[_NEXT]
    while i < offsets.shape[0]:
        p = offsets[i]
        tok = tokens[i]
        (mode, tradable, lp, ltq, atp, vol, tbq, tsq, _o, _h, _lo, _c, _change, _ltt, toi, _oih,
         _oil, ets) = packet_fields(buf, p, lengths[i], tok)  # fmt: skip
        t = ets if ets > 0 else running
        untimed = t <= 0
        bad = (not untimed and (t < MIN_TS or t > MAX_TS)) or not (
            np.isfinite(lp) and lp > 0 and vol >= 0
        )
        s = _probe(np.int64(tok), tab_keys, tab_vals, shift, mask)
        if not (untimed or bad or s < 0) and (t + IST_OFFSET_S) // 86_400 != day:
            st[_ASK_DAY] = (t + IST_OFFSET_S) // 86_400
            code = _NEED_DATE
            break
        if ets > running:
            running = ets
        i += 1
        if untimed:
            n_untimed += 1
        elif bad:
            n_invalid += 1
        if s < 0:
            n_unknown += 1
        if untimed or bad or s < 0:
            continue
        if not seen[s]:
            seen[s] = True
            if has_restore[s]:
                req_slot[st[_REQ]] = s
                req_date[st[_REQ]] = today
                st[_REQ] += 1
        hv = mode != MODE_LTP and tradable
        slot[k] = s
        ts[k] = t
        date[k] = today
        price[k] = lp
        volume[k] = vol
        oi[k] = toi
        has_volume[k] = hv
        gap[k] = gap_pending[s]
        gap_pending[s] = False
        k += 1
        if t > max_ts:
            max_ts = t
        lt_touched[s] = True
        lt_ts[s] = t
        lt_has_volume[s] = hv
        lt_price[s] = lp
        lt_mode[s] = mode
        lt_volume[s] = vol
        lt_ltq[s] = ltq
        lt_atp[s] = atp
        lt_oi[s] = toi
        if mode == MODE_FULL and tradable:
            bid = np.int64(0)
            ask = np.int64(0)
            for j in range(5):
                bq, _bp, _bo, sq, _sp, _so = depth_level(buf, p, j, tok)
                bid += bq
                ask += sq
            book_slot[n_book] = s
            book_ts[n_book] = t
            book_rows[n_book, 0] = tbq
            book_rows[n_book, 1] = tsq
            book_rows[n_book, 2] = bid
            book_rows[n_book, 3] = ask
            n_book += 1
    st[_NEXT] = i
    st[_RUNNING] = running
    st[_KEPT] = k
    st[_BOOK] = n_book
    st[_MAX_TS] = max_ts
    st[_UNTIMED] += n_untimed
    st[_INVALID] += n_invalid
    st[_UNKNOWN] += n_unknown
    return code


# Not nogil: a call that releases the GIL waits to get it back, up to the switch interval
# per other thread running Python (docs/decisions/0002-gil-hand-offs.md).
@njit(cache=True)
def _chunk_kernel(
    buf, starts, ends, status, where, frame_of,
    offsets, lengths, tokens, tab_keys, tab_vals, shift, mask,
    st, seen, has_restore, gap_pending, req_slot, req_date,
    slot, ts, date, price, volume, oi, has_volume, gap, incr,
    book_slot, book_ts, book_rows, book_keys, book_sorted, book_values, book_when,
    book_prev_values, book_prev_when,
    latest, volume_state, kinds, bar_clock, bar_state, bar_raw, segment_by_minute, bar_fields,
):  # fmt: skip  # pragma: no cover - compiled
    """See the module docstring: the frame scan, the decode pass, then (once Python restored
    the volume state of the slots it asked for) volume, bars and book over the kept ticks."""
    if st[_PHASE] == _SCAN:
        st[_PACKETS] = scan_packets(buf, starts, ends, offsets, lengths, tokens, frame_of,
                                    status, where)  # fmt: skip
        st[_PHASE] = _DECODE
    if st[_PHASE] == _DECODE:
        n = st[_PACKETS]
        code = _decode_pass(
            buf, offsets[:n], lengths[:n], tokens[:n], tab_keys, tab_vals, shift, mask,
            st, seen, has_restore, gap_pending, req_slot, req_date,
            slot, ts, date, price, volume, oi, has_volume, gap,
            book_slot, book_ts, book_rows, latest,
        )  # fmt: skip
        if code != _DONE:
            return code
        st[_PHASE] = _STATE
        if st[_REQ]:
            return _NEED_RESTORE
    k = st[_KEPT]
    apply_kernel(slot[:k], date[:k], volume[:k], has_volume[:k], volume_state, incr, kinds)
    n_out, n_late = bars_kernel(slot[:k], ts[:k], price[:k], incr[:k], oi[:k], gap[:k],
                                bar_clock, bar_state, False, bar_raw)  # fmt: skip
    st[_N_OUT] = n_out
    st[_LATE] = n_late
    st[_FIRST] = pack_kernel(bar_raw, n_out, segment_by_minute, bar_fields)
    sort_book(book_slot, book_ts, book_rows, st[_BOOK], book_keys, book_sorted, book_values,
              book_when, book_prev_values, book_prev_when)  # fmt: skip
    return _DONE


class TickCounts(NamedTuple):
    """Per chunk: packets decoded, ticks kept, ``untimed``/``invalid``/``unknown`` counts (as
    in the module docstring) and the latest kept exchange time (epoch s, 0 when none)."""

    packets: int
    kept: int
    untimed: int
    invalid: int
    unknown: int
    max_ts: int


class TickColumns(NamedTuple):
    """The kept ticks of a chunk in arrival order, (n,) each.

    Attributes:
        slot: int64 instrument slots.
        ts: int64 exchange time, epoch seconds (filled in for packets without one).
        date: int64 IST trading date YYYYMMDD.
        price: float64 ``last_price``, rupees.
        volume_traded: int64 cumulative day volume (0 for ltp/index packets).
        oi: int64 open interest (0 when the packet has none).
        incremental: int64 incremental volume (:class:`aion.volume.state.VolumeStateManager`).
    """

    slot: np.ndarray
    ts: np.ndarray
    date: np.ndarray
    price: np.ndarray
    volume_traded: np.ndarray
    oi: np.ndarray
    incremental: np.ndarray


class LatestTicks:
    """The latest kept tick of every slot since the last :meth:`take` (arrays by slot).

    ``touched`` bool marks slots with a tick; ``ts`` int64 epoch s, ``has_volume`` bool,
    ``last_price``/``average_traded_price`` float64 rupees, ``mode`` int64 (1..3),
    ``volume_traded``/``last_traded_quantity``/``oi`` int64.
    """

    def __init__(self, n_slots: int) -> None:
        self.touched = np.zeros(n_slots, np.bool_)
        self.ts = np.zeros(n_slots, np.int64)
        self.has_volume = np.zeros(n_slots, np.bool_)
        self.last_price = np.zeros(n_slots, np.float64)
        self.mode = np.zeros(n_slots, np.int64)
        self.volume_traded = np.zeros(n_slots, np.int64)
        self.last_traded_quantity = np.zeros(n_slots, np.int64)
        self.average_traded_price = np.zeros(n_slots, np.float64)
        self.oi = np.zeros(n_slots, np.int64)

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The arrays in kernel order (touched, ts, has_volume, last_price, mode,
        volume_traded, last_traded_quantity, average_traded_price, oi)."""
        return (self.touched, self.ts, self.has_volume, self.last_price, self.mode,
                self.volume_traded, self.last_traded_quantity, self.average_traded_price,
                self.oi)  # fmt: skip

    def take(self) -> np.ndarray:
        """The touched slots, int64 ascending, and clear the marks (values stay readable)."""
        slots = np.flatnonzero(self.touched)
        self.touched[slots] = False
        return slots


_SCRATCH_DTYPES = (
    np.int64, np.int64, np.uint32, np.int64,  # offsets, lengths, tokens, frame_of
    np.int64, np.int64, np.int64, np.float64, np.int64, np.int64,  # slot ts date price vol oi
    np.bool_, np.bool_, np.int64, np.int64, np.int64,  # has_volume gap incr book_slot book_ts
)  # fmt: skip


class TickPath:
    """The compiled tick pass for a universe of sorted tokens (see the module docstring).

    Args:
        tokens: int64 (n,) instrument tokens sorted ascending; slot ``i`` is ``tokens[i]``.
        has_restore: bool (n,), slots with volume state to restore at their first tick.
    """

    def __init__(self, tokens: np.ndarray, has_restore: np.ndarray) -> None:
        tokens = np.asarray(tokens, np.int64)
        bits = max(4, int(2 * max(1, tokens.shape[0]) - 1).bit_length() + 1)  # load <= 1/4
        self._shift = 64 - bits
        self._mask = (1 << bits) - 1
        self._keys = np.full(1 << bits, -1, np.int64)
        self._vals = np.full(1 << bits, -1, np.int64)
        _fill_table(tokens, self._keys, self._vals, self._shift, self._mask)
        n = max(1, tokens.shape[0])
        self.has_restore = np.zeros(n, np.bool_)
        self.has_restore[: has_restore.shape[0]] = has_restore
        self.latest = LatestTicks(n)
        self._st = np.zeros(17, np.int64)
        self._st[_DAY] = -1  # no IST day cached yet
        self._req_slot = np.empty(n, np.int64)
        self._req_date = np.empty(n, np.int64)
        self._buffers: tuple[np.ndarray, ...] = ()

    def _scratch(self, n: int) -> tuple[np.ndarray, ...]:
        """The per-packet work arrays of one chunk, (n,) each in :data:`_SCRATCH_DTYPES`
        order and book rows (n, 4) float64: views of buffers reused by every chunk (grown
        when too small), so a chunk pays no allocation and no page faults for them. What
        :meth:`run` returns in them is valid until the next call."""
        if not self._buffers or self._buffers[0].shape[0] < n:
            cap = n + n // 4
            self._buffers = (
                *(np.empty(cap, dt) for dt in _SCRATCH_DTYPES),
                np.empty((cap, 4), np.float64),
            )
        return tuple(b[:n] for b in self._buffers)

    def run(
        self,
        frames: JoinedFrames,
        clock: int,
        seen: np.ndarray,
        volume: VolumeStateManager,
        bars: BarBuilder,
        book: BookTracker,
        gap_pending: np.ndarray,
        restore: Callable[[int, int], None],
    ) -> tuple[TickColumns, TickCounts, np.ndarray]:
        """Run the packets of ``frames`` through volume, gap flags, bars, book, latest ticks.

        Args:
            frames: the chunk's frames (:func:`aion.kite.decode.join_frames`); their
                ``status`` is set here (:data:`aion.kite.decode.FRAME_STATUS_REASONS`).
            clock: the exchange clock before this chunk (epoch s, 0 when none yet).
            seen: bool (slots,), slots whose first tick was seen (set here, before ``restore``).
            volume, bars, book: the engine's state, updated in place.
            gap_pending: bool (slots,), :attr:`aion.feed.gaps.GapTracker.pending` (cleared at
                each slot's first tick, which is flagged ``gap``).
            restore: ``restore(slot, date)`` seeds the volume state of a slot with
                ``has_restore`` whose first tick is in this chunk (date YYYYMMDD of that tick),
                before any volume of the chunk is applied.

        Returns:
            The kept ticks' columns (views of buffers the next call reuses: valid until
            then), the counts, and the bars they closed (``BAR_DTYPE``, by
            :meth:`aion.bars.builder.BarBuilder.closed`).
        """
        n = frames.max_packets
        (offsets, lengths, tokens, frame_of, slot, ts, date, price, vol, oi, has_volume, gap,
         incr, book_slot, book_ts, book_rows) = self._scratch(n)  # fmt: skip
        where = np.zeros(frames.status.shape[0], np.int64)
        book_keys, book_sorted, book_prev_values, book_prev_when = book.begin(n)
        bar_out = bars.outputs(n)
        bar_clock = np.array([bars.clock], np.int64)
        kinds = np.zeros(5, np.int64)
        st = self._st
        st[:_DAY] = 0
        st[_RUNNING] = clock
        req_slot, req_date = self._req_slot, self._req_date
        while True:
            code = _chunk_kernel(
                frames.buf, frames.starts, frames.ends, frames.status, where, frame_of,
                offsets, lengths, tokens, self._keys, self._vals, self._shift, self._mask,
                st, seen, self.has_restore, gap_pending, req_slot, req_date,
                slot, ts, date, price, vol, oi, has_volume, gap, incr,
                book_slot, book_ts, book_rows, book_keys, book_sorted, book.values, book.ts,
                book_prev_values, book_prev_when,
                self.latest.arrays(), volume.state(), kinds, bar_clock, bars.state(),
                bar_out.raw, bar_out.segment_by_minute, bar_out.fields,
            )  # fmt: skip
            if code == _DONE:
                break
            if code == _NEED_DATE:
                day = int(st[_ASK_DAY])
                st[_DAY] = day
                st[_DATE] = int(session_dates(np.array([day * 86_400 - IST_OFFSET_S]))[0])
            else:  # first ticks of slots with persisted volume state, before any volume
                for s, d in zip(req_slot[: st[_REQ]].tolist(), req_date[: st[_REQ]].tolist(),
                                strict=True):  # fmt: skip
                    restore(s, d)
                st[_REQ] = 0
        k = int(st[_KEPT])
        book.end(int(st[_BOOK]))
        volume.count(kinds)
        bars.clock = int(bar_clock[0])
        closed = bars.closed(bar_out, int(st[_N_OUT]), int(st[_FIRST]), int(st[_LATE]))
        cols = TickColumns(slot[:k], ts[:k], date[:k], price[:k], vol[:k], oi[:k], incr[:k])
        counts = TickCounts(
            *(int(x) for x in st[[_PACKETS, _KEPT, _UNTIMED, _INVALID, _UNKNOWN, _MAX_TS]])
        )
        return cols, counts, closed
