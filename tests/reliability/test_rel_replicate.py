"""`aion.replay.replicate`: N distinct instruments whose copies follow the real paths with
their own deterministic price and volume factors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from aion.kite.decode import decode_frame
from aion.replay.replicate import (
    PRICE_FACTOR_RANGE,
    VOLUME_FACTOR_RANGE,
    replicate_session,
)
from aion.replay.session_file import read_session


def test_replicated_copies_follow_their_original(session_2022_11_11: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.session"
    res = replicate_session(session_2022_11_11, 200, out, window=("09:15", "09:25"), seed=3)
    again = replicate_session(session_2022_11_11, 200, tmp_path / "r2.session",
                              window=("09:15", "09:25"), seed=3)  # fmt: skip
    assert out.read_bytes() == (tmp_path / "r2.session").read_bytes()  # deterministic
    assert (res.instruments, res.copies) == (200, 168) and again.ticks == res.ticks
    s = read_session(out)
    rows = s.header["instruments"]
    assert len({r["instrument_token"] for r in rows}) == 200
    by_token = {int(r["instrument_token"]): r for r in rows}
    ticks = np.concatenate([decode_frame(f) for f in s.frames])
    ts = ticks["exchange_timestamp"]
    assert ts.min() >= 1668138300 and ts.max() < 1668138900  # 09:15 .. 09:25 IST
    orig = {
        r["tradingsymbol"]: int(r["instrument_token"])
        for r in rows
        if "-R" not in r["tradingsymbol"]
    }
    copies = [r for r in rows if "-R" in r["tradingsymbol"]]
    for r in copies[:40]:
        base_tok = orig[r["tradingsymbol"].split("-R")[0]]
        tok = int(r["instrument_token"])
        assert tok & 0xFF == 1 and by_token[tok]["exchange"] == "NSE"
        a = ticks[ticks["instrument_token"] == base_tok]
        b = ticks[ticks["instrument_token"] == tok]
        assert a.shape == b.shape and (a["exchange_timestamp"] == b["exchange_timestamp"]).all()
        pf = b["last_price"] / a["last_price"]
        assert PRICE_FACTOR_RANGE[0] - 1e-3 <= pf.min() and pf.max() <= PRICE_FACTOR_RANGE[1] + 1e-3
        assert np.allclose(pf, pf[0], atol=0.01 / a["last_price"].min() * 2)  # one factor, paise
        cum = b["volume_traded"].astype(np.int64)
        assert (np.diff(cum) >= 0).all()  # still a cumulative volume
        vf = cum[-1] / a["volume_traded"][-1]
        assert VOLUME_FACTOR_RANGE[0] - 1e-6 <= vf <= VOLUME_FACTOR_RANGE[1] + 1e-6
        assert math.floor(a["volume_traded"][-1] * vf + 1e-6) == cum[-1]


def test_replicate_refuses_more_than_9000(session_2022_11_11: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="9000"):
        replicate_session(session_2022_11_11, 9001, tmp_path / "x.session")
