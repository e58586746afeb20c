"""Cells (:func:`aion.store.encode.render_cells`) hold exactly the text of the str-based forms."""

from __future__ import annotations

import numpy as np

from aion.store.encode import hstack_cells, render_cells, text_cells


def test_fixed_columns_equal_python_format_including_ties() -> None:
    rng = np.random.default_rng(11)
    x = np.concatenate([
        rng.uniform(-1e4, 1e4, 20_000),
        np.round(rng.uniform(0, 5000, 20_000) / 0.05) * 0.05,  # the 0.05 rupee tick grid
        rng.integers(0, 10**6, 5000) / 1000 + 0.005,  # half-way at 2 decimals (not exact)
        [0.125, 0.375, 2.5, 1.005, 2.675, 1.115, -0.001, -0.0, 0.0, 1e-9, 123456789.995],
        [np.nan, np.inf, -np.inf],
    ])  # fmt: skip
    for d in (0, 2, 4):
        cells = render_cells(x[:, None], [d], "ignored", fixed=[True])
        got = [cells.value(i, 0) for i in range(x.shape[0])]
        assert got == [format(v, f".{d}f") for v in x.tolist()]


def test_cells_hold_each_value_and_absent_cells_read_none() -> None:
    rng = np.random.default_rng(2)
    v = rng.choice([np.nan, 1.5, 1e-5, 593.45, -7.0, 1e12], (300, 5))
    cells = render_cells(v, [6, 6, 2, -1, 0], "nan")
    for i in range(300):
        for j, d in enumerate([6, 6, 2, -1, 0]):
            text = cells.value(i, j)
            assert text is not None
            x = v[i, j]
            if np.isnan(x):
                assert text == "nan"
            else:  # the number rounded to its decimals (integers for -1), read back exactly
                assert float(text) == float(np.round(x, max(d, 0)))
    mask = np.zeros((300, 5), np.bool_)
    mask[::7, 2] = True
    gone = cells.absent(mask)
    assert gone.value(7, 2) is None and gone.value(8, 2) == cells.value(8, 2)


def test_text_cells_and_hstack_keep_rows_and_utf8() -> None:
    nums = render_cells(np.array([[1.25], [2.0]]), [6], "nan")
    text = text_cells([["intraday", "flat-ĝ"], [None, "[[1.05, 3]]"]])
    both = hstack_cells([nums, text])
    assert both.shape == (2, 3)
    rows = [[both.value(i, j) for j in range(3)] for i in range(2)]
    assert rows == [["1.25", "intraday", None], ["2.0", "flat-ĝ", "[[1.05, 3]]"]]
