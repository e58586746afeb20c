"""Scale a real session up to N instruments (``aion session build --replicate N``).

The bundled data has 32 real instruments; Kite allows 3 x 3,000 per API key. To test and
benchmark aion at that scale with real price and volume paths, :func:`replicate_session`
copies the real NSE equities of a session under new, distinct instrument tokens until the
session holds N instruments, each copy with its own deterministic perturbation:

* every price of copy ``j`` (``last_price``, day ``open/high/low/close``,
  ``average_traded_price``, depth prices) is multiplied by ``price_factor[j]`` in
  [0.8, 1.25] and rounded to paise;
* every volume (``volume_traded``, ``last_traded_quantity``, total buy/sell quantities,
  depth quantities) is multiplied by ``volume_factor[j]`` in [0.5, 2.0] and floored, which
  keeps the cumulative ``volume_traded`` non-decreasing, so the volume rules hold for copies
  exactly as for the originals (each copy's day volume is ``floor(day volume x factor)``);
* times are unchanged: copies tick at the same exchange timestamps as their original.

Factors come from ``numpy.random.default_rng(seed)``: same inputs and seed, byte-identical
output. Tokens are ``(0x700000 + i) << 8 | 1`` (NSE segment 1, so the price divisor is 100),
skipping any token of the bundled instrument master; copies are named ``<SYMBOL>-R<k>``
(``NSE:HDFCBANK-R3``). The originals (equities, futures, indices) stay in the session.
An optional IST window keeps only the frames inside ``[start, end)`` (e.g. one hour).

Frames: one Kite binary message per timestamp holding every instrument's packet (sorted by
token), like :mod:`aion.replay.builder`; the replay server splits them per client
subscription.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aion.instruments.master import Instrument, InstrumentMaster
from aion.kite.decode import decode_frame
from aion.kite.encode import encode_frame
from aion.kite.wire import MAX_CONNECTIONS_PER_KEY, MAX_TOKENS_PER_CONNECTION
from aion.market.time import from_ist
from aion.replay.session_file import Session, SessionWriter, read_session

__all__ = [
    "PRICE_FACTOR_RANGE",
    "VOLUME_FACTOR_RANGE",
    "ReplicateResult",
    "replicate_file",
    "replicate_session",
]

PRICE_FACTOR_RANGE = (0.8, 1.25)
VOLUME_FACTOR_RANGE = (0.5, 2.0)
_TOKEN_BASE = 0x700000
_PRICE_FIELDS = ("last_price", "open", "high", "low", "close", "average_traded_price")
_VOLUME_FIELDS = (
    "volume_traded",
    "last_traded_quantity",
    "total_buy_quantity",
    "total_sell_quantity",
)


@dataclass
class ReplicateResult:
    """Summary: instruments (originals + copies), frames and ticks written, file size (bytes)."""

    path: Path
    instruments: int
    copies: int
    frames: int
    ticks: int
    bytes: int


def _window_ns(date: dt.date, window: tuple[str, str] | None) -> tuple[int, int]:
    if window is None:
        return 0, 2**63 - 1
    bounds = []
    for text in window:
        hh, mm = (int(x) for x in text.split(":"))
        bounds.append(from_ist(date, hh, mm) * 1_000_000_000)
    if bounds[1] <= bounds[0]:
        raise ValueError(f"window {window[0]}-{window[1]}: the end must be after the start")
    return bounds[0], bounds[1]


def _copy_tokens(count: int, master: InstrumentMaster) -> np.ndarray:
    out: list[int] = []
    i = 0
    while len(out) < count:
        tok = (_TOKEN_BASE + i) << 8 | 1
        i += 1
        if master.get(tok) is None:
            out.append(tok)
    return np.asarray(out, np.int64)


def replicate_session(
    base: str | os.PathLike[str] | Session,
    n_instruments: int,
    out: str | os.PathLike[str],
    *,
    window: tuple[str, str] | None = None,
    seed: int = 0,
    compress: bool | None = None,
) -> ReplicateResult:
    """Write a session of ``n_instruments`` built from ``base`` (see the module docstring).

    Args:
        base: a session file (e.g. from :func:`aion.replay.builder.build_session`) or Session.
        n_instruments: instruments in the output, originals included; at most
            3 connections x 3,000 tokens (9,000), at least the base's count.
        out: session file to write (``.gz``: gzip, unless ``compress`` says otherwise).
        window: optional ``("HH:MM", "HH:MM")`` IST; only frames in [start, end) are kept.
        seed: seed of the per-copy price and volume factors.

    Raises:
        ValueError: ``n_instruments`` out of range, a base without NSE equities, a bad window.
    """
    session = base if isinstance(base, Session) else read_session(base)
    originals = [Instrument.from_row(r) for r in session.header["instruments"]]
    limit = MAX_TOKENS_PER_CONNECTION * MAX_CONNECTIONS_PER_KEY
    if not len(originals) <= n_instruments <= limit:
        raise ValueError(
            f"--replicate {n_instruments}: give between {len(originals)} (the base session) "
            f"and {limit} instruments (3 connections x 3,000 tokens)"
        )
    bases = [
        i for i in originals if i.exchange == "NSE" and i.instrument_type == "EQ" and not i.is_index
    ]
    if not bases:
        raise ValueError("the base session holds no NSE equities to replicate")
    n_copies = n_instruments - len(originals)
    master = InstrumentMaster.bundled().merge(originals)
    tokens = _copy_tokens(n_copies, master)
    rng = np.random.default_rng(seed)
    price_f = rng.uniform(*PRICE_FACTOR_RANGE, n_copies)
    volume_f = rng.uniform(*VOLUME_FACTOR_RANGE, n_copies)
    base_of = np.arange(n_copies) % len(bases)
    copies = [
        dataclasses.replace(
            bases[b],
            instrument_token=int(tokens[j]),
            exchange_token=int(tokens[j]) >> 8,
            tradingsymbol=f"{bases[b].tradingsymbol}-R{j // len(bases) + 1}",
            last_price=0.0,
        )
        for j, b in enumerate(base_of.tolist())
    ]
    # copies of each base token, as index arrays into the copy tables
    copies_of = {bases[b].instrument_token: np.flatnonzero(base_of == b) for b in range(len(bases))}

    lo, hi = _window_ns(session.date, window)
    header: dict[str, Any] = {
        k: v for k, v in session.header.items() if k not in ("format", "version", "source_files")
    }
    header["instruments"] = [i.to_row() for i in (*originals, *copies)]
    header["modes"] = {
        **session.header.get("modes", {}),
        **{str(int(t)): "full" for t in tokens},
    }
    header["description"] = (
        f"{n_instruments} instruments: {len(originals)} of {session.header.get('date')} "
        f"replicated by aion.replay.replicate (seed {seed}); base: "
        + str(session.header.get("description", ""))
    )
    header["replication"] = {
        "instruments": n_instruments,
        "copies": n_copies,
        "seed": seed,
        "price_factor_range": list(PRICE_FACTOR_RANGE),
        "volume_factor_range": list(VOLUME_FACTOR_RANGE),
        "window_ist": list(window) if window else None,
    }
    if window is not None:
        header["start_ns"] = max(int(session.start_ns), lo)

    frames = ticks = 0
    outp = Path(out)
    with SessionWriter(outp, header, compress=compress) as w:
        for ts_ns, frame in zip(session.ts_ns.tolist(), session.frames, strict=True):
            if not lo <= ts_ns < hi or len(frame) < 2:
                continue
            base_ticks = decode_frame(frame)
            parts = [base_ticks]
            for row in range(base_ticks.shape[0]):
                idx = copies_of.get(int(base_ticks["instrument_token"][row]))
                if idx is None:
                    continue
                rep = np.repeat(base_ticks[row : row + 1], idx.shape[0])
                rep["instrument_token"] = tokens[idx]
                pf = price_f[idx]
                for f in _PRICE_FIELDS:
                    rep[f] = np.round(rep[f] * pf, 2)
                for f in ("depth_buy_price", "depth_sell_price"):
                    rep[f] = np.round(rep[f] * pf[:, None], 2)
                vf = volume_f[idx]
                for f in _VOLUME_FIELDS:
                    rep[f] = np.floor(rep[f] * vf)
                for f in ("depth_buy_quantity", "depth_sell_quantity"):
                    rep[f] = np.floor(rep[f] * vf[:, None])
                change = np.zeros(idx.shape[0])
                close = rep["close"]
                np.divide((rep["last_price"] - close) * 100, close, out=change, where=close != 0)
                rep["change"] = change
                parts.append(rep)
            all_ticks = np.concatenate(parts)
            all_ticks = all_ticks[np.argsort(all_ticks["instrument_token"], kind="stable")]
            w.write(ts_ns, encode_frame(all_ticks))
            frames += 1
            ticks += int(all_ticks.shape[0])
    return ReplicateResult(
        path=outp,
        instruments=n_instruments,
        copies=n_copies,
        frames=frames,
        ticks=ticks,
        bytes=outp.stat().st_size,
    )


def replicate_file(path: str | os.PathLike[str], n_instruments: int, window: str | None = None,
                   seed: int = 0) -> ReplicateResult:  # fmt: skip
    """Replace the session file ``path`` by its replication to ``n_instruments``.

    ``window``: ``"HH:MM-HH:MM"`` IST or None (the whole session). Raises ``ValueError`` for a
    malformed window and as :func:`replicate_session`.
    """
    win = None
    if window is not None:
        parts = window.split("-")
        if len(parts) != 2 or not all(len(p.split(":")) == 2 for p in parts):
            raise ValueError(f"--window {window!r}: use HH:MM-HH:MM, e.g. 09:15-10:15")
        win = (parts[0], parts[1])
    src = Path(path)
    tmp = src.with_name(src.name + ".replicating")
    with src.open("rb") as fh:
        compress = fh.read(2) == b"\x1f\x8b"  # keep the base's gzip-or-not
    try:
        res = replicate_session(src, n_instruments, tmp, window=win, seed=seed, compress=compress)
        tmp.replace(src)
    finally:
        tmp.unlink(missing_ok=True)
    res.path = src
    return res
