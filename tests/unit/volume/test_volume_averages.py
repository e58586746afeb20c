"""Pre-market averages from the bundled Kite daily candles, recomputed by hand from the CSV."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from pathlib import Path

import pytest

from aion.volume.averages import (
    bundled_adjustment_factors,
    bundled_daily_dir,
    daily_averages,
    premarket_averages,
    read_factors,
)

DAILY = Path(__file__).resolve().parents[3] / "aion" / "data" / "daily_kite"
FACTORS = DAILY.parent / "derived_adjustment_factors_2022-11-11.csv"


def hand_rows(symbol: str, before: str) -> list[dict[str, str]]:
    with gzip.open(DAILY / f"{symbol}_day_2000d.csv.gz", "rt") as fh:
        return [r for r in csv.DictReader(fh) if r["datetime"][:10] < before]


def hand_factor(symbol: str) -> tuple[float, float]:
    with FACTORS.open() as fh:
        for r in csv.DictReader(fh):
            if r["symbol"] == symbol:
                price = (float(r["intraday_high_over_daily_high"])
                         + float(r["intraday_low_over_daily_low"])) / 2  # fmt: skip
                return float(r["daily_volume_over_intraday_volume"]), price
    return 1.0, 1.0


def test_hdfcbank_20_day_average_volume_by_hand() -> None:
    rows = hand_rows("HDFCBANK", "2022-11-11")
    last20 = rows[-20:]
    assert last20[-1]["datetime"][:10] == "2022-11-10"  # strictly before the prepared date
    kite_mean = sum(int(r["volume"]) for r in last20) / 20
    vf, pf = hand_factor("HDFCBANK")
    assert vf == 2.0003 and pf == 2.0
    avgs, skipped = premarket_averages(
        bundled_daily_dir(), dt.date(2022, 11, 11), read_factors(bundled_adjustment_factors())
    )
    assert skipped == {}
    assert len(avgs) == 48
    a = avgs["NSE:HDFCBANK"]
    assert a.avg_volume_20 == kite_mean / vf  # exact: same integers, same operations
    assert a.avg_volume_20 * vf == pytest.approx(kite_mean, rel=1e-15)
    last55 = rows[-55:]
    assert a.avg_volume_55 == pytest.approx(sum(int(r["volume"]) for r in last55) / 55 / vf)
    assert a.avg_price_20 == pytest.approx(sum(float(r["close"]) for r in last20) / 20 * pf)
    assert a.high_55 == pytest.approx(max(float(r["high"]) for r in last55) * pf)
    assert a.low_55 == pytest.approx(min(float(r["low"]) for r in last55) * pf)
    assert a.ready and a.sessions == 55 and a.last_session == dt.date(2022, 11, 10)
    # the existing scan path gives the same 20-day number
    old = daily_averages(bundled_daily_dir(), dt.date(2022, 11, 11), 20,
                         {"HDFCBANK": vf}, {"HDFCBANK"})  # fmt: skip
    assert old["NSE:HDFCBANK"].avg_volume == a.avg_volume_20


def test_symbols_without_factor_are_unadjusted_and_short_history_is_skipped() -> None:
    avgs, _ = premarket_averages(bundled_daily_dir(), dt.date(2022, 11, 11), {})
    rows = hand_rows("WIPRO", "2022-11-11")[-20:]
    assert avgs["NSE:WIPRO"].avg_volume_20 == sum(int(r["volume"]) for r in rows) / 20
    assert avgs["NSE:WIPRO"].volume_factor == 1.0
    # 2020-07-14 is the first session: 14 sessions before 2020-08-03
    avgs, skipped = premarket_averages(bundled_daily_dir(), dt.date(2020, 8, 3), {}, 20, 55)
    assert avgs == {}
    assert skipped["NSE:HDFCBANK"] == "only 14 sessions before 2020-08-03 (need 20)"
    avgs, skipped = premarket_averages(bundled_daily_dir(), dt.date(2020, 8, 20), {}, 20, 55)
    a = avgs["NSE:HDFCBANK"]
    assert not a.ready and a.sessions < 55 and a.avg_volume_55 != a.avg_volume_55  # NaN


def test_bad_factor_file_and_missing_folder_raise(tmp_path: Path) -> None:
    bad = tmp_path / "f.csv"
    bad.write_text("symbol,other\nHDFCBANK,2\n")
    with pytest.raises(ValueError, match="daily_volume_over_intraday_volume"):
        read_factors(bad)
    with pytest.raises(FileNotFoundError):
        premarket_averages(tmp_path / "nope", dt.date(2022, 11, 11))
