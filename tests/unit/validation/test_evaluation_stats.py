"""The evaluation's statistics against independent computations: the cluster bootstrap
against a plain-numpy resampling loop and, with one trade per cluster, against scipy's
Student t interval; verdicts on synthetic sessions with a known edge (a pattern that peeks
at the next 10 minutes beats the baseline, a coin flip does not)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from aion.market.time import from_ist
from aion.validation.forward import Bars, random_baseline, validate_alerts
from aion.validation.stats import ALL_PATTERNS, cluster_bootstrap, compare, verdict


def test_cluster_bootstrap_equals_a_plain_resampling_loop() -> None:
    rng = np.random.default_rng(3)
    clusters = [rng.normal(0.2, 1.0, int(rng.integers(1, 30))) for _ in range(12)]
    base = [rng.normal(0.0, 1.0, 10 * c.shape[0]) for c in clusters]
    sums = np.array([[c.sum() for c in clusters], [b.sum() for b in base]])
    counts = np.array([[c.shape[0] for c in clusters], [b.shape[0] for b in base]])
    reps = cluster_bootstrap(sums, counts, n_boot=300, seed=11)
    plain = np.random.default_rng(11)
    for b in range(300):  # resample whole clusters, pool their trades, take the mean
        pick = plain.integers(0, 12, size=12)
        assert reps[0, b] == pytest.approx(np.concatenate([clusters[i] for i in pick]).mean())
        assert reps[1, b] == pytest.approx(np.concatenate([base[i] for i in pick]).mean())


def test_one_trade_per_cluster_agrees_with_the_t_interval() -> None:
    x = np.random.default_rng(5).normal(0.3, 1.0, 400)
    reps = cluster_bootstrap(x[None, :], np.ones((1, 400), np.int64), n_boot=4000, seed=1)
    lo, hi = np.percentile(reps[0], [2.5, 97.5])
    ref = sps.ttest_1samp(x, 0.0).confidence_interval(0.95)
    assert lo == pytest.approx(ref.low, abs=0.01) and hi == pytest.approx(ref.high, abs=0.01)


def test_verdicts() -> None:
    assert verdict(0.01, 0.5) == "beats"
    assert verdict(-0.5, -0.01) == "worse"
    assert verdict(-0.1, 0.1) == "no evidence"
    assert verdict(math.nan, math.nan) == "no evidence"


def _sessions(n_sessions: int, n_syms: int) -> list[tuple[dt.date, dict[str, Bars]]]:
    """Driftless random walks on the 0.05 tick, 375 one-minute bars per instrument."""
    rng = np.random.default_rng(20221111)
    out = []
    for k in range(n_sessions):
        day = dt.date(2022, 10, 3) + dt.timedelta(days=k)
        t0 = from_ist(day, 9, 15)
        bars = {}
        for s in range(n_syms):
            path = 20_000 + np.cumsum(rng.choice([-1, 1], 375 * 20))
            per = path.reshape(375, 20)
            start = t0 + 60 * np.arange(375, dtype=np.int64)
            bars[f"NSE:S{s}"] = Bars(start, np.round(per.max(1) * 0.05, 2),
                                     np.round(per.min(1) * 0.05, 2),
                                     np.round(per[:, -1] * 0.05, 2))  # fmt: skip
        out.append((day, bars))
    return out


def test_a_pattern_that_peeks_beats_the_baseline_and_a_coin_flip_does_not() -> None:
    rng = np.random.default_rng(9)
    alerts, cluster = [], {}
    sessions = _sessions(12, 6)
    for day, bars in sessions:
        for sym, b in bars.items():
            for i in range(30, 300, 25):
                entry = float(b.close[i])
                ahead = float(b.close[i + 10]) - entry  # the future: what no detector knows
                for pat, long in (("peek", ahead >= 0), ("coin", bool(rng.random() < 0.5))):
                    s = 1 if long else -1
                    aid = f"{day}:{sym}:{pat}:{i}"
                    cluster[aid] = day.isoformat()
                    alerts.append({"alert_id": aid, "symbol": sym, "pattern": pat,
                                   "direction": "long" if long else "short", "confidence": 0.9,
                                   "bar_start": int(b.start[i]), "entry": entry,
                                   "stop": round(entry - s * 0.5, 2),
                                   "target": round(entry + s * 0.75, 2)})  # fmt: skip
    v, base = [], []
    for day, bars in sessions:
        mine = [a for a in alerts if cluster[a["alert_id"]] == day.isoformat()]
        v.append(validate_alerts(mine, bars, (10, 30)))
        base.append(random_baseline(mine, bars, (10, 30), draws=3, jitter_min=0, seed=2))
    tag = pl.col("alert_id").replace_strict(cluster, return_dtype=pl.Utf8).alias("session")
    res = compare(pl.concat(v).with_columns(tag), pl.concat(base).with_columns(tag), n_boot=500)
    rows = {(r["pattern"], r["window_min"]): r for r in res.iter_rows(named=True)}
    assert {p for p, _ in rows} == {"coin", "peek", ALL_PATTERNS}
    for w in (10, 30):
        peek, coin = rows[("peek", w)], rows[("coin", w)]
        assert peek["clusters"] == coin["clusters"] == 12
        assert peek["verdict"] == "beats" and peek["diff_lo"] > 0.2, peek
        assert coin["verdict"] == "no evidence", coin
        assert coin["diff_lo"] < 0 < coin["diff_hi"] and coin["diff_hi"] - coin["diff_lo"] < 0.3
        # the baseline of either pattern is the same coin flip: both intervals hold 0
        for r in (peek, coin):
            assert r["base_r_lo"] < 0 < r["base_r_hi"]
            assert r["base_hit_lo"] < r["base_hit_rate"] < r["base_hit_hi"]
        assert peek["mean_r"] == pytest.approx(peek["diff"] + peek["base_mean_r"])
