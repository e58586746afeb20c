"""F&O adjustments to expected volume: expiry proximity and option moneyness.

Rationale (heuristics, not calibrated on bundled data: the bundled history has no
derivative volumes; calibrate ``fno`` in ``config/aion.yaml`` from your own records):

* **Expiry proximity.** Activity in an NSE contract concentrates in its last sessions:
  traders roll futures positions to the next month and option positions are closed or
  exercised, so the expiring contract's volume rises above its 20-day mean, most on
  expiry day itself. The multiplier is a step function of the trading days to expiry
  (XNSE calendar, :class:`aion.market.calendar.MarketCalendar`): the first bucket of
  ``fno.expiry_days`` (inclusive upper bounds) holding the count gives its
  ``fno.expiry_multipliers`` entry; further from expiry the multiplier is 1.0.
* **Moneyness.** Option volume peaks at the money and decays with distance from it; the
  multiplier is ``max(floor, exp(-|ln(strike / spot)| / (scale_pct / 100)))``, 1.0 at the
  money. Futures and equities are not adjusted (multiplier 1.0).
"""

from __future__ import annotations

import datetime as dt
import math

from aion.market.calendar import MarketCalendar
from aion.volume.config import FnoConfig


def trading_days_to_expiry(session: dt.date, expiry: dt.date, calendar: MarketCalendar) -> int:
    """XNSE trading days after ``session`` up to and including ``expiry`` (0 on expiry day).

    Negative counts never occur: an expired contract (``expiry < session``) gives 0.
    """
    if expiry <= session:
        return 0
    return len(calendar.trading_days(session + dt.timedelta(days=1), expiry))


def expiry_multiplier(days_to_expiry: int, cfg: FnoConfig) -> float:
    """Expected-volume multiplier (dimensionless) for ``days_to_expiry`` trading days."""
    for bound, mult in zip(cfg.expiry_days, cfg.expiry_multipliers, strict=True):
        if days_to_expiry <= bound:
            return mult
    return 1.0


def moneyness_multiplier(strike: float, spot: float, cfg: FnoConfig) -> float:
    """Expected-volume multiplier of an option with ``strike`` at underlying ``spot`` (rupees).

    1.0 at the money, ``cfg.moneyness_floor`` far from it; 1.0 when either price is not
    positive (no information).
    """
    if not (strike > 0 and spot > 0):
        return 1.0
    scale = cfg.moneyness_scale_pct / 100.0
    return max(cfg.moneyness_floor, math.exp(-abs(math.log(strike / spot)) / scale))


def instrument_multiplier(
    instrument_type: str,
    session: dt.date,
    expiry: dt.date | None,
    strike: float,
    spot: float,
    cfg: FnoConfig,
    calendar: MarketCalendar,
) -> float:
    """Product of the adjustments that apply to one instrument (1.0 for cash and indices).

    ``instrument_type`` is the master's column (``FUT``, ``CE``, ``PE``...); ``spot`` may be
    NaN when the underlying's price is unknown (moneyness then 1.0).
    """
    if instrument_type not in ("FUT", "CE", "PE") or expiry is None:
        return 1.0
    mult = expiry_multiplier(trading_days_to_expiry(session, expiry, calendar), cfg)
    if instrument_type in ("CE", "PE") and math.isfinite(spot):
        mult *= moneyness_multiplier(strike, spot, cfg)
    return mult
