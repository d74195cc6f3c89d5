"""OpenTelemetry set-up and the floor's metrics.

Each process calls :func:`setup` once with its service name. Without an exporter configured
(``OTEL_EXPORTER_OTLP_ENDPOINT`` needs an OTLP exporter package the floor does not ship) the
metrics are still recorded and can be read in-process through a metric reader, which is how the
tests and ``/health`` see them.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import metrics
from opentelemetry.metrics import Counter, Histogram, Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.resources import Resource

METER_NAME = "execution_floor"


@dataclass(frozen=True)
class Metrics:
    commands_received: Counter
    commands_refused: Counter
    """Attribute ``reason``: the named refusal."""
    orders_sent: Counter
    broker_events: Counter
    security_events: Counter
    """Attributes ``reason`` and ``severity``."""
    intake_to_write_us: Histogram
    """Microseconds from taking a command off Kafka to the broker socket write."""
    produce_to_write_us: Histogram
    """Microseconds from the command's Kafka produce timestamp to the socket write (wall clock)."""


@dataclass(frozen=True)
class Telemetry:
    provider: MeterProvider
    reader: MetricReader
    metrics: Metrics

    def shutdown(self) -> None:
        self.provider.shutdown()


def make_metrics(meter: Meter) -> Metrics:
    return Metrics(
        commands_received=meter.create_counter("floor.commands.received", unit="1"),
        commands_refused=meter.create_counter("floor.commands.refused", unit="1"),
        orders_sent=meter.create_counter("floor.orders.sent", unit="1"),
        broker_events=meter.create_counter("floor.broker.events", unit="1"),
        security_events=meter.create_counter("floor.security.events", unit="1"),
        intake_to_write_us=meter.create_histogram("floor.hotpath.intake_to_write", unit="us"),
        produce_to_write_us=meter.create_histogram("floor.hotpath.produce_to_write", unit="us"),
    )


def setup(service_name: str, reader: MetricReader | None = None) -> Telemetry:
    """A meter provider for this process (not installed globally, so tests can make many)."""
    reader = reader or InMemoryMetricReader()
    provider = MeterProvider(
        resource=Resource.create({"service.name": service_name}), metric_readers=[reader]
    )
    return Telemetry(provider, reader, make_metrics(provider.get_meter(METER_NAME)))


def install_global(telemetry: Telemetry) -> None:
    """Make ``telemetry`` the process-wide provider (called once by each process's main)."""
    metrics.set_meter_provider(telemetry.provider)


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
    """Every metric's data points as plain JSON values (for a process's ``/metrics`` route):
    counters as ``value``, histograms as ``count``, ``sum``, ``min`` and ``max``."""
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
