"""Indicator benchmark: aion's Numba indicator core vs TA-Lib's ``talib.stream`` handles.

Both sides compute the same indicator set (EMA 5/10/20/50/100/200, SMA 20/50, RSI 14,
ATR 14, MACD 12/26/9, Bollinger 20/2, ADX/+DI/-DI 14, Stochastic 14/3/3, Williams %R 14,
CCI 20, ROC 10, OBV, A/D, CMF 20, MFI 14, VWAP, Keltner 20/10/2, Donchian 20) on the
same seeded random-walk bars of ``n_instruments`` instruments. Each side first warms
up on ``WARMUP_BARS`` bars (untimed: TA-Lib handles are opened on that history, aion
applies it), then ``n_bars`` closed bars are timed:

* aion: one ``IndicatorCore.update`` of all instruments per bar followed by
  ``values`` of all of them, exactly what the compute thread does per minute;
* TA-Lib: per bar and instrument, ``handle.update(...)`` of every stream handle.

Figures are instrument-updates per second (one instrument's bar through the whole
indicator set); the ratio is aion / TA-Lib, both measured in this run on this machine.
aion's VWAP additionally carries standard-deviation bands that TA-Lib lacks.

Run: ``python -m bench.indicators [--instruments N] [--bars B] [--seed S]`` (prints JSON).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import talib.stream as ts

from aion.indicators.core import IndicatorCore

WARMUP_BARS = 250  # >= the longest lookback (EMA 200) so every stream handle can open

# (constructor, inputs) per TA-Lib stream handle; inputs index into (high, low, close, volume)
_H, _L, _C, _V = 0, 1, 2, 3
_STREAMS: list[tuple[Callable[..., Any], tuple[int, ...]]] = [
    *[((lambda *a, p=p: ts.EMA(*a, timeperiod=p)), (_C,)) for p in (5, 10, 20, 50, 100, 200)],
    *[((lambda *a, p=p: ts.SMA(*a, timeperiod=p)), (_C,)) for p in (20, 50)],
    (lambda *a: ts.RSI(*a, timeperiod=14), (_C,)),
    (lambda *a: ts.ATR(*a, timeperiod=14), (_H, _L, _C)),
    (lambda *a: ts.MACD(*a, fastperiod=12, slowperiod=26, signalperiod=9), (_C,)),
    (lambda *a: ts.BBANDS(*a, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0), (_C,)),
    (lambda *a: ts.ADX(*a, timeperiod=14), (_H, _L, _C)),
    (lambda *a: ts.PLUS_DI(*a, timeperiod=14), (_H, _L, _C)),
    (lambda *a: ts.MINUS_DI(*a, timeperiod=14), (_H, _L, _C)),
    (lambda *a: ts.STOCH(*a, fastk_period=14, slowk_period=3, slowd_period=3), (_H, _L, _C)),
    (lambda *a: ts.WILLR(*a, timeperiod=14), (_H, _L, _C)),
    (lambda *a: ts.CCI(*a, timeperiod=20), (_H, _L, _C)),
    (lambda *a: ts.ROC(*a, timeperiod=10), (_C,)),
    (ts.OBV, (_C, _V)),
    (ts.AD, (_H, _L, _C, _V)),
    (lambda *a: ts.CMF(*a, timeperiod=20), (_H, _L, _C, _V)),
    (lambda *a: ts.MFI(*a, timeperiod=14), (_H, _L, _C, _V)),
    (ts.VWAP, (_H, _L, _C, _V)),
    (lambda *a: ts.KC(*a, timeperiod=20, atrperiod=10, nbdev=2.0), (_H, _L, _C)),
    (lambda *a: ts.DONCHIAN(*a, timeperiod=20), (_H, _L)),
]


def _bars(n_instruments: int, n_bars: int, seed: int) -> np.ndarray:
    """float64 (4, n_bars, n_instruments): high, low, close (rupees), volume (shares)."""
    rng = np.random.default_rng(seed)
    close = 100.0 + np.cumsum(rng.normal(0.0, 0.2, (n_bars, n_instruments)), axis=0)
    close = np.maximum(np.round(close, 2), 1.0)
    spread = rng.random((n_bars, n_instruments))
    high = close + spread * rng.random((n_bars, n_instruments))
    low = close - spread * rng.random((n_bars, n_instruments))
    volume = rng.integers(0, 5000, (n_bars, n_instruments)).astype(np.float64)
    return np.stack([high, low, close, volume])


def _aion(data: np.ndarray, warm: int) -> dict[str, float]:
    n_inst = data.shape[2]
    slots = np.arange(n_inst, dtype=np.int64)
    date = np.full(n_inst, 20240102, dtype=np.int64)
    core = IndicatorCore(n_inst)
    IndicatorCore(1).update(slots[:1], date[:1], *(data[i, 0, :1] for i in (2, 0, 1, 2, 3)))
    cols = [
        [np.ascontiguousarray(data[i, t]) for i in (2, 0, 1, 2, 3)] for t in range(len(data[0]))
    ]
    for t in range(warm):
        core.update(slots, date, *cols[t])
    t_update = 0.0
    t_values = 0.0
    for t in range(warm, data.shape[1]):
        t0 = time.perf_counter()
        core.update(slots, date, *cols[t])
        t1 = time.perf_counter()
        core.values(slots)
        t_values += time.perf_counter() - t1
        t_update += t1 - t0
    n = n_inst * (data.shape[1] - warm)
    return {
        "update_per_s": n / t_update,
        "update_and_values_per_s": n / (t_update + t_values),
        "outputs": float(len(core.names())),
    }


def _talib(data: np.ndarray, warm: int) -> dict[str, float]:
    n_inst = data.shape[2]
    handles: list[list[tuple[Any, tuple[int, ...]]]] = []
    for k in range(n_inst):
        hist = [np.ascontiguousarray(data[i, :warm, k]) for i in range(4)]
        handles.append([(make(*(hist[i] for i in idx)), idx) for make, idx in _STREAMS])
    rows = data.transpose(1, 2, 0).tolist()  # [t][k] -> [h, l, c, v] as Python floats
    t0 = time.perf_counter()
    for t in range(warm, data.shape[1]):
        row_t = rows[t]
        for k in range(n_inst):
            x = row_t[k]
            for handle, idx in handles[k]:
                handle.update(*[x[i] for i in idx])
    elapsed = time.perf_counter() - t0
    return {
        "update_per_s": n_inst * (data.shape[1] - warm) / elapsed,
        "handles_per_instrument": float(len(_STREAMS)),
    }


def run(n_instruments: int, n_bars: int, seed: int) -> dict[str, Any]:
    """Time ``n_bars`` bars of ``n_instruments`` instruments on both sides.

    Returns a JSON-ready dict: instrument-updates per second for aion (update alone
    and update + values) and for the TA-Lib stream handles, and their ratio.
    """
    data = _bars(n_instruments, WARMUP_BARS + n_bars, seed)
    ours = _aion(data, WARMUP_BARS)
    ref = _talib(data, WARMUP_BARS)
    return {
        "benchmark": "indicators",
        "n_instruments": n_instruments,
        "n_bars": n_bars,
        "seed": seed,
        "aion_outputs": int(ours["outputs"]),
        "aion_updates_per_s": round(ours["update_per_s"]),
        "aion_update_and_values_per_s": round(ours["update_and_values_per_s"]),
        "talib_stream_handles": int(ref["handles_per_instrument"]),
        "talib_stream_updates_per_s": round(ref["update_per_s"]),
        "ratio_aion_over_talib": round(ours["update_and_values_per_s"] / ref["update_per_s"], 2),
    }


def main() -> None:
    """CLI entry: parse ``--instruments/--bars/--seed`` and print :func:`run` as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instruments", type=int, default=2000)
    ap.add_argument("--bars", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    print(json.dumps(run(a.instruments, a.bars, a.seed), indent=2))


if __name__ == "__main__":
    main()
