"""``feed:``: how the scan merges its connections."""

from __future__ import annotations

from dataclasses import dataclass

from aion.config_checks import check_at_least


@dataclass(frozen=True)
class FeedConfig:
    """``feed:``: how the scan merges its connections (:mod:`aion.pipeline.merge`).

    ``close_wait_ms``: a minute closes when every active connection's exchange clock has
    passed it; a connection silent for more than this (receive time, ms: no timed frame)
    whose clock also trails the leading one by more than this (exchange time) no longer holds
    the close back, and what it sends later of a closed minute is late. 2,500 ms: Kite stamps
    ticks to the second and a liquid instrument ticks every second, so a live connection
    silent for 2.5 s is stuck, not slow; the wait is what a stuck connection can delay every
    minute's alerts by.
    """

    close_wait_ms: int = 2500

    def __post_init__(self) -> None:
        check_at_least("feed.close_wait_ms", self.close_wait_ms, 0)
