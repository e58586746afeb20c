"""Session windows, INDIA VIX regimes, F&O adjustments and their validated config."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest

from aion.config import ConfigError, load_config
from aion.market.calendar import MarketCalendar
from aion.volume.config import FnoConfig, SessionsConfig, VixRegimesConfig
from aion.volume.fno import (
    expiry_multiplier,
    instrument_multiplier,
    moneyness_multiplier,
    trading_days_to_expiry,
)
from aion.volume.regime import RegimeClassifier, VixTracker

REPO_CONFIG = Path(__file__).resolve().parents[3] / "config"


def test_regimes_and_session_windows_from_the_shipped_config() -> None:
    cfg = load_config(REPO_CONFIG)
    rc = RegimeClassifier(cfg.sessions, cfg.vix_regimes)
    assert rc.vix_regime(11.99) == ("LOW", 0.9)
    assert rc.vix_regime(12.0) == ("NORMAL", 1.0)
    assert rc.vix_regime(14.4) == ("NORMAL", 1.0)  # INDIA VIX close on 2022-11-11
    assert rc.vix_regime(24.9) == ("HIGH", 1.25)
    assert rc.vix_regime(80.0) == ("PANIC", 1.5)
    assert rc.vix_regime(math.nan) == ("", 1.0)
    assert rc.session_multiplier(9 * 60 + 15) == 1.5
    assert rc.session_multiplier(9 * 60 + 29) == 1.5
    assert rc.session_multiplier(9 * 60 + 30) == 1.0
    assert rc.session_multiplier(15 * 60 + 15) == 1.25
    assert rc.classify(15 * 60 + 20, 30.0) == ("PANIC", 1.5 * 1.25)


def test_vix_tracker_gives_the_level_before_a_bar_end() -> None:
    v = VixTracker()
    v.observe(np.array([100, 160, 220]), np.array([14.0, 14.5, 0.0]))  # 0: not a level
    assert math.isnan(v.level_before(100))
    assert v.level_before(101) == 14.0
    assert v.level_before(161) == 14.5
    assert v.level_before(10_000) == 14.5


def test_fno_adjustments() -> None:
    cfg = FnoConfig()
    assert [expiry_multiplier(d, cfg) for d in (0, 1, 2, 3, 4, 30)] == [
        1.5,
        1.25,
        1.1,
        1.1,
        1.0,
        1.0,
    ]
    assert moneyness_multiplier(100.0, 100.0, cfg) == 1.0
    assert moneyness_multiplier(102.0, 100.0, cfg) == pytest.approx(
        math.exp(-math.log(1.02) / 0.02)
    )
    assert moneyness_multiplier(200.0, 100.0, cfg) == cfg.moneyness_floor
    assert moneyness_multiplier(100.0, math.nan, cfg) == 1.0
    cal = MarketCalendar()
    # NIFTY Nov-2022 future from 2022-11-11 (Fri) to expiry Thu 2022-11-24: 9 trading days
    assert trading_days_to_expiry(dt.date(2022, 11, 11), dt.date(2022, 11, 24), cal) == 9
    assert trading_days_to_expiry(dt.date(2022, 11, 24), dt.date(2022, 11, 24), cal) == 0
    fut = instrument_multiplier("FUT", dt.date(2022, 11, 23), dt.date(2022, 11, 24), 0.0,
                                math.nan, cfg, cal)  # fmt: skip
    assert fut == 1.25
    opt = instrument_multiplier("CE", dt.date(2022, 11, 24), dt.date(2022, 11, 24), 18400.0,
                                18349.7, cfg, cal)  # fmt: skip
    assert opt == pytest.approx(1.5 * math.exp(-abs(math.log(18400 / 18349.7)) / 0.02))
    assert instrument_multiplier("EQ", dt.date(2022, 11, 24), None, 0, 1, cfg, cal) == 1.0


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("sessions:\n  opening: {start: '09:15', end: '09:10', multiplier: 1.5}\n",
         "sessions.opening: start 09:15 must be before end 09:10"),
        ("sessions:\n  closing: {start: '15:15', end: '15:30', multiplier: 0}\n",
         "sessions.closing.multiplier: must be > 0"),
        ("sessions:\n  opening: {start: '9h15', end: '09:30'}\n",
         "sessions.opening.start: '9h15' must be an IST time HH:MM"),
        ("vix_regimes:\n  regimes:\n    - {name: LOW, below: 20, multiplier: 1}\n"
         "    - {name: HIGH, below: 15, multiplier: 1}\n    - {name: PANIC, below: null, "
         "multiplier: 2}\n", "vix_regimes.regimes[1].below: must be a VIX level above"),
        ("vix_regimes:\n  regimes:\n    - {name: LOW, below: 20, multiplier: -1}\n",
         "vix_regimes.regimes[0].multiplier: must be > 0"),
        ("vix_regimes:\n  regimes:\n    - {name: LOW, below: 20, multiplier: 1}\n",
         "vix_regimes.regimes[0].below: the last regime must have below: null"),
        ("fno:\n  expiry_days: [0, 1]\n  expiry_multipliers: [1.5]\n",
         "fno.expiry_multipliers: one multiplier per fno.expiry_days entry"),
        ("fno:\n  moneyness_floor: 0\n", "fno.moneyness_floor: must be in (0, 1]"),
        ("volume:\n  profile:\n    value_area: 1.2\n",
         "volume.profile.value_area: must be in (0, 1)"),
        ("volume:\n  profile:\n    smoothing_bins: 4\n", "volume.profile.smoothing_bins"),
        ("volume:\n  profile:\n    bins_interval_min: 0\n",
         "volume.profile.bins_interval_min: must be > 0"),
        ("volume:\n  baseline:\n    sessions: 10\n    min_sessions: 20\n",
         "volume.baseline.min_sessions: must be <="),
        ("volume:\n  long_average_days: 0\n", "volume.long_average_days: must be > 0"),
    ],
)  # fmt: skip
def test_bad_values_stop_with_one_line(tmp_path: Path, yaml_text: str, message: str) -> None:
    (tmp_path / "aion.yaml").write_text(yaml_text)
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_defaults_are_valid() -> None:
    SessionsConfig()
    assert [r.name for r in VixRegimesConfig().regimes] == ["LOW", "NORMAL", "HIGH", "PANIC"]
