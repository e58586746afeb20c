"""ChainTracker: IV and Greeks on option ticks, the 5-strike chain view, straddle VWAP."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from scipy.stats import norm

from aion.instruments.master import Instrument
from aion.market.calendar import MarketCalendar
from aion.market.time import from_ist
from aion.options.chain import CHAIN_ARRAY_KEYS, ChainTracker
from aion.options.config import OptionsConfig
from aion.store import keys, layout


def _latest(tracker: ChainTracker, i: int) -> dict[str, str]:
    """The option hash the store writes for option index ``i`` of ``tracker``."""
    rows = tracker.option_rows(np.array([i], np.int64))
    return layout.state_hashes(rows)[keys.option(rows.symbols[0])]


DAY = dt.date(2022, 11, 11)
DATE = 20221111
EXPIRY = dt.date(2022, 11, 24)
STRIKES = [18000, 18050, 18100, 18150, 18200, 18250, 18300]
CFG = OptionsConfig(rate=0.065, dividend_yield=0.0, trading_days_per_year=252.0)


def call_price(s: float, k: float, t: float, sigma: float, r: float) -> float:
    d1 = (math.log(s / k) + (r + sigma**2 / 2) * t) / (sigma * math.sqrt(t))
    return s * norm.cdf(d1) - k * math.exp(-r * t) * norm.cdf(d1 - sigma * math.sqrt(t))


def put_price(s: float, k: float, t: float, sigma: float, r: float) -> float:
    return call_price(s, k, t, sigma, r) - s + k * math.exp(-r * t)  # put-call parity


def universe() -> list[Instrument]:
    out = [
        Instrument(256265, 1001, "NIFTY 50", "NIFTY 50", 0, None, 0, 0, 0, "EQ", "INDICES", "NSE")
    ]
    tok = 1000
    for k in STRIKES:
        for kind in ("CE", "PE"):
            tok += 1
            out.append(
                Instrument(
                    tok,
                    tok,
                    f"NIFTY22NOV{k}{kind}",
                    "NIFTY",
                    0,
                    EXPIRY,
                    float(k),
                    0.05,
                    50,
                    kind,
                    "NFO-OPT",
                    "NFO",
                )
            )
    out.append(Instrument(5, 5, "RELIANCE", "RELIANCE", 0, None, 0, 0.05, 1, "EQ", "NSE", "NSE"))
    return out


@pytest.fixture
def tracker() -> ChainTracker:
    return ChainTracker(universe(), MarketCalendar(), CFG)


def years_left(ts: int) -> float:
    """Trading years from ``ts`` (on DAY, 09:15-15:30 IST) to the expiry: the rest of the
    6.25 h session plus 9 full sessions (14-18 and 21-24 Nov), over 252 days a year."""
    return ((from_ist(DAY, 15, 30) - ts) / 3600 / 6.25 + 9) / 252


def option_slots() -> list[int]:
    return [s for s, i in enumerate(universe()) if i.instrument_type in ("CE", "PE")]


def batch(
    tick_ts: int,
    spot: float,
    sigma: float,
    vol: int,
    priced_at: int | None = None,
    inc: int | None = None,
):  # type: ignore[no-untyped-def]
    """Tick columns of one snapshot at ``tick_ts`` (``ChainTracker.on_ticks`` order): the
    index, then every option priced at ``sigma`` with time to expiry from ``priced_at``
    (default ``tick_ts``), day volume ``vol``, incremental volume ``inc`` (default ``vol``:
    the whole day seen) and OI 100 x its position."""
    t = years_left(priced_at or tick_ts)
    insts = universe()
    slots, prices = [0], [spot]
    for s in option_slots():
        f = call_price if insts[s].instrument_type == "CE" else put_price
        slots.append(s)
        prices.append(f(spot, insts[s].strike, t, sigma, CFG.rate))
    n = len(slots)
    return (
        np.array(slots, np.int64),
        np.full(n, tick_ts, np.int64),
        np.full(n, DATE, np.int64),
        np.array(prices),
        np.full(n, vol, np.int64),
        np.full(n, vol if inc is None else inc, np.int64),
        np.arange(n, dtype=np.int64) * 100,
    )


def concat(*batches):  # type: ignore[no-untyped-def]
    return tuple(np.concatenate(cols) for cols in zip(*batches, strict=True))


def brentq_iv(price: float, s: float, k: float, t: float, call: bool) -> float:
    from scipy.optimize import brentq

    f = call_price if call else put_price
    return float(brentq(lambda v: f(s, k, t, v, CFG.rate) - price, 1e-4, 5.0, xtol=1e-14))


def test_greeks_at_the_bar_close_recover_the_volatility(tracker: ChainTracker) -> None:
    end = from_ist(DAY, 10, 0)
    tick = end - 10  # the snapshot at 09:59:50 is priced for the bar's end, 10:00:00
    assert tracker.has_options and tracker.has_chain(0) and not tracker.has_chain(15)
    updated = tracker.on_ticks(*batch(tick, 18160.0, 0.155, 1000, priced_at=end))
    assert len(updated) == 2 * len(STRIKES)
    t = years_left(end)
    insts = universe()
    for s in option_slots():
        view = tracker.option_view(s, end)
        assert view["iv"] == pytest.approx(0.155, abs=1e-9)
        assert view["dte_days"] == pytest.approx(5.5 / 6.25 + 9, abs=1e-9)
        assert view["dte_years"] == pytest.approx(t, abs=1e-12)
        k = view["strike"]
        assert k == insts[s].strike
        d1 = (math.log(18160 / k) + (CFG.rate + 0.155**2 / 2) * t) / (0.155 * math.sqrt(t))
        call = insts[s].instrument_type == "CE"
        assert view["delta"] == pytest.approx(norm.cdf(d1) - (0 if call else 1), abs=1e-7)
        assert view["gamma"] == pytest.approx(norm.pdf(d1) / (18160 * 0.155 * math.sqrt(t)))
        # the bar ending at the snapshot's own second does not see it
        assert math.isnan(tracker.option_view(s, tick)["iv"])
    assert tracker.option_view(0, end) == {} and tracker.option_view(15, end) == {}
    # the published (latest) state: IV at the feed's exchange clock, 09:59:50
    writes = layout.state_hashes(tracker.option_rows(updated))
    st = writes[keys.option("NFO:NIFTY22NOV18150CE")]
    price = float(st["last_price"])
    want = brentq_iv(float(tracker.last_price[6]), 18160.0, 18150.0, years_left(tick), True)
    assert float(st["iv"]) == pytest.approx(want, abs=2e-6) and st["iv_reason"] == ""
    assert price == pytest.approx(call_price(18160.0, 18150.0, t, 0.155, CFG.rate), abs=0.01)
    assert st["expiry"] == "2022-11-24" and st["underlying"] == "NSE:NIFTY 50"
    assert st["exchange_timestamp"] == str(tick)
    assert float(st["dte_days"]) == pytest.approx(5.5 / 6.25 + 9 + 10 / 22500, abs=1e-6)


def test_chain_view_centres_on_atm_and_is_a_pure_read(tracker: ChainTracker) -> None:
    end = from_ist(DAY, 10, 0)
    tracker.on_ticks(*batch(end - 10, 18160.0, 0.155, 1000, priced_at=end))
    tracker.advance_straddle_vwap(0, end)
    chain = tracker.chain_view(0, end)
    assert set(CHAIN_ARRAY_KEYS) <= set(chain)
    assert chain["strike"].tolist() == [18050, 18100, 18150, 18200, 18250]
    for key in CHAIN_ARRAY_KEYS:
        assert chain[key].shape == (5,)
    np.testing.assert_allclose(chain["ce_iv"], 0.155, atol=1e-9)
    np.testing.assert_allclose(chain["pe_iv"], 0.155, atol=1e-9)
    ce, pe = chain["ce_last_price"][2], chain["pe_last_price"][2]
    assert ce == pytest.approx(call_price(18160, 18150, years_left(end), 0.155, CFG.rate))
    assert float(chain["atm_straddle"]) == pytest.approx(ce + pe)
    assert float(chain["spot"]) == 18160.0
    assert np.all(np.diff(chain["ce_delta"]) < 0) and np.all(chain["pe_delta"] < 0)
    assert chain["ce_oi"].tolist() == [300, 500, 700, 900, 1100]  # OI 100 x tick position
    assert chain["pe_oi"].tolist() == [400, 600, 800, 1000, 1200]
    assert chain["ce_volume"].tolist() == [1000] * 5
    # the first bar's volume since the session start weights the first straddle
    assert float(chain["atm_straddle_vwap"]) == pytest.approx(ce + pe)
    # a pure read: asking again changes nothing
    again = tracker.chain_view(0, end)
    for key, value in chain.items():
        np.testing.assert_array_equal(again[key], value)
    # a minute later: vols up, 500 more units traded in each leg
    later = end + 60
    tracker.on_ticks(*batch(later - 10, 18160.0, 0.17, 1500, priced_at=later, inc=500))
    before = tracker.chain_view(0, later)  # not advanced yet: still the first bar's VWAP
    assert float(before["atm_straddle_vwap"]) == pytest.approx(ce + pe)
    tracker.advance_straddle_vwap(0, later)
    chain2 = tracker.chain_view(0, later)
    s2 = float(chain2["atm_straddle"])
    assert s2 > ce + pe
    expected = ((ce + pe) * 2000 + s2 * 1000) / 3000
    assert float(chain2["atm_straddle_vwap"]) == pytest.approx(expected)
    # at the grid's edge the chain is NaN-padded: spot 18010 -> ATM 18000 at index 2
    tracker.on_ticks(*batch(later + 50, 18010.0, 0.17, 1500, inc=0))
    edge = tracker.chain_view(0, later + 60)
    assert np.isnan(edge["strike"][:2]).all() and edge["strike"][2] == 18000
    assert np.isnan(edge["ce_iv"][:2]).all()


def test_a_tick_after_the_bar_end_is_not_seen() -> None:
    """One batch runs past the bar's end (10:00): the snapshot at 10:00:05 and a tick stamped
    09:59:58 that arrives after it (out of order, after the bar closed) are not in the view of
    the bar ending at 10:00, which equals the view of a tracker that got only the 09:59:50
    ticks; the bar ending at 10:01 sees them."""
    end = from_ist(DAY, 10, 0)
    first = batch(end - 10, 18160.0, 0.155, 1000, priced_at=end)
    after = batch(end + 5, 18230.0, 0.2, 1500, inc=500)
    late = (np.array([7, 0]), np.array([end - 2] * 2), np.array([DATE] * 2),
            np.array([1.5, 18300.0]), np.array([9999, 0]), np.array([0, 0]),
            np.array([1, 0]))  # fmt: skip  # slot 7: 18150 CE
    alone = ChainTracker(universe(), MarketCalendar(), CFG)
    alone.on_ticks(*first)
    both = ChainTracker(universe(), MarketCalendar(), CFG)
    both.on_ticks(*concat(first, after, late))
    want, got = alone.chain_view(0, end), both.chain_view(0, end)
    assert float(got["spot"]) == 18160.0
    assert got["ce_volume"].tolist() == [1000] * 5
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    for s in option_slots():
        assert both.option_view(s, end) == alone.option_view(s, end)
    # the next bar's close sees everything that arrived before it, in arrival order
    nxt = both.chain_view(0, end + 60)
    assert float(nxt["spot"]) == 18300.0
    assert nxt["strike"][2] == 18300
    assert nxt["ce_volume"][:3].tolist() == [1500] * 3 and np.isnan(nxt["ce_volume"][3:]).all()
    assert both.option_view(7, end + 60)["strike"] == 18150
    assert _latest(both, int(both.option_index[7]))["last_price"] == "1.50"  # latest, published


def test_views_do_not_depend_on_batching() -> None:
    """A seeded stream of index and option ticks (some out of order) cut into batches in
    several ways; after each batch, the views of the bars it closed (each minute end the
    exchange clock passed) are the same for every cut and hold, per instrument, the last
    tick that arrived before the first tick at or after the bar's end (a plain loop)."""
    rng = np.random.default_rng(7)
    opts = option_slots()
    n = 3000
    ts = from_ist(DAY, 9, 15) + np.cumsum(rng.integers(0, 3, n))
    late = rng.random(n) < 0.05
    ts[late] -= rng.integers(1, 20, late.sum())  # out-of-order stamps
    slots = np.where(rng.random(n) < 0.3, 0, rng.choice(opts, n))
    price = np.where(slots == 0, 18160 + np.cumsum(rng.normal(0, 5, n)), rng.uniform(20, 300, n))
    inc = rng.integers(0, 100, n)
    volume = np.cumsum(inc)
    oi = rng.integers(0, 10**6, n)
    date = np.full(n, DATE, np.int64)
    stream = (slots.astype(np.int64), ts.astype(np.int64), date, price.round(2), volume, inc, oi)
    View = tuple[int, dict[str, list[float]], list[dict[str, float]]]

    def views(cuts: list[int]) -> list[View]:
        tr = ChainTracker(universe(), MarketCalendar(), CFG)
        out: list[View] = []
        clock = 0
        for lo, hi in zip([0, *cuts], [*cuts, n], strict=True):
            tr.on_ticks(*(c[lo:hi] for c in stream))
            new_clock = max(clock, int(ts[lo:hi].max()))
            first = (max(clock, int(ts[0])) // 60 + 1) * 60
            for end in range(first, new_clock + 1, 60):  # the bars this batch closed
                tr.advance_straddle_vwap(0, end)
                chain = {k: np.atleast_1d(v).tolist() for k, v in tr.chain_view(0, end).items()}
                out.append((end, chain, [tr.option_view(s, end) for s in opts]))
            clock = new_clock
        return out

    one = views(list(range(1, n)))
    assert len(one) > 40
    for cuts in ([], sorted(rng.choice(np.arange(1, n), 40, replace=False).tolist())):
        assert repr(views(cuts)) == repr(one)  # repr: NaN == NaN
    # reference: each instrument's last tick before the first tick at or after each end
    run_max = np.maximum.accumulate(ts)
    insts = universe()
    side_of = {(insts[s].strike, insts[s].instrument_type): s for s in opts}
    checked = 0
    for end, chain, _options in one:
        last: dict[int, int] = {}
        for i in range(int(np.searchsorted(run_max, end, "left"))):
            last[int(slots[i])] = i
        assert chain["spot"] == [price.round(2)[last[0]]]
        for j, k in enumerate(chain["strike"]):
            for side in ("CE", "PE") if k == k else ():  # NaN: beyond the grid's edge
                col = side.lower()
                i = last.get(side_of[(k, side)], -1)
                if i < 0:
                    assert math.isnan(chain[f"{col}_last_price"][j])
                    continue
                assert chain[f"{col}_last_price"][j] == price.round(2)[i]
                assert chain[f"{col}_volume"][j] == volume[i]
                assert chain[f"{col}_oi"][j] == oi[i]
                checked += 1
    assert checked > 300


def test_expired_chain_and_missing_underlying() -> None:
    insts = universe()[1:]  # no NIFTY 50 slot: no spot, no Greeks
    tr = ChainTracker(insts, MarketCalendar(), CFG)
    now = from_ist(DAY, 10, 0)
    upd = tr.on_ticks(
        np.array([0], np.int64), np.array([now]), np.array([DATE]), np.array([120.0]),
        np.array([10]), np.array([10]), np.array([5]),
    )  # fmt: skip
    assert upd.tolist() == [0]
    assert math.isnan(tr.option_view(0, now + 60)["iv"])
    assert _latest(tr, 0)["iv_reason"] == "bad input"
    tr2 = ChainTracker(universe(), MarketCalendar(), CFG)
    after = from_ist(EXPIRY, 15, 30)
    tr2.on_ticks(
        np.array([0, 1], np.int64),
        np.array([after, after]),
        np.array([20221124, 20221124]),
        np.array([18100.0, 50.0]),
        np.array([0, 10]),
        np.array([0, 10]),
        np.array([0, 5]),
    )
    assert _latest(tr2, 0)["iv_reason"] == "zero time"
    assert tr2.chain_view(0, after + 60) == {}
    tr2.advance_straddle_vwap(0, after + 60)  # no chain: nothing to add
    assert tr2.option_view(1, after + 60)["dte_days"] == 0.0


def test_straddle_vwap_weights_only_volume_seen_after_the_start(tracker: ChainTracker) -> None:
    """A scan that starts mid-session first sees each leg at day volume 1000 with incremental
    volume 0 (the VolumeStateManager's first sight): the first bar adds no weight (VWAP NaN),
    the second is weighted with the 500 units traded in each leg after the start only, and a
    new session restarts the VWAP and the legs' seen volume."""
    end = from_ist(DAY, 10, 0)
    tracker.on_ticks(*batch(end - 10, 18160.0, 0.155, 1000, priced_at=end, inc=0))
    tracker.advance_straddle_vwap(0, end)
    assert math.isnan(float(tracker.chain_view(0, end)["atm_straddle_vwap"]))
    later = end + 60
    tracker.on_ticks(*batch(later - 10, 18160.0, 0.17, 1500, priced_at=later, inc=500))
    tracker.advance_straddle_vwap(0, later)
    chain = tracker.chain_view(0, later)
    assert float(chain["atm_straddle_vwap"]) == pytest.approx(float(chain["atm_straddle"]))
    third = later + 60
    tracker.on_ticks(*batch(third - 10, 18160.0, 0.2, 1800, priced_at=third, inc=300))
    tracker.advance_straddle_vwap(0, third)
    s2, s3 = float(chain["atm_straddle"]), float(tracker.chain_view(0, third)["atm_straddle"])
    want = (s2 * 1000 + s3 * 600) / 1600
    assert float(tracker.chain_view(0, third)["atm_straddle_vwap"]) == pytest.approx(want)
    # the next session restarts the VWAP; each leg's seen volume restarts at its first tick
    # of the new date (800 units seen on the 11th must not weigh the 14th's first bar)
    day2 = from_ist(dt.date(2022, 11, 14), 9, 20)
    weights = []
    for k, (sigma, inc) in enumerate([(0.2, 200), (0.3, 100)]):
        cols = list(batch(third - 10, 18160.0, sigma, 200 + 100 * k, priced_at=third, inc=inc))
        cols[1] = np.full(cols[1].shape, day2 + 60 * k - 10, np.int64)
        cols[2] = np.full(cols[2].shape, 20221114, np.int64)
        tracker.on_ticks(*cols)
        tracker.advance_straddle_vwap(0, day2 + 60 * k)
        weights.append((float(tracker.chain_view(0, day2 + 60 * k)["atm_straddle"]), 2 * inc))
    (sa, wa), (sb, wb) = weights
    assert sb > sa
    got = float(tracker.chain_view(0, day2 + 60)["atm_straddle_vwap"])
    assert got == pytest.approx((sa * wa + sb * wb) / (wa + wb))
