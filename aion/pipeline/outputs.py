"""The compute engine's one output port, and the fan-out that feeds every sink from it.

The compute thread hands everything it produces to one :class:`Outputs`:

- :meth:`Outputs.alerts`: a minute's accepted alerts, the moment the alert manager decided
  them (ahead of that minute's other writes, so alerts leave first);
- :meth:`Outputs.writes`: a compute step's store writes (:class:`~aion.store.batch.StoreBatch`:
  bars, state hashes, columns), after each chunk that closed bars and at the end of the step.

:class:`Fanout` is the application's implementation: it passes each call to every sink in
order (the Redis store's queue, the Parquet archive, later notifications) and isolates each
sink's failure: an exception in one sink is counted against that sink (:attr:`Fanout.errors`)
and logged (the first time per sink, then every 1,000th), and the others still get the
output. :class:`CollectedOutputs` keeps everything in lists, for tests and in-process runs
that read the results back (evaluation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from aion.store.batch import AlertRecord, StoreBatch

log = logging.getLogger(__name__)


class Outputs(Protocol):
    """Where the compute engine sends what it produced (see the module docstring)."""

    def alerts(self, records: list[AlertRecord]) -> None:
        """One minute's accepted alerts, in the alert manager's order (non-empty)."""

    def writes(self, batch: StoreBatch) -> None:
        """A compute step's store writes (``batch.alerts`` is always empty: alerts arrive by
        :meth:`alerts`)."""


class Sink(Protocol):
    """One consumer behind a :class:`Fanout`; the same two calls as :class:`Outputs`."""

    def alerts(self, records: list[AlertRecord]) -> None: ...

    def writes(self, batch: StoreBatch) -> None: ...


class Fanout:
    """:class:`Outputs` that passes every call to each named sink, isolating their errors.

    Args:
        sinks: ``name -> sink``, called in this order.

    A sink that raises does not stop the others; ``errors[name]`` counts its failed calls.
    Exceptions that are not :class:`Exception` (``KeyboardInterrupt``) propagate.
    """

    def __init__(self, sinks: dict[str, Sink]) -> None:
        self.sinks = dict(sinks)
        self.errors: dict[str, int] = dict.fromkeys(self.sinks, 0)

    def alerts(self, records: list[AlertRecord]) -> None:
        for name, sink in self.sinks.items():
            try:
                sink.alerts(records)
            except Exception:
                self._failed(name, "alerts")

    def writes(self, batch: StoreBatch) -> None:
        for name, sink in self.sinks.items():
            try:
                sink.writes(batch)
            except Exception:
                self._failed(name, "writes")

    def _failed(self, name: str, call: str) -> None:
        n = self.errors[name] = self.errors[name] + 1
        if n == 1 or n % 1000 == 0:
            log.exception("output sink %r failed in %s (%d failures so far)", name, call, n)


@dataclass
class CollectedOutputs:
    """:class:`Outputs` that keeps everything in call order, as the store would receive it:
    ``received`` holds each :meth:`writes` batch and, for each :meth:`alerts` call, a
    :class:`~aion.store.batch.StoreBatch` holding only those alerts (what the application's
    store sink queues)."""

    received: list[StoreBatch] = field(default_factory=list)

    def alerts(self, records: list[AlertRecord]) -> None:
        self.received.append(StoreBatch(alerts=list(records)))

    def writes(self, batch: StoreBatch) -> None:
        self.received.append(batch)

    @property
    def batches(self) -> list[StoreBatch]:
        """The :meth:`writes` batches, in order."""
        return [b for b in self.received if not b.alerts]

    @property
    def alert_records(self) -> list[AlertRecord]:
        """Every alert, in order."""
        return [r for b in self.received for r in b.alerts]
