"""Every process's ``/metrics``: the Prometheus text a process's telemetry renders parses with
``prometheus_client``'s parser, names and units as Prometheus expects them, exemplars in
OpenMetrics, and the worker's and bridge's own metrics server answers over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from config.ports import free_port
from observability.prometheus import MetricsPortUnavailable, MetricsServer, exposition, registry_for
from observability.telemetry import Telemetry, observe, observe_counts, setup
from tests.observability.scrape import OPENMETRICS, families, openmetrics, scrape, value


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    telemetry = setup("metrics-test", otlp=False)
    yield telemetry
    telemetry.shutdown()


def test_the_prometheus_text_parses_with_names_units_and_labels(telemetry: Telemetry) -> None:
    m = telemetry.metrics
    m.commands_refused.add(2, {"reason": "risk.max_position"})
    m.commands_refused.add(1, {"reason": "sentry.stale"})
    m.signal_to_broker.record(0.0004)
    m.signal_to_broker.record(0.0021)
    m.fills.add(1, {"side": "BUY"})
    observe(telemetry, "floor.api.subscriptions", lambda: 3)
    observe_counts(telemetry, "floor.bridge.records", lambda: {"delivered": 5, "unverified": 1}, "outcome")

    body, content_type = exposition(registry_for(telemetry), None)
    assert content_type.startswith("text/plain; version=0.0.4")
    found = families(body.decode())

    assert (
        value(found, "floor_commands_refused", "floor_commands_refused_total", reason="risk.max_position")
        == 2
    )
    latency = found["floor_hotpath_signal_to_broker_seconds"]
    assert latency.type == "histogram"
    assert value(found, latency.name, f"{latency.name}_count") == 2
    assert value(found, latency.name, f"{latency.name}_bucket", le="0.0005") == 1
    assert value(found, latency.name, f"{latency.name}_bucket", le="+Inf") == 2
    assert value(found, "floor_api_subscriptions", "floor_api_subscriptions") == 3
    assert value(found, "floor_bridge_records", "floor_bridge_records_total", outcome="unverified") == 1


def test_openmetrics_carries_the_trace_of_a_measurement_taken_in_a_sampled_span(telemetry: Telemetry) -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("intake") as span:
        telemetry.metrics.signal_to_broker.record(0.0021)
    trace_id = f"{span.get_span_context().trace_id:032x}"
    telemetry.metrics.signal_to_broker.record(0.0004)  # outside any span: no exemplar

    body, content_type = exposition(registry_for(telemetry), OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    latency = openmetrics(body.decode())["floor_hotpath_signal_to_broker_seconds"]
    with_exemplar = [s for s in latency.samples if s.exemplar is not None]
    assert [(s.labels["le"], s.exemplar.labels["trace_id"]) for s in with_exemplar] == [("0.003", trace_id)]
    assert with_exemplar[0].exemplar.value == pytest.approx(0.0021)


async def test_a_metrics_server_of_its_own_serves_both_formats(telemetry: Telemetry) -> None:
    telemetry.metrics.iceberg_fill_quality.record(1.5)
    server = MetricsServer(telemetry)
    port = server.start("127.0.0.1", 0)
    try:
        found = families(await scrape(f"http://127.0.0.1:{port}/metrics"))
        assert value(found, "floor_iceberg_fill_quality_bp", "floor_iceberg_fill_quality_bp_count") == 1
        assert "floor_iceberg_fill_quality_bp" in openmetrics(
            await scrape(f"http://127.0.0.1:{port}/metrics", OPENMETRICS)
        )
    finally:
        server.close()


def test_a_metrics_port_in_use_names_the_setting_to_change(telemetry: Telemetry) -> None:
    first = MetricsServer(telemetry)
    port = first.start("127.0.0.1", free_port())
    try:
        with pytest.raises(MetricsPortUnavailable, match="FLOOR_WORKER_HEALTH_PORT"):
            MetricsServer(telemetry).start("127.0.0.1", port, "FLOOR_WORKER_HEALTH_PORT")
    finally:
        first.close()


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver's one route: keeps each ``/v1/metrics`` request's body."""

    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - the handler's name is the method's
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/metrics":
            self.received.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_with_an_otlp_endpoint_the_metrics_are_pushed_there_too(monkeypatch: pytest.MonkeyPatch) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    telemetry = setup("otlp-test")
    try:
        telemetry.metrics.signal_to_broker.record(0.002)
        assert telemetry.provider.force_flush(timeout_millis=10_000)
        names = set()
        for body in _Collector.received:
            request = ExportMetricsServiceRequest.FromString(body)
            for resource in request.resource_metrics:
                for scope in resource.scope_metrics:
                    names |= {m.name for m in scope.metrics}
        assert "floor.hotpath.signal_to_broker" in names
        assert isinstance(telemetry.reader, InMemoryMetricReader)  # /metrics still reads it
    finally:
        telemetry.shutdown()
        server.shutdown()
        server.server_close()
