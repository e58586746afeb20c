"""`aion session build --option-chain`: a labelled, derived NIFTY option chain whose premiums
are Black-Scholes prices of the real index bars at INDIA VIX volatility."""

from __future__ import annotations

import datetime as dt
import gzip
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from aion.kite.decode import decode_frame
from aion.market.calendar import MarketCalendar
from aion.market.time import from_ist
from aion.options.chain import ChainTracker
from aion.replay.builder import build_session
from aion.replay.session_file import read_session
from aion.volume.state import VolumeStateManager

DATA = Path(__file__).resolve().parents[3] / "aion" / "data" / "intraday_1min_2022-11-11"
DAY = dt.date(2022, 11, 11)
RATE = 0.065


def vendor_closes(name: str) -> dict[str, float]:
    out = {}
    for line in gzip.decompress((DATA / f"{name}.txt.gz").read_bytes()).decode().splitlines():
        _s, ymd, hhmm, _o, _h, _l, c, _v, _oi = line.split(",")
        if ymd == "20221111":
            out[hhmm] = float(c)
    return out


@pytest.fixture(scope="module")
def derived(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("derived") / "chain.aion.gz"
    build_session([DATA / "NIFTY.txt.gz", DATA / "INDIAVIX.txt.gz"], DAY, out, option_chain=2)
    return read_session(out)


def test_header_labels_the_chain_derived(derived) -> None:
    h = derived.header
    meta = h["derived"]["option_chain"]
    assert meta["kind"] == "derived" and "NOT MARKET DATA" in meta["description"]
    assert "DERIVED" in h["description"]
    assert meta["chains"]["NIFTY"]["expiry"] == "2022-11-24"
    assert "BANKNIFTY" not in meta["chains"]  # no BANKNIFTY bars given
    opts = [i for i in derived.instruments() if i.instrument_type in ("CE", "PE")]
    assert len(opts) == 10
    assert {i.expiry for i in opts} == {dt.date(2022, 11, 24)}
    assert {i.segment for i in opts} == {"NFO-OPT"}
    assert sorted({i.strike for i in opts}) == meta["chains"]["NIFTY"]["strikes"]
    assert all(s.startswith("NFO:NIFTY22NOV") for s in h["synthesised_instruments"])


def test_premiums_are_black_scholes_of_the_index_at_vix(derived) -> None:
    nifty, vix = vendor_closes("NIFTY"), vendor_closes("INDIAVIX")
    master = derived.instruments()
    by_time: dict[int, np.ndarray] = {}
    for ts, frame in zip(derived.ts_ns, derived.frames, strict=True):
        by_time[ts // 1_000_000_000] = decode_frame(frame)
    # bar stamped 10:00 covers 09:59; its close tick is at 09:59:50; it ends at 10:00:00 when
    # 5.5 of the day's 6.25 session hours and 9 more sessions (14-18, 21-24 Nov) remain
    t = (5.5 / 6.25 + 9) / 252
    s, sigma = nifty["10:00"], vix["10:00"] / 100
    ticks = by_time[from_ist(DAY, 9, 59, 50)]
    checked = 0
    for tk in ticks:
        inst = master.get(int(tk["instrument_token"]))
        if inst is None or inst.instrument_type not in ("CE", "PE"):
            continue
        k = inst.strike
        d1 = (math.log(s / k) + (RATE + sigma**2 / 2) * t) / (sigma * math.sqrt(t))
        d2 = d1 - sigma * math.sqrt(t)
        call = s * norm.cdf(d1) - k * math.exp(-RATE * t) * norm.cdf(d2)
        price = call if inst.instrument_type == "CE" else call - s + k * math.exp(-RATE * t)
        assert float(tk["last_price"]) == pytest.approx(round(price * 20) / 20, abs=1e-9)
        assert int(tk["volume_traded"]) % 50 == 0 and int(tk["oi"]) % 50 == 0
        checked += 1
    assert checked == 10


def test_scanner_greeks_recover_india_vix(derived) -> None:
    insts = list(derived.instruments())
    tr = ChainTracker(insts, MarketCalendar())
    volume = VolumeStateManager(len(insts))
    slot = {i.instrument_token: s for s, i in enumerate(insts)}
    vix = vendor_closes("INDIAVIX")
    for ts, frame in zip(derived.ts_ns, derived.frames, strict=True):
        t = decode_frame(frame)
        slots = np.array([slot[int(x)] for x in t["instrument_token"]], np.int64)
        date = np.full(t.shape[0], 20221111, np.int64)
        cumulative = t["volume_traded"].astype(np.int64)
        tr.on_ticks(
            slots,
            t["exchange_timestamp"].astype(np.int64),
            date,
            t["last_price"].astype(np.float64),
            cumulative,
            volume.apply(slots, date, cumulative, t["tradable"]),
            t["oi"].astype(np.int64),
        )
        if ts // 1_000_000_000 == from_ist(DAY, 11, 29, 50):
            break
    nifty_slot = next(s for s, i in enumerate(insts) if i.symbol == "NSE:NIFTY 50")
    tr.advance_straddle_vwap(nifty_slot, from_ist(DAY, 11, 30))
    chain = tr.chain_view(nifty_slot, from_ist(DAY, 11, 30))
    assert chain["ce_iv"][2] == pytest.approx(vix["11:30"] / 100, abs=2e-3)
    assert chain["pe_iv"][2] == pytest.approx(vix["11:30"] / 100, abs=2e-3)
    # one bar added: the volume since each leg's first tick weights that bar's straddle
    assert float(chain["atm_straddle_vwap"]) == pytest.approx(float(chain["atm_straddle"]))
