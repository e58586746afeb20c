"""Columnar state writes: whole key families rendered as RESP ``HSET`` in one compiled pass.

The compute thread's minute close writes, for thousands of instruments at once, hashes of
the same fields (the indicator hash, the volume profile, the latest tick). Instead of one
Python dict per instrument, it hands the store a :class:`StateColumns`: the keys, the field
names once and the text of every value in one byte buffer (:class:`aion.store.encode.Cells`,
rendered by :func:`aion.store.encode.render_cells` without a ``str`` per value).

The store keeps one :class:`ColumnFamily` per family (name and fields): the rows' keys
(a dict key -> row, one entry per key, as the dict path's EXPIRE schedule), the pending
batches, and the shadow of what Redis holds as a 64-bit fingerprint per (row, field)
(FNV-1a of the value's bytes, http://www.isthe.com/chongo/tech/comp/fnv/, combined with its
length) in fixed numpy arrays, so the shadow's memory does not grow with the values. At a
flush :meth:`ColumnFamily.render` coalesces the pending batches (the latest value per cell
wins, cells absent from a batch keep the earlier value: ``dict.update`` semantics) and
renders, per pending key, ``HSET key f v ...`` of the fields whose fingerprint differs from
the shadow (all of the row's pending fields when the key is not known to be written or its
EXPIRE is due) and ``EXPIRE key ttl`` when due: the same commands, field order and values the
dict path (:func:`aion.store.shadow.hset_changed`) sends for the same mappings.

The volume state (``keys.volume_state``) is the family ``volume``, rendered from int64
columns by :func:`aion.store.encode.int_cells`; it keeps its numbers next to the text
(``StateColumns.values``) for the archive. :class:`BarColumns` and :class:`RvolColumns`
carry a step's closed bars and RVOL entries as numbers next to their JSON text, for the
archive too (no text is parsed back).

A changed value with the fingerprint of the old one would skip its write: about 2**-64 per
comparison for distinct texts (see :data:`aion.store.shadow.FINGERPRINT_MIN_CHARS`), healed
by the full rewrite every :data:`aion.store.shadow.EXPIRE_REFRESH_S`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from aion.store.batch import StateColumns
from aion.store.encode import Cells, put_uint

MAX_PENDING_PARTS = 32
"""Pending batches of one family kept apart; past this they are coalesced into one (memory
stays bounded by the family's keys while Redis is unreachable)."""


_HSET_HEAD = np.frombuffer(b"$4\r\nHSET\r\n", np.uint8)


def _bulk_bytes(text: str) -> bytes:
    b = text.encode()
    return b"$%d\r\n%b\r\n" % (len(b), b)


@njit(nogil=True, cache=True)
def _fingerprint(text: np.ndarray, s: int, e: int) -> np.uint64:
    """FNV-1a 64 of ``text[s:e]``, then its length mixed in."""
    h = np.uint64(14695981039346656037)
    prime = np.uint64(1099511628211)
    for k in range(s, e):
        h = (h ^ np.uint64(text[k])) * prime
    return (h ^ np.uint64(e - s)) * prime


@njit(nogil=True, cache=True)
def _coalesce_kernel(
    rows: np.ndarray,
    text: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    slot_of: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Latest present cell per (row, field) over rows int64 (N,) in arrival order with cells
    (N, m) into ``text``; returns the distinct rows in first-arrival order and their cells
    copied into a fresh buffer. ``slot_of`` int64 (capacity,) all -1 (restored on return)."""
    n, m = start.shape
    order = np.empty(n, np.int64)
    p = 0
    for i in range(n):
        r = rows[i]
        if slot_of[r] < 0:
            slot_of[r] = p
            order[p] = r
            p += 1
    src = np.full((p, m), -1, np.int64)
    for i in range(n):
        q = slot_of[rows[i]]
        for j in range(m):
            if start[i, j] >= 0:
                src[q, j] = i
    size = 0
    for q in range(p):
        for j in range(m):
            i = src[q, j]
            if i >= 0:
                size += end[i, j] - start[i, j]
    out = np.empty(size, np.uint8)
    ns = np.full((p, m), -1, np.int64)
    ne = np.zeros((p, m), np.int64)
    pos = 0
    for q in range(p):
        for j in range(m):
            i = src[q, j]
            if i < 0:
                ne[q, j] = pos
                continue
            ns[q, j] = pos
            for k in range(start[i, j], end[i, j]):
                out[pos] = text[k]
                pos += 1
            ne[q, j] = pos
    for q in range(p):
        slot_of[order[q]] = -1
    return order[:p], out, ns, ne


@njit(nogil=True, cache=True)
def _put_bytes(out: np.ndarray, pos: int, src: np.ndarray, s: int, e: int) -> int:
    for k in range(s, e):
        out[pos] = src[k]
        pos += 1
    return pos


@njit(nogil=True, cache=True)
def _render_kernel(
    rows: np.ndarray,
    text: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    fp: np.ndarray,
    known: np.ndarray,
    row_known: np.ndarray,
    due: np.ndarray,
    now: float,
    hset_head: np.ndarray,
    key_text: np.ndarray,
    key_off: np.ndarray,
    field_text: np.ndarray,
    field_off: np.ndarray,
    expire_head: np.ndarray,
    ttl_text: np.ndarray,
    in_block: np.ndarray,
    out_main: np.ndarray,
    out_block: np.ndarray,
    block_off: np.ndarray,
    commands: np.ndarray,
    new_fp: np.ndarray,
    sent: np.ndarray,
    full: np.ndarray,
    expire: np.ndarray,
) -> tuple[int, int]:
    """RESP of the coalesced rows (see :meth:`ColumnFamily.render`); returns the bytes used
    in ``out_main`` and ``out_block``. Per row q: ``commands[q]`` (0..2), ``full[q]``,
    ``expire[q]``, ``sent[q, j]`` and ``new_fp[q, j]``; a block row's text is
    ``out_block[block_off[q]:block_off[q + 1]]``."""
    p, m = start.shape
    pm = 0
    pb = 0
    for q in range(p):
        r = rows[q]
        is_due = now >= due[r]
        whole = (not row_known[r]) or is_due
        full[q] = whole
        k = 0
        for j in range(m):
            sent[q, j] = False
            if start[q, j] < 0:
                continue
            h = _fingerprint(text, start[q, j], end[q, j])
            new_fp[q, j] = h
            if whole or (not known[r, j]) or fp[r, j] != h:
                sent[q, j] = True
                k += 1
        ttl = is_due and whole
        expire[q] = ttl
        commands[q] = (1 if k > 0 else 0) + (1 if ttl else 0)
        if in_block[r]:
            out = out_block
            pos = pb
            block_off[q] = pb
        else:
            out = out_main
            pos = pm
        if k > 0:
            out[pos] = 42  # '*'
            pos = put_uint(out, pos + 1, 2 + 2 * k)
            out[pos] = 13
            out[pos + 1] = 10
            pos += 2
            pos = _put_bytes(out, pos, hset_head, 0, hset_head.shape[0])
            pos = _put_bytes(out, pos, key_text, key_off[r], key_off[r + 1])
            for j in range(m):
                if not sent[q, j]:
                    continue
                pos = _put_bytes(out, pos, field_text, field_off[j], field_off[j + 1])
                out[pos] = 36  # '$'
                pos = put_uint(out, pos + 1, end[q, j] - start[q, j])
                out[pos] = 13
                out[pos + 1] = 10
                pos = _put_bytes(out, pos + 2, text, start[q, j], end[q, j])
                out[pos] = 13
                out[pos + 1] = 10
                pos += 2
        if ttl:
            pos = _put_bytes(out, pos, expire_head, 0, expire_head.shape[0])
            pos = _put_bytes(out, pos, key_text, key_off[r], key_off[r + 1])
            pos = _put_bytes(out, pos, ttl_text, 0, ttl_text.shape[0])
        if in_block[r]:
            pb = pos
            block_off[q + 1] = pb
        else:
            pm = pos
            block_off[q + 1] = block_off[q]
    return pm, pb


@dataclass
class Rendered:
    """One family's share of a flush (:meth:`ColumnFamily.render`).

    Attributes:
        main: RESP of the rows outside MULTI blocks (send as is).
        main_rows: int64 (c,) the family row of each of ``main``'s c commands, in order.
        block: (key, RESP, commands) of each row whose hash tag has bars in the flush.
        rows, new_fp, sent, full, expire: what :meth:`ColumnFamily.commit` applies once
            Redis acknowledged the flush.
    """

    main: bytes
    main_rows: np.ndarray
    block: list[tuple[str, bytes, int]]
    rows: np.ndarray
    new_fp: np.ndarray
    sent: np.ndarray
    full: np.ndarray
    expire: np.ndarray


class ColumnFamily:
    """The store's pending rows and shadow of one :class:`StateColumns` family.

    Args:
        fields: the family's field names (in write order).
        tag_of: the hash tag of a key (None when it has none), for MULTI blocks.

    Attributes:
        n_pending: distinct keys with pending writes.
    """

    def __init__(self, fields: tuple[str, ...], tag_of: object) -> None:
        self.fields = fields
        self._tag_of = tag_of
        m = len(fields)
        self._index: dict[str, int] = {}
        self.keys: list[str] = []
        self._tags: list[str | None] = []
        cap = 64
        self._fp = np.zeros((cap, m), np.uint64)
        self._known = np.zeros((cap, m), np.bool_)
        self._row_known = np.zeros(cap, np.bool_)
        self._due = np.zeros(cap, np.float64)
        self._pending_mask = np.zeros(cap, np.bool_)
        self._slot_of = np.full(cap, -1, np.int64)
        self._key_chunks: list[bytes] = []
        self._key_text = np.zeros(0, np.uint8)
        self._key_off = np.zeros(1, np.int64)
        heads = [_bulk_bytes(f) for f in fields]
        self._field_text = np.frombuffer(b"".join(heads), np.uint8)
        self._field_off = np.concatenate(([0], np.cumsum([len(h) for h in heads]))).astype(np.int64)
        self._parts: list[tuple[np.ndarray, Cells]] = []
        self.n_pending = 0
        # render's output buffers, reused by every flush (what it returns is copied out of
        # them): fresh ones paid a page fault per 4 KiB under the 1 MiB mmap threshold
        self._out_main = np.empty(0, np.uint8)
        self._out_block = np.empty(0, np.uint8)

    def _grow(self, need: int) -> None:
        cap = self._due.shape[0]
        if need <= cap:
            return
        new = max(need, 2 * cap)

        def grow(a: np.ndarray, fill: object) -> np.ndarray:
            b = np.full((new, *a.shape[1:]), fill, a.dtype)
            b[:cap] = a
            return b

        self._fp = grow(self._fp, 0)
        self._known = grow(self._known, False)
        self._row_known = grow(self._row_known, False)
        self._due = grow(self._due, 0.0)
        self._pending_mask = grow(self._pending_mask, False)
        self._slot_of = grow(self._slot_of, -1)

    def rows_of(self, keys: list[str]) -> np.ndarray:
        """int64 (n,) rows of ``keys`` (new keys are added)."""
        index = self._index
        rows = [index.get(k, -1) for k in keys]
        if -1 in rows:
            for i, k in enumerate(keys):
                if rows[i] < 0:
                    r = index.get(k)
                    if r is None:
                        r = len(self.keys)
                        index[k] = r
                        self.keys.append(k)
                        self._tags.append(self._tag_of(k))  # type: ignore[operator]
                        self._key_chunks.append(_bulk_bytes(k))
                    rows[i] = r
            self._grow(len(self.keys))
            added = self._key_chunks
            self._key_text = np.concatenate(
                (self._key_text, np.frombuffer(b"".join(added), np.uint8))
            )
            self._key_off = np.concatenate(
                (self._key_off, self._key_off[-1] + np.cumsum([len(c) for c in added]))
            ).astype(np.int64)
            self._key_chunks = []
        return np.asarray(rows, np.int64)

    def merge(self, cols: StateColumns) -> None:
        """Add one batch's rows (later batches win per cell)."""
        if not cols.keys:
            return
        rows = self.rows_of(cols.keys)
        new = ~self._pending_mask[rows]
        self.n_pending += int(np.count_nonzero(new))
        self._pending_mask[rows] = True
        self._parts.append((rows, cols.cells))
        if len(self._parts) > MAX_PENDING_PARTS:
            self._parts = [self._coalesced()]

    def _coalesced(self) -> tuple[np.ndarray, Cells]:
        parts = self._parts
        if len(parts) == 1:
            rows, c = parts[0]
            text, start, end = c.text, c.start, c.end
        else:
            base = np.cumsum([0] + [int(c.text.shape[0]) for _, c in parts[:-1]])
            rows = np.concatenate([r for r, _ in parts])
            text = np.concatenate([c.text for _, c in parts])
            start = np.vstack([np.where(c.start < 0, -1, c.start + b) for (_, c), b in
                               zip(parts, base.tolist(), strict=True)])  # fmt: skip
            end = np.vstack([c.end + b for (_, c), b in zip(parts, base.tolist(), strict=True)])
        order, out, ns, ne = _coalesce_kernel(
            rows, np.ascontiguousarray(text, np.uint8), start, end, self._slot_of
        )
        return order, Cells(out, ns, ne)

    def render(self, now: float, ttl: int, block_tags: object) -> Rendered | None:
        """The RESP of the pending rows (None when nothing is pending).

        ``now``: monotonic seconds (EXPIRE due times); ``ttl``: seconds; ``block_tags``: the
        hash tags of the flush's bars keys (a container): rows with one of them go to
        ``block`` (the writer puts them into that instrument's MULTI block).
        """
        if not self._parts:
            return None
        rows, cells = self._coalesced()
        p, m = cells.start.shape
        tags = self._tags
        cap = self._due.shape[0]
        in_block = np.zeros(cap, np.bool_)
        if block_tags:
            hit = [r for r in rows.tolist() if tags[r] in block_tags]  # type: ignore[operator]
            in_block[hit] = True
        key_len = np.diff(self._key_off)[rows]
        expire_head = b"*3\r\n$6\r\nEXPIRE\r\n"
        ttl_text = _bulk_bytes(str(ttl))
        per_row = 2 * key_len + 40 + len(ttl_text) + int(self._field_text.shape[0]) + 16 * m
        bound = int(cells.text.shape[0] + per_row.sum())
        if self._out_main.shape[0] < bound:
            self._out_main = np.empty(bound + bound // 4, np.uint8)
        out_main = self._out_main[:bound]
        if block_tags and self._out_block.shape[0] < bound:
            self._out_block = np.empty(bound + bound // 4, np.uint8)
        out_block = self._out_block[: bound if block_tags else 0]
        block_off = np.zeros(p + 1, np.int64)
        commands = np.zeros(p, np.int64)
        new_fp = np.zeros((p, m), np.uint64)
        sent = np.zeros((p, m), np.bool_)
        full = np.zeros(p, np.bool_)
        expire = np.zeros(p, np.bool_)
        used_main, used_block = _render_kernel(
            rows, cells.text, cells.start, cells.end, self._fp, self._known, self._row_known,
            self._due, now, _HSET_HEAD, self._key_text, self._key_off, self._field_text,
            self._field_off,
            np.frombuffer(expire_head, np.uint8), np.frombuffer(ttl_text, np.uint8), in_block,
            out_main, out_block, block_off, commands, new_fp, sent, full, expire,
        )  # fmt: skip
        blocked = in_block[rows]
        main_rows = np.repeat(rows[~blocked], commands[~blocked])
        block: list[tuple[str, bytes, int]] = []
        if blocked.any():
            buf = out_block[:used_block].tobytes()
            keys_ = self.keys
            for q in np.flatnonzero(blocked & (commands > 0)).tolist():
                r = int(rows[q])
                block.append((keys_[r], buf[block_off[q] : block_off[q + 1]], int(commands[q])))
        return Rendered(
            out_main[:used_main].tobytes(), main_rows, block, rows, new_fp, sent, full, expire
        )

    def commit(self, done: Rendered, next_due: float) -> None:
        """Redis acknowledged ``done``: update the shadow, the EXPIRE schedule (``next_due``
        monotonic s for the rows whose EXPIRE was sent) and clear the pending rows."""
        rows = done.rows
        full = done.full
        fr = rows[full]
        if fr.shape[0]:  # a full write: the shadow is what was sent, nothing else
            self._known[fr] = done.sent[full]
        pr = rows[~full]
        if pr.shape[0]:
            self._known[pr] |= done.sent[~full]
        sent = done.sent
        fp = self._fp[rows]
        fp[sent] = done.new_fp[sent]
        self._fp[rows] = fp
        self._row_known[rows] = True
        self._due[rows[done.expire]] = next_due
        self.clear_pending()

    def clear_pending(self) -> None:
        """Forget the pending rows (after they were written)."""
        self._parts = []
        self._pending_mask[:] = False
        self.n_pending = 0

    def forget(self, rows: np.ndarray | None = None) -> None:
        """What Redis holds for ``rows`` (all when None) is unknown: their next write is full,
        with its EXPIRE."""
        if rows is None:
            self._row_known[:] = False
            self._due[:] = 0.0
        else:
            self._row_known[rows] = False
            self._due[rows] = 0.0

    def row(self, key: str) -> int:
        """The row of ``key`` (KeyError when unknown)."""
        return self._index[key]
