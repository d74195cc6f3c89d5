"""What the floor's sampler keeps: every trace, whatever a caller's context says, but those a
lone database query would start."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from observability.tracing import sampler

QUERY = {"db.system": "postgresql", "db.statement": "SELECT 1"}


def test_a_lone_query_starts_no_trace_and_everything_else_does() -> None:
    tracer = TracerProvider(sampler=sampler()).get_tracer("test")
    assert not tracer.start_span("SELECT", kind=SpanKind.CLIENT, attributes=QUERY).is_recording()
    assert tracer.start_span("StartWorkflow:OrderLifecycle", kind=SpanKind.CLIENT).is_recording()
    with tracer.start_as_current_span("POST /v1/commands", kind=SpanKind.SERVER) as request:
        assert request.is_recording()
        assert tracer.start_span("SELECT", kind=SpanKind.CLIENT, attributes=QUERY).is_recording()


def test_a_callers_unsampled_context_does_not_turn_the_floors_spans_off() -> None:
    tracer = TracerProvider(sampler=sampler()).get_tracer("test")
    caller = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))
    span = tracer.start_span("hotpath.intake", context=trace.set_span_in_context(NonRecordingSpan(caller)))
    assert span.is_recording() and span.get_span_context().trace_flags.sampled
    assert span.get_span_context().trace_id == 0x1234
