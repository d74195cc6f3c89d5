"""The security-event log writes each event to Postgres, ``security.events`` and the log."""

from __future__ import annotations

import json
import logging
import uuid

import asyncpg
import pytest

from bus.kafka import start_producer
from bus.topics import SECURITY_EVENTS
from ledger.access import LedgerAccess
from observability.security import (
    CRITICAL_BREACH,
    DETAIL_VALUE_LIMIT,
    FIELD_LIMIT,
    SECURITY_REFUSAL,
    TRUNCATED,
    SecurityLog,
    bounded,
    refusal_event,
)
from observability.telemetry import counter_value, setup
from tests.fixtures.hotpath import read_until
from trading.security_events import SecurityEvent, Severity


async def test_a_breach_is_in_the_table_on_the_topic_and_in_the_log(
    ledger_pool: asyncpg.Pool, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    producer = await start_producer(kafka_bootstrap, "test-security")
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
    try:
        with caplog.at_level(logging.WARNING, logger="floor.security"):
            await SecurityLog(LedgerAccess(ledger_pool), producer, SECURITY_EVENTS).record(event)
    finally:
        await producer.stop()

    assert event.title == CRITICAL_BREACH and event.agent_id == "alpha"
    row = await ledger_pool.fetchrow("SELECT * FROM security_events WHERE command_id = $1", command_id)
    assert (row["severity"], row["reason"], row["source"], row["remote_addr"], row["key_id"]) == (
        "critical",
        "sentry.bad_signature",
        "api",
        "10.1.2.3",
        "ab" * 16,
    )
    detail = json.loads(row["detail"])
    assert detail["title"] == CRITICAL_BREACH and detail["claimed_agent_id"] == "alpha"
    assert detail["event_id"] == event.event_id

    records = await read_until(kafka_bootstrap, SECURITY_EVENTS, lambda raw: b"bad_signature" in raw and
                               SecurityEvent.decode(raw).event_id == event.event_id)  # fmt: skip
    assert SecurityEvent.decode(records[-1]) == event

    [line] = [r for r in caplog.records if command_id in r.getMessage()]
    assert line.levelno == logging.CRITICAL
    assert line.getMessage().startswith("Critical Security Breach: sentry.bad_signature from 10.1.2.3")


def test_a_stale_clock_is_a_refusal_not_a_breach() -> None:
    event = refusal_event(reason="sentry.stale", severity="warning", source="hotpath", source_address=None)
    assert event.title == SECURITY_REFUSAL


async def test_a_kafka_outage_does_not_lose_the_event(ledger_pool: asyncpg.Pool) -> None:
    class DownProducer:
        async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
            raise ConnectionError("kafka down")

    command_id = f"cmd-{uuid.uuid4().hex}"
    event = refusal_event(
        reason="sentry.replayed_nonce", severity="critical", source="hotpath", source_address="p0@1",
        command_id=command_id,
    )  # fmt: skip
    await SecurityLog(LedgerAccess(ledger_pool), DownProducer(), SECURITY_EVENTS).record(event)
    assert (
        await ledger_pool.fetchval("SELECT count(*) FROM security_events WHERE command_id = $1", command_id)
        == 1
    )


def test_metrics_are_readable_in_process() -> None:
    telemetry = setup("test")
    try:
        telemetry.metrics.commands_refused.add(1, {"reason": "risk.max_position"})
        telemetry.metrics.commands_refused.add(2, {"reason": "sentry.stale"})
        reader = telemetry.reader
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        assert isinstance(reader, InMemoryMetricReader)
        assert counter_value(reader, "floor.commands.refused", reason="sentry.stale") == 2
        assert counter_value(reader, "floor.commands.refused") == 3
    finally:
        telemetry.shutdown()


def test_an_ordinary_event_is_stored_as_it_is() -> None:
    event = refusal_event(
        reason="sentry.bad_signature", severity="critical", source="api", source_address="10.1.2.3",
        key_id="ab" * 16, command_id=f"cmd-{uuid.uuid4().hex}", claimed_agent_id="alpha", detail="no",
    )  # fmt: skip
    assert bounded(event) == event


async def _stored(pool: asyncpg.Pool, marker: str, **fields: str) -> asyncpg.Record:
    """Record a refusal whose command id starts with ``marker`` through the log; its row."""
    event = refusal_event(severity="critical", source_address="10.1.2.3", **fields)  # type: ignore[arg-type]
    await SecurityLog(LedgerAccess(pool), None, SECURITY_EVENTS).record(event)
    return await pool.fetchrow("SELECT * FROM security_events WHERE command_id LIKE $1", marker + "%")


async def test_every_field_is_bounded_before_the_insert_and_the_cut_is_named(
    ledger_pool: asyncpg.Pool,
) -> None:
    marker = f"cmd-{uuid.uuid4().hex}"
    row = await _stored(
        ledger_pool, marker, reason="sentry.unknown_key", source="hotpath",
        key_id="k" * 100_000, command_id=marker + "c" * 100_000, claimed_agent_id="a" * 5_000,
        detail="no registered key " + "k" * 100_000,
    )  # fmt: skip
    assert [len(row[c]) for c in ("command_id", "key_id", "agent_id")] == [FIELD_LIMIT] * 3
    assert row["command_id"].endswith("\u2026")
    detail = json.loads(row["detail"])
    assert len(detail["detail"]) == len(detail["claimed_agent_id"]) == DETAIL_VALUE_LIMIT
    assert detail[TRUNCATED].split(",") == [
        "detail=100018",
        "claimed_agent_id=5000",
        "agent_id=5000",
        "key_id=100000",
        f"command_id={len(marker) + 100_000}",
    ]


async def test_characters_postgres_text_cannot_hold_are_escaped_not_a_failure(
    ledger_pool: asyncpg.Pool,
) -> None:
    """A JSON body may carry "\\u0000" or a lone "\\ud800": text Postgres refuses to store."""
    marker = f"cmd-{uuid.uuid4().hex}"
    row = await _stored(
        ledger_pool, marker, reason="sentry.no_signature", source="api",
        command_id=marker + "\x00\ud800", claimed_agent_id="\x00", detail="\ud800",
    )  # fmt: skip
    assert row["command_id"] == marker + "\\x00\\ud800" and row["agent_id"] == "\\x00"
    assert json.loads(row["detail"])["detail"] == "\\ud800"


async def test_the_table_refuses_an_unbounded_row_from_a_writer_that_skips_the_bound(
    ledger_pool: asyncpg.Pool,
) -> None:
    from ledger import security_events

    unbounded = SecurityEvent(
        reason="sentry.no_signature", severity=Severity.CRITICAL, source="api",
        command_id="c" * 10_000,
    )  # fmt: skip
    with pytest.raises(asyncpg.CheckViolationError, match="security_events_bounded"):
        await security_events.record_security_event(ledger_pool, unbounded)
