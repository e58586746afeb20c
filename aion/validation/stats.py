"""Per-pattern statistics of forward validation, with 95% confidence intervals.

- **hit rate** = trades reaching the target first / trades with data (outcome not
  ``no_data``); its interval is Wilson's score interval (Wilson 1927, "Probable inference,
  the law of succession, and statistical inference", JASA 22:209), which stays inside
  [0, 1] and behaves at 0 or n hits, unlike the normal approximation;
- **mean R** with Student's t interval ``mean +/- t(0.975, n-1) x s / sqrt(n)`` (``s`` the
  sample standard deviation, ``ddof=1``); NaN bounds when n < 2.

Baseline draws (:func:`aion.validation.forward.random_baseline`) share their alert's
instrument and time, so they are not independent of one another: their intervals are
narrower than independent samples would give. Read them as the spread of the baseline's
mean, not as a significance test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy import stats as sps

ALL_PATTERNS = "(all)"
"""The ``pattern`` label of the row pooling every pattern."""

Z_95 = float(sps.norm.ppf(0.975))


def wilson_interval(hits: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial rate ``hits / n``; (nan, nan) when n == 0."""
    if n <= 0:
        return math.nan, math.nan
    p = hits / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, low, high) of float64 ``values`` (n,) with a 95% Student t interval.

    NaN mean for n == 0; NaN bounds for n < 2; a zero-variance sample gives low == high.
    """
    n = int(values.shape[0])
    if n == 0:
        return math.nan, math.nan, math.nan
    m = float(values.mean())
    if n < 2:
        return m, math.nan, math.nan
    half = float(sps.t.ppf(0.975, n - 1)) * float(values.std(ddof=1)) / math.sqrt(n)
    return m, m - half, m + half


def _block(df: pl.DataFrame, prefix: str) -> dict[str, float | int]:
    valid = df.filter(pl.col("outcome") != "no_data")
    n = valid.height
    hits = valid.filter(pl.col("outcome") == "target").height
    stops = valid.filter(pl.col("outcome") == "stop").height
    rate = hits / n if n else math.nan
    lo, hi = wilson_interval(hits, n)
    m, rlo, rhi = mean_interval(valid["r"].to_numpy().astype(np.float64))
    return {
        f"{prefix}n": n,
        f"{prefix}targets": hits,
        f"{prefix}stops": stops,
        f"{prefix}hit_rate": rate,
        f"{prefix}hit_lo": lo,
        f"{prefix}hit_hi": hi,
        f"{prefix}mean_r": m,
        f"{prefix}r_lo": rlo,
        f"{prefix}r_hi": rhi,
        f"{prefix}mean_mfe_r": float(valid["mfe_r"].to_numpy().mean()) if n else math.nan,
        f"{prefix}mean_mae_r": float(valid["mae_r"].to_numpy().mean()) if n else math.nan,
    }


def summarize(
    validations: pl.DataFrame,
    baseline: pl.DataFrame | None = None,
    windows: Sequence[int] | None = None,
) -> pl.DataFrame:
    """Per pattern and window: count, hit rate, mean R with 95% intervals, vs the baseline.

    Args:
        validations: :func:`aion.validation.forward.validate_alerts` output.
        baseline: :func:`aion.validation.forward.random_baseline` output (same alerts), or None.
        windows: windows to report (default: every window in ``validations``).

    Returns:
        One row per (pattern, window_min), patterns sorted by name then a pooled
        :data:`ALL_PATTERNS` row per window. Columns: ``pattern``, ``window_min``,
        ``alerts`` (distinct alerts), ``no_data``, then ``n``, ``targets``, ``stops``,
        ``hit_rate``, ``hit_lo``, ``hit_hi``, ``mean_r``, ``r_lo``, ``r_hi``,
        ``mean_mfe_r``, ``mean_mae_r`` and the same prefixed ``base_`` for the baseline
        (NaN/0 without one).
    """
    wins = sorted(set(validations["window_min"].to_list())) if windows is None else list(windows)
    patterns = sorted(set(validations["pattern"].to_list()))
    empty = validations.clear()
    rows = []
    for w in wins:
        vw = validations.filter(pl.col("window_min") == w)
        bw = baseline.filter(pl.col("window_min") == w) if baseline is not None else empty
        for pat in [*patterns, ALL_PATTERNS]:
            v = vw if pat == ALL_PATTERNS else vw.filter(pl.col("pattern") == pat)
            b = bw if pat == ALL_PATTERNS else bw.filter(pl.col("pattern") == pat)
            rows.append(
                {
                    "pattern": pat,
                    "window_min": int(w),
                    "alerts": v["alert_id"].n_unique(),
                    "no_data": v.filter(pl.col("outcome") == "no_data").height,
                    **_block(v, ""),
                    **_block(b, "base_"),
                }
            )
    return pl.DataFrame(rows)
