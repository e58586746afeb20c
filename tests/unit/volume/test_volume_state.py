"""VolumeStateManager: cumulative ``volume_traded`` -> incremental volume.

DESIGN.md, "Incremental volume".

Expected values come from hand computation and from a tiny pure-Python reference model of the
documented rules (``_Ref`` below), never from the implementation's own output.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aion.volume.state import VolumeStateManager

D1, D2, D3 = 20221110, 20221111, 20221114


def _apply(vm: VolumeStateManager, ticks: list[tuple[int, int, int]]) -> list[int]:
    """Apply ``(slot, session_date, cumulative)`` ticks in one call; incremental volumes as ints."""
    if not ticks:
        return []
    s, d, c = (np.array(col, dtype=np.int64) for col in zip(*ticks, strict=True))
    out = vm.apply(s, d, c)
    assert out.dtype == np.int64
    assert out.shape == (len(ticks),)
    return [int(x) for x in out]


class _Ref:
    """Reference model of the documented rules, one tick at a time."""

    def __init__(self) -> None:
        self.state: dict[int, list[int]] = {}  # slot -> [session, first, last]
        self.bad: dict[int, int] = defaultdict(int)
        self.invalid = 0
        self.resets = 0
        self.first_seen = 0

    def tick(self, slot: int, d: int, c: int) -> int:
        if c < 0:
            self.invalid += 1
            return 0
        if slot not in self.state:
            self.state[slot] = [d, c, c]
            self.first_seen += 1
            return 0
        sess, _first, last = self.state[slot]
        if d > sess:
            self.state[slot] = [d, 0, c]
            self.resets += 1
            return c
        if d < sess or c < last:
            self.bad[slot] += 1
            return 0
        self.state[slot][2] = c
        return c - last


# ------------------------------------------------------------------------ strategies
_tick = st.tuples(
    st.integers(0, 3),
    st.sampled_from([D1, D2, D3]),
    st.one_of(st.integers(0, 60), st.integers(-3, -1), st.integers(10**9, 10**9 + 5)),
)
_ticks = st.lists(_tick, max_size=60)


def _monotone_ticks() -> st.SearchStrategy[list[tuple[int, int, int]]]:
    """Mostly well-behaved streams: per slot, cumulative grows by random non-negative steps."""

    @st.composite
    def build(draw: st.DrawFn) -> list[tuple[int, int, int]]:
        n = draw(st.integers(0, 60))
        cum: dict[int, int] = {}
        out = []
        for _ in range(n):
            slot = draw(st.integers(0, 3))
            cum[slot] = cum.get(slot, draw(st.integers(0, 10_000))) + draw(st.integers(0, 500))
            out.append((slot, D2, cum[slot]))
        return out

    return build()


_any_ticks = st.one_of(_ticks, _monotone_ticks())


# ------------------------------------------------------------------------ properties
@settings(max_examples=150, deadline=None)
@given(_any_ticks)
def test_matches_reference_model_and_never_negative(ticks: list[tuple[int, int, int]]) -> None:
    vm = VolumeStateManager(capacity=2)  # small: growth on demand is exercised too
    ref = _Ref()
    out = _apply(vm, ticks)
    expected = [ref.tick(*t) for t in ticks]
    assert out == expected
    assert all(x >= 0 for x in out)
    assert vm.counters.ticks == len(ticks)
    assert vm.counters.invalid_ticks == ref.invalid
    assert vm.counters.session_resets == ref.resets
    assert vm.counters.first_seen == ref.first_seen
    assert vm.counters.bad_ticks == sum(ref.bad.values())
    for slot, (sess, first, last) in ref.state.items():
        snap = vm.snapshot(slot)
        assert snap["session_date"] == sess
        assert snap["first_cumulative"] == first
        assert snap["last_cumulative"] == last
        assert snap["incremental_total"] == last - first
        assert snap["bad_ticks"] == ref.bad[slot]


@settings(max_examples=150, deadline=None)
@given(_any_ticks)
def test_sum_of_increments_per_slot_and_session(ticks: list[tuple[int, int, int]]) -> None:
    """sum(incremental) == last - first per (slot, session), computed without a state machine.

    A slot's current session is the running max of the dates of its valid ticks; ticks of an
    older date are excluded. ``first`` is the slot's first valid cumulative when that tick opened
    the session, else 0 (reset); ``last`` is the max valid cumulative of the session.
    """
    out = _apply(VolumeStateManager(), ticks)
    sums: dict[tuple[int, int], int] = defaultdict(int)
    first: dict[tuple[int, int], int] = {}
    hi: dict[tuple[int, int], int] = {}
    cur: dict[int, int] = {}
    for (slot, d, c), inc in zip(ticks, out, strict=True):
        if c < 0:
            assert inc == 0
            continue
        if slot in cur and d < cur[slot]:
            assert inc == 0
            continue
        key = (slot, d)
        if key not in first:
            first[key] = c if slot not in cur else 0
        cur[slot] = d
        hi[key] = max(hi.get(key, c), c)
        sums[key] += inc
    for key, s in sums.items():
        assert s == hi[key] - first[key], key


@settings(max_examples=100, deadline=None)
@given(_any_ticks)
def test_each_tick_rule_individually(ticks: list[tuple[int, int, int]]) -> None:
    """One tick at a time: first sight 0, equal 0, lower -> bad + unchanged, negative invalid."""
    vm = VolumeStateManager(capacity=4)
    seen: dict[int, tuple[int, int]] = {}  # slot -> (session, last)
    for slot, d, c in ticks:
        before = vm.snapshot(slot) if slot in seen else None
        bad_before = vm.counters.bad_ticks
        invalid_before = vm.counters.invalid_ticks
        (inc,) = _apply(vm, [(slot, d, c)])
        assert inc >= 0
        if c < 0:
            assert inc == 0
            assert vm.counters.invalid_ticks == invalid_before + 1
            if before is not None:
                assert vm.snapshot(slot) == before
            continue
        if slot not in seen:  # (e) first sight
            assert inc == 0
            seen[slot] = (d, c)
            assert vm.snapshot(slot)["first_cumulative"] == c
            continue
        sess, last = seen[slot]
        if d > sess:  # new session: all new volume
            assert inc == c
            seen[slot] = (d, c)
        elif d < sess or c < last:  # (c) bad: counted, 0, state unchanged (but the counter)
            assert inc == 0
            assert vm.counters.bad_ticks == bad_before + 1
            after = vm.snapshot(slot)
            assert before is not None
            assert after["bad_ticks"] == before["bad_ticks"] + 1
            after["bad_ticks"] = before["bad_ticks"]
            assert after == before
        elif c == last:  # (d) equal
            assert inc == 0
            assert vm.snapshot(slot) == before
        else:
            assert inc == c - last
            seen[slot] = (d, c)
        assert vm.counters.bad_ticks - bad_before in (0, 1)


@settings(max_examples=100, deadline=None)
@given(_any_ticks, st.lists(st.integers(0, 60), max_size=8))
def test_batch_split_gives_identical_outputs(
    ticks: list[tuple[int, int, int]], cuts: list[int]
) -> None:
    whole_vm = VolumeStateManager()
    whole = _apply(whole_vm, ticks)
    bounds = sorted({min(c, len(ticks)) for c in cuts} | {0, len(ticks)})
    split_vm = VolumeStateManager(capacity=1)
    split: list[int] = []
    for a, b in itertools.pairwise(bounds):
        split += _apply(split_vm, ticks[a:b])
    assert split == whole
    for slot in {t[0] for t in ticks}:
        assert split_vm.snapshot(slot) == whole_vm.snapshot(slot)
    assert split_vm.counters == whole_vm.counters


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.lists(st.integers(0, 3 * 10**6), min_size=1, max_size=10),
)
def test_restore_then_apply(first: int, extra: int, cums: list[int]) -> None:
    last = first + extra
    vm = VolumeStateManager(capacity=1)
    vm.restore(5, D2, first, last, bad_ticks=3)
    assert vm.capacity >= 6
    assert vm.snapshot(5) == {
        "session_date": D2,
        "first_cumulative": first,
        "last_cumulative": last,
        "incremental_total": extra,
        "bad_ticks": 3,
    }
    prev = last
    for c in cums:
        (inc,) = _apply(vm, [(5, D2, c)])
        if c >= prev:
            assert inc == c - prev
            prev = c
        else:
            assert inc == 0
    assert vm.snapshot(5)["incremental_total"] == prev - first
    assert vm.counters.restored == 1
    assert vm.counters.first_seen == 0


# ------------------------------------------------------------------------ explicit cases
def test_scan_from_before_the_open_counts_every_share_once() -> None:
    vm = VolumeStateManager()
    # pre-open snapshot at 0, then trades; repeats and an out-of-order tick in between
    out = _apply(vm, [(0, D2, 0), (0, D2, 100), (0, D2, 250), (0, D2, 250), (0, D2, 200),
                      (0, D2, 400)])  # fmt: skip
    assert out == [0, 100, 150, 0, 0, 150]
    assert sum(out) == 400  # the day's total, exactly once
    assert vm.counters.bad_ticks == 1
    assert vm.bad_ticks[0] == 1


def test_scan_from_mid_session_never_attributes_earlier_volume() -> None:
    vm = VolumeStateManager()
    out = _apply(vm, [(7, D2, 1_234_567), (7, D2, 1_234_867), (7, D2, 1_235_000)])
    assert out == [0, 300, 133]
    snap = vm.snapshot(7)
    assert snap["first_cumulative"] == 1_234_567
    assert snap["incremental_total"] == 433


def test_new_session_resets_and_older_session_is_bad() -> None:
    vm = VolumeStateManager()
    out = _apply(vm, [(0, D1, 5_000), (0, D1, 6_000), (0, D2, 300), (0, D2, 350), (0, D1, 7_000)])
    assert out == [0, 1_000, 300, 50, 0]
    assert vm.counters.session_resets == 1
    assert vm.counters.bad_ticks == 1
    assert vm.snapshot(0) == {
        "session_date": D2,
        "first_cumulative": 0,
        "last_cumulative": 350,
        "incremental_total": 350,
        "bad_ticks": 1,
    }


def test_negative_cumulative_is_invalid() -> None:
    vm = VolumeStateManager()
    # negative before first sight does not seed; negative later leaves the state alone
    out = _apply(vm, [(0, D2, -1), (0, D2, 50), (0, D2, -100), (0, D2, 80)])
    assert out == [0, 0, 0, 30]
    assert vm.counters.invalid_ticks == 2
    assert vm.counters.bad_ticks == 0
    assert vm.snapshot(0)["first_cumulative"] == 50


def test_slots_are_independent() -> None:
    vm = VolumeStateManager()
    out = _apply(vm, [(0, D2, 10), (1, D2, 1_000), (0, D2, 15), (1, D2, 900), (1, D2, 1_010)])
    assert out == [0, 0, 5, 0, 10]
    assert vm.snapshot(0)["bad_ticks"] == 0
    assert vm.snapshot(1)["bad_ticks"] == 1


def test_ensure_capacity_keeps_state() -> None:
    vm = VolumeStateManager(capacity=3)
    _apply(vm, [(0, D2, 10), (1, D2, 20), (2, D1, 30), (2, D1, 25)])
    before = [vm.snapshot(s) for s in range(3)]
    vm.ensure_capacity(5_000)
    assert vm.capacity >= 5_000
    assert [vm.snapshot(s) for s in range(3)] == before
    vm.ensure_capacity(10)  # shrinking is a no-op
    assert vm.capacity >= 5_000
    assert _apply(vm, [(0, D2, 17), (1, D2, 20), (2, D1, 31), (4_999, D2, 9)]) == [7, 0, 1, 0]


def test_apply_grows_for_large_slot() -> None:
    vm = VolumeStateManager(capacity=1)
    assert _apply(vm, [(0, D2, 5), (100, D2, 7), (0, D2, 6), (100, D2, 9)]) == [0, 0, 1, 2]
    assert vm.capacity >= 101


def test_empty_batch() -> None:
    vm = VolumeStateManager()
    out = vm.apply(np.array([], np.int64), np.array([], np.int64), np.array([], np.int64))
    assert out.shape == (0,)
    assert vm.counters.ticks == 0


@pytest.mark.parametrize(("first", "last"), [(-1, 5), (10, 9), (-5, -1)])
def test_restore_rejects_inconsistent_state(first: int, last: int) -> None:
    with pytest.raises(ValueError, match="slot 3"):
        VolumeStateManager().restore(3, D2, first, last)


def test_restore_from_older_session_is_reset_by_new_session_tick() -> None:
    vm = VolumeStateManager()
    vm.restore(0, D1, 100, 900)
    assert _apply(vm, [(0, D2, 40), (0, D2, 45)]) == [40, 5]
    assert vm.counters.session_resets == 1
