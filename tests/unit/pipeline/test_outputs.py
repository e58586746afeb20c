"""The compute engine's one output port: the fan-out passes every call to each sink in order
and isolates a failing sink (counted and logged), so the others still get everything."""

from __future__ import annotations

import logging

import pytest

from aion.pipeline.outputs import CollectedOutputs, Fanout
from aion.store.batch import AlertRecord, StoreBatch


class _Broken:
    """A sink that fails on every call."""

    def alerts(self, records: list[AlertRecord]) -> None:
        raise ConnectionError("sink down")

    def writes(self, batch: StoreBatch) -> None:
        raise ValueError("cannot write")


def _alert(i: int) -> AlertRecord:
    return AlertRecord(20221111, f"{1668138960000 + i}-0", {"pattern": "volume_spike"})


def test_a_failing_sink_is_counted_and_the_others_get_everything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, last = CollectedOutputs(), CollectedOutputs()
    fan = Fanout({"first": first, "broken": _Broken(), "last": last})
    batches = [StoreBatch(bars=[(f"k{i}", {"09:15": "{}"})]) for i in range(3)]
    with caplog.at_level(logging.ERROR, logger="aion.pipeline.outputs"):
        fan.alerts([_alert(0), _alert(1)])
        for b in batches:
            fan.writes(b)
        fan.alerts([_alert(2)])
    for sink in (first, last):
        assert [r.stream_id for r in sink.alert_records] == [_alert(i).stream_id for i in range(3)]
        assert sink.batches == batches
        # call order is kept: alerts, 3 writes, alerts
        assert [bool(b.alerts) for b in sink.received] == [True, False, False, False, True]
    assert fan.errors == {"first": 0, "broken": 5, "last": 0}
    failures = [r for r in caplog.records if "broken" in r.getMessage()]
    assert len(failures) == 1  # logged the first time, not on every call
    assert failures[0].exc_info is not None


def test_interrupts_are_not_swallowed() -> None:
    class Interrupting(CollectedOutputs):
        def writes(self, batch: StoreBatch) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Fanout({"x": Interrupting()}).writes(StoreBatch())
