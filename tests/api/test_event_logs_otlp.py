"""The API process emits its security events as OpenTelemetry log records over OTLP/HTTP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: an unsigned command refused at the door reaches the
collector with the event's fields (docs/events.md) and the request's trace, from the real
process ``floor up`` runs."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import httpx

from tests.api.conftest import GraphQLApi
from tests.factories import enter_command, new_agent
from tests.fixtures.otlp import OtlpCollector
from trading import sentry


async def test_a_command_refused_at_the_door_is_a_log_record_at_the_otlp_endpoint(
    graphql_api: GraphQLApi, api_otlp: OtlpCollector, ledger_pool: asyncpg.Pool
) -> None:
    agent = new_agent()
    envelope = agent.sign(enter_command(agent.agent_id))
    wire = envelope.to_wire_dict()
    del wire["signature"]
    command_id = envelope.command.command_id
    async with httpx.AsyncClient(base_url=graphql_api.url, timeout=10.0) as client:
        response = await client.post(
            "/v1/commands", content=json.dumps(wire).encode(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 403, response.text
    assert response.json()["error"] == sentry.NO_SIGNATURE

    received = await asyncio.to_thread(
        api_otlp.log_record, lambda r: r.attributes.get("floor.command_id") == command_id
    )
    row_id = await ledger_pool.fetchval("SELECT id FROM security_events WHERE command_id = $1", command_id)
    assert received.service == "api"
    assert (received.record.event_name, received.record.severity_text) == (sentry.NO_SIGNATURE, "critical")
    assert received.attributes["floor.event.domain"] == "security"
    assert received.attributes["floor.event.source"] == "api"
    assert received.attributes["floor.event.row_id"] == row_id
    assert received.attributes["floor.security.source_address"] == "127.0.0.1"
    # The record belongs to the request's trace: the API exports the door's span in it.
    trace_id = received.record.trace_id
    assert trace_id != bytes(16)
    door = await asyncio.to_thread(
        api_otlp.span, lambda s: s.trace_id == trace_id and s.parent_span_id == b""
    )
    assert "/v1/commands" in door.name, door.name
