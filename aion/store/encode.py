"""Bulk text of the compute thread's store writes: numbers to JSON / hash text in one pass.

The compute thread writes, every minute and for every instrument, an RVOL JSON entry, the
volume-profile hash, the indicator hash and (periodically) the profile's ``bins`` JSON.
Formatting those numbers one by one with ``json.dumps``/``repr``/f-strings was most of the
minute close's cost, so the numbers of a whole minute are written into one byte buffer by a
Numba kernel and cut into ``str`` once.

Number text (:func:`render_rows`, :func:`render_fields`, :func:`render_bins`): a value ``x``
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
def _put_uint(buf: np.ndarray, pos: int, u: int) -> int:
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
        return _put_uint(buf, pos, np.int64(r))
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
        pos = _put_uint(buf, pos, np.int64(r))
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
    pos = _put_uint(buf, pos, iq // unit)
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


def render_fields(values: np.ndarray, decimals: Sequence[int], nan_text: str) -> list[str]:
    """The text of every value of float64 (n, m) ``values``, row-major (n * m strings).

    ``decimals`` (m,) and ``nan_text`` as in :func:`render_rows`.
    """
    m = values.shape[1]
    if m == 0 or values.shape[0] == 0:
        return []
    if "\n" in nan_text:
        raise ValueError("render_fields: nan_text must not contain a newline")
    text = _render(["", *(["\n"] * m)], values, decimals, nan_text)
    fields = text.split("\n")
    fields.pop()
    return fields


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
            pos = _put_uint(out, pos + 2, v)
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
