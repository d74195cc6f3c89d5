"""Security and ops events are also OpenTelemetry log records with the documented schema
(docs/events.md), read back through an in-memory exporter and over OTLP/HTTP."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace import TracerProvider

from floor.supervisor_events import OpsEventLog
from ledger.access import LedgerAccess
from ledger.ops_events import record_ops_event
from observability import events
from observability.logs import install, setup_logs
from observability.security import SecurityLog, refusal_event
from tests.fixtures.otlp import OtlpCollector

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"


@pytest.fixture
def emitted() -> Iterator[tuple[LoggerProvider, InMemoryLogRecordExporter]]:
    exporter = InMemoryLogRecordExporter()
    provider = setup_logs("test-events", exporters=[exporter])
    yield provider, exporter
    install(None)
    provider.shutdown()


def records(
    provider: LoggerProvider, exporter: InMemoryLogRecordExporter, name: str
) -> list[ReadableLogRecord]:
    provider.force_flush()
    return [r for r in exporter.get_finished_logs() if r.log_record.event_name == name]


async def test_a_security_event_is_one_log_record_with_its_fields_in_the_request_trace(
    ledger_pool: asyncpg.Pool, emitted: tuple[LoggerProvider, InMemoryLogRecordExporter]
) -> None:
    provider, exporter = emitted
    command_id = f"cmd-{uuid.uuid4().hex}"
    event = refusal_event(
        reason="sentry.bad_signature",
        severity="critical",
        source="api",
        source_address="10.1.2.3",
        agent_id=None,
        key_id="ab" * 16,
        command_id=command_id,
        claimed_agent_id="alpha",
        detail="signature does not verify",
    )
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("POST /v1/commands") as span:
        await SecurityLog(LedgerAccess(ledger_pool), None, "unused").record(event)

    row_id = await ledger_pool.fetchval("SELECT id FROM security_events WHERE command_id = $1", command_id)
    [record] = [
        r.log_record
        for r in records(provider, exporter, "sentry.bad_signature")
        if (r.log_record.attributes or {}).get(events.COMMAND_ID) == command_id
    ]
    assert record.severity_number is SeverityNumber.FATAL and record.severity_text == "critical"
    assert record.body == "Critical Security Breach: sentry.bad_signature from 10.1.2.3 via api (alpha)"
    assert dict(record.attributes or {}) == {
        "floor.event.name": "sentry.bad_signature",
        "floor.event.domain": "security",
        "floor.event.severity": "critical",
        "floor.event.source": "api",
        "floor.event.row_id": row_id,
        "floor.event.id": event.event_id,
        "floor.command_id": command_id,
        "floor.security.title": "Critical Security Breach",
        "floor.security.agent_id": "alpha",
        "floor.security.key_id": "ab" * 16,
        "floor.security.source_address": "10.1.2.3",
        "floor.detail.detail": "signature does not verify",
        "floor.detail.claimed_agent_id": "alpha",
    }
    assert record.trace_id == span.get_span_context().trace_id
    assert record.span_id == span.get_span_context().span_id


async def test_an_ops_event_is_emitted_once_its_row_is_written_with_its_detail_as_attributes(
    ledger_pool: asyncpg.Pool, emitted: tuple[LoggerProvider, InMemoryLogRecordExporter]
) -> None:
    provider, exporter = emitted
    command_id = f"cmd-{uuid.uuid4().hex}"
    detail = {
        "command_id": command_id,
        "after": "accepted",
        "attempts": 3,
        "ids": ["a", "b"],
        "nested": {"x": 1},
        "price": Decimal("189.50"),
        "nothing": None,
    }
    row_id = await record_ops_event(ledger_pool, "hotpath", "intake.internal_error", "critical", detail)

    stored = await ledger_pool.fetchval("SELECT kind FROM ops_events WHERE id = $1", row_id)
    assert stored == "intake.internal_error"
    [record] = [
        r.log_record
        for r in records(provider, exporter, "intake.internal_error")
        if (r.log_record.attributes or {}).get(events.ROW_ID) == row_id
    ]
    assert record.severity_number is SeverityNumber.FATAL
    attributes = dict(record.attributes or {})
    assert attributes["floor.event.domain"] == "ops" and attributes["floor.event.source"] == "hotpath"
    assert attributes["floor.command_id"] == command_id
    assert attributes["floor.detail.attempts"] == 3
    assert tuple(attributes["floor.detail.ids"]) == ("a", "b")  # type: ignore[arg-type]
    assert attributes["floor.detail.nested"] == '{"x": 1}'
    assert attributes["floor.detail.price"] == "189.50"
    assert "floor.detail.nothing" not in attributes


async def test_an_ops_event_the_database_refuses_is_not_emitted(
    ledger_pool: asyncpg.Pool, emitted: tuple[LoggerProvider, InMemoryLogRecordExporter]
) -> None:
    provider, exporter = emitted
    with pytest.raises(asyncpg.CheckViolationError):
        await record_ops_event(ledger_pool, "hotpath", "test.refused_row", "loud", {})
    assert records(provider, exporter, "test.refused_row") == []


def test_the_supervisors_events_are_emitted_when_they_happen_without_a_database(
    tmp_path: Path, emitted: tuple[LoggerProvider, InMemoryLogRecordExporter]
) -> None:
    provider, exporter = emitted
    log = OpsEventLog(None, tmp_path)
    try:
        log.record("supervisor.restarted", "warning", {"service": "hotpath", "restarts": 1})
    finally:
        log.close(timeout=1.0)
    [record] = [r.log_record for r in records(provider, exporter, "supervisor.restarted")]
    assert record.severity_number is SeverityNumber.WARN
    attributes = dict(record.attributes or {})
    assert attributes["floor.event.source"] == "supervisor"
    assert attributes["floor.detail.service"] == "hotpath"
    assert "floor.event.row_id" not in attributes


def test_every_attribute_and_severity_is_documented() -> None:
    text = DOCS.read_text()
    for name in (*events.COMMON_ATTRIBUTES, *events.SECURITY_ATTRIBUTES):
        assert f"`{name}`" in text, f"{name} is not in docs/events.md"
    for severity, number in events.SEVERITY_NUMBER.items():
        assert re.search(rf"\| `{severity.value}` \|.*\| {number.value} `{number.name}` \|", text), severity


def test_with_an_otlp_endpoint_set_the_records_go_to_its_logs_path(monkeypatch: pytest.MonkeyPatch) -> None:
    collector = OtlpCollector().start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
    provider = setup_logs("test-otlp")
    try:
        events.emit_ops_event("api", "outbox.republished", "warning", {"published": 2})
        provider.force_flush()
        received = collector.log_record(lambda r: r.record.event_name == "outbox.republished")
    finally:
        install(None)
        provider.shutdown()
        collector.stop()
    assert received.service == "test-otlp"
    assert (received.record.severity_text, received.record.severity_number) == ("warning", 13)
    assert received.attributes["floor.detail.published"] == 2


def test_an_event_that_cannot_be_emitted_is_logged_and_never_fails_its_caller(
    caplog: pytest.LogCaptureFixture, emitted: tuple[LoggerProvider, InMemoryLogRecordExporter]
) -> None:
    provider, exporter = emitted
    # The supervisor's events reach the emitter before any table checks them.
    events.emit_ops_event("supervisor", "test.unknown_level", "loud", {})
    assert records(provider, exporter, "test.unknown_level") == []
    assert "ops event test.unknown_level from supervisor not emitted" in caplog.text
