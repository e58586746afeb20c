"""Bulk text of the compute thread's store writes: numbers to JSON / hash text in one pass.

The compute thread writes, every minute and for every instrument, an RVOL JSON entry, the
volume-profile hash, the indicator hash and (periodically) the profile's ``bins`` JSON.
Formatting those numbers one by one with ``json.dumps``/``repr``/f-strings was most of the
minute close's cost, so the numbers of a whole minute are written into one byte buffer by a
Numba kernel and cut into ``str`` once.

Number text (:func:`render_rows`, :func:`render_cells`, :func:`render_bins`): a value ``x``
with ``d >= 0`` decimals is written as the decimal ``q / 10**d`` where
``q = rint(x * 10**d)`` (exactly what ``numpy.round(x, d)`` computes before its division,
so the text parses back to ``numpy.round(x, d)`` bit for bit), trailing zeros dropped but
one decimal kept (``1001.35``, ``12.0``). For ``1e-4 <= |x| < 1e9`` that is exactly
``repr(numpy.round(x, d))``, hence exactly what ``json.dumps`` writes; smaller non-zero values
come out in fixed notation (``0.00005`` for ``5e-05``, the same number) and values with
``|x| * 10**d >= 9e15`` (``9e9`` for 6 decimals) are written in whole units (``x.0``).
``d = -1`` writes an integer (``rint(x)``, no point); a negative zero is written ``0.0``.
NaN and infinities are written as the caller's ``nan_text`` (``null`` in JSON, ``nan`` in
hashes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

_MAX_NUMBER_BYTES = 40  # sign, 16 integer digits, point, up to 9 decimals, margin
_MAX_DECIMALS = 9


@njit(nogil=True, cache=True)
def put_uint(buf: np.ndarray, pos: int, u: int) -> int:
    """Write the decimal digits of ``u >= 0`` at ``pos``; returns the new position."""
    if u == 0:
        buf[pos] = 48
        return pos + 1
    n = 0
    t = u
    while t > 0:
        t //= 10
        n += 1
    p = pos + n
    while u > 0:
        p -= 1
        buf[p] = 48 + u % 10
        u //= 10
    return pos + n


@njit(nogil=True, cache=True)
def _put_number(buf: np.ndarray, pos: int, x: float, decimals: int, nan_text: np.ndarray) -> int:
    """Write ``x`` (rules in the module docstring) at ``pos``; returns the new position."""
    if not np.isfinite(x):
        for i in range(nan_text.shape[0]):
            buf[pos + i] = nan_text[i]
        return pos + nan_text.shape[0]
    if decimals < 0:
        r = np.rint(x)
        if r < 0:
            buf[pos] = 45  # '-'
            pos += 1
            r = -r
        if r >= 9.0e18:  # beyond int64: cannot happen for share counts
            r = 9.0e18
        return put_uint(buf, pos, np.int64(r))
    scale = 10.0**decimals
    q = np.rint(x * scale)
    if abs(q) >= 9.0e15:  # beyond exact doubles: whole units only
        r = np.rint(x)
        if r < 0:
            buf[pos] = 45
            pos += 1
            r = -r
        if r >= 9.0e18:
            r = 9.0e18
        pos = put_uint(buf, pos, np.int64(r))
        buf[pos] = 46  # '.'
        buf[pos + 1] = 48
        return pos + 2
    iq = np.int64(q)
    if iq < 0:
        buf[pos] = 45
        pos += 1
        iq = -iq
    unit = np.int64(1)
    for _ in range(decimals):
        unit *= 10
    pos = put_uint(buf, pos, iq // unit)
    buf[pos] = 46
    pos += 1
    frac = iq % unit
    if frac == 0 or decimals == 0:
        buf[pos] = 48
        return pos + 1
    width = decimals
    while frac % 10 == 0:
        frac //= 10
        width -= 1
    end = pos + width
    p = end
    while p > pos:
        p -= 1
        buf[p] = 48 + frac % 10
        frac //= 10
    return end


@njit(nogil=True, cache=True)
def _render_kernel(
    lit: np.ndarray,
    lit_off: np.ndarray,
    values: np.ndarray,
    decimals: np.ndarray,
    nan_text: np.ndarray,
    out: np.ndarray,
) -> int:
    n, m = values.shape
    pos = 0
    for i in range(n):
        for j in range(m + 1):
            for k in range(lit_off[j], lit_off[j + 1]):
                out[pos] = lit[k]
                pos += 1
            if j < m:
                pos = _put_number(out, pos, values[i, j], decimals[j], nan_text)
    return pos


def _ascii(text: str, what: str) -> np.ndarray:
    if not text.isascii():
        raise ValueError(f"{what} must be ASCII text, got {text!r}")
    return np.frombuffer(text.encode(), np.uint8)


def _render(
    literals: Sequence[str], values: np.ndarray, decimals: Sequence[int], nan_text: str
) -> str:
    values = np.ascontiguousarray(values, np.float64)
    if values.ndim != 2 or len(literals) != values.shape[1] + 1 or len(decimals) != values.shape[1]:
        raise ValueError("render: values (n, m) need m + 1 literals and m decimals")
    dec = np.asarray(decimals, np.int64)
    if dec.shape[0] and (dec.max() > _MAX_DECIMALS or dec.min() < -1):
        raise ValueError(f"render: decimals must be in -1..{_MAX_DECIMALS}")
    lit = _ascii("".join(literals), "literals")
    lit_off = np.zeros(len(literals) + 1, np.int64)
    lit_off[1:] = np.cumsum([len(s) for s in literals])
    nan = _ascii(nan_text, "nan_text")
    per_row = lit.shape[0] + values.shape[1] * max(_MAX_NUMBER_BYTES, nan.shape[0])
    out = np.empty(values.shape[0] * per_row, np.uint8)
    end = _render_kernel(lit, lit_off, values, dec, nan, out)
    return out[:end].tobytes().decode("ascii")


def render_rows(
    literals: Sequence[str], values: np.ndarray, decimals: Sequence[int], nan_text: str
) -> list[str]:
    """One text per row: ``literals[0] + v0 + literals[1] + ... + v[m-1] + literals[m]``.

    Args:
        literals: m + 1 ASCII texts without a newline.
        values: float64 (n, m) numbers (integers up to 2**53 exactly).
        decimals: (m,) decimals per column, -1..9 (-1: integer).
        nan_text: text of a non-finite value (ASCII, no newline).

    Raises:
        ValueError: on shapes that do not match or non-ASCII / multi-line text.
    """
    if any("\n" in s for s in literals) or "\n" in nan_text:
        raise ValueError("render_rows: literals must not contain a newline")
    text = _render([*literals[:-1], literals[-1] + "\n"], values, decimals, nan_text)
    rows = text.split("\n")
    rows.pop()
    return rows


_ROLLUP_FIELDS = (  # the JSON keys of a rolled-up bar, sorted; decimals (-1: integer)
    ("close", 4), ("high", 4), ("low", 4), ("minutes", -1), ("oi", -1), ("open", 4),
    ("start", -1), ("ticks", -1), ("volume", -1),
)  # fmt: skip
_ROLLUP_LITERALS = [
    "{" + ",".join(f'"{k}":' for k, _ in _ROLLUP_FIELDS[:1]),
    *(f',"{k}":' for k, _ in _ROLLUP_FIELDS[1:]),
    "}",
]


def encode_rollups(rows: np.ndarray) -> list[str]:
    """Compact JSON of each rolled-up bar (``aion.bars.rollup.ROLLUP_DTYPE`` rows, (k,)).

    Keys sorted (``close``, ``high``, ``low``, ``minutes``, ``oi``, ``open``, ``start``,
    ``ticks``, ``volume``; the 1-minute bar's keys of ``encode_bar`` without ``segment``, plus
    ``minutes``): prices in rupees rounded to 4 decimals (:func:`render_rows`' number text,
    ``NaN`` when not finite, as ``json.dumps`` writes it), ``start`` epoch seconds, volume,
    ``oi``, ``ticks`` and ``minutes`` integers. ``json.loads`` of each text gives the row's
    values (prices as ``numpy.round(x, 4)``).
    """
    values = np.column_stack([rows[k].astype(np.float64) for k, _ in _ROLLUP_FIELDS])
    return render_rows(_ROLLUP_LITERALS, values, [d for _, d in _ROLLUP_FIELDS], "NaN")


@njit(nogil=True, cache=True)
def _bins_size(slots: np.ndarray, vol: np.ndarray) -> int:
    size = 0
    for i in range(slots.shape[0]):
        row = vol[slots[i]]
        for k in range(row.shape[0]):
            if row[k] != 0:
                size += 1
    return size


@njit(nogil=True, cache=True)
def _bins_kernel(
    slots: np.ndarray, vol: np.ndarray, lo: np.ndarray, width: np.ndarray, out: np.ndarray
) -> int:
    none = np.empty(0, np.uint8)
    pos = 0
    for i in range(slots.shape[0]):
        s = slots[i]
        row = vol[s]
        out[pos] = 91  # '['
        pos += 1
        first = True
        for k in range(row.shape[0]):
            v = row[k]
            if v == 0:
                continue
            if not first:
                out[pos] = 44  # ', '
                out[pos + 1] = 32
                pos += 2
            first = False
            out[pos] = 91
            pos += 1
            pos = _put_number(out, pos, float(lo[s] + k) * width[s], 6, none)
            out[pos] = 44
            out[pos + 1] = 32
            pos = put_uint(out, pos + 2, v)
            out[pos] = 93  # ']'
            pos += 1
        out[pos] = 93
        out[pos + 1] = 10  # row separator
        pos += 2
    return pos


def render_bins(slots: np.ndarray, vol: np.ndarray, lo: np.ndarray, width: np.ndarray) -> list[str]:
    """``json.dumps([[price, volume], ...])`` of the non-empty bins of each profile row.

    Args:
        slots: int64 (n,) rows of ``vol`` to encode.
        vol: int64 (slots, bins) volume per bin (shares, >= 0).
        lo: int64 (slots,) absolute bin index of column 0 (bin ``k`` is at price
            ``numpy.round((lo + k) * width, 6)`` rupees).
        width: float64 (slots,) bin width, rupees.

    Returns:
        n JSON texts (``[]`` for an empty row), byte for byte what ``json.dumps`` writes for
        prices in ``[1e-4, 1e9)`` rupees (see the module docstring).
    """
    slots = np.ascontiguousarray(slots, np.int64)
    if slots.shape[0] == 0:
        return []
    nbins = _bins_size(slots, vol)
    out = np.empty(slots.shape[0] * 3 + nbins * (6 + 2 * _MAX_NUMBER_BYTES), np.uint8)
    end = _bins_kernel(slots, vol, lo, np.asarray(width, np.float64), out)
    texts = out[:end].tobytes().decode("ascii").split("\n")
    texts.pop()
    return texts


# -- hash field values as cells ----------------------------------------------------------------


class Cells:
    """The text of an (n, m) table of Redis hash field values, held in one byte buffer.

    Attributes:
        text: uint8 (bytes,) UTF-8 text of every present cell.
        start, end: int64 (n, m) byte offsets of cell (i, j) in ``text``; ``start == -1``
            marks an absent cell (the field is not written for that row).
    """

    __slots__ = ("end", "start", "text")

    def __init__(self, text: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        if start.shape != end.shape or start.ndim != 2:
            raise ValueError("Cells: start and end must be (n, m) arrays of one shape")
        self.text = text
        self.start = start
        self.end = end

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, fields)."""
        return (int(self.start.shape[0]), int(self.start.shape[1]))

    def value(self, i: int, j: int) -> str | None:
        """Cell (i, j) as ``str`` (None when absent)."""
        s = int(self.start[i, j])
        return None if s < 0 else self.text[s : int(self.end[i, j])].tobytes().decode()

    def absent(self, mask: np.ndarray) -> Cells:
        """These cells with the cells where bool (n, m) ``mask`` is True marked absent."""
        start = np.where(mask, -1, self.start)
        return Cells(self.text, start, self.end)


@njit(nogil=True, cache=True)
def _put_fixed(buf: np.ndarray, pos: int, x: float, decimals: int) -> int:
    """Write ``format(x, f".{decimals}f")`` at ``pos`` (Python's correctly rounded fixed
    notation, ties to even on the exact binary value, trailing zeros kept, ``-0.00`` for a
    negative value rounding to zero, ``nan``/``inf``/``-inf``); returns the new position.

    ``x * 10**decimals`` is formed exactly as ``p + e`` (Dekker's TwoProduct, T. J. Dekker,
    "A floating-point technique for extending the available precision", 1971): ``p`` only
    sits on a half-way point when the exact product is at or next to it, so the sign of
    ``e`` settles every tie. Valid for ``|x| * 10**decimals < 2**52``.
    """
    if x != x:
        buf[pos] = 110  # nan
        buf[pos + 1] = 97
        buf[pos + 2] = 110
        return pos + 3
    neg = x < 0 or (x == 0 and np.signbit(x))
    if neg:
        buf[pos] = 45
        pos += 1
        x = -x
    if x == np.inf:
        buf[pos] = 105  # inf
        buf[pos + 1] = 110
        buf[pos + 2] = 102
        return pos + 3
    scale = 1.0
    for _ in range(decimals):
        scale *= 10.0
    p = x * scale
    split = 134217729.0  # 2**27 + 1
    c = split * x
    xh = c - (c - x)
    xl = x - xh
    c = split * scale
    sh = c - (c - scale)
    sl = scale - sh
    e = ((xh * sh - p) + xh * sl + xl * sh) + xl * sl
    fl = np.floor(p)
    frac = p - fl
    if frac > 0.5 or (frac == 0.5 and (e > 0 or (e == 0 and np.int64(fl) % 2 == 1))):
        q = np.int64(fl) + 1
    else:
        q = np.int64(fl)
    unit = np.int64(1)
    for _ in range(decimals):
        unit *= 10
    pos = put_uint(buf, pos, q // unit)
    if decimals == 0:
        return pos
    buf[pos] = 46
    pos += 1
    frac_q = q % unit
    p2 = pos + decimals
    while p2 > pos:
        p2 -= 1
        buf[p2] = 48 + frac_q % 10
        frac_q //= 10
    return pos + decimals


@njit(nogil=True, cache=True)
def _cells_kernel(
    values: np.ndarray,
    decimals: np.ndarray,
    fixed: np.ndarray,
    nan_text: np.ndarray,
    out: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
) -> int:
    n, m = values.shape
    pos = 0
    for i in range(n):
        for j in range(m):
            start[i, j] = pos
            if fixed[j]:
                pos = _put_fixed(out, pos, values[i, j], decimals[j])
            else:
                pos = _put_number(out, pos, values[i, j], decimals[j], nan_text)
            end[i, j] = pos
    return pos


@njit(nogil=True, cache=True)
def _int_cells_kernel(
    values: np.ndarray, out: np.ndarray, start: np.ndarray, end: np.ndarray
) -> int:
    n, m = values.shape
    pos = 0
    for i in range(n):
        for j in range(m):
            start[i, j] = pos
            v = values[i, j]
            if v < 0:
                out[pos] = 45  # '-'
                pos += 1
                v = -v
            pos = put_uint(out, pos, v)
            end[i, j] = pos
    return pos


def int_cells(values: np.ndarray) -> Cells:
    """``str(v)`` of every value of int64 (n, m) ``values`` as :class:`Cells` (one compiled
    pass into one buffer, no ``str`` per value; ``-2**63`` is not supported)."""
    values = np.ascontiguousarray(values, np.int64)
    if values.ndim != 2:
        raise ValueError("int_cells: values must be an (n, m) array")
    n, m = values.shape
    out = np.empty(n * m * 20, np.uint8)  # a sign and 19 digits at most
    start = np.empty((n, m), np.int64)
    end = np.empty((n, m), np.int64)
    used = _int_cells_kernel(values, out, start, end)
    return Cells(out[:used].copy(), start, end)  # not a view of the worst-case buffer


def render_cells(
    values: np.ndarray,
    decimals: Sequence[int],
    nan_text: str,
    fixed: Sequence[bool] | None = None,
) -> Cells:
    """The text of every value of float64 (n, m) ``values`` as :class:`Cells`, no ``str`` per
    value.

    Column ``j`` is written by the rules of the module docstring with ``decimals[j]``
    (-1..9; non-finite as ``nan_text``) or, where ``fixed[j]``, as Python's
    ``f"{x:.{decimals[j]}f}"`` (0..9 decimals, trailing zeros kept; for prices, ``|x| <
    2**52 / 10**decimals``).

    Raises:
        ValueError: on shapes that do not match, decimals out of range or non-ASCII text.
    """
    values = np.ascontiguousarray(values, np.float64)
    if values.ndim != 2 or len(decimals) != values.shape[1]:
        raise ValueError("render_cells: values (n, m) need m decimals")
    dec = np.asarray(decimals, np.int64).reshape(-1)
    fix = np.zeros(dec.shape[0], np.bool_) if fixed is None else np.asarray(fixed, np.bool_)
    if fix.shape != dec.shape:
        raise ValueError("render_cells: fixed needs one flag per column")
    if dec.shape[0] and (dec.max() > _MAX_DECIMALS or dec.min() < -1 or (dec[fix] < 0).any()):
        raise ValueError(f"render_cells: decimals must be in -1..{_MAX_DECIMALS} (0.. if fixed)")
    nan = _ascii(nan_text, "nan_text")
    n, m = values.shape
    out = np.empty(n * m * max(_MAX_NUMBER_BYTES, nan.shape[0]), np.uint8)
    start = np.empty((n, m), np.int64)
    end = np.empty((n, m), np.int64)
    used = _cells_kernel(values, dec, fix, nan, out, start, end)
    # a copy: a view would keep the worst-case buffer (40 bytes a cell) alive with the batch
    return Cells(out[:used].copy(), start, end)


def text_cells(columns: Sequence[Sequence[str | None]]) -> Cells:
    """:class:`Cells` of m columns of n texts each (None: absent), e.g. a name per row.

    Raises:
        ValueError: when the columns differ in length.
    """
    m = len(columns)
    n = len(columns[0]) if m else 0
    if any(len(c) != n for c in columns):
        raise ValueError("text_cells: every column needs the same number of rows")
    flat = [t for row in zip(*columns, strict=True) for t in row]  # row-major
    joined = "".join(t for t in flat if t is not None)
    if joined.isascii():
        lens = np.fromiter((-1 if t is None else len(t) for t in flat), np.int64, n * m)
        text = np.frombuffer(joined.encode(), np.uint8)
    else:
        lens = np.fromiter((-1 if t is None else len(t.encode()) for t in flat), np.int64, n * m)
        text = np.frombuffer(joined.encode(), np.uint8)
    size = np.maximum(lens, 0)
    end = np.cumsum(size)
    start = np.where(lens < 0, -1, end - size)
    return Cells(text, start.reshape(n, m), end.reshape(n, m))


def hstack_cells(parts: Sequence[Cells]) -> Cells:
    """The columns of ``parts`` (same rows) side by side, in order, as one :class:`Cells`.

    Raises:
        ValueError: when the parts differ in rows.
    """
    if not parts:
        raise ValueError("hstack_cells: nothing to stack")
    n = parts[0].shape[0]
    if any(p.shape[0] != n for p in parts):
        raise ValueError("hstack_cells: every part needs the same number of rows")
    starts, ends, texts = [], [], []
    base = 0
    for p in parts:
        starts.append(np.where(p.start < 0, -1, p.start + base))
        ends.append(p.end + base)
        texts.append(p.text)
        base += int(p.text.shape[0])
    return Cells(np.concatenate(texts), np.hstack(starts), np.hstack(ends))
