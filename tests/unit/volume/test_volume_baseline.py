"""Time-of-day baseline: learned shares checked against a by-hand pass over the Kite CSVs."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from pathlib import Path

import numpy as np
import pytest
from scipy.interpolate import PchipInterpolator

from aion.volume.averages import bundled_daily_dir
from aion.volume.baseline import (
    bundled_intraday_dir,
    cum_share_from_buckets,
    learn_baselines,
    uniform_baseline,
)

DATA = Path(__file__).resolve().parents[3] / "aion" / "data"
HOURS = ["09:15", "10:15", "11:15", "12:15", "13:15", "14:15", "15:15"]


def hand_hourly_shares(symbol: str, last_n: int) -> np.ndarray:
    daily = {}
    with gzip.open(DATA / "daily_kite" / f"{symbol}_day_2000d.csv.gz", "rt") as fh:
        for r in csv.DictReader(fh):
            daily[r["datetime"][:10]] = float(r["volume"])
    by_day: dict[str, dict[str, float]] = {}
    with gzip.open(DATA / "hourly_kite" / f"{symbol}_60minute_400d.csv.gz", "rt") as fh:
        for r in csv.DictReader(fh):
            by_day.setdefault(r["datetime"][:10], {})[r["datetime"][11:16]] = float(r["volume"])
    days = [d for d in sorted(by_day) if sorted(by_day[d]) == HOURS and d in daily]
    rows = [[by_day[d][h] / daily[d] for h in HOURS] for d in days[-last_n:]]
    return np.array(rows).mean(axis=0)


@pytest.fixture(scope="module")
def baselines():
    return learn_baselines(bundled_intraday_dir(), bundled_daily_dir(), None, 60, 20)


def test_hdfcbank_curve_equals_hand_computed_hourly_shares(baselines) -> None:
    b = baselines.get("NSE:HDFCBANK")
    assert b.source == "intraday" and b.sessions == 60
    shares = hand_hourly_shares("HDFCBANK", 60)
    edges = np.array([0, 60, 120, 180, 240, 300, 360, 375])
    knots = np.concatenate(([0.0], np.cumsum(shares)))
    assert b.cum_share[edges] == pytest.approx(knots, abs=1e-12)
    # inside the hours: the monotone cubic through the hour edges (scipy as the reference)
    ref = PchipInterpolator(edges.astype(float), knots)(np.arange(376.0))
    assert b.cum_share == pytest.approx(ref, abs=1e-12)
    assert np.all(np.diff(b.cum_share) >= 0)
    # regular session is most but not all of the day (pre-open and closing session excluded)
    assert 0.9 < b.cum_share[-1] < 1.0
    assert b.expected_cumulative(1e6, 135) == pytest.approx(1e6 * ref[135])
    assert b.expected_bar(1e6, 0) == pytest.approx(1e6 * ref[1])


def test_as_of_before_the_history_borrows_the_latest_shape() -> None:
    early = learn_baselines(
        bundled_intraday_dir(), bundled_daily_dir(), dt.date(2022, 11, 11), 60, 20,
        {"NSE:HDFCBANK"},
    )  # fmt: skip
    b = early.get("NSE:HDFCBANK")
    assert b.after_as_of
    assert b.cum_share[60] == pytest.approx(hand_hourly_shares("HDFCBANK", 60)[0], abs=1e-12)
    # with enough sessions before as_of, only those are used
    mid = learn_baselines(
        bundled_intraday_dir(), bundled_daily_dir(), dt.date(2025, 6, 2), 30, 20, {"NSE:SBIN"}
    )
    s = mid.get("NSE:SBIN")
    assert not s.after_as_of and s.sessions == 30


def test_fallbacks(baselines, tmp_path: Path) -> None:
    # an instrument without intraday history takes the market curve (mean of all curves)
    fut = baselines.get("NFO:NIFTY22NOVFUT")
    assert fut.source == "market"
    mean = np.mean([c.cum_share for c in baselines.curves.values()], axis=0)
    assert fut.cum_share == pytest.approx(mean)
    # no intraday files at all: uniform 1/375 per minute
    empty = learn_baselines(tmp_path, bundled_daily_dir())
    u = empty.get("NSE:HDFCBANK")
    assert u.source == "uniform" and u.minute_share() == pytest.approx(np.full(375, 1 / 375))
    assert uniform_baseline().cum_share[-1] == 1.0


def test_cum_share_from_one_minute_buckets_is_exact_and_checks_input() -> None:
    rng = np.random.default_rng(7)
    shares = rng.random(375)
    c = cum_share_from_buckets(np.arange(376), shares)
    assert np.diff(c) == pytest.approx(shares)
    with pytest.raises(ValueError):
        cum_share_from_buckets(np.array([0, 60]), np.array([0.5]))
    with pytest.raises(ValueError):
        cum_share_from_buckets(np.array([0, 375]), np.array([-0.1]))
