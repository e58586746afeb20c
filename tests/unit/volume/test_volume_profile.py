"""Volume profile: CBOT value area on hand-worked profiles, and the batch statistics kernel
against a straightforward pure-Python implementation on a real session and random profiles."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest

from aion.volume.config import ProfileConfig
from aion.volume.profile import VolumeProfiles, value_area_bins

INTRADAY = Path(__file__).resolve().parents[3] / "aion" / "data" / "intraday_1min_2022-11-11"


@pytest.mark.parametrize(
    ("volumes", "expected"),
    [
        ([7], (0, 0, 0)),  # single price
        ([0, 0, 7, 0], (2, 2, 2)),  # single price inside empty bins
        ([2, 4, 10, 3, 1], (2, 0, 2)),  # total 20 (even): 10, then 4+2=6 > 3+1=4 -> 16 >= 14
        ([1, 2, 5, 2, 1], (2, 0, 4)),  # total 11 (odd): pairs tie 3 = 3 -> both added
        ([3, 4, 3], (1, 0, 2)),  # one bin each side, tie -> both
        ([3, 7], (1, 1, 1)),  # POC holds exactly 70 % of 10 -> value area is the POC
        ([1, 9, 1, 1, 1, 1, 1], (1, 1, 3)),  # one bin below (1) < two above (2) -> up
        ([5, 1, 5, 1, 5], (2, 0, 4)),  # POC tie -> the bin nearest the range's middle
        ([5, 0, 0, 5], (0, 0, 3)),  # POC tie equidistant from the middle -> the lower bin
        ([1, 1, 1, 1, 1, 1, 1, 1, 1, 10], (9, 5, 9)),  # POC at the top: down only, 10+2+2=14
    ],
)
def test_value_area_hand_worked(volumes: list[int], expected: tuple[int, int, int]) -> None:
    assert value_area_bins(np.array(volumes, np.int64), 0.7) == expected


def test_empty_profile() -> None:
    assert value_area_bins(np.zeros(4, np.int64), 0.7) == (-1, -1, -1)
    st = VolumeProfiles(np.array([0.05, 0.05]), ProfileConfig()).stats(np.array([0, 1]))
    assert all(np.isnan(v).all() for v in st.values())


def test_kernel_recentres_coarsens_and_never_loses_volume() -> None:
    p = VolumeProfiles(np.array([0.05]), ProfileConfig(max_bins=16))
    day = np.array([20221111])
    p.update(np.array([0]), day, np.array([100.00]), np.array([10]))
    p.update(np.array([0]), day, np.array([100.40]), np.array([5]))  # 8 ticks up: re-centre
    prices, vols = p.arrays(0)
    assert p.ticks_per_bin[0] == 1
    assert (
        prices[0] == 100.0 and prices[-1] == 100.4 and vols.tolist() == [10, 0, 0, 0, 0, 0, 0, 0, 5]
    )
    p.update(np.array([0]), day, np.array([101.00]), np.array([1]))  # 20 ticks: bins double
    prices, vols = p.arrays(0)
    assert p.ticks_per_bin[0] == 2 and int(p.total[0]) == 16 == int(vols.sum())
    assert dict(zip(prices.tolist(), vols.tolist(), strict=True))[100.4] == 5
    assert prices[0] == 100.0 and prices[-1] == 101.0
    s = {k: float(v[0]) for k, v in p.stats(np.array([0])).items()}
    assert s["poc"] == 100.0 and s["total_volume"] == 16 and s["bin_width"] == pytest.approx(0.1)
    # a new session date starts afresh at the configured width
    p.update(np.array([0]), np.array([20221114]), np.array([99.95]), np.array([3]))
    prices, vols = p.arrays(0)
    assert prices.tolist() == [99.95] and vols.tolist() == [3] and p.ticks_per_bin[0] == 1


def simple_value_area(vol_by_paise: dict[int, int], step: int) -> tuple[int, int, int]:
    """Straightforward CBOT value area over every price level from low to high (paise)."""
    levels = list(range(min(vol_by_paise), max(vol_by_paise) + step, step))
    v = [vol_by_paise.get(p, 0) for p in levels]
    total = sum(v)
    top = max(v)
    middle = (len(v) - 1) / 2
    candidates = [i for i, x in enumerate(v) if x == top]
    poc = min(candidates, key=lambda i: (abs(i - middle), i))
    lo = hi = poc
    inside = v[poc]
    while inside < 0.7 * total:
        above = v[hi + 1 : hi + 3]
        below = v[max(0, lo - 2) : lo][::-1]
        if above and (not below or sum(above) > sum(below)):
            hi += len(above)
            inside += sum(above)
        elif below and (not above or sum(below) > sum(above)):
            lo -= len(below)
            inside += sum(below)
        else:  # equal pairs: both
            hi += len(above)
            lo -= len(below)
            inside += sum(above) + sum(below)
    return levels[poc], levels[lo], levels[hi]


@pytest.mark.parametrize("symbol", ["HDFCBANK", "SBIN", "RELIANCE"])
def test_real_session_matches_a_straightforward_implementation(symbol: str) -> None:
    closes, volumes = [], []
    with gzip.open(INTRADAY / f"{symbol}.txt.gz", "rt") as fh:
        for line in fh:
            f = line.strip().split(",")
            if "09:16" <= f[2] <= "15:30":
                closes.append(float(f[6]))
                volumes.append(int(f[7]))
    by_paise: dict[int, int] = {}
    for c, v in zip(closes, volumes, strict=True):
        by_paise[round(c * 100)] = by_paise.get(round(c * 100), 0) + v
    cfg = ProfileConfig(max_bins=4096)
    p = VolumeProfiles(np.array([0.05]), cfg)
    n = len(closes)
    p.update(np.zeros(n, np.int64), np.full(n, 20221111), np.array(closes), np.array(volumes))
    s = {k: float(v[0]) for k, v in p.stats(np.array([0])).items()}
    assert same(s, reference_stats(p, 0))
    poc, val, vah = simple_value_area(by_paise, 5)
    assert (round(s["poc"] * 100), round(s["val"] * 100), round(s["vah"] * 100)) == (poc, val, vah)
    assert s["total_volume"] == sum(volumes)
    assert s["value_area_volume"] >= 0.7 * sum(volumes)
    assert 0.0 <= s["strength"] < 1.0 and s["poc_shift"] == 0.0
    lo, hi = min(by_paise) / 100, max(by_paise) / 100
    for node in ("hvn", "lvn"):
        prices = [s[f"{node}_{i}"] for i in range(1, int(s[f"{node}_count"]) + 1)]
        assert len(prices) <= cfg.max_nodes
        assert all(lo <= x <= hi for x in prices)
    assert s["hvn_count"] >= 1


def reference_stats(p: VolumeProfiles, slot: int) -> dict[str, float]:
    """The statistics of one profile the slow way (module docstring rules, plain Python)."""
    prices_a, vols_a = p.arrays(slot)
    prices, v = prices_a.tolist(), vols_a.tolist()
    if not v:
        return {}
    cfg = p.cfg
    k, total = len(v), sum(v)
    poc, lo, hi = simple_value_area({i: x for i, x in enumerate(v) if x}, 1)  # bin indices
    half = cfg.smoothing_bins // 2
    sums = [sum(v[max(0, t - half) : t + half + 1]) for t in range(k)]
    mean = total / k
    w = cfg.smoothing_bins
    peaks = [t for t in range(1, k - 1) if sums[t] > sums[t - 1] and sums[t] >= sums[t + 1]
             and sums[t] / w >= cfg.hvn_ratio * mean]  # fmt: skip
    troughs = [t for t in range(1, k - 1) if sums[t] < sums[t - 1] and sums[t] <= sums[t + 1]
               and sums[t] / w <= cfg.lvn_ratio * mean]  # fmt: skip
    hvn = sorted(peaks, key=lambda t: (-sums[t], t))[: cfg.max_nodes] if k >= 3 else []
    lvn = sorted(troughs, key=lambda t: (sums[t], t))[: cfg.max_nodes] if k >= 3 else []
    out = {
        "poc": prices[poc],
        "vah": prices[hi],
        "val": prices[lo],
        "poc_volume": float(v[poc]),
        "total_volume": float(total),
        "value_area_volume": float(sum(v[lo : hi + 1])),
        "strength": 1.0 - (hi - lo + 1) / k,
        "bin_width": float(p.ticks_per_bin[slot] * p.tick[slot]),
        "hvn_count": float(len(hvn)),
        "lvn_count": float(len(lvn)),
    }
    for name, idx in (("hvn", hvn), ("lvn", lvn)):
        for i in range(cfg.max_nodes):
            out[f"{name}_{i + 1}"] = prices[idx[i]] if i < len(idx) else math.nan
    out["poc_shift"] = 0.0  # first call of stats() on a fresh profile
    return out


def same(a: dict[str, float], b: dict[str, float]) -> bool:
    """Equal dicts, NaN equal to NaN (bit for bit otherwise)."""
    return a.keys() == b.keys() and all(
        (math.isnan(x) and math.isnan(b[k])) or x == b[k] for k, x in a.items()
    )


@pytest.mark.parametrize("seed", range(4))
def test_kernel_equals_the_straightforward_implementation_on_random_profiles(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    cfg = ProfileConfig(max_bins=64, smoothing_bins=int(rng.choice([1, 3, 5])))
    ticks = rng.choice([0.05, 0.01, 0.0025, 1.0], n)
    p = VolumeProfiles(ticks, cfg)
    m = 20_000
    slots = rng.integers(0, n - 10, m)  # the last 10 slots stay empty
    base = 10.0 + rng.integers(0, 50_000, n - 10) * ticks[: n - 10]
    spread = rng.integers(1, 150, n - 10)  # some ranges outgrow 64 bins: coarsened widths
    steps = rng.integers(-spread[slots], spread[slots] + 1)
    price = np.round((base[slots] + steps * ticks[slots]) / ticks[slots]) * ticks[slots]
    vol = rng.choice([1, 2, 3, 100], m)  # few distinct volumes: many ties and plateaus
    p.update(slots, np.full(m, 20221111), price, vol)
    all_slots = rng.permutation(n)
    st = p.stats(all_slots)
    for j, s in enumerate(all_slots.tolist()):
        got = {k: float(c[j]) for k, c in st.items()}
        want = reference_stats(p, s)
        if not want:
            assert all(math.isnan(x) for x in got.values())
            continue
        assert same(got, want), (s, got, want)


def test_poc_shift_follows_the_first_poc_of_the_session() -> None:
    p = VolumeProfiles(np.array([0.05]), ProfileConfig())
    day = np.array([20221111])
    p.update(np.array([0]), day, np.array([100.0]), np.array([10]))
    assert p.stats(np.array([0]))["poc_shift"][0] == 0.0
    p.update(np.array([0]), day, np.array([100.35]), np.array([50]))
    st = p.stats(np.array([0]))
    assert st["poc"][0] == 100.35 and st["poc_shift"][0] == 0.35
