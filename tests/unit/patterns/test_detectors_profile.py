"""Volume-profile detectors on hand-set profiles: each setup fires with the expected
direction and stays silent on a near miss; confidences by hand."""

from __future__ import annotations

import pytest
from pattern_views import NAN, hist, make_view, run

from aion.patterns.profile import SETUPS
from aion.patterns.registry import InstrumentView

PROFILE = {"poc": 100.0, "vah": 105.0, "val": 95.0}


def _accept(before: float = 104.0, last: float = 106.0) -> dict:
    closes = [100.0] * 28 + [before, last]
    return hist(
        30, open=closes, high=[c + 0.5 for c in closes], low=[c - 0.5 for c in closes], close=closes
    )


def test_value_area_breakout_by_hand() -> None:
    v = make_view(
        106.0, 107.0, 105.8, 106.5, history=_accept(), atr=2.0, rvol_bar=3.0, profile=PROFILE
    )
    sig = run("volume_profile_breakout", v)
    assert sig is not None and sig.direction == "long"
    assert sig.confidence == pytest.approx(0.4 + 0.3 * 0.75 + 0.3 * 1.5 / 8.5, abs=1e-12)
    v = make_view(
        94.0, 94.2, 93.0, 93.5, history=_accept(96.0, 94.0), atr=2.0, rvol_bar=3.0, profile=PROFILE
    )
    sig = run("volume_profile_breakout", v)
    assert sig is not None and sig.direction == "short"


def test_value_area_breakout_falls_back_to_recent_volume() -> None:
    # no RVOL baseline: volume 300 vs the 20-bar mean 100
    v = make_view(
        106.0, 107.0, 105.8, 106.5, 300.0, expected=NAN, history=_accept(), atr=2.0, profile=PROFILE
    )
    sig = run("volume_profile_breakout", v)
    assert sig is not None and sig.evidence["volume_ratio"] == pytest.approx(3.0)


@pytest.mark.parametrize(
    "hist_args,c,kw",
    [
        ((106.0, 106.0), 106.5, {}),  # already accepted a bar earlier: not fresh
        ((104.0, 106.0), 104.5, {}),  # back inside the value area
        ((104.0, 106.0), 106.5, {"rvol_bar": 1.2}),  # thin volume
        ((104.0, 106.0), 106.5, {"profile": {}}),  # no profile
    ],
)
def test_value_area_breakout_silent(hist_args: tuple, c: float, kw: dict) -> None:
    base = dict(history=_accept(*hist_args), atr=2.0, rvol_bar=3.0, profile=PROFILE)
    v = make_view(c - 0.5, c + 0.5, c - 0.7, c, **(base | kw))
    assert run("volume_profile_breakout", v) is None


# ------------------------------------------------------------------------ advanced
def _adv(o: float, h: float, lo: float, c: float, **profile: float) -> InstrumentView:
    return make_view(
        o, h, lo, c, history=hist(60), atr=2.0, rvol_bar=2.0, profile=PROFILE | profile
    )


def _setup(sig) -> str:  # type: ignore[no-untyped-def]
    return SETUPS[sig.evidence["setup"]]


def test_poc_rejection_by_hand() -> None:
    sig = run("volume_profile_advanced", _adv(100.8, 101.7, 99.7, 101.5))
    assert sig is not None and sig.direction == "long" and _setup(sig) == "poc_rejection"
    # d = 1.5/2 = 0.75 ATR -> (0.75-0.5)/1.0; lower wick 1.1 of 2.0; RVOL 2 -> 0.5
    want = 0.4 + 0.2 * 0.25 + 0.2 * 1.1 / 2.0 + 0.2 * 0.5
    assert sig.confidence == pytest.approx(want, abs=1e-12)
    sig = run("volume_profile_advanced", _adv(99.2, 100.3, 98.4, 98.6))
    assert sig is not None and sig.direction == "short" and _setup(sig) == "poc_rejection"


def test_poc_shift_by_hand() -> None:
    sig = run("volume_profile_advanced", _adv(101.0, 102.0, 100.5, 101.8, poc_prev=98.0))
    assert sig is not None and sig.direction == "long" and _setup(sig) == "poc_shift"
    assert sig.confidence == pytest.approx(0.4 + 0.3 + 0.3 * 0.5, abs=1e-12)


def test_hvn_and_lvn_by_hand() -> None:
    sig = run("volume_profile_advanced", _adv(103.0, 103.2, 101.9, 102.0, hvn_1=95.0, hvn_2=103.1))
    assert sig is not None and sig.direction == "short" and _setup(sig) == "hvn_test"
    sig = run("volume_profile_advanced", _adv(101.0, 102.0, 100.9, 101.9, lvn_1=101.5, lvn_2=90.0))
    assert sig is not None and sig.direction == "long" and _setup(sig) == "lvn_traverse"
    # body 0.9 of 1.1; RVOL 2 -> 0.5/2.5; range 1.1 = 0.55 ATR -> 0
    assert sig.confidence == pytest.approx(0.4 + 0.2 * 0.9 / 1.1 + 0.2 * 0.2, abs=1e-12)


def test_value_area_expansion_and_contraction_by_hand() -> None:
    sig = run(
        "volume_profile_advanced",
        _adv(101.0, 102.0, 100.5, 101.8, vah=105.0, val=96.0, vah_prev=104.0, val_prev=96.0),
    )
    assert sig is not None and sig.direction == "long" and _setup(sig) == "value_area_expansion"
    assert sig.confidence == pytest.approx(0.4 + 0.3 * 0.025 / 0.2 + 0.15, abs=1e-12)
    sig = run(
        "volume_profile_advanced",
        _adv(101.0, 102.0, 100.5, 101.8, vah=104.0, val=97.0, vah_prev=104.0, val_prev=96.0),
    )
    assert sig is not None and sig.direction == "short"
    assert _setup(sig) == "value_area_contraction"


@pytest.mark.parametrize(
    "bar,profile",
    [
        ((101.0, 102.0, 100.5, 101.8), {}),  # away from every level, no previous profile
        ((100.2, 100.9, 99.7, 100.8), {}),  # through the POC, closes only 0.4 ATR away
        ((101.0, 102.0, 100.5, 101.8), {"poc_prev": 99.5}),  # POC moved only 0.25 ATR
        ((101.0, 102.0, 100.9, 101.2), {"lvn_1": 101.1}),  # small body through the LVN
        ((103.0, 103.2, 101.9, 102.0), {"hvn_1": 103.1, "hvn_2": 102.5}),  # nearest holds
        ((101.0, 102.0, 100.5, 101.8), {"vah_prev": 104.5, "val_prev": 95.0}),  # +5 % width
    ],
)
def test_advanced_silent(bar: tuple, profile: dict) -> None:
    assert run("volume_profile_advanced", _adv(*bar, **profile)) is None
