"""Forward validation on hand-built bar sequences, the statistics against independent
references (scipy's Wilson interval, a tabulated t quantile, plain-Python recomputation) and
the random baseline's rules and determinism."""

from __future__ import annotations

import datetime as dt
import math
import statistics

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from aion.alerts.manager import Alert
from aion.config import ConfigError
from aion.market.time import from_ist
from aion.risk.manager import TradePlan
from aion.validation.config import ValidationConfig
from aion.validation.forward import SCHEMA, random_baseline, validate_alerts
from aion.validation.report import render_report
from aion.validation.stats import ALL_PATTERNS, mean_interval, summarize, wilson_interval

DAY = dt.date(2022, 11, 11)
T = from_ist(DAY, 10, 0)  # the alert bar's start; entry at its close, 10:01:00


def bar(minute: int, h: float, lo: float, c: float) -> dict:
    """A bar starting ``minute`` minutes after the alert bar's close (0 = 10:01)."""
    return {"start": T + 60 + 60 * minute, "open": c, "high": h, "low": lo, "close": c}


def alert(direction: str = "long", entry: float = 100.0, stop: float = 98.0,
          target: float = 104.0, symbol: str = "NSE:SBIN", pattern: str = "breakout",
          start: int = T, aid: str | None = None) -> dict:  # fmt: skip
    return {
        "alert_id": aid or f"20221111:{symbol}:{pattern}:{start}",
        "symbol": symbol,
        "pattern": pattern,
        "direction": direction,
        "confidence": "0.9000",
        "bar_time": dt.datetime.fromtimestamp(start, dt.timezone(dt.timedelta(hours=5.5))).strftime(
            "%Y-%m-%dT%H:%M:%S%z"
        ),
        "entry": f"{entry:.2f}",
        "stop": f"{stop:.2f}",
        "target": f"{target:.2f}",
    }


def by_window(df: pl.DataFrame) -> dict[int, dict]:
    return {r["window_min"]: r for r in df.iter_rows(named=True)}


# bars before and at the alert bar must be ignored: these would stop the long out at once
EARLIER = [
    {"start": T - 60, "open": 100, "high": 100, "low": 90.0, "close": 95.0},
    {"start": T, "open": 100, "high": 100, "low": 90.0, "close": 100.0},
]


def test_long_target_first_with_windows_excursions_and_r() -> None:
    bars = [*EARLIER,
            bar(0, 101.0, 99.5, 100.5),   # 10:01 neither
            bar(1, 103.0, 99.0, 102.0),   # 10:02 neither
            bar(2, 104.5, 101.0, 104.0),  # 10:03 target
            bar(3, 105.0, 90.0, 95.0)]  # 10:04 later stop-through, after the exit  # fmt: skip
    rows = validate_alerts([alert()], {"NSE:SBIN": bars}, (1, 2, 5))
    assert rows.schema == pl.Schema(SCHEMA)
    w = by_window(rows)
    assert w[1]["outcome"] == "open" and w[1]["bars"] == 1
    assert w[1]["r"] == pytest.approx((100.5 - 100.0) / 2.0)  # marked at the close
    assert (w[1]["mfe"], w[1]["mae"]) == (pytest.approx(1.0), pytest.approx(0.5))
    assert w[2]["outcome"] == "open" and w[2]["r"] == pytest.approx(1.0)
    assert (w[2]["mfe_r"], w[2]["mae_r"]) == (pytest.approx(1.5), pytest.approx(0.5))
    assert w[5]["outcome"] == "target" and w[5]["r"] == pytest.approx(2.0)
    assert w[5]["exit_min"] == 3.0  # the 10:03 bar ends 3 minutes after the entry
    # excursions stop at the exit bar: the 10:04 crash is not an adverse excursion
    assert (w[5]["mfe"], w[5]["mae"]) == (pytest.approx(4.5), pytest.approx(1.0))
    assert not any(r["truncated"] for r in w.values())


def test_bar_touching_stop_and_target_counts_as_stop() -> None:
    bars = [bar(0, 101.0, 99.0, 100.0), bar(1, 105.0, 97.0, 104.0)]
    w = by_window(validate_alerts([alert()], {"NSE:SBIN": bars}, (1, 2)))
    assert w[1]["outcome"] == "open"
    assert w[2]["outcome"] == "stop" and w[2]["r"] == -1.0 and w[2]["exit_min"] == 2.0
    # the short mirror: the same both-touching bar is a stop for a short too
    short = alert("short", 100.0, 102.0, 96.0)
    bars_s = [bar(0, 101.0, 99.0, 100.0), bar(1, 103.0, 95.0, 96.0)]
    ws = by_window(validate_alerts([short], {"NSE:SBIN": bars_s}, (1, 2)))
    assert ws[2]["outcome"] == "stop" and ws[2]["r"] == -1.0


def test_short_target_stop_and_touching_exactly() -> None:
    short = alert("short", 100.0, 101.0, 97.5)  # reward:risk 2.5
    tgt = [bar(0, 100.5, 99.0, 99.0), bar(1, 99.5, 97.5, 98.0)]  # low == target: a hit
    w = by_window(validate_alerts([short], {"NSE:SBIN": tgt}, (1, 2)))
    assert w[1]["outcome"] == "open" and w[1]["r"] == pytest.approx((100 - 99.0) / 1.0)
    assert w[2]["outcome"] == "target" and w[2]["r"] == pytest.approx(2.5)
    assert w[2]["mfe"] == pytest.approx(2.5) and w[2]["mae"] == pytest.approx(0.5)
    stp = [bar(0, 101.0, 99.9, 100.8)]  # high == stop: a hit
    w = by_window(validate_alerts([short], {"NSE:SBIN": stp}, (1,)))
    assert w[1]["outcome"] == "stop" and w[1]["r"] == -1.0


def test_windows_follow_time_not_bar_count_and_truncation() -> None:
    # no bar 10:02-10:05 (no trades), then a target at 10:06; data ends at 10:06
    bars = [bar(0, 100.5, 99.5, 100.0), bar(5, 104.0, 100.0, 103.0)]
    w = by_window(validate_alerts([alert()], {"NSE:SBIN": bars}, (1, 2, 5, 6, 10)))
    assert [w[k]["outcome"] for k in (1, 2, 5, 6, 10)] == ["open", "open", "open", "target",
                                                          "target"]  # fmt: skip
    assert w[5]["bars"] == 1 and w[6]["bars"] == 2
    assert not w[5]["truncated"]  # data goes on past the window: a gap, not the end
    # the same bars without the late target: the 10-minute window runs past the data
    w = by_window(validate_alerts([alert()], {"NSE:SBIN": bars[:1]}, (1, 10)))
    assert not w[1]["truncated"]
    assert w[10]["outcome"] == "open" and w[10]["truncated"]
    assert w[10]["r"] == pytest.approx(0.0)


def test_no_later_bars_is_no_data() -> None:
    rows = validate_alerts([alert()], {"NSE:SBIN": EARLIER}, (1, 5))
    assert rows["outcome"].to_list() == ["no_data", "no_data"]
    assert rows["r"].is_nan().all()
    rows = validate_alerts([alert(symbol="NSE:TCS")], {"NSE:SBIN": EARLIER}, (1,))
    assert rows["outcome"].to_list() == ["no_data"]


def test_alert_objects_and_stream_fields_agree() -> None:
    plan = TradePlan(100.0, 98.0, 104.0, 10, 10, 1, 4.0, 20.0, 2.0, "atr")
    a = Alert("20221111:NSE:SBIN:breakout:10:00", f"{(T + 60) * 1000}-0", 20221111, "NSE:SBIN",
              "breakout", "long", 0.9, T, plan, {})  # fmt: skip
    bars = pl.DataFrame([bar(0, 101.0, 99.5, 100.5), bar(1, 104.0, 100.0, 103.0)])
    from_obj = validate_alerts([a], {"NSE:SBIN": bars})
    from_fields = validate_alerts([a.fields()], {"NSE:SBIN": bars.to_dicts()})
    assert from_obj.equals(from_fields)
    assert from_obj.height == 6  # default windows 1, 2, 5, 10, 30, 60
    assert from_obj["bar_start"].unique().to_list() == [T]


def test_malformed_alerts_are_rejected() -> None:
    with pytest.raises(ValueError, match="wrong side"):
        validate_alerts([alert("short", 100.0, 98.0, 104.0)], {})
    with pytest.raises(ValueError, match="missing field 'stop'"):
        validate_alerts([{k: v for k, v in alert().items() if k != "stop"}], {})
    with pytest.raises(ValueError, match="windows"):
        validate_alerts([alert()], {}, (0, 5))


# ------------------------------------------------------------------------ statistics
def test_wilson_matches_scipy_and_known_values() -> None:
    for k, n in [(0, 10), (1, 10), (5, 10), (10, 10), (37, 362), (1, 1)]:
        ref = sps.binomtest(k, n).proportion_ci(0.95, method="wilson")
        lo, hi = wilson_interval(k, n)
        assert (lo, hi) == (pytest.approx(ref.low, abs=1e-12), pytest.approx(ref.high, abs=1e-12))
    lo, hi = wilson_interval(5, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.2366, 0.7634)  # textbook value
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_t_interval_by_hand() -> None:
    m, lo, hi = mean_interval(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    half = 2.776445 * statistics.stdev([1, 2, 3, 4, 5]) / math.sqrt(5)  # t(0.975, 4) tabulated
    assert m == 3.0
    assert (lo, hi) == (pytest.approx(3 - half, abs=1e-5), pytest.approx(3 + half, abs=1e-5))
    m, lo, hi = mean_interval(np.array([-1.0]))
    assert m == -1.0 and math.isnan(lo) and math.isnan(hi)


def test_summarize_against_a_plain_recount() -> None:
    rng = np.random.default_rng(7)
    alerts, bars = [], {}
    for i, sym in enumerate(["NSE:A", "NSE:B", "NSE:C"]):
        closes = 100 + np.cumsum(rng.normal(0, 0.6, 200))
        bars[sym] = [{"start": T - 600 + 60 * j, "high": c + abs(rng.normal(0, 0.4)),
                      "low": c - abs(rng.normal(0, 0.4)), "close": c}
                     for j, c in enumerate(closes)]  # fmt: skip
        for j in range(0, 120, 7):
            entry = float(bars[sym][10 + j]["close"])
            d = "long" if (i + j) % 2 else "short"
            s = 1 if d == "long" else -1
            alerts.append(alert(d, entry, entry - s * 1.0, entry + s * 2.0, sym,
                                ["breakout", "volume_spike"][j % 2], T + 60 * j,
                                aid=f"{sym}:{j}"))  # fmt: skip
    rows = validate_alerts(alerts, bars, (5, 30))
    base = random_baseline(alerts, bars, (5, 30), draws=4, jitter_min=10, seed=3)
    summ = summarize(rows, base)
    assert summ["pattern"].to_list() == ["breakout", "volume_spike", ALL_PATTERNS] * 2
    for r in summ.iter_rows(named=True):
        for frame, p in ((rows, ""), (base, "base_")):
            sel = [x for x in frame.iter_rows(named=True)
                   if x["window_min"] == r["window_min"] and x["outcome"] != "no_data"
                   and r["pattern"] in (ALL_PATTERNS, x["pattern"])]  # fmt: skip
            rs = [x["r"] for x in sel]
            hits = sum(x["outcome"] == "target" for x in sel)
            assert r[f"{p}n"] == len(sel) > 0
            assert r[f"{p}targets"] == hits
            assert r[f"{p}hit_rate"] == pytest.approx(hits / len(sel))
            assert r[f"{p}mean_r"] == pytest.approx(statistics.fmean(rs))
            half = sps.t.ppf(0.975, len(rs) - 1) * statistics.stdev(rs) / math.sqrt(len(rs))
            assert r[f"{p}r_hi"] - r[f"{p}mean_r"] == pytest.approx(half)
    # every R is -1, the reward 2, or a mark-to-market strictly inside (-1, 2)
    for x in rows.iter_rows(named=True):
        if x["outcome"] == "target":
            assert x["r"] == pytest.approx(2.0, rel=1e-6)
        elif x["outcome"] == "stop":
            assert x["r"] == -1.0
        else:
            assert -1.0 < x["r"] < 2.0 + 1e-9
    text = render_report(summ, "2022-11-11", len(alerts), 4, 10, 3)
    assert "## Within 5 minutes" in text and "## Within 30 minutes" in text
    assert text.count("| `breakout` |") == 2 and text.count("| **(all)** |") == 2


# ------------------------------------------------------------------------ baseline
def test_baseline_rules_and_determinism() -> None:
    closes = 100 + np.arange(121) * 0.1
    bars = {"NSE:A": [{"start": T - 3600 + 60 * j, "high": c + 0.3, "low": c - 0.3, "close": c}
                      for j, c in enumerate(closes)]}  # fmt: skip
    alerts = [alert("long", 106.0, 104.5, 109.0, "NSE:A")]  # stop 1.415%, reward:risk 2
    b1 = random_baseline(alerts, bars, (5, 60), draws=50, jitter_min=20, seed=11)
    b2 = random_baseline(list(reversed(alerts)), bars, (5, 60), draws=50, jitter_min=20, seed=11)
    assert b1.equals(b2)
    assert not b1.equals(random_baseline(alerts, bars, (5, 60), draws=50, jitter_min=20, seed=12))
    assert b1.height == 100 and b1["draw"].n_unique() == 50
    first = b1.filter(pl.col("window_min") == 5)
    # from the alert's bar on, never before it (a bar before would see the alert's move)
    assert first["bar_start"].min() >= T and first["bar_start"].max() <= T + 1200
    assert set(first["direction"]) == {"long", "short"}
    # the alert's stop fraction and reward:risk, rounded to the 0.05 tick like the risk
    # manager: stop away from the entry (never less risk), target towards it
    dist = 1.5 / 106.0 * first["entry"].to_numpy()
    risk = (first["entry"] - first["stop"]).abs().to_numpy()
    reward = (first["target"] - first["entry"]).abs().to_numpy()
    assert np.all((risk >= dist - 1e-9) & (risk < dist + 0.05))
    assert np.all((reward <= 2 * dist + 1e-9) & (reward > 2 * dist - 0.05))
    for col in ("stop", "target"):
        ticks = first[col].to_numpy() / 0.05
        assert np.allclose(ticks, np.round(ticks))
    for r in first.iter_rows(named=True):  # entry = the close of the drawn bar
        assert r["entry"] == pytest.approx(100 + (r["bar_start"] - (T - 3600)) / 60 * 0.1)
    # jitter 0: the alert's own bar, only the side is random
    own = random_baseline(alerts, bars, (5,), draws=8, jitter_min=0, seed=1)
    assert set(own["bar_start"]) == {T}
    assert own["alert_id"].unique().to_list() == [alerts[0]["alert_id"]]


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"windows_min": ()}, "validation.windows_min"),
        ({"windows_min": (1, 0)}, "validation.windows_min"),
        ({"baseline_draws": 0}, "validation.baseline_draws"),
        ({"baseline_jitter_min": -1}, "validation.baseline_jitter_min"),
    ],
)
def test_validation_config_errors_name_the_key(kw: dict, key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        ValidationConfig(**kw)
    assert str(exc.value).startswith(f"{key}:") and "\n" not in str(exc.value)
    assert ValidationConfig().windows_min == (1, 2, 5, 10, 30, 60)
