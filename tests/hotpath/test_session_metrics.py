"""Broker connectivity as metrics (:class:`hotpath.session_metrics.SessionMetrics`): each change
counted, the outage from ``disconnected`` to ``reconnected`` and, after a failover or reconnect,
the time until its reconciliation let orders flow; a start-up's first connection is neither."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from brokers.base import SessionChange, SessionChanged, SessionRole
from hotpath.session_metrics import SessionMetrics
from observability.telemetry import Telemetry, counter_value, setup, snapshot


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    telemetry = setup("sessions-test", otlp=False)
    yield telemetry
    telemetry.shutdown()


def change(kind: SessionChange, epoch: int, at: datetime) -> SessionChanged:
    return SessionChanged(kind, "127.0.0.1:4002", SessionRole.PRIMARY, "test", epoch, at)


def histogram(reader: InMemoryMetricReader, name: str) -> list[dict[str, object]]:
    return snapshot(reader).get(name, [])


def test_outages_and_recoveries_are_timed_and_the_first_connection_is_not(telemetry: Telemetry) -> None:
    reader = telemetry.reader
    assert isinstance(reader, InMemoryMetricReader)
    sessions = SessionMetrics(telemetry.metrics)
    now = datetime.now(UTC)

    sessions.on_change(change(SessionChange.CONNECTED, 1, now - timedelta(seconds=10)))
    sessions.on_reconciled(1)
    sessions.on_change(change(SessionChange.DISCONNECTED, 1, now - timedelta(seconds=3)))
    sessions.on_change(change(SessionChange.RECONNECTED, 2, now - timedelta(seconds=1)))
    sessions.on_reconciled(2)
    sessions.on_change(change(SessionChange.FAILED_OVER, 3, now))
    sessions.on_reconciled(2)  # an earlier epoch's report: not this failover's
    sessions.on_reconciled(3)
    sessions.on_reconciled(3)  # counted once

    assert counter_value(reader, "floor.broker.session_changes", change="failed_over") == 1
    assert counter_value(reader, "floor.broker.session_changes") == 4
    (outage,) = histogram(reader, "floor.broker.outage")
    assert outage["count"] == 1 and outage["sum"] == pytest.approx(2.0)
    recoveries = {p["attributes"]["change"]: p for p in histogram(reader, "floor.broker.failover")}  # type: ignore[index]
    assert set(recoveries) == {"reconnected", "failed_over"}
    assert recoveries["reconnected"]["count"] == 1 and recoveries["reconnected"]["sum"] >= 1.0
    assert recoveries["failed_over"]["count"] == 1 and recoveries["failed_over"]["sum"] < 1.0
