"""The bridge's part of an order's trace: each ``orders.events`` record it delivers to Temporal
is a span in the trace the record's Kafka headers carry (the order's, which the hot path puts
there), and the workflow starts and signals it makes run inside that span. Temporal's
``TracingInterceptor`` (on every floor client, :func:`temporal.client.connect`) carries the
context on to the workflow and its activities, so the lifecycle's and the Iceberg's spans join
the command's trace.

A record without a trace context (written before records carried one, or by reconciliation)
starts a trace of its own. Headers are not signed: a forged ``traceparent`` can attach spans to
another trace, never change what is delivered (the signed payload alone decides that).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Tracer

from observability.propagation import extract_kafka_headers
from observability.tracing import ATTR_ACCOUNT, ATTR_COMMAND_ID, ATTR_SYMBOL
from trading.order_events import OrderEvent

DELIVER_SPAN = "bridge.deliver"
ATTR_EVENT_KIND = "floor.event_kind"
ATTR_PARENT_ID = "floor.parent_id"
ATTR_RECORD = "messaging.kafka.record"
"""``topic[partition]@offset`` of the record delivered."""


class RawRecord(NamedTuple):
    """A record as consumed: where it was (``topic[partition]@offset``), its bytes as signed,
    and its headers (the trace context, if the writer set one)."""

    where: str
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()


@contextmanager
def delivering(tracer: Tracer, record: RawRecord, event: OrderEvent) -> Iterator[None]:
    """Run the delivery of ``event`` as a span in the trace ``record``'s headers carry."""
    attributes = {
        ATTR_COMMAND_ID: event.command_id,
        ATTR_ACCOUNT: event.account,
        ATTR_SYMBOL: event.symbol,
        ATTR_EVENT_KIND: event.kind.value,
        ATTR_RECORD: record.where,
    }
    if event.parent_id is not None:
        attributes[ATTR_PARENT_ID] = event.parent_id
    with tracer.start_as_current_span(
        DELIVER_SPAN,
        context=extract_kafka_headers(record.headers),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    ):
        yield


def bridge_tracer() -> Tracer:
    """The bridge's tracer, from the process's provider."""
    return trace.get_tracer("temporal.bridge")
