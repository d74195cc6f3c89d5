"""The hot path's spans, with intake run in the test's own process over the real ledger: an order
continues the trace its record's headers carry, through every stage to the broker's answers; a
refused command without a context starts a trace of its own; the ``orders.events`` records carry
the order's context."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from brokers.base import BrokerOrderStatus, Executed, OrderAccepted
from hotpath.broker_events import BrokerEvents
from hotpath.intake import Intake
from hotpath.ledger_store import LedgerStore
from hotpath.order_spans import INTAKE, OrderSpans
from observability.propagation import extract_kafka_headers, inject_kafka_headers
from observability.telemetry import setup
from observability.tracing import ATTR_COMMAND_ID, ATTR_OUTCOME
from tests.factories import Agent, enter_command
from tests.helpers import eventually
from tests.hotpath.conftest import VENUE_ACCOUNT, risk_profiles
from tests.hotpath.in_process import RecordingBroker, in_process_intake
from trading.order_events import EventKind, OrderEvent

__all__ = ["risk_profiles"]
"""The venue account's risk profile, as the hot path tests have it."""

STAGES = ["sentry", "sizer", "risk_gate", "ledger.append", "broker.place"]


def _traced(exporter: InMemorySpanExporter) -> tuple[TracerProvider, trace.Tracer]:
    provider = TracerProvider(resource=Resource.create({"service.name": "hotpath"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, provider.get_tracer("test")


def _by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans}


async def _traced_intake(
    pool: asyncpg.Pool,
) -> tuple[InMemorySpanExporter, Tracer, RecordingBroker, list[OrderEvent], Intake, OrderSpans]:
    """Intake in process over the real ledger, its spans made by a tracer of the test's own."""
    exporter = InMemorySpanExporter()
    _, tracer = _traced(exporter)
    broker, emitted = RecordingBroker(), list[OrderEvent]()
    intake = in_process_intake(LedgerStore(pool), broker, emitted)
    spans = OrderSpans(tracer, intake.orders)
    intake.spans = spans
    await intake.warm()
    return exporter, tracer, broker, emitted, intake, spans


async def test_an_order_continues_its_records_trace_from_intake_to_its_fill(
    ledger_pool: asyncpg.Pool, risk_profiles: None, agent: Agent
) -> None:
    exporter, tracer, broker, emitted, intake, spans = await _traced_intake(ledger_pool)

    envelope = agent.sign(enter_command(agent.agent_id, account=VENUE_ACCOUNT))
    cid = envelope.command.command_id
    with tracer.start_as_current_span("door") as door:
        headers = inject_kafka_headers()
    outcome = await intake.handle(envelope.to_wire(), source="test", headers=headers)
    assert outcome.reason is None and len(broker.placed) == 1

    events = BrokerEvents(intake.orders, intake.book, intake.ledger, None, setup("t").metrics, spans=spans)  # type: ignore[arg-type]
    now = datetime.now(UTC)
    side = envelope.command.side
    assert side is not None
    events.on_event(OrderAccepted(cid, BrokerOrderStatus.SUBMITTED, 1, 1, 11, now))
    events.on_event(
        Executed(cid, "x-1", VENUE_ACCOUNT, "AAPL", side, 3, Decimal("189.45"), 3,
                 Decimal("189.45"), now, 11, 1, 1)
    )  # fmt: skip
    spans.flush()

    finished = exporter.get_finished_spans()
    named = _by_name(finished)
    assert set(named) == {"door", INTAKE, *STAGES, "broker.ack", "broker.fill"}
    root = named[INTAKE]
    assert root.parent is not None and root.parent.span_id == door.get_span_context().span_id
    assert {s.context.trace_id for s in finished} == {door.get_span_context().trace_id}
    for name in (*STAGES, "broker.ack", "broker.fill"):
        span = named[name]
        assert span.parent is not None and span.parent.span_id == root.context.span_id, name
        assert span.attributes is not None and span.attributes[ATTR_COMMAND_ID] == cid, name
    # The stages follow one another within the intake span, which ends at the socket write.
    times = [(named[n].start_time or 0, named[n].end_time or 0) for n in STAGES]
    assert all(start <= end for start, end in times)
    assert all(times[i][1] <= times[i + 1][0] + 1000 for i in range(len(times) - 1)), times
    assert (root.start_time or 0) <= times[0][0] and times[-1][1] <= (root.end_time or 0) + 1000
    assert (named["broker.ack"].start_time or 0) >= (named["broker.place"].end_time or 0) - 1000
    assert root.attributes is not None and root.attributes[ATTR_OUTCOME] == "accepted"
    assert named["broker.fill"].attributes["floor.fill_qty"] == 3  # type: ignore[index]

    # Its orders.events records carry the order's context: the bridge continues the trace.
    accepted = next(e for e in emitted if e.command_id == cid and e.kind is EventKind.ACCEPTED)
    carried = trace.get_current_span(extract_kafka_headers(spans.headers_for(accepted))).get_span_context()
    assert (carried.trace_id, carried.span_id) == (root.context.trace_id, root.context.span_id)


async def test_a_refused_command_without_a_context_starts_its_own_trace(
    ledger_pool: asyncpg.Pool, risk_profiles: None, agent: Agent
) -> None:
    exporter, _, broker, emitted, intake, spans = await _traced_intake(ledger_pool)

    envelope = agent.sign(enter_command(agent.agent_id, account="NO-PROFILE-ACCOUNT"))
    outcome = await intake.handle(envelope.to_wire(), source="test")
    assert outcome.reason is not None and broker.placed == []
    # Made in later turns of the loop, without being asked.
    await eventually(lambda: len(exporter.get_finished_spans()) == 2, timeout=2.0)

    named = _by_name(exporter.get_finished_spans())
    assert set(named) == {INTAKE, "sentry"}
    root = named[INTAKE]
    assert root.parent is None
    assert root.attributes is not None
    assert root.attributes[ATTR_OUTCOME] == outcome.reason
    assert root.attributes[ATTR_COMMAND_ID] == envelope.command.command_id
    refused = next(e for e in emitted if e.command_id == envelope.command.command_id)
    assert spans.headers_for(refused)  # the refusal's record carries its trace too
