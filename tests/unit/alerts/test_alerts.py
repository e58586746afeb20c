"""Alert manager: threshold, market hours (XNSE calendar), risk refusals, dedupe, conflicts,
cooldown on exchange time, the global rate limit with priority by confidence, and stream ids.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aion.alerts.config import AlertsConfig
from aion.alerts.manager import AlertCounters, AlertManager, Candidate
from aion.config import ConfigError
from aion.market.time import from_ist
from aion.patterns.registry import InstrumentView, Signal
from aion.risk.manager import RiskRefusal, TradePlan

DAY = dt.date(2022, 11, 11)  # a Friday, an NSE trading day
PLAN = TradePlan(100.0, 98.0, 104.0, 10, 10, 1, 4.0, 20.0, 2.0, "atr")
OTHER_PLAN = TradePlan(101.0, 99.0, 105.0, 10, 10, 1, 4.0, 20.0, 2.0, "atr")


def view(bar_start: int, symbol: str = "NSE:SBIN") -> InstrumentView:
    return InstrumentView(
        symbol=symbol,
        bar_start=bar_start,
        open=100.0,
        high=101.0,
        low=99.0,
        close=100.0,
        volume=1000.0,
        history={k: np.zeros(0) for k in ("open", "high", "low", "close", "volume")},
        indicators={},
        expected_bar_volume=100.0,
    )


def cand(
    t: int, conf: float = 0.9, pattern: str = "volume_spike", direction: str = "long",
    symbol: str = "NSE:SBIN", plan: TradePlan | RiskRefusal = PLAN,
    min_conf: float | None = None, cooldown: int = 900,
) -> Candidate:  # fmt: skip
    sig = Signal(pattern, direction, conf, {"volume_ratio": 4.0})
    return Candidate(sig, view(t, symbol), plan, min_conf, cooldown)


def at(hh: int, mm: int, day: dt.date = DAY) -> int:
    return from_ist(day, hh, mm)


def balanced(c: AlertCounters) -> bool:
    return c.signals == c.published + sum(c.suppressed().values())


def test_default_threshold_is_085_and_inclusive() -> None:
    am = AlertManager()
    t = at(10, 0)
    out = am.consider_many(t, [cand(t, 0.84), cand(t, 0.85, symbol="NSE:TCS")])
    assert [a.symbol for a in out] == ["NSE:TCS"]
    assert am.counters.below_confidence == 1
    # a pattern's own threshold replaces the default, either way
    t2 = at(10, 1)
    out = am.consider_many(t2, [cand(t2, 0.9, symbol="NSE:INFY", min_conf=0.95),
                                cand(t2, 0.5, symbol="NSE:ITC", min_conf=0.4)])  # fmt: skip
    assert [a.symbol for a in out] == ["NSE:ITC"]
    assert am.counters.published == 2 and am.counters.signals == 4
    assert balanced(am.counters)


def test_alert_id_stream_id_and_fields() -> None:
    am = AlertManager()
    t = at(9, 47)
    (a,) = am.consider_many(t, [cand(t, 0.875, direction="short")])
    assert a.alert_id == "20221111:NSE:SBIN:volume_spike:09:47"
    assert a.date == 20221111
    assert a.stream_id == f"{at(9, 48) * 1000}-0"  # bar end, ms
    f = a.fields()
    assert f["bar_time"] == "2022-11-11T09:47:00+0530"
    assert (f["direction"], f["confidence"]) == ("short", "0.8750")
    assert (f["entry"], f["stop"], f["target"], f["quantity"]) == (
        "100.00",
        "98.00",
        "104.00",
        "10",
    )
    assert (f["lots"], f["lot_size"], f["risk_amount"]) == ("10", "1", "20.00")
    assert f["evidence.volume_ratio"] == "4"


@pytest.mark.parametrize(
    ("day", "hh", "mm", "open_"),
    [
        (DAY, 9, 8, False),  # pre-open auction
        (DAY, 9, 15, True),
        (DAY, 15, 29, True),  # the last regular bar
        (DAY, 15, 30, False),  # closing session
        (dt.date(2022, 11, 12), 10, 0, False),  # Saturday
        (dt.date(2022, 11, 8), 10, 0, False),  # Guru Nanak Jayanti, NSE holiday
        (dt.date(2022, 10, 24), 10, 0, False),  # Diwali: only the Muhurat session ...
        (dt.date(2022, 10, 24), 18, 30, True),  # ... 18:15-19:15 IST
    ],
)
def test_market_hours_guard(day: dt.date, hh: int, mm: int, open_: bool) -> None:
    t = at(hh, mm, day)
    am = AlertManager()
    out = am.consider_many(t, [cand(t, 0.99)])
    assert bool(out) == open_
    assert am.counters.outside_hours == (0 if open_ else 1)
    # the guard off: every bar may alert
    free = AlertManager(market_hours_only=False)
    assert len(free.consider_many(t, [cand(t, 0.99)])) == 1


def test_risk_refusals_counted_by_reason() -> None:
    am = AlertManager()
    t = at(10, 0)
    out = am.consider_many(t, [
        cand(t, plan=RiskRefusal("size_rounds_to_zero", "x"), symbol="NFO:BANKNIFTY22NOVFUT"),
        cand(t, plan=RiskRefusal("zero_stop_distance", "y"), symbol="NSE:TCS"),
        cand(t, plan=RiskRefusal("zero_stop_distance", "y"), symbol="NSE:ITC"),
        cand(t, 0.5, plan=RiskRefusal("zero_stop_distance", "y"), symbol="NSE:INFY"),
    ])  # fmt: skip
    assert out == []
    c = am.counters
    assert c.risk_refused == 3 and c.below_confidence == 1  # threshold is checked first
    assert c.risk_refused_reasons == {"size_rounds_to_zero": 1, "zero_stop_distance": 2}
    assert balanced(c)


def test_dedupe_same_bar_and_same_trade() -> None:
    am = AlertManager()
    t = at(10, 0)
    assert len(am.consider_many(t, [cand(t, cooldown=0), cand(t, cooldown=0)])) == 1
    assert am.counters.duplicate == 1
    assert am.consider_many(t, [cand(t, cooldown=0)]) == []  # the same bar offered again
    assert am.counters.duplicate == 2
    # a later bar repeating the last alert's direction, entry, stop and target is a duplicate
    t1 = at(10, 1)
    assert am.consider_many(t1, [cand(t1, cooldown=0)]) == []
    assert am.counters.duplicate == 3
    # ... but not with new levels or the other direction
    assert len(am.consider_many(t1, [cand(t1, cooldown=0, plan=OTHER_PLAN)])) == 1
    t2 = at(10, 2)
    assert len(am.consider_many(t2, [cand(t2, cooldown=0, direction="short")])) == 1
    assert balanced(am.counters)


def test_conflict_keep_stronger() -> None:
    am = AlertManager(conflict_policy="keep_stronger")
    t = at(11, 0)
    out = am.consider_many(t, [
        cand(t, 0.90, "breakout", "long"),
        cand(t, 0.95, "volume_spike", "short"),
        cand(t, 0.88, "reversal", "short"),
        cand(t, 0.99, "breakout", "long", symbol="NSE:TCS"),  # another instrument: no conflict
    ])  # fmt: skip
    assert [(a.symbol, a.pattern, a.direction) for a in out] == [
        ("NSE:SBIN", "volume_spike", "short"),
        ("NSE:SBIN", "reversal", "short"),
        ("NSE:TCS", "breakout", "long"),
    ]
    assert am.counters.conflict == 1
    # a tie of the best confidences drops both directions
    t1 = at(11, 1)
    tie = [cand(t1, 0.9, "breakout", "long", plan=OTHER_PLAN),
           cand(t1, 0.9, "volume_spike", "short", plan=OTHER_PLAN)]  # fmt: skip
    assert am.consider_many(t1, tie) == []
    assert am.counters.conflict == 3
    assert balanced(am.counters)


def test_conflict_drop_all() -> None:
    am = AlertManager(conflict_policy="drop_all")
    t = at(11, 0)
    out = am.consider_many(t, [cand(t, 0.90, "breakout", "long"),
                               cand(t, 0.99, "volume_spike", "short"),
                               cand(t, 0.90, "breakout", "short", symbol="NSE:TCS")])  # fmt: skip
    assert [a.symbol for a in out] == ["NSE:TCS"]
    assert am.counters.conflict == 2
    # below-threshold signals never veto: only candidates that could alert conflict
    t1 = at(11, 1)
    out = am.consider_many(t1, [cand(t1, 0.9, "breakout", "long", cooldown=0),
                                cand(t1, 0.3, "volume_spike", "short", cooldown=0)])  # fmt: skip
    assert len(out) == 1 and am.counters.conflict == 2


def test_cooldown_on_exchange_time() -> None:
    am = AlertManager()

    def one(t: int, pattern: str = "volume_spike", symbol: str = "NSE:SBIN") -> bool:
        # new levels each minute, so no repeat is a duplicate of the same trade
        plan = TradePlan(100.0 + t % 3600 / 60, 98.0, 110.0, 10, 10, 1, 4.0, 20.0, 2.0, "atr")
        return bool(am.consider_many(t, [cand(t, pattern=pattern, symbol=symbol, plan=plan)]))

    assert one(at(10, 0))
    assert not one(at(10, 14))  # 840 s < 900
    assert am.counters.cooldown == 1
    assert one(at(10, 5), pattern="breakout")  # other pattern
    assert one(at(10, 5), symbol="NSE:TCS")  # other instrument
    assert one(at(10, 15))  # exactly 900 s later
    assert not one(at(10, 29))  # the cooldown restarts from the last alert
    assert one(at(10, 30))
    assert not one(at(10, 20))  # an older bar than the last alert
    assert am.counters.cooldown == 3
    assert balanced(am.counters)


def test_rate_limit_keeps_the_highest_confidences() -> None:
    am = AlertManager(max_alerts_per_minute=3)
    t = at(12, 0)
    confs = {"NSE:A": 0.86, "NSE:B": 0.97, "NSE:C": 0.91, "NSE:D": 0.99, "NSE:E": 0.91}
    out = am.consider_many(t, [cand(t, c, symbol=s) for s, c in confs.items()])
    # D 0.99, B 0.97, then the 0.91 tie goes to C (symbol order); published in input order
    assert [a.symbol for a in out] == ["NSE:B", "NSE:C", "NSE:D"]
    assert am.counters.rate_limited == 2
    # the minute's budget is spent: a second batch of the same minute gets nothing
    assert am.consider_many(t, [cand(t, 0.99, symbol="NSE:F")]) == []
    assert am.counters.rate_limited == 3
    t1 = at(12, 1)
    assert len(am.consider_many(t1, [cand(t1, 0.9, symbol="NSE:F")])) == 1
    assert am.counters.max_per_minute == 3
    assert am.counters.minutes == 2
    assert am.counters.rate_per_minute() == pytest.approx(4 / 2)
    assert balanced(am.counters)


def test_rate_limited_signal_does_not_start_a_cooldown() -> None:
    am = AlertManager(max_alerts_per_minute=1)
    t = at(12, 0)
    out = am.consider_many(t, [cand(t, 0.9, symbol="NSE:A"), cand(t, 0.95, symbol="NSE:B")])
    assert [a.symbol for a in out] == ["NSE:B"]
    t1 = at(12, 1)
    assert [a.symbol for a in am.consider_many(t1, [cand(t1, 0.9, symbol="NSE:A")])] == ["NSE:A"]


def test_candidate_of_another_minute_is_rejected() -> None:
    with pytest.raises(ValueError, match="not minute"):
        AlertManager().consider_many(at(10, 0), [cand(at(10, 1))])


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="conflict_policy"):
        AlertManager(conflict_policy="vote")
    with pytest.raises(ValueError, match="max_alerts_per_minute"):
        AlertManager(max_alerts_per_minute=0)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 374), st.sampled_from(["NSE:A", "NSE:B", "NFO:C"]),
                          st.sampled_from(["volume_spike", "breakout"]),
                          st.floats(0.8, 1.0), st.sampled_from([0, 60, 900])),
                max_size=60))  # fmt: skip
def test_policy_invariants(events: list[tuple[int, str, str, float, int]]) -> None:
    """Stream ids strictly increase; ids follow the bar; at most one alert per (instrument,
    pattern) per cooldown; at most the rate limit per minute; every signal counted once."""
    am = AlertManager(max_alerts_per_minute=2)
    base = at(9, 15)
    by_minute: dict[int, list[Candidate]] = {}
    for minute, sym, pat, conf, cd in events:
        plan = TradePlan(100.0 + minute, 99.0, 110.0 + minute, 1, 1, 1, 10.0, 1.0, 2.0, "atr")
        by_minute.setdefault(minute, []).append(
            cand(base + 60 * minute, conf, pat, symbol=sym, plan=plan, cooldown=cd)
        )
    prev: tuple[int, int] | None = None
    last: dict[tuple[str, str], int] = {}
    for minute in sorted(by_minute):
        t = base + 60 * minute
        out = am.consider_many(t, by_minute[minute])
        assert len(out) <= 2
        for a in out:
            m = re.fullmatch(r"(\d+)-(\d+)", a.stream_id)
            assert m is not None
            cur = (int(m[1]), int(m[2]))
            assert prev is None or cur > prev
            assert cur[0] == (t + 60) * 1000
            prev = cur
            hhmm = (dt.datetime(2022, 11, 11, 9, 15) + dt.timedelta(minutes=minute)).strftime(
                "%H:%M"
            )
            assert a.alert_id == f"20221111:{a.symbol}:{a.pattern}:{hhmm}"
            cd = next(c.cooldown_s for c in by_minute[minute]
                      if (c.view.symbol, c.signal.pattern) == (a.symbol, a.pattern))  # fmt: skip
            k = (a.symbol, a.pattern)
            assert k not in last or t - last[k] >= cd
            last[k] = t
    assert balanced(am.counters)


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"conflict_policy": "vote"}, "alerts.conflict_policy"),
        ({"max_alerts_per_minute": 0}, "alerts.max_alerts_per_minute"),
        ({"min_confidence": 1.2}, "alerts.min_confidence"),
    ],
)
def test_alerts_config_errors_name_the_key(kw: dict, key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        AlertsConfig(**kw)
    msg = str(exc.value)
    assert msg.startswith(f"{key}:") and "\n" not in msg
    assert AlertsConfig().min_confidence == 0.85
