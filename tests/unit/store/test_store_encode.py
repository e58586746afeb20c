"""The columnar bar encoder writes exactly the text of the dict-based one (the reference)."""

from __future__ import annotations

import numpy as np

from aion.bars.builder import BAR_DTYPE
from aion.market.time import SEGMENT_NAMES
from aion.store.layout import encode_bar, encode_bars


def _reference(b: np.void) -> str:
    bar = {
        "start": int(b["start"]),
        "open": round(float(b["open"]), 4),
        "high": round(float(b["high"]), 4),
        "low": round(float(b["low"]), 4),
        "close": round(float(b["close"]), 4),
        "volume": int(b["volume"]),
        "oi": int(b["oi"]),
        "ticks": int(b["ticks"]),
        "segment": SEGMENT_NAMES[int(b["segment"])],
    }
    return encode_bar({**bar, "gap": True} if b["gap"] else bar)


def test_encode_bars_equals_encode_bar_row_by_row() -> None:
    rng = np.random.default_rng(3)
    n = 5000
    bars = np.zeros(n, BAR_DTYPE)
    bars["start"] = 1_668_138_300 + 60 * rng.integers(0, 400, n)
    for f in ("open", "high", "low", "close"):  # paise, sub-paise, huge and tiny prices
        bars[f] = rng.choice([0.05, 1.0, 1e-7, 1e6]) * rng.uniform(0.0, 10_000.0, n)
    bars["close"][:10] = [593.45, 0.1 + 0.2, 1e16, 123456.78905, 5e-5, 2.5, 1.0, 0.0, 7.0, 1e-5]
    bars["open"][:3] = [np.nan, np.inf, -np.inf]  # non-finite: the json fallback
    bars["volume"] = rng.integers(0, 10**9, n)
    bars["oi"] = rng.integers(0, 10**7, n)
    bars["ticks"] = rng.integers(1, 500, n)
    bars["segment"] = rng.choice(sorted(SEGMENT_NAMES), n)
    bars["gap"] = rng.random(n) < 0.1
    assert encode_bars(bars, SEGMENT_NAMES) == [_reference(b) for b in bars]
