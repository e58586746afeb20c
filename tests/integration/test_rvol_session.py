"""Acceptance: RVOL, roll-ups and the volume profile on the replayed 2022-11-11 session.

Every expected number is derived here from the source files only (vendor 1-minute bars,
Kite daily and 60-minute candles, the derived adjustment factor), not from aion's code.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import redis
from scipy.interpolate import PchipInterpolator

from aion.store import keys

DATA = Path(__file__).resolve().parents[2] / "aion" / "data"
INTRADAY = DATA / "intraday_1min_2022-11-11"
VENDOR_TO_SYMBOL = {
    "NIFTY": "NSE:NIFTY 50",
    "BANKNIFTY": "NSE:NIFTY BANK",
    "INDIAVIX": "NSE:INDIA VIX",
    "NIFTY_F1": "NFO:NIFTY22NOVFUT",
    "BANKNIFTY_F1": "NFO:BANKNIFTY22NOVFUT",
}
HOURS = ["09:15", "10:15", "11:15", "12:15", "13:15", "14:15", "15:15"]


def vendor_bars(vendor: str) -> list[tuple[int, float, float, float, float, int]]:
    """(start minute of day, o, h, l, c, v) of the 375 regular bars (vendor END labels)."""
    out = []
    with gzip.open(INTRADAY / f"{vendor}.txt.gz", "rt") as fh:
        for line in fh:
            _s, _d, hhmm, o, h, lo, c, v, _oi = line.strip().split(",")
            end = int(hhmm[:2]) * 60 + int(hhmm[3:])
            if 9 * 60 + 16 <= end <= 15 * 60 + 30:
                out.append((end - 1, float(o), float(h), float(lo), float(c), int(v)))
    return out


def expected_cum_share(symbol: str, minutes: int, sessions: int = 60) -> float:
    """Share of the day's volume expected in the first ``minutes`` (README's baseline rule)."""
    daily = {}
    with gzip.open(DATA / "daily_kite" / f"{symbol}_day_2000d.csv.gz", "rt") as fh:
        for r in csv.DictReader(fh):
            daily[r["datetime"][:10]] = float(r["volume"])
    hourly: dict[str, dict[str, float]] = {}
    with gzip.open(DATA / "hourly_kite" / f"{symbol}_60minute_400d.csv.gz", "rt") as fh:
        for r in csv.DictReader(fh):
            hourly.setdefault(r["datetime"][:10], {})[r["datetime"][11:16]] = float(r["volume"])
    days = [d for d in sorted(hourly) if sorted(hourly[d]) == HOURS and d in daily][-sessions:]
    share = np.mean([[hourly[d][h] / daily[d] for h in HOURS] for d in days], axis=0)
    edges = [0, 60, 120, 180, 240, 300, 360, 375]
    return float(PchipInterpolator(edges, np.concatenate(([0.0], np.cumsum(share))))(minutes))


@pytest.fixture(scope="module")
def scanned(session_2022_11_11: Path, redis_server, tmp_path_factory) -> str:
    from aion.store.server import connect

    client = connect(redis_server.url)
    client.flushall()
    client.close()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AION_CONFIG_DIR")}
    env.update(REDIS_URL=redis_server.url, AION_DATA_DIR=str(tmp_path_factory.mktemp("d")))
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "scan", "--replay", str(session_2022_11_11),
         "--speed", "max", "--json", "--no-live"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return redis_server.url


@pytest.fixture()
def client(scanned: str):
    from aion.store.server import connect

    c = connect(scanned)
    yield c
    c.close()


def test_hdfcbank_cumulative_rvol_at_1130_derived_independently(
    scanned: str, client: redis.Redis
) -> None:
    bars = vendor_bars("HDFCBANK")
    actual = sum(v for m, *_x, v in bars if m < 11 * 60 + 30)  # bars 09:15 .. 11:29 (135)
    with gzip.open(DATA / "daily_kite" / "HDFCBANK_day_2000d.csv.gz", "rt") as fh:
        rows = [r for r in csv.DictReader(fh) if r["datetime"][:10] < "2022-11-11"]
    with (DATA / "derived_adjustment_factors_2022-11-11.csv").open() as fh:
        factor = next(float(r["daily_volume_over_intraday_volume"])
                      for r in csv.DictReader(fh) if r["symbol"] == "HDFCBANK")  # fmt: skip
    assert factor == 2.0003
    avg20 = sum(int(r["volume"]) for r in rows[-20:]) / 20 / factor
    expected = avg20 * expected_cum_share("HDFCBANK", 135)
    entry = json.loads(client.hget(keys.rvol("NSE:HDFCBANK", 20221111), "11:29"))
    assert entry["cum_volume"] == actual
    assert entry["rvol_cum"] == pytest.approx(actual / expected, rel=1e-6)
    assert entry["rvol_cum"] > 4  # the heavy-volume rally day
    # bar RVOL of the same bar
    share_bar = expected_cum_share("HDFCBANK", 135) - expected_cum_share("HDFCBANK", 134)
    assert entry["rvol_bar"] == pytest.approx(bars[134][5] / (avg20 * share_bar), rel=1e-6)
    # INDIA VIX regime from the VIX ticks (vendor VIX close of the 11:29 bar: NORMAL band)
    vix = {m: c for m, _o, _h, _l, c, _v in vendor_bars("INDIAVIX")}
    assert entry["vix"] == pytest.approx(vix[11 * 60 + 29])
    assert entry["regime"] == "NORMAL" and entry["multiplier"] == 1.0
    opening = json.loads(client.hget(keys.rvol("NSE:HDFCBANK", 20221111), "09:20"))
    assert opening["multiplier"] == 1.5  # opening window x NORMAL
    # `aion rvol` reports the same number
    env = {k: v for k, v in os.environ.items() if k != "AION_CONFIG_DIR"}
    env["REDIS_URL"] = scanned
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "rvol", "--symbol", "NSE:HDFCBANK", "--date",
         "2022-11-11", "--time", "11:30", "--json"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rvol_cum"] == entry["rvol_cum"]


def test_rollups_equal_independent_rollups_of_the_source_bars(client: redis.Redis) -> None:
    files = sorted(INTRADAY.glob("*.txt.gz"))
    assert len(files) == 32
    for f in files:
        vendor = f.name.removesuffix(".txt.gz")
        symbol = VENDOR_TO_SYMBOL.get(vendor, f"NSE:{vendor}")
        bars = vendor_bars(vendor)
        for tf in (5, 15, 30, 60):
            groups: dict[int, list] = {}
            for b in bars:
                groups.setdefault(555 + (b[0] - 555) // tf * tf, []).append(b)
            stored = client.hgetall(keys.bars(symbol, f"{tf}m", 20221111))
            assert len(stored) == len(groups) == -(-375 // tf), (symbol, tf)
            for start, g in groups.items():
                got = json.loads(stored[f"{start // 60:02d}:{start % 60:02d}"])
                want = (g[0][1], max(x[2] for x in g), min(x[3] for x in g), g[-1][4],
                        sum(x[5] for x in g))  # fmt: skip
                assert (got["open"], got["high"], got["low"], got["close"], got["volume"]) == (
                    pytest.approx(want[0]), pytest.approx(want[1]), pytest.approx(want[2]),
                    pytest.approx(want[3]), want[4],
                ), (symbol, tf, start)  # fmt: skip
                assert got["minutes"] == len(g)


def test_profile_is_persisted_and_consistent(client: redis.Redis) -> None:
    prof = client.hgetall(keys.profile("NSE:HDFCBANK", 20221111))
    bins = json.loads(prof["bins"])
    vols = [v for _p, v in bins]
    prices = [p for p, _v in bins]
    assert sum(vols) == float(prof["total_volume"])
    poc, vah, val = float(prof["poc"]), float(prof["vah"]), float(prof["val"])
    assert min(prices) <= val <= poc <= vah <= max(prices)
    inside = sum(v for p, v in bins if val - 1e-9 <= p <= vah + 1e-9)
    assert inside >= 0.7 * sum(vols)
    # all regular volume of the day is in the profile (ticks' incremental volume)
    assert sum(vols) == sum(b[5] for b in vendor_bars("HDFCBANK"))
    assert client.ttl(keys.profile("NSE:HDFCBANK", 20221111)) > 0
