"""The detector registry and pattern engine, config/patterns.yaml, and the contract every
detector keeps: confidence in [0, 1], never an exception on missing or hostile inputs.

The detectors' own scenarios are in test_detectors_{core,ict,options,profile}.py.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pattern_views import NAN, defaults, make_view
from typer.testing import CliRunner

from aion.cli.main import app
from aion.config import ConfigError, load_patterns
from aion.patterns.config import PatternConfig
from aion.patterns.detectors import volume_spike
from aion.patterns.registry import InstrumentView, PatternEngine, Signal, known_detectors
from aion.patterns.scoring import confidence, ramp

REPO_CONFIG = Path(__file__).resolve().parents[3] / "config"
VS = {"min_ratio": 3.0, "ratio_cap": 10.0, "min_body_fraction": 0.3}

FAMILIES = {
    "core": {
        "volume_spike",
        "volume_breakout",
        "volume_price_divergence",
        "upside_momentum",
        "downside_momentum",
        "breakout",
        "reversal",
        "hidden_accumulation",
    },
    "ict": {
        "liquidity_pools",
        "fair_value_gaps",
        "optimal_trade_entry",
        "premium_discount",
        "killzone",
        "ict_momentum",
    },
    "options": {
        "iv_crush_play_straddle",
        "range_bound_strangle",
        "market_maker_trap_detection",
        "premium_collection_strategy",
        "kow_signal_straddle",
    },
    "volume_profile": {"volume_profile_breakout", "volume_profile_advanced"},
}


# ------------------------------------------------------------------------ registry
def test_every_seed_pattern_is_registered_in_its_family() -> None:
    known = known_detectors()
    assert set(known) == set().union(*FAMILIES.values())
    assert len(known) == 21
    for fam, names in FAMILIES.items():
        for n in names:
            assert known[n].family == fam, n


@pytest.mark.parametrize("name", sorted(known_detectors()))
def test_each_detector_documents_itself(name: str) -> None:
    det = known_detectors()[name]
    doc = inspect.getdoc(det.fn) or ""
    assert "Rule" in doc and "onfidence" in doc, name
    assert det.description and "\n" not in det.description
    for p, (default, help_) in det.params.items():
        assert help_, f"{name}.{p} has no description"
        assert default is not None
    # the function takes exactly its registered parameters (besides the view)
    sig = inspect.signature(det.fn)
    names = [p for p in sig.parameters if p != "view"]
    if names != ["params"]:  # the momentum pair forwards **params
        assert names == list(det.params), name
    assert set(known_detectors()[name].params) == set(defaults(name))


def test_registry_rejects_unknown_detector() -> None:
    with pytest.raises(ConfigError) as ei:
        PatternEngine([PatternConfig(name="head_and_shoulders")])
    msg = str(ei.value)
    assert "head_and_shoulders" in msg
    for n in known_detectors():
        assert n in msg
    assert "\n" not in msg


def test_registry_rejects_unknown_param() -> None:
    with pytest.raises(ConfigError) as ei:
        PatternEngine([PatternConfig(name="volume_spike", params={"min_ratoi": 2.0})])
    msg = str(ei.value)
    assert "volume_spike.params.min_ratoi" in msg
    for p in VS:
        assert p in msg


@pytest.mark.parametrize(
    "name,params",
    [
        ("volume_spike", {"min_ratio": "3"}),
        ("breakout", {"lookback_bars": 20.5}),  # a float where an int is expected
        ("breakout", {"lookback_bars": True}),
        ("premium_collection_strategy", {"max_regime": 2}),
    ],
)
def test_registry_rejects_wrong_param_types(name: str, params: dict) -> None:
    with pytest.raises(ConfigError, match="wrong type") as ei:
        PatternEngine([PatternConfig(name=name, params=params)])
    assert f"{name}.params.{next(iter(params))}" in str(ei.value)


def test_engine_defaults_overrides_and_disabled() -> None:
    eng = PatternEngine(
        [
            PatternConfig(name="volume_spike", params={"min_ratio": 5}, cooldown_s=60),
            PatternConfig(name="breakout", enabled=False),
        ]
    )
    act = eng.settings("volume_spike")
    assert act.params == {"min_ratio": 5, "ratio_cap": 10.0, "min_body_fraction": 0.3}
    assert act.cooldown_s == 60
    with pytest.raises(KeyError):
        eng.settings("breakout")
    # ratio 4 fires with the default 3 but not with the configured 5
    assert volume_spike(make_view(v=400.0), **VS) is not None
    assert eng.detect(make_view(v=400.0)) == []
    assert [s.pattern for s in eng.detect(make_view(v=500.0))] == ["volume_spike"]


def test_signal_validates() -> None:
    with pytest.raises(ValueError):
        Signal("x", "up", 0.5)
    with pytest.raises(ValueError):
        Signal("x", "long", 1.01)


def test_confidence_helpers_by_hand() -> None:
    assert ramp(5.0, 0.0, 10.0) == 0.5
    assert ramp(0.5, 0.7, 0.2) == pytest.approx(0.4)  # a falling ramp
    assert ramp(NAN, 0.0, 1.0) == 0.0
    assert ramp(3.0, 3.0, 3.0) == 1.0 and ramp(2.9, 3.0, 3.0) == 0.0
    assert confidence(0.4, (0.3, 2.0), (0.3, NAN)) == pytest.approx(0.7)
    assert confidence(0.4, (0.3, -1.0), (0.3, 0.5)) == pytest.approx(0.55)
    with pytest.raises(ValueError):
        confidence(0.5, (0.3, 1.0), (0.3, 1.0))


# ------------------------------------------------------------------------ patterns.yaml
def test_patterns_yaml_configures_every_detector_explicitly() -> None:
    cfgs = {c.name: c for c in load_patterns(REPO_CONFIG)}
    known = known_detectors()
    assert set(cfgs) == set(known)
    for name, c in cfgs.items():
        assert c.enabled
        assert c.min_confidence == 0.85  # the alert manager's default, stated per pattern
        assert c.cooldown_s >= 900
        assert set(c.params) == set(known[name].params), name
    eng = PatternEngine(list(cfgs.values()))
    assert len(eng.active) == 21
    assert eng.settings("killzone").params["windows"] == ("09:15-10:15", "14:30-15:15")


def test_patterns_yaml_defaults_match_the_code() -> None:
    """Every value in patterns.yaml equals the registered default, so that omitting a
    parameter changes nothing (lists compare as tuples)."""
    for c in load_patterns(REPO_CONFIG):
        for p, v in c.params.items():
            want = defaults(c.name)[p]
            assert (tuple(v) if isinstance(v, list) else v) == want, f"{c.name}.{p}"


def test_aion_patterns_lists_every_detector() -> None:
    res = CliRunner().invoke(
        app, ["patterns", "--config", str(REPO_CONFIG)], env={"COLUMNS": "400"}
    )
    assert res.exit_code == 0, res.output
    for name, det in known_detectors().items():
        assert name in res.output
        for p in det.params:
            assert p in res.output
    for fam in FAMILIES:
        assert fam in res.output


# ------------------------------------------------------------------------ the contract
_f = st.floats(allow_nan=True, allow_infinity=True, width=64)
_pos = st.floats(0.01, 1e5, allow_nan=False, allow_infinity=False)


@st.composite
def hostile_views(draw: st.DrawFn) -> InstrumentView:
    """Views with random bars, history, indicators, RVOL, book, profile and chain, where
    any input may be missing, NaN, zero, negative or infinite."""
    lo, a, b, hi = sorted(draw(st.lists(_pos, min_size=4, max_size=4)))
    o, c = (a, b) if draw(st.booleans()) else (b, a)
    n = draw(st.integers(0, 64))
    base = draw(_pos)
    steps = np.asarray(draw(st.lists(st.floats(-0.02, 0.02), min_size=n, max_size=n)))
    closes = base * np.exp(np.cumsum(steps)) if n else np.empty(0)
    spread = draw(st.floats(0.0, 0.05))
    hist = {
        "open": closes * (1 + spread / 2),
        "high": closes * (1 + spread),
        "low": closes * (1 - spread),
        "close": closes,
        "volume": np.asarray(draw(st.lists(st.floats(0.0, 1e7), min_size=n, max_size=n))),
    }
    names = ["atr_14", "ema_20", "ema_50", "rsi_14", "vwap", "adx_14"]
    ind = {k: draw(st.one_of(_f, _pos)) for k in names if draw(st.booleans())}
    book = {
        k: draw(st.one_of(_f, st.floats(0.0, 1e6)))
        for k in ("total_buy_quantity", "total_sell_quantity", "bid_quantity_5", "ask_quantity_5")
        if draw(st.booleans())
    }
    prof = {
        k: draw(st.one_of(_f, _pos))
        for k in ("poc", "vah", "val", "poc_prev", "vah_prev", "val_prev", "hvn", "lvn")
        if draw(st.booleans())
    }
    chain: dict[str, np.ndarray] = {}
    if draw(st.booleans()):
        vec = st.lists(st.one_of(_f, _pos, st.floats(-1e3, 0.0)), min_size=5, max_size=5)
        for k in (
            "strike",
            "ce_last_price",
            "pe_last_price",
            "ce_iv",
            "pe_iv",
            "ce_theta",
            "pe_theta",
            "ce_oi",
            "pe_oi",
        ):
            if draw(st.integers(0, 4)):
                chain[k] = np.asarray(draw(vec))
        for k in ("dte_days", "atm_straddle", "atm_straddle_vwap", "spot"):
            if draw(st.integers(0, 4)):
                chain[k] = np.asarray(draw(st.one_of(_f, _pos)))
    return make_view(
        o,
        hi,
        lo,
        c,
        draw(st.floats(0.0, 1e8)),
        expected=draw(st.one_of(_f, _pos)),
        history=hist,
        indicators=ind,
        atr=ind.get("atr_14", NAN),
        at=(draw(st.integers(9, 15)), draw(st.integers(0, 59))),
        rvol_bar=draw(st.one_of(_f, _pos)),
        rvol_cum=draw(st.one_of(_f, _pos)),
        threshold_multiplier=draw(st.one_of(_f, _pos)),
        regime=draw(st.sampled_from(["", "LOW", "NORMAL", "HIGH", "PANIC", "??"])),
        book=book,
        profile=prof,
        chain=chain,
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_views())
def test_every_detector_is_bounded_and_never_raises(v: InstrumentView) -> None:
    for name, det in known_detectors().items():
        sig = det.fn(v, **defaults(name))
        if sig is None:
            continue
        assert sig.pattern == name
        assert sig.direction in ("long", "short")
        assert 0.0 <= sig.confidence <= 1.0 and math.isfinite(sig.confidence)
        assert all(isinstance(x, float) for x in sig.evidence.values()), name


def test_every_detector_is_silent_on_an_empty_view() -> None:
    v = make_view(expected=NAN)  # one bar, nothing else known
    for name, det in known_detectors().items():
        assert det.fn(v, **defaults(name)) is None, name
