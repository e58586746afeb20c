"""Columnar state writes (:mod:`aion.store.columnar`) leave Redis exactly as the dict path does.

The same batch sequence goes once through the dict path (``StoreBatch.state``, the
reference: :func:`aion.store.shadow.hset_changed`) and once as :class:`StateColumns`, against
the real redis-server: every key's ``HGETALL`` (field order included), its TTL, the commands
and bytes sent and the error replies must be equal.
"""

from __future__ import annotations

import numpy as np
import pytest
import redis

from aion.queues import BoundedQueue
from aion.store import keys, resp, writer
from aion.store.batch import VOLUME_FAMILY, StateColumns, StoreBatch
from aion.store.encode import hstack_cells, int_cells, render_cells, text_cells
from aion.store.server import connect
from aion.store.writer import RedisStore, TtlSeconds

TTL = TtlSeconds(bars=800, state=200, alerts=800, runs=3000)
DATE = 20221111
TICK_FIELDS = (
    "last_price",
    "exchange_timestamp",
    "mode",
    "volume_traded",
    "last_traded_quantity",
    "average_traded_price",
    "oi",
)
IND_FIELDS = (*(f"ind_{j}" for j in range(12)), "bar_start")
PROFILE_FIELDS = ("poc", "vah", "val", "poc_prev", "bar_start", "baseline", "bins")
VOLUME_FIELDS = ("session_date", "first_cumulative", "last_cumulative", "incremental_total",
                 "bad_ticks", "bar_cumulative")  # fmt: skip


def _batches(n: int, n_flushes: int, seed: int) -> list[list[tuple[StoreBatch, StoreBatch]]]:
    """Per flush, three (columnar, dict) batch pairs with the same writes."""
    rng = np.random.default_rng(seed)
    syms = [f"NSE:SYM{i:03d}" for i in range(n)]
    px = rng.uniform(50, 500, n).round(2)
    out = []
    for f in range(n_flushes):
        pairs = []
        for b in range(3):
            cols: list[StateColumns] = []
            ticking = np.flatnonzero(rng.random(n) < 0.6)
            px[ticking] += rng.choice([-0.05, 0.0, 0.0, 0.05], ticking.shape[0])
            k = ticking.shape[0]
            vals = np.column_stack(
                [
                    px[ticking],
                    np.full(k, 1_668_138_300 + 10 * f + b),
                    rng.choice([1, 3], k),
                    rng.integers(0, 3, k) * 1000,
                    rng.integers(1, 3, k),
                    px[ticking] - 0.3,
                    np.zeros(k),
                ]
            )
            cells = render_cells(
                vals,
                [2, -1, -1, -1, -1, 2, -1],
                "nan",
                fixed=[True, False, False, False, False, True, False],
            )
            no_vol = np.zeros(cells.shape, np.bool_)
            no_vol[vals[:, 2] == 1, 3:] = True  # ltp-mode ticks: price, time, mode only
            cols.append(
                StateColumns(
                    "tick",
                    TICK_FIELDS,
                    [keys.tick(syms[i]) for i in ticking.tolist()],
                    cells.absent(no_vol),
                )
            )
            bars: list[tuple[str, dict[str, str]]] = []
            if b == 2 and f % 2 == 0:  # a minute closes: bars, indicators, profiles
                closing = np.flatnonzero(rng.random(n) < 0.7)
                label = f"09:{15 + f:02d}"
                bars = [
                    (keys.bars_1m(syms[i], DATE), {label: f'{{"close":{px[i]:.2f}}}'})
                    for i in closing.tolist()
                ]
                m = len(IND_FIELDS) - 1
                ind = rng.choice([np.nan, 1.5, 2.0, 1e-5, 123.456789], (n, m))
                ind = np.column_stack([ind, np.full(n, 1_668_138_300 + 60 * f)])
                cols.append(
                    StateColumns(
                        "indicators",
                        IND_FIELDS,
                        [keys.indicators(s) for s in syms],
                        render_cells(ind, [6] * m + [-1], "nan"),
                    )
                )
                stats = np.column_stack(
                    [
                        rng.choice([100.05, 100.1], (n, 3)),
                        rng.choice([np.nan, 99.95], n),
                        np.full(n, 1_668_138_300 + 60 * f),
                    ]
                )
                numbers = render_cells(stats, [6, 6, 6, 6, -1], "nan")
                absent = np.zeros(numbers.shape, np.bool_)
                absent[:, 3] = f == 4  # a session-end style write: no _prev, no bar_start
                absent[:, 4] = f == 4
                bins = [f"[[{i}.05, {f}]]" if (i + f) % 3 == 0 else None for i in range(n)]
                text = text_cells([["intraday" if i % 2 else "flat-ĝ" for i in range(n)], bins])
                cols.append(
                    StateColumns(
                        "profile",
                        PROFILE_FIELDS,
                        [keys.profile(s, DATE) for s in syms],
                        hstack_cells([numbers.absent(absent), text]),
                    )
                )
            # the volume state: a family rendered from int64 columns; the dict path's ints
            vol = np.column_stack(
                [
                    np.full(k, DATE),
                    np.full(k, 10_000 * f),
                    (px[ticking] * 7).astype(np.int64),
                    rng.integers(-3, 10**12, k),
                    np.zeros(k, np.int64),
                    np.where(np.arange(k) % 5 == 0, -1, 1) * (px[ticking] * 5).astype(np.int64),
                ]
            ).astype(np.int64)
            vol_keys = [keys.volume_state(syms[i]) for i in ticking.tolist()]
            volume = {key: dict(zip(VOLUME_FIELDS, row, strict=True))
                      for key, row in zip(vol_keys, vol.tolist(), strict=True)}  # fmt: skip
            cols.insert(
                0, StateColumns(VOLUME_FAMILY, VOLUME_FIELDS, vol_keys, int_cells(vol), vol)
            )
            columnar = StoreBatch(bars=list(bars), columns=cols)
            plain = StoreBatch(bars=list(bars), state=dict(volume))
            for c in cols[1:]:
                for key, mapping in c.mappings().items():
                    plain.state.setdefault(key, {}).update(mapping)
            pairs.append((columnar, plain))
        out.append(pairs)
    return out


def _snapshot(client: redis.Redis) -> dict[str, tuple[list[tuple[str, str]] | str, bool]]:
    """Every key: its hash as (field, value) pairs in Redis' order (a string key: its value)
    and whether it has a TTL."""
    out = {}
    for k in sorted(client.scan_iter(match="*", count=10_000)):
        value = list(client.hgetall(k).items()) if client.type(k) == "hash" else client.get(k)
        out[k] = (value, client.ttl(k) > 0)
    return out


def _run(
    client: redis.Redis, flushes: list[list[tuple[StoreBatch, StoreBatch]]], which: int
) -> tuple[dict, writer.StoreStats]:
    client.flushall()
    client.set(keys.indicators("NSE:SYM003"), "not a hash")  # every HSET there fails
    store = RedisStore(client, BoundedQueue("out", 10), TTL)
    for pairs in flushes:
        for pair in pairs:
            store.merge(pair[which])
        assert store.flush()
    return _snapshot(client), store.stats


@pytest.mark.parametrize("refresh_s", [300.0, 0.0])
def test_columnar_writes_equal_the_dict_path_on_redis(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch, refresh_s: float
) -> None:
    """refresh 0 s: every flush is a full rewrite with EXPIRE (the periodic heal)."""
    monkeypatch.setattr(writer, "EXPIRE_REFRESH_S", refresh_s)
    flushes = _batches(40, 6, seed=5)
    ref, ref_stats = _run(redis_client, flushes, 1)
    got, stats = _run(redis_client, flushes, 0)
    assert got == ref
    assert len(ref) > 40 * 4  # ticks, indicators, profiles, bars, volume keys
    assert (stats.commands, stats.bytes) == (ref_stats.commands, ref_stats.bytes)
    assert stats.errors == ref_stats.errors > 0  # the wrong-type key, inside MULTI blocks too
    prof = dict(got[keys.profile("NSE:SYM001", DATE)][0])  # type: ignore[arg-type]
    assert prof["baseline"] == "intraday" and prof["bins"] == "[[1.05, 2]]"


def test_int_cells_are_the_decimal_text_of_each_value() -> None:
    rng = np.random.default_rng(2)
    v = np.concatenate(
        [rng.integers(-(2**62), 2**62, (50, 3)), [[0, -1, 2**63 - 1], [10, -10, 9]]]
    ).astype(np.int64)
    cells = int_cells(v)
    assert [[cells.value(i, j) for j in range(3)] for i in range(v.shape[0])] == [
        [str(x) for x in row] for row in v.tolist()
    ]


def test_a_volume_row_goes_into_its_instruments_bars_block(redis_client: redis.Redis) -> None:
    """The volume family row of an instrument whose bars are in the flush is written inside
    that instrument's MULTI/EXEC block (crash safety); another instrument's row is not."""
    redis_client.flushall()
    store = RedisStore(redis_client, BoundedQueue("out", 10), TTL)
    vol = np.array([[DATE, 5, 90, 85, 0, 80], [DATE, 1, 7, 6, 0, 7]], np.int64)
    vks = [keys.volume_state("NSE:A"), keys.volume_state("NSE:B")]
    bars_key = keys.bars_1m("NSE:A", DATE)
    store.merge(
        StoreBatch(
            bars=[(bars_key, {"09:15": '{"close":1.0}'})],
            columns=[StateColumns(VOLUME_FAMILY, VOLUME_FIELDS, vks, int_cells(vol), vol)],
        )
    )
    sent: list[bytes] = []
    real = resp.RespConnection.send

    def send(self: resp.RespConnection, packed: bytes) -> None:
        sent.append(packed)
        real(self, packed)

    resp.RespConnection.send = send  # type: ignore[method-assign]
    try:
        assert store.flush()
    finally:
        resp.RespConnection.send = real  # type: ignore[method-assign]
    wire = b"".join(sent)
    multi, exec_ = wire.index(b"MULTI"), wire.index(b"EXEC")
    assert multi < wire.index(bars_key.encode()) < wire.index(vks[0].encode()) < exec_
    assert not multi < wire.index(vks[1].encode()) < exec_
    assert wire.count(b"MULTI") == 1
    assert redis_client.hgetall(vks[0]) == dict(zip(VOLUME_FIELDS, map(str, vol[0]), strict=True))


def test_unchanged_fields_are_not_sent_again(redis_client: redis.Redis) -> None:
    """A second flush of the same values sends nothing; one changed cell sends one field."""
    store = RedisStore(redis_client, BoundedQueue("out", 10), TTL)
    ks = [keys.tick("NSE:A"), keys.tick("NSE:B")]
    vals = np.array([[593.45, 3.0], [12.5, 1.0]])
    for v in (vals, vals):
        store.merge(
            StoreBatch(columns=[StateColumns("t", ("p", "m"), ks, render_cells(v, [2, -1], "nan"))])
        )
        store.flush()
    assert store.stats.commands == 4  # 2 HSET + 2 EXPIRE, then nothing
    sent = store.stats.bytes
    vals2 = vals.copy()
    vals2[1, 0] = 12.55
    store.merge(
        StoreBatch(columns=[StateColumns("t", ("p", "m"), ks, render_cells(vals2, [2, -1], "nan"))])
    )
    store.flush()
    assert store.stats.commands == 5
    hset = b"*4\r\n$4\r\nHSET\r\n$17\r\naion:{NSE:B}:tick\r\n$1\r\np\r\n$5\r\n12.55\r\n"
    assert store.stats.bytes - sent == len(hset)  # exactly one HSET of one field
    assert redis_client.hgetall(ks[1]) == {"p": "12.55", "m": "1"}
    assert redis_client.hgetall(ks[0]) == {"p": "593.45", "m": "3"}


def test_pending_and_dropped_counts_equal_the_dict_path_while_unreachable() -> None:
    """Redis down: the same pending count (2 per key) and the same exact bar drops."""
    dead = connect("redis://127.0.0.1:1/0")
    flushes = _batches(30, 4, seed=9)
    counts = []
    for which in (0, 1):
        store = RedisStore(dead, BoundedQueue("out", 10), TTL, max_buffered_commands=150)
        for pairs in flushes:
            for pair in pairs:
                store.merge(pair[which])
            assert not store.flush()
        counts.append((store.stats.pending_commands, store.stats.dropped_commands))
    assert counts[0] == counts[1]
    assert counts[0][1] > 0 and counts[0][0] >= 150
