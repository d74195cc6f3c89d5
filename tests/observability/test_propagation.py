"""W3C trace context through Kafka headers: what one side injects the other extracts, and what a
record carries that is not a valid context starts no trace."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from observability.propagation import extract_kafka_headers, inject_kafka_headers


def test_a_context_injected_into_headers_is_extracted_as_the_parent() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("door") as door:
        headers = inject_kafka_headers()
    assert [name for name, _ in headers] == ["traceparent"]
    context = extract_kafka_headers([("other", b"x"), *headers])
    parent = trace.get_current_span(context).get_span_context()
    assert parent.is_remote
    assert parent.trace_id == door.get_span_context().trace_id
    assert parent.span_id == door.get_span_context().span_id
    with tracer.start_as_current_span("intake", context=context) as intake:
        assert intake.get_span_context().trace_id == door.get_span_context().trace_id


def test_no_or_malformed_headers_give_an_empty_context() -> None:
    assert inject_kafka_headers() == []  # outside any span
    for headers in (
        None,
        [],
        [("traceparent", b"nonsense")],
        [("traceparent", b"\xff" * 55)],
        [("traceparent", b"00-" + b"a" * 600)],
    ):
        context = extract_kafka_headers(headers)
        assert not trace.get_current_span(context).get_span_context().is_valid
