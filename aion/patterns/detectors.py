"""Every detector, registered by importing its family module here (the one place).

Families: :mod:`aion.patterns.core` (8), :mod:`aion.patterns.ict` (6),
:mod:`aion.patterns.options` (5), :mod:`aion.patterns.profile` (2). Each detector is one
function ``(view: InstrumentView, **params) -> Signal | None`` whose docstring states
its rule and confidence formula; adding one is a function in a family module plus an
entry in ``config/patterns.yaml``.
"""

from __future__ import annotations

from aion.patterns.core import (
    breakout,
    downside_momentum,
    hidden_accumulation,
    reversal,
    upside_momentum,
    volume_breakout,
    volume_price_divergence,
    volume_spike,
)
from aion.patterns.ict import (
    fair_value_gaps,
    ict_momentum,
    killzone,
    liquidity_pools,
    optimal_trade_entry,
    premium_discount,
)
from aion.patterns.options import (
    iv_crush_play_straddle,
    kow_signal_straddle,
    market_maker_trap_detection,
    premium_collection_strategy,
    range_bound_strangle,
)
from aion.patterns.profile import volume_profile_advanced, volume_profile_breakout

__all__ = [
    "breakout",
    "downside_momentum",
    "fair_value_gaps",
    "hidden_accumulation",
    "ict_momentum",
    "iv_crush_play_straddle",
    "killzone",
    "kow_signal_straddle",
    "liquidity_pools",
    "market_maker_trap_detection",
    "optimal_trade_entry",
    "premium_collection_strategy",
    "premium_discount",
    "range_bound_strangle",
    "reversal",
    "upside_momentum",
    "volume_breakout",
    "volume_price_divergence",
    "volume_profile_advanced",
    "volume_profile_breakout",
    "volume_spike",
]
