"""Black-Scholes-Merton: Hull's worked examples, an independent closed form, finite
differences, put-call parity, implied-volatility round trips and the NaN reasons."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import norm

from aion.options.greeks import (
    GREEK_FIELDS,
    IV_REASONS,
    bs_price,
    greeks,
    greeks_batch,
    implied_vol,
    implied_vol_batch,
)


def ref_bsm(s: float, k: float, t: float, sigma: float, call: bool, r: float, q: float) -> dict:
    """Textbook BSM (Hull) with scipy's normal distribution; Greeks in per-year units."""
    d1 = (math.log(s / k) + (r - q + sigma**2 / 2) * t) / (sigma * math.sqrt(t))
    d2 = d1 - sigma * math.sqrt(t)
    N, n = norm.cdf, norm.pdf
    eq, er = math.exp(-q * t), math.exp(-r * t)
    if call:
        price = s * eq * N(d1) - k * er * N(d2)
        delta = eq * N(d1)
        theta = (
            -s * n(d1) * sigma * eq / (2 * math.sqrt(t)) + q * s * N(d1) * eq - r * k * er * N(d2)
        )
        rho = k * t * er * N(d2)
    else:
        price = k * er * N(-d2) - s * eq * N(-d1)
        delta = eq * (N(d1) - 1)
        theta = (
            -s * n(d1) * sigma * eq / (2 * math.sqrt(t)) - q * s * N(-d1) * eq + r * k * er * N(-d2)
        )
        rho = -k * t * er * N(-d2)
    gamma = n(d1) * eq / (s * sigma * math.sqrt(t))
    vega = s * math.sqrt(t) * n(d1) * eq
    return {
        "d1": d1,
        "d2": d2,
        "price": price,
        "delta": delta,
        "gamma": gamma,
        "theta_year": theta,
        "vega_unit": vega,
        "rho_unit": rho,
    }


def test_hull_example_call_and_put() -> None:
    # Hull, "The Black-Scholes-Merton Model", worked example: S=42, K=40, r=10%, sigma=20%,
    # T=0.5 -> d1 = 0.7693, d2 = 0.6278, c = 4.76, p = 0.81
    ref_c = ref_bsm(42, 40, 0.5, 0.2, True, 0.1, 0.0)
    assert ref_c["d1"] == pytest.approx(0.7693, abs=5e-5)
    assert ref_c["d2"] == pytest.approx(0.6278, abs=5e-5)
    c = bs_price(42, 40, 0.5, 0.2, is_call=True, rate=0.1)
    p = bs_price(42, 40, 0.5, 0.2, is_call=False, rate=0.1)
    assert c == pytest.approx(4.76, abs=5e-3)
    assert p == pytest.approx(0.81, abs=5e-3)
    assert abs(c - ref_c["price"]) < 1e-6
    assert abs(p - ref_bsm(42, 40, 0.5, 0.2, False, 0.1, 0.0)["price"]) < 1e-6


def test_hull_greek_letters_example() -> None:
    # Hull, "The Greek Letters": S=49, K=50, r=5%, sigma=20%, T=20 weeks=0.3846: price 2.40,
    # delta 0.522, gamma 0.066, theta -4.31/yr (-0.0118 per calendar day), vega 12.1
    # (0.121 per vol point), rho 8.91 (0.0891 per rate point)
    g = greeks(49, 50, 0.3846, 0.2, is_call=True, rate=0.05)
    assert g.price == pytest.approx(2.40, abs=5e-3)
    assert g.delta == pytest.approx(0.522, abs=5e-4)
    assert g.gamma == pytest.approx(0.066, abs=5e-4)
    assert g.theta == pytest.approx(-0.0118, abs=5e-5)
    assert g.theta * 365 == pytest.approx(-4.31, abs=5e-3)
    assert g.vega == pytest.approx(0.121, abs=5e-4)
    assert g.rho == pytest.approx(0.0891, abs=5e-5)
    ref = ref_bsm(49, 50, 0.3846, 0.2, True, 0.05, 0.0)
    assert abs(g.price - ref["price"]) < 1e-6
    assert abs(g.delta - ref["delta"]) < 1e-6
    assert abs(g.gamma - ref["gamma"]) < 1e-6
    assert abs(g.theta - ref["theta_year"] / 365) < 1e-6
    assert abs(g.vega - ref["vega_unit"] / 100) < 1e-6
    assert abs(g.rho - ref["rho_unit"] / 100) < 1e-6


def test_hull_index_option_with_dividend_yield() -> None:
    # Hull, "Options on Stock Indices": 2-month call, index 930, K=900, r=8%, q=3%,
    # sigma=20% -> d1 = 0.5444, d2 = 0.4628, c = 51.83
    c = bs_price(930, 900, 2 / 12, 0.2, is_call=True, rate=0.08, dividend_yield=0.03)
    assert c == pytest.approx(51.83, abs=5e-3)
    assert abs(c - ref_bsm(930, 900, 2 / 12, 0.2, True, 0.08, 0.03)["price"]) < 1e-6


GRID = list(
    itertools.product(
        (80.0, 97.0, 100.0, 104.0, 125.0),  # spot, K = 100
        (5 / 252, 0.25, 1.0),  # years
        (0.12, 0.45),  # sigma
        (True, False),
    )
)


@pytest.mark.parametrize(("s", "t", "sigma", "call"), GRID)
def test_greeks_equal_closed_form_and_finite_differences(
    s: float, t: float, sigma: float, call: bool
) -> None:
    k, r, q = 100.0, 0.065, 0.013
    g = greeks(s, k, t, sigma, is_call=call, rate=r, dividend_yield=q)
    ref = ref_bsm(s, k, t, sigma, call, r, q)
    assert g.price == pytest.approx(ref["price"], rel=1e-9, abs=1e-12)
    assert g.delta == pytest.approx(ref["delta"], rel=1e-9, abs=1e-12)
    assert g.gamma == pytest.approx(ref["gamma"], rel=1e-9, abs=1e-12)
    assert g.theta == pytest.approx(ref["theta_year"] / 365, rel=1e-9, abs=1e-12)
    assert g.vega == pytest.approx(ref["vega_unit"] / 100, rel=1e-9, abs=1e-12)
    assert g.rho == pytest.approx(ref["rho_unit"] / 100, rel=1e-9, abs=1e-12)

    def p(**kw: float) -> float:
        a = {"spot": s, "t_years": t, "sigma": sigma, "rate": r} | kw
        return bs_price(
            a["spot"], k, a["t_years"], a["sigma"], is_call=call, rate=a["rate"], dividend_yield=q
        )

    hs, hg, hv, ht = 1e-5 * s, 1e-4 * s, 1e-5, 1e-7
    fd_delta = (p(spot=s + hs) - p(spot=s - hs)) / (2 * hs)
    fd_gamma = (p(spot=s + hg) - 2 * p() + p(spot=s - hg)) / hg**2
    fd_vega = (p(sigma=sigma + hv) - p(sigma=sigma - hv)) / (2 * hv) / 100
    fd_rho = (p(rate=r + hv) - p(rate=r - hv)) / (2 * hv) / 100
    fd_theta = -(p(t_years=t + ht) - p(t_years=t - ht)) / (2 * ht) / 365
    scale = s / 100
    assert g.delta == pytest.approx(fd_delta, abs=1e-6)
    assert g.gamma == pytest.approx(fd_gamma, abs=1e-5 / scale)
    assert g.vega == pytest.approx(fd_vega, abs=1e-6 * scale)
    assert g.rho == pytest.approx(fd_rho, abs=1e-6 * scale)
    assert g.theta == pytest.approx(fd_theta, abs=1e-6 * scale)


def test_put_call_parity() -> None:
    r, q = 0.065, 0.013
    for s, k, t, sigma in itertools.product(
        (50, 100, 150), (90, 100, 110), (0.01, 0.5, 2), (0.1, 0.6)
    ):
        c = bs_price(s, k, t, sigma, is_call=True, rate=r, dividend_yield=q)
        p = bs_price(s, k, t, sigma, is_call=False, rate=r, dividend_yield=q)
        assert c - p == pytest.approx(s * math.exp(-q * t) - k * math.exp(-r * t), abs=1e-10)


def test_implied_vol_round_trip_over_moneyness_and_time() -> None:
    r, q, s = 0.065, 0.013, 18_000.0
    rows = []
    for m, t, sigma, call in itertools.product(
        (0.8, 0.9, 0.97, 1.0, 1.03, 1.1, 1.25),
        (1 / 252, 5 / 252, 21 / 252, 0.25, 1.0, 2.0),
        (0.08, 0.2, 0.6, 1.5),
        (True, False),
    ):
        k = s * m
        price = bs_price(s, k, t, sigma, is_call=call, rate=r, dividend_yield=q)
        if price < 1e-3:  # a fraction of a paisa: no market quotes it
            continue
        rows.append((price, k, t, sigma, call))
        iv = implied_vol(price, s, k, t, is_call=call, rate=r, dividend_yield=q)
        assert iv.ok, (m, t, sigma, call, iv.reason)
        back = bs_price(s, k, t, iv.value, is_call=call, rate=r, dividend_yield=q)
        assert abs(back - price) <= 1e-8, (m, t, sigma, call)
        if greeks(s, k, t, sigma, is_call=call, rate=r).vega > 1e-3:
            assert iv.value == pytest.approx(sigma, rel=1e-6)
    assert len(rows) > 250
    price, k, t, sigma, call = (np.array(c) for c in zip(*rows, strict=True))
    ivs, codes = implied_vol_batch(price, s, k, t, call, rate=r, dividend_yield=q)
    assert (codes == 0).all()
    back = greeks_batch(s, k, t, ivs, call, rate=r, dividend_yield=q)[0]
    assert np.max(np.abs(back - price)) <= 1e-8


def test_implied_vol_nan_with_reasons() -> None:
    kw = {"is_call": True, "rate": 0.1}
    # zero time
    z = implied_vol(2.0, 42, 40, 0.0, **kw)
    assert math.isnan(z.value) and z.reason == "zero time"
    # European lower bound of the call: 42 - 40 e^{-0.05} = 3.9508
    b = implied_vol(3.9, 42, 40, 0.5, **kw)
    assert math.isnan(b.value) and b.reason == "below intrinsic"
    assert implied_vol(3.96, 42, 40, 0.5, **kw).ok
    # above the no-arbitrage bound S, and above the price at 500 % volatility
    assert implied_vol(42.5, 42, 40, 0.5, **kw).reason == "above upper bound"
    top = bs_price(42, 40, 0.5, 5.0, **kw)
    assert implied_vol((top + 42) / 2, 42, 40, 0.5, **kw).reason == "above upper bound"
    # between the intrinsic bound and the price at sigma_min
    lo = bs_price(42, 40, 0.5, 0.05, **kw)
    assert implied_vol(lo - 1e-4, 42, 40, 0.5, sigma_min=0.05, **kw).reason == "below lower bound"
    # puts: bound K e^{-rT} - S e^{-qT}
    assert implied_vol(1.0, 40, 45, 0.5, is_call=False).reason == "below intrinsic"
    for bad in (-1.0, 0.0, math.nan):
        assert implied_vol(bad, 42, 40, 0.5, **kw).reason == "bad input"
    assert implied_vol(2.0, math.nan, 40, 0.5, **kw).reason == "bad input"

    # the batch solver gives the same verdicts
    prices = np.array([2.0, 3.9, 42.5, -1.0, 4.76])
    t = np.array([0.0, 0.5, 0.5, 0.5, 0.5])
    iv, code = implied_vol_batch(prices, 42.0, 40.0, t, True, rate=0.1)
    assert [IV_REASONS[c] for c in code] == [
        "zero time",
        "below intrinsic",
        "above upper bound",
        "bad input",
        "",
    ]
    assert np.isnan(iv[:4]).all() and iv[4] == pytest.approx(0.2, abs=1e-3)


def test_zero_time_and_bad_inputs() -> None:
    g = greeks(42, 40, 0.0, 0.2, is_call=True)
    assert g.price == 2.0
    assert all(math.isnan(getattr(g, f)) for f in GREEK_FIELDS[1:])
    assert bs_price(38, 40, -1.0, 0.2, is_call=False) == 2.0
    assert math.isnan(bs_price(42, 40, 0.5, math.nan, is_call=True))
    assert math.isnan(bs_price(-42, 40, 0.5, 0.2, is_call=True))
    assert math.isnan(greeks(42, 40, 0.5, 0.0, is_call=True).delta)


def test_batch_equals_scalar_and_rejects_2d() -> None:
    rng = np.random.default_rng(7)
    n = 200
    s = rng.uniform(50, 150, n)
    k = rng.uniform(50, 150, n)
    t = rng.uniform(0.001, 2, n)
    sig = rng.uniform(0.05, 1.0, n)
    call = rng.random(n) < 0.5
    out = greeks_batch(s, k, t, sig, call, rate=0.05, dividend_yield=0.01)
    assert out.shape == (6, n)
    for j in range(0, n, 17):
        g = greeks(s[j], k[j], t[j], sig[j], is_call=bool(call[j]), rate=0.05, dividend_yield=0.01)
        assert out[:, j].tolist() == [getattr(g, f) for f in GREEK_FIELDS]
    with pytest.raises(ValueError, match="1-D"):
        greeks_batch(np.ones((2, 2)), 1.0, 1.0, 0.2, True)
