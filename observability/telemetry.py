"""OpenTelemetry metrics set-up and the floor's instruments.

Each process calls :func:`setup` once with its service name. Every process keeps its metrics in
one in-process reader (:class:`InMemoryMetricReader`, cumulative): its ``/metrics`` route renders
them as Prometheus text on each scrape (:mod:`observability.prometheus`), ``/metrics.json`` and
the tests read them as values. One reader, so a measurement costs one aggregation whatever serves
it. With ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``) set, a
second reader pushes the same metrics over OTLP/HTTP every ``OTEL_METRIC_EXPORT_INTERVAL`` ms
(60 s unless set), from its own thread.

Durations are in seconds (Prometheus' base unit: ``..._seconds``), histograms with buckets
chosen for what they time. Exemplars: the SDK's default filter (``trace_based``) keeps, per
bucket, the last measurement recorded while a sampled span was current, or with a ``context``
naming one; the OpenMetrics exposition shows it as ``# {trace_id="...",span_id="..."}`` after
the bucket's line, the classic text format has no exemplars.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext

METER_NAME = "execution_floor"
OTLP_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")

# Bucket bounds, in seconds. The hot path's own stages take tens of microseconds to a few
# milliseconds; a broker's answer and a breaker's sweep up to a second; a failover seconds.
HOT_PATH_BOUNDS = (
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.000_75, 0.001, 0.002, 0.003, 0.005, 0.007_5,
    0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip
BROKER_BOUNDS = (0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SESSION_BOUNDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
# Fill quality: the first bucket holds every Iceberg at the mid or better. No negative bounds:
# Prometheus clients leave a histogram's _sum and _count out when its buckets go below zero,
# and the average cost (sum / count) is what the dashboards read.
BPS_BOUNDS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)


@dataclass(frozen=True)
class Metrics:
    commands_received: Counter
    """Attribute ``door`` (``rest``) at the API; ``outcome`` at the hot path: ``accepted``,
    ``refused`` (the reason is ``commands_refused``'s) or ``ledger_unreachable`` (handed in
    again once the ledger answers)."""
    commands_refused: Counter
    """Attribute ``reason``: the named refusal."""
    orders_sent: Counter
    broker_events: Counter
    """Attribute ``type``: the broker event's class."""
    security_events: Counter
    """Attributes ``reason`` and ``severity``."""
    intake_to_write: Histogram
    """Seconds from taking a command off Kafka to the broker socket write."""
    signal_to_broker: Histogram
    """Seconds from the command's Kafka produce timestamp (the signal) to the broker socket
    write, on the wall clock: the floor's headline latency."""
    ledger_append: Histogram
    """Seconds the hot path's ledger append took to commit (after sentry, sizer and risk)."""
    ack_latency: Histogram
    """Seconds from the socket write to the broker's acknowledgement of the order."""
    fills: Counter
    """Executions applied to the floor's orders; attribute ``side``."""
    filled_shares: Counter
    """Their quantity; attribute ``side``."""
    breaker_trips: Counter
    """Attribute ``symbol``: the one whose crash tripped it."""
    breaker_cancel: Histogram
    """Seconds from the crashing tick's arrival to the global cancel on the broker socket."""
    breaker_sweep: Histogram
    """Seconds from the crashing tick's arrival to the last cancel acknowledgement."""
    session_changes: Counter
    """Broker connectivity changes; attribute ``change`` (connected, disconnected, reconnected,
    failed_over, standby_down, standby_up, closed)."""
    failover: Histogram
    """Seconds from a failover or reconnect to the end of its reconciliation, when orders flow
    again; attribute ``change``."""
    outage: Histogram
    """Seconds the broker was unreachable: from ``disconnected`` to ``reconnected``."""
    iceberg_fill_quality: Histogram
    """An ended Iceberg's cost against the mid at slice time, in basis points (positive: worse
    than the mid; every negative one falls in the first bucket, ``le="0.0"``)."""
    gc_pause: Histogram
    """Seconds the cyclic garbage collector stopped the process; attribute ``generation``
    (:mod:`observability.gc_pauses`)."""


@dataclass(frozen=True)
class Telemetry:
    provider: MeterProvider
    reader: MetricReader
    """The in-process reader every exposition reads (an :class:`InMemoryMetricReader` unless a
    test gave another)."""
    metrics: Metrics
    service_name: str = ""

    @property
    def meter(self) -> Meter:
        return self.provider.get_meter(METER_NAME)

    def shutdown(self) -> None:
        self.provider.shutdown()


def make_metrics(meter: Meter) -> Metrics:
    def seconds(name: str, bounds: Sequence[float], description: str) -> Histogram:
        return meter.create_histogram(
            name, unit="s", description=description, explicit_bucket_boundaries_advisory=bounds
        )

    return Metrics(
        commands_received=meter.create_counter("floor.commands.received", unit="1"),
        commands_refused=meter.create_counter(
            "floor.commands.refused", unit="1", description="Commands refused, by reason"
        ),
        orders_sent=meter.create_counter(
            "floor.orders.sent", unit="1", description="Orders written to the broker"
        ),
        broker_events=meter.create_counter("floor.broker.events", unit="1"),
        security_events=meter.create_counter("floor.security.events", unit="1"),
        intake_to_write=seconds(
            "floor.hotpath.intake_to_write", HOT_PATH_BOUNDS, "Command off Kafka to broker socket write"
        ),
        signal_to_broker=seconds(
            "floor.hotpath.signal_to_broker", HOT_PATH_BOUNDS, "Command produced to broker socket write"
        ),
        ledger_append=seconds("floor.hotpath.ledger_append", HOT_PATH_BOUNDS, "Ledger append to commit"),
        ack_latency=seconds(
            "floor.broker.ack_latency", BROKER_BOUNDS, "Broker socket write to the order's acknowledgement"
        ),
        fills=meter.create_counter("floor.fills", unit="1", description="Executions of the floor's orders"),
        filled_shares=meter.create_counter("floor.fills.shares", unit="1"),
        breaker_trips=meter.create_counter("floor.breaker.trips", unit="1"),
        breaker_cancel=seconds(
            "floor.breaker.cancel", BROKER_BOUNDS, "Crashing tick to the global cancel's socket write"
        ),
        breaker_sweep=seconds(
            "floor.breaker.sweep", BROKER_BOUNDS, "Crashing tick to the last cancel acknowledgement"
        ),
        session_changes=meter.create_counter("floor.broker.session_changes", unit="1"),
        failover=seconds(
            "floor.broker.failover", SESSION_BOUNDS, "Failover or reconnect to orders flowing again"
        ),
        outage=seconds("floor.broker.outage", SESSION_BOUNDS, "Broker unreachable, disconnect to reconnect"),
        gc_pause=seconds("floor.gc.pause", HOT_PATH_BOUNDS, "Garbage collector pause, by generation"),
        iceberg_fill_quality=meter.create_histogram(
            "floor.iceberg.fill_quality",
            unit="bp",
            description="An ended Iceberg's cost against the mid, basis points",
            explicit_bucket_boundaries_advisory=BPS_BOUNDS,
        ),
    )


def _otlp_reader() -> MetricReader | None:
    """An OTLP/HTTP push reader when an endpoint is configured (the exporter reads the
    ``OTEL_EXPORTER_OTLP_*`` variables itself: endpoint, headers, timeout, temporality)."""
    if not any(os.environ.get(var) for var in OTLP_ENDPOINT_VARS):
        return None
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    return PeriodicExportingMetricReader(OTLPMetricExporter())


def setup(service_name: str, reader: MetricReader | None = None, *, otlp: bool = True) -> Telemetry:
    """A meter provider for this process (not installed globally, so tests can make many):
    ``reader`` (an in-memory one unless given) and, with ``otlp`` and an endpoint set, OTLP."""
    reader = reader or InMemoryMetricReader()
    readers = [reader]
    pushed = _otlp_reader() if otlp else None
    if pushed is not None:
        readers.append(pushed)
    provider = MeterProvider(resource=Resource.create({"service.name": service_name}), metric_readers=readers)
    return Telemetry(provider, reader, make_metrics(provider.get_meter(METER_NAME)), service_name)


def in_trace(span_context: SpanContext | None) -> Context | None:
    """A context naming ``span_context`` as current, for a measurement's ``context=``: recorded
    after the fact (the hot path's, after the socket write), it still gets that trace as its
    exemplar. None (the current context) when there is no span."""
    if span_context is None or not span_context.is_valid:
        return None
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def install_global(telemetry: Telemetry) -> None:
    """Make ``telemetry`` the process-wide provider (called once by each process's main)."""
    metrics.set_meter_provider(telemetry.provider)


def observe(
    telemetry: Telemetry,
    name: str,
    read: Callable[[], float | None],
    *,
    kind: str = "gauge",
    unit: str = "1",
    description: str = "",
) -> None:
    """An instrument read on each collection from ``read`` (None: no point this time):
    ``kind`` ``gauge`` (a level, e.g. open subscriptions) or ``counter`` (a running total the
    process keeps anyway, e.g. subscriptions dropped since start)."""

    def callback(_options: CallbackOptions) -> Iterable[Observation]:
        value = read()
        return () if value is None else (Observation(value),)

    if kind == "counter":
        telemetry.meter.create_observable_counter(name, [callback], unit=unit, description=description)
    else:
        telemetry.meter.create_observable_gauge(name, [callback], unit=unit, description=description)


def observe_counts(
    telemetry: Telemetry, name: str, read: Callable[[], Mapping[str, int]], label: str, description: str = ""
) -> None:
    """One counter of running totals the process keeps anyway (e.g. a stats dataclass's fields),
    read on each collection: a point per key of ``read()``, the key as attribute ``label``."""

    def callback(_options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, {label: key}) for key, value in read().items()]

    telemetry.meter.create_observable_counter(name, [callback], unit="1", description=description)


def counter_value(reader: InMemoryMetricReader, name: str, **attributes: str) -> int:
    """Sum of a counter's data points whose attributes include ``attributes``."""
    data = reader.get_metrics_data()
    total = 0
    if data is None:
        return 0
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    attrs = dict(point.attributes or {})
                    if all(attrs.get(k) == v for k, v in attributes.items()):
                        total += int(getattr(point, "value", 0))
    return total


def snapshot(reader: InMemoryMetricReader) -> dict[str, list[dict[str, object]]]:
    """Every metric's data points as plain JSON values (for a process's ``/metrics.json``):
    counters and gauges as ``value``, histograms as ``count``, ``sum``, ``min`` and ``max``."""
    out: dict[str, list[dict[str, object]]] = {}
    data = reader.get_metrics_data()
    if data is None:
        return out
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points = out.setdefault(metric.name, [])
                for point in metric.data.data_points:
                    entry: dict[str, object] = {"attributes": dict(point.attributes or {})}
                    if hasattr(point, "value"):
                        entry["value"] = point.value
                    else:
                        for field in ("count", "sum", "min", "max"):
                            entry[field] = getattr(point, field, None)
                    points.append(entry)
    return out
