"""Bulk number text of the volume analytics against ``repr``/``json.dumps`` of the same values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aion.store.encode import render_bins, render_cells, render_rows
from aion.volume.config import ProfileConfig
from aion.volume.profile import VolumeProfiles


def render_fields(values: np.ndarray, decimals: list[int], nan_text: str) -> list[str]:
    """Every cell's text of :func:`render_cells`, row-major."""
    cells = render_cells(values, decimals, nan_text)
    n, m = values.shape
    return [str(cells.value(i, j)) for i in range(n) for j in range(m)]


def test_numbers_are_the_repr_of_numpy_round() -> None:
    rng = np.random.default_rng(7)
    x = np.concatenate(
        [
            rng.random(20_000) * 1_000,
            rng.random(5_000) * 1e8,
            -rng.random(5_000) * 50,
            np.round(rng.random(5_000) * 3_000 / 0.05) * 0.05,  # tick-grid prices
            np.array([0.0, 1.0, 0.5, 2.5, 123_456_789.0, 1e-4, 999_999_999.5]),
        ]
    )
    for d in (6, 4, 2):
        got = render_fields(x[:, None], [d], "nan")
        want = [repr(float(v) + 0.0) for v in np.round(x, d)]  # + 0.0: "-0.0" is "0.0"
        assert got == want
    ints = np.array([0.0, 7.0, -3.0, 2.0**52])
    assert render_fields(ints[:, None], [-1], "nan") == ["0", "7", "-3", str(2**52)]


def test_small_and_non_finite_values() -> None:
    got = render_fields(np.array([[3e-5, np.nan, np.inf]]), [6, 6, -1], "null")
    assert got == ["0.00003", "null", "null"]
    assert float(got[0]) == 3e-5


def test_rows_are_valid_json_with_the_literals() -> None:
    values = np.array([[1.0, 2.5, np.nan], [-4.0, 1e-7, 3.0]])
    rows = render_rows(['{"a": ', ', "b": ', ', "c": ', "}"], values, [-1, 6, 6], "null")
    assert [json.loads(r) for r in rows] == [{"a": 1, "b": 2.5, "c": None},
                                             {"a": -4, "b": 0.0, "c": 3.0}]  # fmt: skip
    with pytest.raises(ValueError):
        render_rows(["\n", ""], values[:, :1], [6], "null")
    with pytest.raises(ValueError):
        render_rows(["", ""], values, [6], "null")  # 3 columns, 2 literals


@pytest.mark.parametrize("seed", range(3))
def test_bins_equal_json_dumps_of_the_profile_arrays(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 60
    ticks = rng.choice([0.05, 0.01, 0.0025, 1.0], n)
    p = VolumeProfiles(ticks, ProfileConfig(max_bins=32))
    m = 4_000
    slots = rng.integers(0, n - 3, m)
    base = 5.0 + rng.integers(0, 400_000, n) * ticks
    price = base[slots] + rng.integers(-60, 61, m) * ticks[slots]
    p.update(slots, np.full(m, 20221111), price, rng.integers(1, 10_000, m))
    texts = render_bins(np.arange(n), p.vol, p.lo, p.ticks_per_bin * p.tick)
    for s in range(n):
        prices, vols = p.arrays(s)
        want = json.dumps([[float(a), int(b)] for a, b in zip(prices, vols, strict=True) if b])
        assert texts[s] == want
    assert texts[-1] == "[]"
