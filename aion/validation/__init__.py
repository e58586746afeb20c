"""Forward validation of alerts: outcomes per alert and window, per-pattern statistics.

Public API: :func:`validate_alerts` (one row per alert x window), :func:`random_baseline`
(the random-entry comparison), :func:`summarize` (per pattern and window, with 95%
intervals), :func:`compare` (pattern against baseline with cluster-bootstrap intervals and a
verdict) and :func:`render_report` (the Markdown report of ``aion validate``).
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
from aion.validation.stats import (
    ALL_PATTERNS,
    VERDICTS,
    cluster_bootstrap,
    compare,
    mean_interval,
    summarize,
    verdict,
    wilson_interval,
)

__all__ = [
    "ALL_PATTERNS",
    "DEFAULT_WINDOWS_MIN",
    "SCHEMA",
    "VERDICTS",
    "AlertTrade",
    "Bars",
    "cluster_bootstrap",
    "compare",
    "mean_interval",
    "random_baseline",
    "render_report",
    "summarize",
    "validate_alerts",
    "verdict",
    "wilson_interval",
]
