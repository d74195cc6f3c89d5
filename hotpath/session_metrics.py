"""Broker connectivity as metrics: every session change counted, how long the broker was
unreachable (``disconnected`` to ``reconnected``), and how long after a failover or reconnect
orders flowed again (the change to the end of its epoch's reconciliation, when the Router lets
orders through). Times are the session changes' own (the Router's wall clock)."""

from __future__ import annotations

from datetime import UTC, datetime

from brokers.base import SessionChange, SessionChanged
from hotpath.sessions import RECONCILED_CHANGES
from observability.telemetry import Metrics


class SessionMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._down: SessionChanged | None = None
        """The ``disconnected`` change the broker has not come back from yet."""
        self._epoch_start: SessionChanged | None = None
        """The change whose epoch's reconciliation has not finished yet."""

    def on_change(self, event: SessionChanged) -> None:
        self._metrics.session_changes.add(1, {"change": event.change.value})
        if event.change is SessionChange.DISCONNECTED:
            self._down = event
        elif event.change is SessionChange.RECONNECTED and self._down is not None:
            self._metrics.outage.record(max(0.0, (event.time - self._down.time).total_seconds()))
            self._down = None
        if event.change in RECONCILED_CHANGES:
            self._epoch_start = event
        elif event.change in (SessionChange.DISCONNECTED, SessionChange.CLOSED):
            self._epoch_start = None

    def on_reconciled(self, epoch: int) -> None:
        start = self._epoch_start
        if start is None or start.epoch != epoch:
            return  # an earlier epoch's report: the change waiting is a later one's
        self._epoch_start = None
        if start.change is SessionChange.CONNECTED:
            return  # the first connection is a start-up, not a recovery
        waited = (datetime.now(UTC) - start.time).total_seconds()
        self._metrics.failover.record(max(0.0, waited), {"change": start.change.value})
