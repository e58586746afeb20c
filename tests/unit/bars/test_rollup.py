"""5/15/30/60-minute roll-ups against independent roll-ups of the vendor 1-minute bars, and
their Redis JSON text."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from aion.bars.builder import BAR_DTYPE
from aion.bars.rollup import TIMEFRAMES, RollupBuilder, rollup_bars
from aion.market.time import SEGMENT_REGULAR, from_ist, to_ist
from aion.store.encode import encode_rollups

INTRADAY = Path(__file__).resolve().parents[3] / "aion" / "data" / "intraday_1min_2022-11-11"
DAY = dt.date(2022, 11, 11)
_PRICES = ("open", "high", "low", "close")


def vendor_rows(symbol: str) -> list[tuple[int, float, float, float, float, int]]:
    """(start minute of day, o, h, l, c, v) of the regular bars; vendor stamps are END labels."""
    out = []
    with gzip.open(INTRADAY / f"{symbol}.txt.gz", "rt") as fh:
        for line in fh:
            _s, _d, hhmm, o, h, lo, c, v, _oi = line.strip().split(",")
            end = int(hhmm[:2]) * 60 + int(hhmm[3:])
            if 9 * 60 + 16 <= end <= 15 * 60 + 30:
                out.append((end - 1, float(o), float(h), float(lo), float(c), int(v)))
    return out


def independent_rollup(rows, tf: int) -> dict[str, tuple[float, float, float, float, int]]:
    groups: dict[int, list] = {}
    for r in rows:
        groups.setdefault(9 * 60 + 15 + (r[0] - (9 * 60 + 15)) // tf * tf, []).append(r)
    return {
        f"{k // 60:02d}:{k % 60:02d}": (
            g[0][1],
            max(x[2] for x in g),
            min(x[3] for x in g),
            g[-1][4],
            sum(x[5] for x in g),
        )
        for k, g in groups.items()
    }


def as_bars(rows, slot: int) -> np.ndarray:
    b = np.zeros(len(rows), BAR_DTYPE)
    b["slot"] = slot
    b["start"] = [from_ist(DAY, r[0] // 60, r[0] % 60) for r in rows]
    for j, name in enumerate(("open", "high", "low", "close", "volume"), 1):
        b[name] = [r[j] for r in rows]
    b["ticks"] = 4
    b["segment"] = SEGMENT_REGULAR
    return b


@pytest.mark.parametrize("symbols", [("HDFCBANK", "SBIN", "NIFTY_F1")])
def test_rollups_equal_independent_rollups_of_vendor_bars(symbols: tuple[str, ...]) -> None:
    rows = {s: vendor_rows(s) for s in symbols}
    bars = np.concatenate([as_bars(rows[s], i) for i, s in enumerate(symbols)])
    out = rollup_bars(bars)
    for i, s in enumerate(symbols):
        for tf in TIMEFRAMES:
            mine = out[(out["slot"] == i) & (out["timeframe"] == tf)]
            got = {
                to_ist(int(r["start"])).strftime("%H:%M"): (
                    float(r["open"]), float(r["high"]), float(r["low"]), float(r["close"]),
                    int(r["volume"]),
                )
                for r in mine
            }  # fmt: skip
            want = independent_rollup(rows[s], tf)
            assert got == want, (s, tf)
            assert len(want) == -(-375 // tf)
    h60 = out[(out["slot"] == 0) & (out["timeframe"] == 60)]
    assert [to_ist(int(t)).strftime("%H:%M") for t in h60["start"]] == [
        "09:15", "10:15", "11:15", "12:15", "13:15", "14:15", "15:15"
    ]  # fmt: skip
    assert h60["minutes"].tolist() == [60] * 6 + [15]


def test_incremental_builder_emits_each_bucket_when_its_last_minute_closes() -> None:
    rows = vendor_rows("HDFCBANK")
    bars = as_bars(rows, 0)
    rb = RollupBuilder(1)
    emitted = []
    for i in range(bars.shape[0]):
        out = rb.update(bars[i : i + 1])
        for r in out:
            # a bucket is complete exactly when its last 1-minute bar closed
            assert int(r["start"]) + 60 * (int(r["minutes"]) - 1) == int(bars[i]["start"])
        emitted.append(out)
    assert rb.finish().shape[0] == 0
    inc = np.sort(np.concatenate(emitted), order=["start", "slot", "timeframe"])
    assert np.array_equal(inc, rollup_bars(bars))


def test_missing_minutes_and_session_change_close_the_bucket() -> None:
    rows = vendor_rows("SBIN")
    bars = as_bars([rows[0], rows[1], rows[7]], 0)  # 09:15, 09:16, then 09:22 (09:20 bucket)
    rb = RollupBuilder(1, (5,))
    out = rb.update(bars)
    assert out.shape[0] == 1 and out[0]["minutes"] == 2
    assert out[0]["volume"] == rows[0][5] + rows[1][5]
    left = rb.finish()
    assert left.shape[0] == 1 and to_ist(int(left[0]["start"])).strftime("%H:%M") == "09:20"
    with pytest.raises(ValueError):
        RollupBuilder(1, (1,))


def test_rollup_json_parses_back_to_the_rows() -> None:
    """encode_rollups: one compact JSON per rolled-up bar, keys sorted, prices rounded to 4
    decimals, equal to json.dumps of the row's values (NaN as json writes it)."""
    rows = rollup_bars(as_bars(vendor_rows("HDFCBANK"), 3))
    rows["close"][0] = 1001.123456  # rounded on the way out
    rows["high"][1] = np.nan
    texts = encode_rollups(rows)
    assert len(texts) == rows.shape[0] == sum(-(-375 // tf) for tf in TIMEFRAMES)
    names = ("close", "high", "low", "minutes", "oi", "open", "start", "ticks", "volume")
    for text, row in zip(texts, rows, strict=True):
        want = {k: round(float(row[k]), 4) if k in _PRICES else int(row[k]) for k in names}
        assert text == json.dumps(want, separators=(",", ":"), sort_keys=True)
    assert json.loads(texts[0])["close"] == 1001.1235
