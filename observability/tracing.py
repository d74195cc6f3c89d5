"""Tracing for every floor process: one trace per command, from the door to the last fill.

Each process's main calls :func:`setup_tracing` once with its service name and the exporters it
wires (the span store's, see ``ledger/spans.py``); when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set an
OTLP/HTTP exporter is added, so the same spans also go to a tracing backend.

Sampling: every trace is kept: a trace is one command, commands are few (tens per second at
most), and the span store is what ``floor trace`` answers from, so a dropped trace is an order
nobody can look at. The one exception is a trace a lone database query would start (one made
outside any request: :class:`_NoLoneQueries`). ``OTEL_TRACES_SAMPLER`` (the SDK's standard
variable, e.g. ``parentbased_traceidratio`` with ``OTEL_TRACES_SAMPLER_ARG``) overrides it.

Switched off with ``OTEL_SDK_DISABLED=true`` (the SDK's own switch): no spans are made at all.

Batching: each exporter (OTLP's) runs behind its own ``BatchSpanProcessor``: ending a span puts
it on a bounded queue (:data:`MAX_QUEUE`; when full, spans are dropped and counted by the SDK,
never waited for) and a background thread exports batches every :data:`SCHEDULE_DELAY_MS`. The
span store batches on the event loop instead (``ledger.spans.SpanStore``, passed as one of
``processors``): a thread converting and sending hundreds of spans would hold the GIL the event
loop needs for the next command, while on the loop the work goes in small slices between
commands. Nothing is exported, and nothing waits on a network or database, where a span ends.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, Tracer, TraceState
from opentelemetry.util.types import Attributes

SCHEDULE_DELAY_MS = 500
"""How often a batch is exported: a finished command's spans are in the store within a second."""
MAX_QUEUE = 8192
MAX_BATCH = 512
OTLP_ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"

ATTR_COMMAND_ID = "floor.command_id"
"""Carried by every span that belongs to a command; the span store indexes it."""
ATTR_ACCOUNT = "floor.account"
ATTR_SYMBOL = "floor.symbol"
ATTR_ORDER_ID = "floor.order_id"
ATTR_OUTCOME = "floor.outcome"
"""``accepted`` or the refusal's reason (``risk.max_notional``, ...)."""

_lock = threading.Lock()
_provider: TracerProvider | None = None


_DB_SYSTEM = ("db.system", "db.system.name")
"""What the asyncpg instrumentation names on a query's span before it starts (old and new
semantic conventions)."""


class _NoLoneQueries(Sampler):
    """Keeps every trace but those a lone database query would start: a query made outside any
    request, command or job (the API hub's polls, a health probe's) is no one's story, and at
    several a second it would fill the span store. The same query made inside a traced
    operation is kept with it (``ParentBased`` decides those). Every other root span (a
    request, a record taken off Kafka, a workflow started without a parent) starts a trace."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind is SpanKind.CLIENT and attributes and any(key in attributes for key in _DB_SYSTEM):
            return SamplingResult(Decision.DROP, None, trace_state)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)

    def get_description(self) -> str:
        return "NoLoneQueries"


def sampler() -> Sampler | None:
    # None lets the SDK read OTEL_TRACES_SAMPLER; without it, keep every trace but lone queries.
    # A caller's context marked "not sampled" (an HTTP client's, a record's header) does not turn
    # the floor's spans off: whoever sends a command cannot keep it out of the span store.
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None
    root = _NoLoneQueries()
    return ParentBased(root, remote_parent_not_sampled=root)


def add_exporter(provider: TracerProvider, exporter: SpanExporter) -> None:
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter,
            max_queue_size=MAX_QUEUE,
            schedule_delay_millis=SCHEDULE_DELAY_MS,
            max_export_batch_size=MAX_BATCH,
        )
    )


def setup_tracing(
    service_name: str,
    *,
    exporters: Sequence[SpanExporter] = (),
    processors: Sequence[SpanProcessor] = (),
) -> TracerProvider:
    """The process's tracer provider, installed globally (the FastAPI, asyncpg and aiokafka
    instrumentations and :func:`tracer` use it).

    The global provider can be set once per process: a second call (a test process hosting
    several services) adds its exporters to the provider already installed and returns it; the
    first call's service name stays (``service.name`` is per provider)."""
    global _provider
    with _lock:
        if _provider is None:
            provider = TracerProvider(
                resource=Resource.create({"service.name": service_name}), sampler=sampler()
            )
            if os.environ.get(OTLP_ENDPOINT_VARIABLE):
                # Imported only when used: it pulls in requests and protobuf.
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                add_exporter(provider, OTLPSpanExporter())
            trace.set_tracer_provider(provider)
            _provider = provider
        for exporter in exporters:
            add_exporter(_provider, exporter)
        for processor in processors:
            # One that batches for itself (the span store's, on the event loop: no thread).
            _provider.add_span_processor(processor)
        return _provider


def current_provider() -> TracerProvider | None:
    """The provider :func:`setup_tracing` installed, if any (None: tracing is off)."""
    return _provider


def tracer(name: str) -> Tracer:
    """A tracer from the global provider (a no-op one until :func:`setup_tracing` ran)."""
    return trace.get_tracer(name)


def tracing_enabled() -> bool:
    """:func:`setup_tracing` ran and ``OTEL_SDK_DISABLED`` (the SDK's switch) is not ``true``."""
    return _provider is not None and os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"


async def flush_tracing(timeout_s: float = 5.0) -> None:
    """Export every span ended so far, then stop exporting (a process on its way out).

    Off the event loop: an exporter that writes through this loop (the span store's) waits on
    it from the exporting thread, so blocking the loop on the flush would wait forever."""
    provider = _provider
    if provider is None:
        return
    await asyncio.to_thread(provider.force_flush, int(timeout_s * 1000))


def instrument_libraries(*, asyncpg: bool = False, kafka_producer: bool = False) -> None:
    """Spans from the instrumentation packages, for the processes whose latency they do not
    cost (the API, the worker): asyncpg's queries, and aiokafka's sends, which also put the
    trace context into each record's headers. Kafka consumers are left alone: the API's hub
    reads market data by the thousand a second, and a span per record would be most of its
    work (the hot path takes its records' context by hand, see ``hotpath/order_spans.py``).
    Idempotent."""
    if asyncpg:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        instrumentor = AsyncPGInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
    if kafka_producer:
        import aiokafka
        from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
        from opentelemetry.instrumentation.utils import unwrap

        kafka = AIOKafkaInstrumentor()
        if not kafka.is_instrumented_by_opentelemetry:
            kafka.instrument()
            unwrap(aiokafka.AIOKafkaConsumer, "getone")
            unwrap(aiokafka.AIOKafkaConsumer, "getmany")
