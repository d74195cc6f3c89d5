"""OpenTelemetry logs: one :class:`LoggerProvider` per process, for the floor's events.

Each process's main calls :func:`setup_logs` once with its service name. The provider sends log
records in batches (a background thread; emitting one is an append to its queue) to:

- an OTLP/HTTP log exporter when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
  ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT``) is set; the exporter reads the rest of its settings
  (headers, timeout, protocol paths) from the standard ``OTEL_EXPORTER_OTLP_*`` variables;
- any exporters the caller passes (a test's in-memory exporter).

Without either, records are made and dropped: the floor's events are in Postgres and the process
log anyway, and a process that never called :func:`setup_logs` emits to the API's no-op logger.

What is emitted, and with which attributes, is :mod:`observability.events`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from opentelemetry import _logs as otel_logs
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import Resource

OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
EVENTS_SCOPE = "floor.events"
"""The instrumentation scope of every event record (what a backend filters the floor's events by)."""

_current: LoggerProvider | None = None
_logger: otel_logs.Logger = otel_logs.NoOpLogger(EVENTS_SCOPE)


def otlp_configured() -> bool:
    return any(os.environ.get(name) for name in OTLP_ENDPOINT_VARIABLES)


def setup_logs(service_name: str, *, exporters: Sequence[LogRecordExporter] = ()) -> LoggerProvider:
    """This process's logger provider, made current (:func:`events_logger` emits through it).

    Call once per process. At exit the SDK's own hook shuts the provider down, exporting what is
    still queued; a test that makes one shuts it down itself."""
    provider = LoggerProvider(resource=Resource.create({"service.name": service_name}))
    if otlp_configured():
        # Imported only when wanted: the exporter pulls in protobuf and requests.
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    for exporter in exporters:
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    install(provider)
    return provider


def install(provider: LoggerProvider | None) -> None:
    """Make ``provider`` the one events are emitted through (None: back to the no-op logger).

    The OpenTelemetry API's global provider can be set once per process; it is set to the first
    provider made here, so libraries that log through the API reach the same exporters. The
    floor's own events always go through the newest one, so a test may make several."""
    global _current, _logger
    _current = provider
    _logger = otel_logs.NoOpLogger(EVENTS_SCOPE) if provider is None else provider.get_logger(EVENTS_SCOPE)
    if provider is not None and not _global_set():
        otel_logs.set_logger_provider(provider)


def _global_set() -> bool:
    return isinstance(otel_logs.get_logger_provider(), LoggerProvider)


def events_logger() -> otel_logs.Logger:
    """The logger the floor's events are emitted through (made once per provider: emitting
    is then one call, no lookup)."""
    return _logger
