"""Forward validation of alerts: outcomes per alert and window, per-pattern statistics.

Public API: :func:`validate_alerts` (one row per alert x window), :func:`random_baseline`
(the random-entry comparison), :func:`summarize` (per pattern and window, with 95%
intervals) and :func:`render_report` (the Markdown report of ``aion validate``).
"""

from aion.validation.forward import (
    DEFAULT_WINDOWS_MIN,
    SCHEMA,
    AlertTrade,
    Bars,
    random_baseline,
    validate_alerts,
)
from aion.validation.report import render_report
from aion.validation.stats import ALL_PATTERNS, mean_interval, summarize, wilson_interval

__all__ = [
    "ALL_PATTERNS",
    "DEFAULT_WINDOWS_MIN",
    "SCHEMA",
    "AlertTrade",
    "Bars",
    "mean_interval",
    "random_baseline",
    "render_report",
    "summarize",
    "validate_alerts",
    "wilson_interval",
]
