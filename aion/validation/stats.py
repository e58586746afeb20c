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

**Pattern against baseline** (:func:`compare`): alerts of one day (or one instrument) move
together, so mean R and the difference ``pattern mean R - baseline mean R`` get a
**cluster bootstrap** interval (Davison & Hinkley 1997, "Bootstrap Methods and their
Application", section 3.8, resampling the top-level units): whole clusters (sessions in
``aion evaluate``, instruments in ``aion validate``) are drawn with replacement, the same
clusters for the pattern and its baseline (the baseline mirrors the pattern's alerts), each
mean is the resampled trades' mean (sum / count), and the 2.5 / 97.5 percentiles of the
resampled values bound the 95% interval. The **verdict** reads the difference's interval:
``beats`` when its lower bound is above 0, ``worse`` when its upper bound is below 0, else
``no evidence`` (also with fewer than :data:`MIN_CLUSTERS` clusters, where a percentile
interval means nothing).
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


MIN_CLUSTERS = 5
"""Fewer clusters than this give no interval and the verdict ``no evidence``: resampling 2-4
clusters gives a handful of distinct means whose percentiles are no interval at all."""

VERDICTS = ("beats", "no evidence", "worse")
"""The verdicts of :func:`verdict`, best first."""


def verdict(diff_lo: float, diff_hi: float) -> str:
    """``beats`` (lower bound > 0), ``worse`` (upper bound < 0) or ``no evidence`` (the
    interval holds 0, or a bound is NaN) for a 95% interval of pattern - baseline mean R."""
    if diff_lo > 0:
        return "beats"
    if diff_hi < 0:
        return "worse"
    return "no evidence"


def cluster_bootstrap(
    sums: np.ndarray,
    counts: np.ndarray,
    n_boot: int = 2000,
    seed: int = 20221111,
) -> np.ndarray:
    """Bootstrap replicates of ratio means over resampled clusters.

    Args:
        sums: float64 (k, c): per cluster (columns), the sum of R of each of ``k`` series
            (rows: e.g. the pattern and its baseline).
        counts: int64 (k, c): per cluster, the number of trades of each series.
        n_boot: replicates (>= 1).
        seed: seed of ``numpy.random.default_rng``; replicate ``b`` draws its ``c``
            clusters with ``rng.integers(0, c, size=c)``, in order.

    Returns:
        float64 (k, n_boot): each series' mean R (resampled sums / resampled counts) per
        replicate; NaN where a replicate holds no trade of that series.

    Raises:
        ValueError: shapes differ, no cluster, or ``n_boot < 1``.
    """
    if sums.shape != counts.shape or sums.ndim != 2 or sums.shape[1] == 0 or n_boot < 1:
        raise ValueError("sums and counts must be (k, c) with c >= 1, n_boot >= 1")
    c = sums.shape[1]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, c, size=(n_boot, c))
    weights = np.zeros((n_boot, c), np.float64)  # times each cluster is drawn
    np.add.at(weights, (np.repeat(np.arange(n_boot), c), picks.ravel()), 1.0)
    tot = weights @ sums.T  # (n_boot, k)
    num = weights @ counts.T.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (tot / num).T


def _percentiles(x: np.ndarray) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if x.shape[0] == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(x, [2.5, 97.5])
    return float(lo), float(hi)


def compare(
    validations: pl.DataFrame,
    baseline: pl.DataFrame,
    cluster: str = "session",
    n_boot: int = 2000,
    seed: int = 20221111,
) -> pl.DataFrame:
    """Per pattern and window: the pattern against its random baseline, with verdicts.

    Args:
        validations: :func:`aion.validation.forward.validate_alerts` rows with a
            ``cluster`` column (``session`` dates in ``aion evaluate``).
        baseline: :func:`aion.validation.forward.random_baseline` rows of the same alerts,
            with the same ``cluster`` column.
        cluster: the column naming each row's cluster.
        n_boot, seed: as for :func:`cluster_bootstrap`.

    Returns:
        One row per (pattern, window_min) (patterns by name, then :data:`ALL_PATTERNS`):
        ``clusters`` (with data), ``alerts``, ``n``, ``targets``, ``hit_rate``, ``hit_lo``,
        ``hit_hi`` (Wilson), ``mean_r``, ``r_lo``, ``r_hi`` (cluster bootstrap), the same
        prefixed ``base_``, ``diff`` (mean_r - base_mean_r), ``diff_lo``, ``diff_hi`` and
        ``verdict`` (:func:`verdict`). R in multiples of the stop distance.

    Raises:
        KeyError: ``cluster`` is not a column of both frames.
    """
    for df in (validations, baseline):
        if cluster not in df.columns:
            raise KeyError(f"column {cluster!r} missing")
    v = validations.filter(pl.col("outcome") != "no_data")
    b = baseline.filter(pl.col("outcome") != "no_data")
    patterns = sorted(set(validations["pattern"].to_list()))
    windows = sorted(set(validations["window_min"].to_list()))
    rows = []
    for w in windows:
        vw, bw = v.filter(pl.col("window_min") == w), b.filter(pl.col("window_min") == w)
        for pat in [*patterns, ALL_PATTERNS]:
            vp = vw if pat == ALL_PATTERNS else vw.filter(pl.col("pattern") == pat)
            bp = bw if pat == ALL_PATTERNS else bw.filter(pl.col("pattern") == pat)
            rows.append(
                {
                    "pattern": pat,
                    "window_min": int(w),
                    **_compare_one(vp, bp, cluster, n_boot, seed),
                }
            )
    return pl.DataFrame(rows)


def _compare_one(
    v: pl.DataFrame, b: pl.DataFrame, cluster: str, n_boot: int, seed: int
) -> dict[str, float | int | str]:
    keys = sorted(set(v[cluster].to_list()) | set(b[cluster].to_list()))
    out: dict[str, float | int | str] = {"clusters": len(keys), "alerts": v["alert_id"].n_unique()}
    pos = {k: i for i, k in enumerate(keys)}
    sums = np.zeros((2, len(keys)))
    counts = np.zeros((2, len(keys)), np.int64)
    for row, df in enumerate((v, b)):
        idx = np.array([pos[k] for k in df[cluster].to_list()], np.int64)
        if idx.shape[0]:
            np.add.at(sums[row], idx, df["r"].to_numpy().astype(np.float64))
            np.add.at(counts[row], idx, 1)
    for row, (df, p) in enumerate(((v, ""), (b, "base_"))):
        n = df.height
        hits = df.filter(pl.col("outcome") == "target").height
        lo, hi = wilson_interval(hits, n)
        out |= {f"{p}n": n, f"{p}targets": hits, f"{p}hit_rate": hits / n if n else math.nan,
                f"{p}hit_lo": lo, f"{p}hit_hi": hi,
                f"{p}mean_r": float(sums[row].sum() / n) if n else math.nan}  # fmt: skip
    out["diff"] = float(out["mean_r"]) - float(out["base_mean_r"])
    rlo = rhi = blo = bhi = dlo = dhi = math.nan
    if len(keys) >= MIN_CLUSTERS and int(out["n"]) and int(out["base_n"]):
        reps = cluster_bootstrap(sums, counts, n_boot, seed)
        (rlo, rhi), (blo, bhi) = _percentiles(reps[0]), _percentiles(reps[1])
        dlo, dhi = _percentiles(reps[0] - reps[1])
    out |= {"r_lo": rlo, "r_hi": rhi, "base_r_lo": blo, "base_r_hi": bhi,
            "diff_lo": dlo, "diff_hi": dhi, "verdict": verdict(dlo, dhi)}  # fmt: skip
    return out
