"""Temporal joins the order's trace: the bridge delivers a record inside the trace its headers
carry, and the workflow it starts, its signals and its activities are spans of that trace
(Temporal's TracingInterceptor on the floor's client and worker); an Iceberg slice is published
in a trace of its own, linked to the parent's. Spans are read from an in-memory exporter on a
tracer provider of the test's own (the process's global provider is left alone)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer
from temporalio.client import Client
from temporalio.worker import Worker

from activities.commands import SLICE_SPAN, CancelCommandRequest, CommandActivities, OrderCommandRequest
from activities.record_writers import RecordWriterActivities
from bus.kafka import consumer
from bus.topics import AGENT_COMMANDS, ORDERS_EVENTS
from observability.propagation import extract_kafka_headers, inject_kafka_headers
from observability.security import SecurityLog
from observability.tracing import ATTR_COMMAND_ID
from temporal.bridge import Bridge
from temporal.client import connect
from temporal.record_traces import DELIVER_SPAN, RawRecord
from tests.factories import order_event
from tests.fixtures.hotpath import RecordWriters, command_id_of
from tests.temporal.conftest import start_at_the_end
from tests.workflows.sim import LedgerOrders
from trading.commands import Edge
from trading.order_events import EventKind, OrderEvent, encode
from trading.orders import Fill
from trading.record_signing import sign_record
from trading.session_calendar import SessionCalendar
from trading.signing import generate_private_key
from workflows.order_lifecycle import LifecycleView, OrderLifecycle


class Traced:
    """A tracer provider of the test's own, its spans kept in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer: Tracer = provider.get_tracer("test")

    def in_trace(self, trace_id: int) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.context.trace_id == trace_id]


@pytest.fixture
def traced() -> Traced:
    return Traced()


@pytest.fixture
async def traced_client(temporal_address: str, traced: Traced, temporal_client: Client) -> Client:
    """A floor client (as :func:`temporal.client.connect` makes them) tracing to ``traced``
    (``temporal_client``: the session's, which registered the search attributes)."""
    return await connect(temporal_address, tracer=traced.tracer)


async def test_a_lifecycle_the_bridge_starts_for_a_traced_record_joins_the_records_trace(
    traced: Traced,
    traced_client: Client,
    ledger_pool: asyncpg.Pool,
    bridge_security: SecurityLog,
    record_writers: RecordWriters,
) -> None:
    queue = f"traces-{uuid.uuid4().hex[:8]}"
    cid = f"ord-{uuid.uuid4().hex}"
    ledger = LedgerOrders()
    ledger.add(cid, SessionCalendar().close_after(datetime.now(UTC) + timedelta(days=1)))
    bridge = Bridge(
        traced_client,
        ledger=ledger_pool,
        security=bridge_security,
        task_queue=queue,
        linger_seconds=0.5,
        tracer=traced.tracer,
    )
    # The order's span in the hot path, whose context its orders.events records carry.
    with traced.tracer.start_as_current_span("hotpath.intake") as order_span:
        headers = inject_kafka_headers()
    order = order_span.get_span_context()

    def record(n: int, e: OrderEvent) -> RawRecord:
        signed = sign_record(ORDERS_EVENTS, encode(e), record_writers.hotpath)
        return RawRecord(f"{ORDERS_EVENTS}[0]@{n}", signed, headers)

    async with Worker(
        traced_client,
        task_queue=queue,
        workflows=[OrderLifecycle],
        activities=[RecordWriterActivities(ledger_pool).record_writers, ledger.lifecycle_order],
    ):
        await bridge.deliver_raw([record(1, order_event(cid, 1, EventKind.ACCEPTED, 0))])
        fill = Fill(f"{cid}-x1", 200, Decimal("10.01"))
        await bridge.deliver_raw([record(2, order_event(cid, 2, EventKind.FILLED, 200, fill))])
        handle = traced_client.get_workflow_handle_for(OrderLifecycle.run, cid)
        view: LifecycleView = await asyncio.wait_for(handle.result(), 30)
    assert view.filled_qty == 200

    spans = traced.in_trace(order.trace_id)
    by_name: dict[str, list[ReadableSpan]] = {}
    for s in spans:
        by_name.setdefault(s.name, []).append(s)
    for name in (
        DELIVER_SPAN,
        "SignalWithStartWorkflow:OrderLifecycle",
        "RunWorkflow:OrderLifecycle",
        "HandleSignal:record",
        "StartActivity:record_writers",
        "RunActivity:record_writers",
        "RunActivity:lifecycle_order",
        "CompleteWorkflow:OrderLifecycle",
    ):
        assert name in by_name, (name, sorted(by_name))
    ids = {s.context.span_id: s for s in spans}

    def parent(s: ReadableSpan) -> ReadableSpan | None:
        return ids.get(s.parent.span_id) if s.parent is not None else None

    # hotpath.intake -> bridge.deliver -> SignalWithStartWorkflow -> the workflow's spans
    # (RunWorkflow, HandleSignal, StartActivity -> RunActivity, CompleteWorkflow): the workflow's
    # spans are made complete at once (replay-safe) under the context the start carried.
    deliveries = by_name[DELIVER_SPAN]
    assert len(deliveries) == 2 and all(d.parent and d.parent.span_id == order.span_id for d in deliveries)
    assert {d.attributes[ATTR_COMMAND_ID] for d in deliveries} == {cid}
    starts = by_name["SignalWithStartWorkflow:OrderLifecycle"]
    assert all(parent(s) in deliveries for s in starts)
    run = by_name["RunWorkflow:OrderLifecycle"][0]
    assert parent(run) in starts
    run_activity = by_name["RunActivity:lifecycle_order"][0]
    scheduled = parent(run_activity)
    assert scheduled is not None and scheduled.name == "StartActivity:lifecycle_order"
    assert parent(scheduled) in starts
    assert all(
        parent(s) in starts
        for s in by_name["HandleSignal:record"] + by_name["CompleteWorkflow:OrderLifecycle"]
    )


async def test_a_slice_is_published_in_a_trace_of_its_own_linked_to_the_parents(
    traced: Traced, events_producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    sniper = generate_private_key()
    acts = CommandActivities(events_producer, {"sniper": sniper}, traced.tracer)
    parent_id = f"iceberg-ice-{uuid.uuid4().hex}"
    slice_id = f"{parent_id}.s0001"
    reader = consumer(kafka_bootstrap, AGENT_COMMANDS, group_id=None)
    await start_at_the_end(reader)
    try:
        # As the worker runs it: inside the activity's span, in the parent's trace.
        with traced.tracer.start_as_current_span("RunActivity:publish_order") as activity_span:
            await acts.publish_order(
                OrderCommandRequest(
                    command_id=slice_id, parent_id=parent_id, agent_id="sniper", account="DU1",
                    symbol="AAPL", side="BUY", quantity=100, limit_price=Decimal("187.26"), tif="DAY",
                    edge=Edge(Decimal("0.55"), Decimal("2"), Decimal("180")), issued_at=datetime.now(UTC),
                )
            )  # fmt: skip
        with traced.tracer.start_as_current_span("RunActivity:publish_cancel") as cancel_span:
            await acts.publish_cancel(
                CancelCommandRequest(
                    command_id=f"{slice_id}.c1", target_command_id=slice_id, agent_id="sniper",
                    account="DU1", symbol="AAPL", issued_at=datetime.now(UTC), reason="sniper.reprice",
                )
            )  # fmt: skip
        headers: dict[str, list[tuple[str, bytes]]] = {}
        while len(headers) < 2:
            batch = await reader.getmany(timeout_ms=200, max_records=100)
            for records in batch.values():
                for r in records:
                    cid = command_id_of(r.value) if r.value is not None else None
                    if cid in (slice_id, f"{slice_id}.c1"):
                        headers[cid] = list(r.headers or ())
    finally:
        await reader.stop()

    parent_trace = activity_span.get_span_context()
    slice_spans = [s for s in traced.exporter.get_finished_spans() if s.name == SLICE_SPAN]
    assert len(slice_spans) == 1
    root = slice_spans[0]
    assert root.parent is None and root.context.trace_id != parent_trace.trace_id
    assert [link.context.span_id for link in root.links] == [parent_trace.span_id]
    assert root.attributes is not None and root.attributes[ATTR_COMMAND_ID] == slice_id
    # The record carries the slice's own trace, which the hot path continues.
    sent = extract_kafka_headers(headers[slice_id])
    carried = trace.get_current_span(sent).get_span_context()
    assert (carried.trace_id, carried.span_id) == (root.context.trace_id, root.context.span_id)
    # A cancel stays in the trace it was issued from.
    cancel = trace.get_current_span(extract_kafka_headers(headers[f"{slice_id}.c1"])).get_span_context()
    assert (cancel.trace_id, cancel.span_id) == (
        cancel_span.get_span_context().trace_id,
        cancel_span.get_span_context().span_id,
    )
