"""Black-Scholes-Merton prices, Greeks and implied volatility of European options.

Source: J. C. Hull, *Options, Futures, and Other Derivatives* (the Black-Scholes-Merton
formulas with a continuous dividend yield ``q``, chapters "The Black-Scholes-Merton Model",
"Options on Stock Indices and Currencies" and "The Greek Letters")::

    d1 = (ln(S/K) + (r - q + sigma^2/2) T) / (sigma sqrt(T)),   d2 = d1 - sigma sqrt(T)
    call = S e^{-qT} N(d1) - K e^{-rT} N(d2)
    put  = K e^{-rT} N(-d2) - S e^{-qT} N(-d1)

NSE index and stock options are European-exercise, so these formulas apply directly.

Units and conventions (every function):

* ``spot``/``strike``/prices: rupees (index points for index options);
* ``t_years``: time to expiry in years (see :mod:`aion.options.expiry`), > 0;
* ``sigma``: annualised volatility as a fraction (0.20 = 20 %);
* ``rate``: continuously compounded risk-free rate, fraction per year;
  ``dividend_yield``: continuous dividend yield, fraction per year;
* ``delta``: d price / d spot; ``gamma``: d delta / d spot (per rupee);
* ``theta``: change of price per **calendar day** of passing time, the annual theta / 365
  (Hull's quoting convention);
* ``vega``: change of price per **1 volatility point** (sigma + 0.01);
* ``rho``: change of price per **1 rate point** (rate + 0.01).

At zero (or negative) time the price is the intrinsic value and every Greek is NaN; a
non-positive or non-finite input gives NaN throughout.

Implied volatility is bracketed in ``[IV_MIN, IV_MAX]``. When no volatility in the bracket
reproduces the price the result is NaN with a reason (:data:`IV_REASONS`): zero time, a price
below the no-arbitrage lower bound of a European option ("below intrinsic":
``max(S e^{-qT} - K e^{-rT}, 0)`` for a call, ``max(K e^{-rT} - S e^{-qT}, 0)`` for a put),
below the price at ``IV_MIN``, above the price at ``IV_MAX`` or above the no-arbitrage upper
bound (``S e^{-qT}`` call, ``K e^{-rT}`` put), or a bad input.

Scalar functions (:func:`bs_price`, :func:`greeks`, :func:`implied_vol`, which uses scipy's
``brentq``) serve the edges and tests; :func:`greeks_batch` and :func:`implied_vol_batch` are
Numba-compiled loops over float64 arrays for many options at once (the hot path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = [
    "GREEK_FIELDS",
    "IV_MAX",
    "IV_MIN",
    "IV_REASONS",
    "Greeks",
    "ImpliedVol",
    "bs_price",
    "greeks",
    "greeks_batch",
    "implied_vol",
    "implied_vol_batch",
]

IV_MIN = 1e-4
"""Lower volatility bound of the implied-volatility search (0.01 %)."""
IV_MAX = 5.0
"""Upper volatility bound of the implied-volatility search (500 %)."""

IV_OK = 0
IV_ZERO_TIME = 1
IV_BELOW_INTRINSIC = 2
IV_BELOW_LOWER_BOUND = 3
IV_ABOVE_UPPER_BOUND = 4
IV_BAD_INPUT = 5
IV_REASONS: tuple[str, ...] = (
    "",
    "zero time",
    "below intrinsic",
    "below lower bound",
    "above upper bound",
    "bad input",
)
"""Reason text per implied-volatility status code (index = code; code 0 = solved)."""

GREEK_FIELDS: tuple[str, ...] = ("price", "delta", "gamma", "theta", "vega", "rho")
"""Rows of :func:`greeks_batch`'s result, in order."""

_DAYS_PER_YEAR = 365.0  # theta per calendar day (Hull)
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_NAN = math.nan


@njit(cache=True, nogil=True)
def _ncdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


@njit(cache=True, nogil=True)
def _npdf(x: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


@njit(cache=True, nogil=True)
def _valid(s: float, k: float, t: float, r: float, q: float) -> bool:
    return (
        math.isfinite(s)
        and math.isfinite(k)
        and math.isfinite(t)
        and math.isfinite(r)
        and math.isfinite(q)
        and s > 0.0
        and k > 0.0
    )


@njit(cache=True, nogil=True)
def _price(s: float, k: float, t: float, r: float, q: float, sigma: float, call: bool) -> float:
    if not _valid(s, k, t, r, q) or math.isnan(sigma):
        return _NAN
    if t <= 0.0:
        return max(s - k, 0.0) if call else max(k - s, 0.0)
    if not (sigma > 0.0 and math.isfinite(sigma)):
        return _NAN
    sq = sigma * math.sqrt(t)
    d1 = (math.log(s / k) + (r - q + 0.5 * sigma * sigma) * t) / sq
    d2 = d1 - sq
    fs = s * math.exp(-q * t)
    fk = k * math.exp(-r * t)
    if call:
        return fs * _ncdf(d1) - fk * _ncdf(d2)
    return fk * _ncdf(-d2) - fs * _ncdf(-d1)


@njit(cache=True, nogil=True)
def _greeks_into(
    out: np.ndarray,
    j: int,
    s: float,
    k: float,
    t: float,
    r: float,
    q: float,
    sigma: float,
    call: bool,
) -> None:
    """Write price, delta, gamma, theta/day, vega/point, rho/point of one option to out[:, j]."""
    out[0, j] = _price(s, k, t, r, q, sigma, call)
    if not (_valid(s, k, t, r, q) and t > 0.0 and sigma > 0.0 and math.isfinite(sigma)):
        for i in range(1, 6):
            out[i, j] = _NAN
        return
    sqt = math.sqrt(t)
    sq = sigma * sqt
    d1 = (math.log(s / k) + (r - q + 0.5 * sigma * sigma) * t) / sq
    d2 = d1 - sq
    eq = math.exp(-q * t)
    er = math.exp(-r * t)
    pdf = _npdf(d1)
    decay = -s * pdf * sigma * eq / (2.0 * sqt)
    if call:
        nd1 = _ncdf(d1)
        nd2 = _ncdf(d2)
        out[1, j] = eq * nd1
        theta = decay + q * s * nd1 * eq - r * k * er * nd2
        rho = k * t * er * nd2
    else:
        nmd1 = _ncdf(-d1)
        nmd2 = _ncdf(-d2)
        out[1, j] = -eq * nmd1
        theta = decay - q * s * nmd1 * eq + r * k * er * nmd2
        rho = -k * t * er * nmd2
    out[2, j] = eq * pdf / (s * sq)
    out[3, j] = theta / _DAYS_PER_YEAR
    out[4, j] = s * eq * pdf * sqt / 100.0
    out[5, j] = rho / 100.0


@njit(cache=True, nogil=True)
def _iv_precheck(price: float, s: float, k: float, t: float, r: float, q: float, call: bool) -> int:
    """Status code before searching: IV_OK when a root may exist in the bracket."""
    if not (_valid(s, k, t, r, q) and math.isfinite(price) and price > 0.0):
        return IV_BAD_INPUT
    if t <= 0.0:
        return IV_ZERO_TIME
    fs = s * math.exp(-q * t)
    fk = k * math.exp(-r * t)
    lower = max(fs - fk, 0.0) if call else max(fk - fs, 0.0)
    upper = fs if call else fk
    if price < lower:
        return IV_BELOW_INTRINSIC
    if price >= upper:
        return IV_ABOVE_UPPER_BOUND
    return IV_OK


@njit(cache=True, nogil=True)
def _iv_one(
    price: float,
    s: float,
    k: float,
    t: float,
    r: float,
    q: float,
    call: bool,
    lo: float,
    hi: float,
) -> tuple[float, int]:
    """Safeguarded Newton-bisection on sigma in [lo, hi]; (iv, status code)."""
    code = _iv_precheck(price, s, k, t, r, q, call)
    if code != IV_OK:
        return _NAN, code
    f_lo = _price(s, k, t, r, q, lo, call) - price
    f_hi = _price(s, k, t, r, q, hi, call) - price
    if f_lo > 0.0:
        return _NAN, IV_BELOW_LOWER_BOUND
    if f_hi < 0.0:
        return _NAN, IV_ABOVE_UPPER_BOUND
    if f_lo == 0.0:
        return lo, IV_OK
    if f_hi == 0.0:
        return hi, IV_OK
    tol = 1e-13 * max(price, 1.0)
    # Brenner-Subrahmanyam ATM approximation as the first guess
    sigma = price / s * math.sqrt(2.0 * math.pi / t)
    if not lo < sigma < hi:
        sigma = 0.5 * (lo + hi)
    sqt = math.sqrt(t)
    for _ in range(200):
        f = _price(s, k, t, r, q, sigma, call) - price
        if abs(f) <= tol:
            return sigma, IV_OK
        if f > 0.0:
            hi = sigma
        else:
            lo = sigma
        d1 = (math.log(s / k) + (r - q + 0.5 * sigma * sigma) * t) / (sigma * sqt)
        vega = s * math.exp(-q * t) * _npdf(d1) * sqt
        step = sigma - f / vega if vega > 0.0 else -1.0
        sigma = step if lo < step < hi else 0.5 * (lo + hi)
        if hi - lo <= 1e-15 * hi:
            return sigma, IV_OK
    return sigma, IV_OK


@njit(cache=True, nogil=True)
def _greeks_loop(
    s: np.ndarray,
    k: np.ndarray,
    t: np.ndarray,
    sigma: np.ndarray,
    call: np.ndarray,
    r: float,
    q: float,
    out: np.ndarray,
) -> None:
    for j in range(s.shape[0]):
        _greeks_into(out, j, s[j], k[j], t[j], r, q, sigma[j], call[j])


@njit(cache=True, nogil=True)
def _iv_loop(
    price: np.ndarray,
    s: np.ndarray,
    k: np.ndarray,
    t: np.ndarray,
    call: np.ndarray,
    r: float,
    q: float,
    lo: float,
    hi: float,
    iv: np.ndarray,
    code: np.ndarray,
) -> None:
    for j in range(s.shape[0]):
        v, c = _iv_one(price[j], s[j], k[j], t[j], r, q, call[j], lo, hi)
        iv[j] = v
        code[j] = c


# -- scalar API ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Greeks:
    """Price and Greeks of one option (units in the module docstring; NaN when undefined)."""

    price: float
    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float


@dataclass(frozen=True, slots=True)
class ImpliedVol:
    """An implied volatility (fraction per year) or NaN with ``reason`` (:data:`IV_REASONS`)."""

    value: float
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when a volatility reproducing the price was found."""
        return not self.reason


def bs_price(
    spot: float,
    strike: float,
    t_years: float,
    sigma: float,
    *,
    is_call: bool,
    rate: float = 0.0,
    dividend_yield: float = 0.0,
) -> float:
    """Black-Scholes-Merton price (rupees) of a European call or put; intrinsic at t <= 0."""
    return float(
        _price(
            float(spot),
            float(strike),
            float(t_years),
            float(rate),
            float(dividend_yield),
            float(sigma),
            bool(is_call),
        )
    )


def greeks(
    spot: float,
    strike: float,
    t_years: float,
    sigma: float,
    *,
    is_call: bool,
    rate: float = 0.0,
    dividend_yield: float = 0.0,
) -> Greeks:
    """Price, delta, gamma, theta (per calendar day), vega (per vol point), rho (per rate point)."""
    out = np.empty((6, 1), np.float64)
    _greeks_into(
        out,
        0,
        float(spot),
        float(strike),
        float(t_years),
        float(rate),
        float(dividend_yield),
        float(sigma),
        bool(is_call),
    )
    return Greeks(*(float(x) for x in out[:, 0]))


def implied_vol(
    price: float,
    spot: float,
    strike: float,
    t_years: float,
    *,
    is_call: bool,
    rate: float = 0.0,
    dividend_yield: float = 0.0,
    sigma_min: float = IV_MIN,
    sigma_max: float = IV_MAX,
) -> ImpliedVol:
    """Volatility in ``[sigma_min, sigma_max]`` whose BSM price equals ``price`` (rupees).

    Solved with scipy's ``brentq`` (bracketing, guaranteed convergence) to a volatility
    tolerance of 1e-15. Returns NaN with a reason when no volatility in the bracket reproduces
    the price (see the module docstring); never raises for market data.
    """
    p, s, k, t = float(price), float(spot), float(strike), float(t_years)
    r, q, call = float(rate), float(dividend_yield), bool(is_call)
    code = int(_iv_precheck(p, s, k, t, r, q, call))
    if code != IV_OK:
        return ImpliedVol(math.nan, IV_REASONS[code])

    def excess(sig: float) -> float:
        return float(_price(s, k, t, r, q, sig, call)) - p

    f_lo, f_hi = excess(sigma_min), excess(sigma_max)
    if f_lo > 0.0:
        return ImpliedVol(math.nan, IV_REASONS[IV_BELOW_LOWER_BOUND])
    if f_hi < 0.0:
        return ImpliedVol(math.nan, IV_REASONS[IV_ABOVE_UPPER_BOUND])
    if f_lo == 0.0:
        return ImpliedVol(sigma_min)
    if f_hi == 0.0:
        return ImpliedVol(sigma_max)
    from scipy.optimize import brentq  # scalar edge path only: keeps SciPy out of a scan

    root = brentq(excess, sigma_min, sigma_max, xtol=1e-15, rtol=1e-15, maxiter=200)
    return ImpliedVol(float(root))


# -- vectorised API ------------------------------------------------------------------------


def _length(*arrays: npt.ArrayLike) -> int:
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    if len(shape) > 1:
        raise ValueError(f"expected 1-D arrays or scalars, got broadcast shape {shape}")
    return int(shape[0]) if shape else 1


def _f64(x: npt.ArrayLike, n: int) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return np.ascontiguousarray(np.broadcast_to(a, (n,)))


def greeks_batch(
    spot: npt.ArrayLike,
    strike: npt.ArrayLike,
    t_years: npt.ArrayLike,
    sigma: npt.ArrayLike,
    is_call: npt.ArrayLike,
    *,
    rate: float = 0.0,
    dividend_yield: float = 0.0,
) -> np.ndarray:
    """Price and Greeks of n options at once (Numba loop, same formulas as :func:`greeks`).

    Inputs: float64 arrays of shape (n,) (scalars broadcast), ``is_call`` bool (n,);
    ValueError for arrays of more than one dimension. Returns float64 (6, n), rows in
    :data:`GREEK_FIELDS` order (price, delta, gamma, theta per calendar day, vega per vol
    point, rho per rate point); NaN where undefined.
    """
    n = _length(spot, strike, t_years, sigma, is_call)
    out = np.empty((6, n), np.float64)
    call = np.ascontiguousarray(np.broadcast_to(np.asarray(is_call, dtype=np.bool_), (n,)))
    _greeks_loop(
        _f64(spot, n),
        _f64(strike, n),
        _f64(t_years, n),
        _f64(sigma, n),
        call,
        float(rate),
        float(dividend_yield),
        out,
    )
    return out


def implied_vol_batch(
    price: npt.ArrayLike,
    spot: npt.ArrayLike,
    strike: npt.ArrayLike,
    t_years: npt.ArrayLike,
    is_call: npt.ArrayLike,
    *,
    rate: float = 0.0,
    dividend_yield: float = 0.0,
    sigma_min: float = IV_MIN,
    sigma_max: float = IV_MAX,
) -> tuple[np.ndarray, np.ndarray]:
    """Implied volatilities of n options (Numba safeguarded Newton-bisection).

    Inputs: float64 (n,) (scalars broadcast), ``is_call`` bool (n,). Returns ``(iv, code)``:
    float64 (n,) volatility fractions (NaN when unsolved) and int8 (n,) status codes, text in
    :data:`IV_REASONS` (0 = solved). Converges to a price error <= 1e-13 x max(price, 1).
    """
    n = _length(price, spot, strike, t_years, is_call)
    iv = np.empty(n, np.float64)
    code = np.empty(n, np.int8)
    call = np.ascontiguousarray(np.broadcast_to(np.asarray(is_call, dtype=np.bool_), (n,)))
    _iv_loop(
        _f64(price, n),
        _f64(spot, n),
        _f64(strike, n),
        _f64(t_years, n),
        call,
        float(rate),
        float(dividend_yield),
        float(sigma_min),
        float(sigma_max),
        iv,
        code,
    )
    return iv, code
