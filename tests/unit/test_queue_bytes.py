"""BoundedQueue's byte bound: the raw queue must bound memory, not only the item count."""

from __future__ import annotations

import threading
import time

from aion.queues import BoundedQueue


def _q(policy: str, timeout: float = 0.2) -> BoundedQueue[bytes]:
    return BoundedQueue("raw", 1000, policy, timeout, max_bytes=100, size_of=len)  # type: ignore[arg-type]


def test_drop_newest_counts_what_exceeds_the_byte_bound() -> None:
    q = _q("drop_newest")
    assert q.put(b"x" * 60) and q.put(b"x" * 40)
    assert not q.put(b"x")  # 101 bytes would exceed 100
    assert q.stats.dropped == 1
    assert q.get_many(10, 0.1) == [b"x" * 60, b"x" * 40]
    assert q.put(b"x" * 100)  # room again once consumed


def test_one_oversized_item_is_always_admitted_into_an_empty_queue() -> None:
    q = _q("drop_newest")
    assert q.put(b"x" * 500)
    assert not q.put(b"y")


def test_blocked_producer_resumes_when_the_consumer_frees_bytes() -> None:
    q = _q("block", timeout=5.0)
    assert q.put(b"x" * 90)
    done = threading.Event()

    def producer() -> None:
        q.put(b"y" * 20)
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    time.sleep(0.2)
    assert not done.is_set()  # 110 bytes would not fit: blocked
    assert q.get(timeout=1.0) == b"x" * 90
    t.join(2.0)
    assert done.is_set() and q.stats.dropped == 0
    assert q.get(timeout=1.0) == b"y" * 20


def test_blocked_producer_drops_after_the_timeout() -> None:
    q = _q("block", timeout=0.1)
    q.put(b"x" * 90)
    assert not q.put(b"y" * 20)
    assert q.stats.dropped == 1
