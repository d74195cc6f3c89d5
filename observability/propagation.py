"""W3C trace context in Kafka record headers (``traceparent``, ``tracestate``).

For the records the floor builds by hand (``agent.commands`` from the door and the desk,
``orders.events`` from the hot path): the producer injects the current (or a given) context,
the consumer extracts it and starts its spans as children. Headers are not covered by a
record's signature, so a forged ``traceparent`` can at worst attach spans to someone else's
trace; the floor acts on the signed payload only, never on a header.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_HEADERS = (TRACEPARENT, TRACESTATE)
_MAX_HEADER_BYTES = 512
"""A traceparent is 55 bytes; tracestate is capped at 512 characters by the W3C spec."""

_propagator = TraceContextTextMapPropagator()


def inject_kafka_headers(context: Context | None = None) -> list[tuple[str, bytes]]:
    """``traceparent`` (and ``tracestate`` when there is one) for ``context`` (default: the
    current one); empty when it holds no valid span (tracing off, or outside any span)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=context)
    return [(name, carrier[name].encode("ascii")) for name in _HEADERS if name in carrier]


def extract_kafka_headers(headers: Sequence[tuple[str, bytes]] | None) -> Context:
    """The context the headers carry (an empty context when none or malformed: the consumer then
    starts a trace of its own). Other headers, and oversized or undecodable values, are ignored."""
    carrier: dict[str, str] = {}
    for name, value in headers or ():
        if name not in _HEADERS or value is None or len(value) > _MAX_HEADER_BYTES:
            continue
        try:
            carrier[name] = value.decode("ascii")
        except UnicodeDecodeError:
            continue
    if TRACEPARENT not in carrier:
        return Context()
    return _propagator.extract(carrier, context=Context())
