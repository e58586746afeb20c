"""Store benchmark: aion's Redis writer vs a plain redis-py pipeline, same state, same server.

The workload is a deterministic sequence of compute batches in the shape the scanner's
compute thread produces them (:func:`make_batches`): per batch, every instrument ticks
with probability ``tick_share`` (its latest tick hash, as columns, and its volume state
hash, a dict); every ``flushes_per_minute`` flushes a minute closes for all instruments
(the 1-minute bar and RVOL JSON fields, the volume state, the 41-field indicator hash and
the 28-field volume profile hash, both as columns). ``batches_per_flush`` batches arrive
between two flushes, so an instrument may tick several times per flush and prices repeat
often (a real tick hash changes in a few fields only). The plain writers get the same
writes as one dict per key (:meth:`StoreBatch.state_mappings`, built before timing).

Three writers get the identical batch sequence, each against the same private
redis-server started for the run (flushed between writers):

* ``plain``: a straightforward writer, one ``redis.Redis.pipeline(transaction=False)``
  per flush holding, for every batch, one HSET (mapping) and one EXPIRE per key;
* ``plain_coalesced``: the same, but the state coalesced per key per flush first
  (latest value wins), i.e. the baseline already given aion's coalescing;
* ``aion``: :class:`aion.store.writer.RedisStore` ``merge`` of each batch then ``flush``
  (coalescing, changed fields only, EXPIRE when due, hand-packed RESP; the column
  families rendered by :mod:`aion.store.columnar` in one compiled pass).

Afterwards every key both writers wrote is compared: Redis holds the same hashes.

The pure encoding figure sends identical commands (HSET full mapping + EXPIRE per
key of one coalesced flush) once through a redis-py pipeline and once packed by
:class:`aion.store.resp.RespCommands` on one connection.

Run: ``python -m bench.store [--instruments N]`` (prints JSON).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import redis

from aion.indicators.core import IndicatorCore
from aion.pipeline.allocator import tune_malloc
from aion.queues import BoundedQueue
from aion.store import keys
from aion.store.batch import StateColumns, StoreBatch
from aion.store.encode import hstack_cells, render_cells, text_cells
from aion.store.layout import encode_bar
from aion.store.resp import RespCommands
from aion.store.server import PrivateRedis, connect
from aion.store.shadow import hset_changed
from aion.store.writer import RedisStore, TtlSeconds

_TTL = TtlSeconds(bars=8 * 86400, state=2 * 86400, alerts=8 * 86400, runs=30 * 86400)
_T0 = 1_668_138_300  # 2022-11-11 09:15 IST, epoch s
_DATE = 20221111


_TICK_FIELDS = (
    "last_price",
    "exchange_timestamp",
    "mode",
    "volume_traded",
    "last_traded_quantity",
    "average_traded_price",
    "oi",
)
_PROFILE_STATS = 25  # VolumeAnalytics' profile statistics at max_nodes 5 (with _prev, hvn, lvn)


def make_batches(
    n_instruments: int,
    n_flushes: int,
    batches_per_flush: int = 4,
    tick_share: float = 0.5,
    flushes_per_minute: int = 5,
    seed: int = 7,
) -> list[list[StoreBatch]]:
    """``n_flushes`` lists of ``batches_per_flush`` compute batches (deterministic), in the
    shape the scanner's compute thread hands the store.

    Per batch, the latest tick hash of every ticking instrument (the ``tick`` family of
    :class:`~aion.store.batch.StateColumns`, 7 Kite fields, prices with 2 decimals) and
    its volume state (a dict, 6 fields). Every ``flushes_per_minute`` flushes a minute
    closes for all instruments: the 1-minute bar (JSON field of the day's bars hash), the
    RVOL entry (JSON field), the volume state again, the indicator hash (``indicators``
    family, 40 values + ``bar_start``) and the volume profile hash (``profile`` family:
    25 statistics, ``bar_start``, ``baseline`` and, every 5th minute, the ``bins`` JSON).
    Prices move on a 0.05 rupee grid (a tick repeats the last price ~40% of the time),
    ``volume_traded`` grows, exchange time advances one second per batch.
    """
    rng = np.random.default_rng(seed)
    names = IndicatorCore(1).names()
    syms = [f"NSE:SYM{i:05d}" for i in range(n_instruments)]
    tick_keys = [keys.tick(s) for s in syms]
    px = np.round(rng.uniform(50, 5000, n_instruments), 2)
    cum = rng.integers(0, 1_000_000, n_instruments)
    prof_fields = (*(f"stat_{j}" for j in range(_PROFILE_STATS)), "bar_start", "baseline", "bins")
    flushes: list[list[StoreBatch]] = []
    step = 0
    for f in range(n_flushes):
        batches = []
        for _ in range(batches_per_flush):
            step += 1
            b = StoreBatch()
            ticking = np.flatnonzero(rng.random(n_instruments) < tick_share)
            moves = rng.choice([-1, 0, 0, 1], ticking.shape[0]) * 0.05
            px[ticking] = np.round(px[ticking] + moves, 2)
            qty = rng.integers(1, 500, ticking.shape[0])
            cum[ticking] += qty
            k = ticking.shape[0]
            values = np.column_stack(
                [
                    px[ticking],
                    np.full(k, _T0 + step),
                    np.full(k, 3),
                    cum[ticking],
                    qty,
                    px[ticking] - 0.3,
                    np.zeros(k),
                ]
            )
            cells = render_cells(
                values,
                [2, -1, -1, -1, -1, 2, -1],
                "nan",
                fixed=[True, False, False, False, False, True, False],
            )
            b.columns.append(
                StateColumns("tick", _TICK_FIELDS, [tick_keys[i] for i in ticking.tolist()], cells)
            )
            for i, q in zip(ticking.tolist(), qty.tolist(), strict=True):
                b.state[keys.volume_state(syms[i])] = _volume(int(cum[i]), int(q))
            batches.append(b)
        if (f + 1) % flushes_per_minute == 0:  # a minute closes for every instrument
            minute = (f + 1) // flushes_per_minute
            b = batches[-1]
            label = f"09:{14 + minute:02d}"
            start = _T0 + 60 * minute
            for i, sym in enumerate(syms):
                p = float(px[i])
                bar = {
                    "start": start,
                    "open": p,
                    "high": p + 0.1,
                    "low": p - 0.1,
                    "close": p,
                    "volume": 100,
                    "oi": 0,
                    "ticks": 4,
                    "segment": "regular",
                }
                b.bars.append((keys.bars_1m(sym, _DATE), {label: encode_bar(bar)}))
                rvol = f'{{"cum_volume": {int(cum[i])}, "expected_bar": {p / 7:.6f}, "minute": '
                b.bars.append(
                    (keys.rvol(sym, _DATE), {label: rvol + f'{minute}, "start": {start}}}'})
                )
                b.state[keys.volume_state(sym)] = _volume(int(cum[i]), 0)
            ind = px[:, None] * (1 + 0.001 * np.arange(len(names)))[None, :]
            ind = np.column_stack([ind, np.full(n_instruments, start)])
            b.columns.append(
                StateColumns(
                    "indicators",
                    (*names, "bar_start"),
                    [keys.indicators(s) for s in syms],
                    render_cells(ind, [6] * len(names) + [-1], "nan"),
                )
            )
            stats = px[:, None] + 0.05 * rng.integers(-3, 4, (n_instruments, _PROFILE_STATS))
            stats = np.column_stack([stats, np.full(n_instruments, start)])
            numbers = render_cells(stats, [6] * _PROFILE_STATS + [-1], "nan")
            bins = [
                json.dumps([[round(float(px[i]) + 0.05 * j, 2), 100 * j] for j in range(40)])
                if minute % 5 == 1
                else None
                for i in range(n_instruments)
            ]
            text = text_cells([["intraday"] * n_instruments, bins])
            b.columns.append(
                StateColumns(
                    "profile",
                    prof_fields,
                    [keys.profile(s, _DATE) for s in syms],
                    hstack_cells([numbers, text]),
                )
            )
        flushes.append(batches)
    return flushes


def _volume(cum: int, q: int) -> dict[str, str]:
    """The volume state hash as the compute thread writes it (a dict, every field text)."""
    return {
        "session_date": str(_DATE),
        "first_cumulative": "0",
        "last_cumulative": str(cum),
        "incremental_total": str(cum),
        "bad_ticks": "0",
        "bar_cumulative": str(cum - q),
    }


def as_dicts(batch: StoreBatch) -> StoreBatch:
    """The same writes with every state key as a dict (what the plain writer is given)."""
    return StoreBatch(bars=batch.bars, state=batch.state_mappings())


def _coalesce(batches: list[StoreBatch]) -> StoreBatch:
    out = StoreBatch()
    bars: dict[str, dict[str, str]] = {}
    for b in batches:
        for key, fields in b.bars:
            bars.setdefault(key, {}).update(fields)
        for key, mapping in b.state.items():
            out.state.setdefault(key, {}).update(mapping)
    out.bars = list(bars.items())
    return out


def _plain_flush(client: redis.Redis, batches: list[StoreBatch]) -> tuple[int, int]:
    """One pipeline: HSET + EXPIRE per key of every batch; returns (commands, payload bytes)."""
    pipe = client.pipeline(transaction=False)
    n = nbytes = 0
    for batch in batches:
        for key, fields in batch.bars:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, _TTL.bars)
            n += 2
            nbytes += sum(len(k) + len(v) for k, v in fields.items())
        for key, mapping in batch.state.items():
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, _TTL.state)
            n += 2
            nbytes += sum(len(k) + len(str(v)) for k, v in mapping.items())
    pipe.execute()
    return n, nbytes


def _snapshot(client: redis.Redis) -> dict[str, dict[str, str]]:
    ks = sorted(client.scan_iter(match="aion:*", count=10_000))
    pipe = client.pipeline(transaction=False)
    for k in ks:
        pipe.hgetall(k)
    return dict(zip(ks, pipe.execute(), strict=True))


def _encoding(client: redis.Redis, batch: StoreBatch) -> dict[str, float]:
    """Identical commands through redis-py's pipeline and through RespCommands."""
    items = [(k, f, _TTL.bars) for k, f in batch.bars]
    items += [(k, m, _TTL.state) for k, m in batch.state.items()]
    t0 = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for key, mapping, ttl in items:
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, ttl)
    pipe.execute()
    plain_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cmds = RespCommands()
    for key, mapping, ttl in items:
        cmds.append(hset_changed(key, mapping, None)[1])
        cmds.command("EXPIRE", key, str(ttl))
    RedisStore(client, BoundedQueue("bench", 1), _TTL).send_packed(cmds.packed(), cmds.count)
    packed_s = time.perf_counter() - t0
    n = 2 * len(items)
    return {
        "commands": n,
        "plain_commands_per_s": round(n / plain_s),
        "packed_commands_per_s": round(n / packed_s),
        "ratio": round(plain_s / packed_s, 2),
    }


def run(
    n_instruments: int = 3000, n_flushes: int = 10, seed: int = 7, repeats: int = 3
) -> dict[str, Any]:
    """Time the three writers on the same batch sequence; see the module docstring.

    Each writer runs ``repeats`` times (interleaved, Redis flushed before each run) and its
    fastest run counts, which keeps other load on a shared machine out of the ratio.
    """
    tune_malloc()  # as the scanner does at start-up (both writers run under its settings)
    flushes = make_batches(n_instruments, n_flushes, seed=seed)
    plain_flushes = [[as_dicts(b) for b in bs] for bs in flushes]
    coalesced = [_coalesce(bs) for bs in plain_flushes]
    best = {"plain": math.inf, "plain_coalesced": math.inf, "aion": math.inf, "encoding": 0.0}
    encoding: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = PrivateRedis(Path(tmp))
        url = server.start()
        try:
            client = connect(url)
            for _ in range(repeats):
                client.flushall()
                t0 = time.perf_counter()
                plain = [_plain_flush(client, bs) for bs in plain_flushes]
                best["plain"] = min(best["plain"], time.perf_counter() - t0)
                reference = _snapshot(client)
                client.flushall()
                t0 = time.perf_counter()
                plain_c = [_plain_flush(client, [b]) for b in coalesced]
                best["plain_coalesced"] = min(best["plain_coalesced"], time.perf_counter() - t0)
                client.flushall()
                store = RedisStore(client, BoundedQueue("bench", 1), _TTL)
                t0 = time.perf_counter()
                for bs in flushes:
                    for b in bs:
                        store.merge(b)
                    store.flush()
                best["aion"] = min(best["aion"], time.perf_counter() - t0)
                same = _snapshot(client) == reference
                client.flushall()
                enc = _encoding(client, coalesced[-1])
                if enc["ratio"] > best["encoding"]:
                    best["encoding"], encoding = enc["ratio"], enc
            client.close()
        finally:
            server.stop()
    plain_s, plain_c_s, aion_s = best["plain"], best["plain_coalesced"], best["aion"]
    plain_cmds = sum(n for n, _ in plain)
    plain_bytes = sum(b for _, b in plain)
    return {
        "instruments": n_instruments,
        "flushes": n_flushes,
        "repeats": repeats,
        "compute_batches": sum(len(bs) for bs in flushes),
        "redis_state_identical": same,
        "plain_commands": plain_cmds,
        "plain_seconds": round(plain_s, 3),
        "plain_commands_per_s": round(plain_cmds / plain_s),
        "plain_bytes_per_s": round(plain_bytes / plain_s),
        "plain_coalesced_commands": sum(n for n, _ in plain_c),
        "plain_coalesced_seconds": round(plain_c_s, 3),
        "aion_commands": store.stats.commands,
        "aion_seconds": round(aion_s, 3),
        "aion_commands_per_s": round(store.stats.commands / aion_s),
        "aion_bytes_per_s": round(store.stats.bytes / aion_s),
        "state_commands_per_s": {
            "plain": round(plain_cmds / plain_s),
            "aion": round(plain_cmds / aion_s),
        },
        "ratio": round(plain_s / aion_s, 2),
        "ratio_vs_coalesced_plain": round(plain_c_s / aion_s, 2),
        "encoding": encoding,
        "target_ratio": 5.0,
    }


def main() -> None:
    """CLI entry: print :func:`run` as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instruments", type=int, default=3000)
    ap.add_argument("--flushes", type=int, default=10)
    a = ap.parse_args()
    print(json.dumps(run(a.instruments, a.flushes), indent=2))


if __name__ == "__main__":
    main()
