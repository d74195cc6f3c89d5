"""One trace per command, through the real processes: a signed command posted to the API's door
(the session's API process), carried over Kafka in the record's headers, decided and sent by a
hot path process (this package's) to the paper venue, acknowledged and filled there. Every
process's spans reach the span store, each under the parent it should have, and ``floor trace``
prints every stage."""

from __future__ import annotations

import asyncio
from decimal import ROUND_DOWN, Decimal

import asyncpg
import httpx
from opentelemetry import trace

from bus.kafka import consumer
from bus.topics import ORDERS_EVENTS
from floor.trace_cmd import render
from ledger.spans import SpanRow, spans_for_command
from observability.propagation import extract_kafka_headers
from observability.tracing import ATTR_COMMAND_ID
from tests.factories import Agent, enter_command
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import VENUE_ACCOUNT, HotPathProcess
from trading.order_events import EventKind, decode

STAGES = ("sentry", "sizer", "risk_gate", "ledger.append", "broker.place")
AT_THE_BROKER = ("broker.ack", "broker.fill")
CENT = Decimal("0.01")


async def _accepted_headers(reader: object, command_id: str) -> list[tuple[str, bytes]]:
    """The headers of the order's ``accepted`` record on ``orders.events``."""
    while True:
        batch = await reader.getmany(timeout_ms=200)  # type: ignore[attr-defined]
        for records in batch.values():
            for record in records:
                try:
                    event = decode(record.value)
                except Exception:
                    continue
                if event.command_id == command_id and event.kind is EventKind.ACCEPTED:
                    return list(record.headers or ())


def _one(spans: list[SpanRow], name: str) -> SpanRow:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


async def test_a_signed_command_through_the_door_is_one_trace_to_its_fill(
    api_url: str, hotpath: HotPathProcess, paper: PaperStack, agent: Agent, ledger_pool: asyncpg.Pool,
    kafka_bootstrap: str,
) -> None:  # fmt: skip
    _, ask = await paper.quote("AAPL")
    limit = (ask * Decimal("1.01")).quantize(CENT, ROUND_DOWN)  # marketable: fills at once
    stop = (ask * Decimal("0.97")).quantize(CENT, ROUND_DOWN)
    command = enter_command(agent.agent_id, account=VENUE_ACCOUNT, limit=limit, stop=stop, quantity=3)
    cid = command.command_id

    reader = consumer(kafka_bootstrap, ORDERS_EVENTS, group_id=None, from_start=False)
    await reader.start()
    try:
        await eventually(lambda: bool(reader.assignment()), timeout=10.0)
        for partition in reader.assignment():
            await reader.position(partition)  # read from here on: only records after the post
        async with httpx.AsyncClient(base_url=api_url, timeout=10.0) as client:
            response = await client.post(
                "/v1/commands",
                content=agent.sign(command).to_wire(),
                headers={"Content-Type": "application/json"},
            )
        assert response.status_code == 202, response.text
        headers = await asyncio.wait_for(_accepted_headers(reader, cid), 20.0)
    finally:
        await reader.stop()

    async def whole_trace() -> list[SpanRow] | None:
        spans = await spans_for_command(ledger_pool, cid)
        names = {s.name for s in spans}
        wanted = {"agent.commands send", "hotpath.intake", *STAGES, *AT_THE_BROKER}
        return spans if wanted <= names and any(s.name.startswith("POST ") for s in spans) else None

    spans: list[SpanRow] = await eventually(whole_trace, timeout=20.0)
    assert len({s.trace_id for s in spans}) == 1, "one trace from the request to the fill"
    request = next(s for s in spans if s.name.startswith("POST "))
    send = _one(spans, "agent.commands send")
    intake = _one(spans, "hotpath.intake")
    assert request.service == "api" and request.parent_span_id is None
    assert request.attributes[ATTR_COMMAND_ID] == cid
    assert send.service == "api" and send.parent_span_id == request.span_id
    assert intake.service == "hotpath" and intake.parent_span_id == send.span_id
    assert intake.attributes["floor.outcome"] == "accepted"
    for name in (*STAGES, *AT_THE_BROKER):
        span = next(s for s in spans if s.name == name)
        assert span.parent_span_id == intake.span_id and span.command_id == cid, name
    # The API's own queries (the key lookup, the replay check) are spans of the request.
    assert any(s.service == "api" and s.name in ("SELECT", "INSERT") for s in spans)

    # The order's orders.events records carry its trace on (the bridge's workflows join it).
    carried = trace.get_current_span(extract_kafka_headers(headers)).get_span_context()
    assert (format(carried.trace_id, "032x"), format(carried.span_id, "016x")) == (
        intake.trace_id,
        intake.span_id,
    )

    printed = render(cid, spans)
    for name in ("POST /v1/commands", "agent.commands send", "hotpath.intake", *STAGES, *AT_THE_BROKER):
        assert name in printed, (name, printed)
