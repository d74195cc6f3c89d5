"""A process's metrics as Prometheus text: ``GET /metrics`` everywhere.

The metrics are read from the process's in-process reader on each scrape (no second reader, no
copy kept between scrapes) and rendered by ``prometheus_client``: the classic text format
(``text/plain; version=0.0.4``) by default, OpenMetrics when the scraper asks for it in its
``Accept`` header, as Prometheus does with exemplar storage on. Only OpenMetrics carries the
histograms' exemplars (``# {trace_id="…",span_id="…"} value timestamp`` after a bucket's line):
the trace of the last measurement that fell into that bucket while a sampled span was current.

Names follow the OpenTelemetry-to-Prometheus rules of ``opentelemetry-exporter-prometheus``
(dots to underscores, the unit as a suffix: ``floor.hotpath.signal_to_broker`` in seconds is
``floor_hotpath_signal_to_broker_seconds``; counters end in ``_total``). Not that exporter's
reader itself: it drops exemplars and would keep a second aggregation of every measurement.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from itertools import chain
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from opentelemetry.exporter.prometheus._mapping import map_unit, sanitize_attribute, sanitize_full_name
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricReader,
    Sum,
)
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import ThreadingWSGIServer, choose_encoder, make_wsgi_app
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar

from observability.telemetry import Telemetry


class ReaderCollector(Collector):
    """Renders an :class:`InMemoryMetricReader`'s data as Prometheus metric families."""

    def __init__(self, reader: MetricReader) -> None:
        if not isinstance(reader, InMemoryMetricReader):
            raise TypeError("Prometheus exposition reads an InMemoryMetricReader (telemetry.setup's)")
        self._reader = reader

    def collect(self) -> Iterator[Metric]:
        data = self._reader.get_metrics_data()
        if data is None:
            return
        families: dict[str, Metric] = {}
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    family = _family(metric.name, metric.unit or "", metric.description or "", metric.data)
                    if family is None:
                        continue
                    seen = families.setdefault(family.name, family)
                    if seen is not family:  # the same name from another scope: one family
                        seen.samples.extend(family.samples)
        yield from families.values()


def _family(name: str, unit: str, description: str, data: Any) -> Metric | None:
    prom_name = sanitize_full_name(name)
    prom_unit = map_unit(unit)
    points = list(data.data_points)
    labels = sorted({sanitize_attribute(k) for p in points for k in (p.attributes or {})})

    def values(point: Any) -> list[str]:
        attrs = {sanitize_attribute(k): _label(v) for k, v in (point.attributes or {}).items()}
        return [attrs.get(k, "") for k in labels]

    family: Metric
    if isinstance(data, Histogram):
        family = HistogramMetricFamily(prom_name, description, labels=labels, unit=prom_unit)
        for point in points:
            family.add_metric(values(point), _buckets(point), point.sum)
        return family
    if isinstance(data, Sum) and data.is_monotonic:
        family = CounterMetricFamily(prom_name, description, labels=labels, unit=prom_unit)
    elif isinstance(data, Sum | Gauge):
        # A cumulative up-down sum is a gauge in Prometheus (the compatibility spec's rule).
        if isinstance(data, Sum) and data.aggregation_temporality is not AggregationTemporality.CUMULATIVE:
            return None
        family = GaugeMetricFamily(prom_name, description, labels=labels, unit=prom_unit)
    else:
        return None
    for point in points:
        family.add_metric(values(point), point.value)
    return family


def _buckets(point: HistogramDataPoint) -> list[Any]:
    """Cumulative ``(le, count[, exemplar])`` per bucket; each exemplar on the bucket its value
    fell into."""
    bounds = list(point.explicit_bounds)
    exemplars: dict[int, Exemplar] = {}
    for ex in point.exemplars or ():
        if ex.trace_id is None or ex.span_id is None:
            continue
        index = next((i for i, bound in enumerate(bounds) if ex.value <= bound), len(bounds))
        exemplars[index] = Exemplar(
            {"trace_id": f"{ex.trace_id:032x}", "span_id": f"{ex.span_id:016x}"},
            ex.value,
            ex.time_unix_nano / 1e9,
        )
    out: list[Any] = []
    total = 0
    uppers = chain((repr(float(b)) for b in bounds), ["+Inf"])
    for index, (le, count) in enumerate(zip(uppers, point.bucket_counts, strict=True)):
        total += count
        out.append((le, total, exemplars[index]) if index in exemplars else (le, total))
    return out


def _label(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def registry_for(telemetry: Telemetry) -> CollectorRegistry:
    """A registry of this process's metrics alone (never prometheus_client's global one, which
    would also render whatever else registered there, and once per test's provider)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReaderCollector(telemetry.reader))
    return registry


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The body and content type of a scrape that sent ``accept``."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


class _Quiet(WSGIRequestHandler):
    """No access log line per scrape."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass


class MetricsPortUnavailable(RuntimeError):
    """The metrics port is taken or cannot be bound; the message names the setting to change."""


class MetricsServer:
    """``/metrics`` on a port of its own, served from a daemon thread (for the worker and the
    bridge, which have no HTTP server of theirs): prometheus_client's WSGI server over
    :func:`registry_for`; a scrape never runs on the process's event loop."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._registry = registry_for(telemetry)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str, port: int, setting: str = "its port setting") -> int:
        """Listen on ``host:port`` (0: any free port); returns the port bound. ``setting``
        names the environment variable to change when the port is taken."""
        try:
            server = make_server(host, port, make_wsgi_app(self._registry), ThreadingWSGIServer, _Quiet)
        except OSError as exc:
            raise MetricsPortUnavailable(
                f"cannot serve /metrics on {host}:{port} ({exc}); set {setting} to a free port"
            ) from exc
        self._server = server
        # A short poll: close() (the process stopping) waits for the loop to see it.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="metrics", daemon=True
        )
        self._thread.start()
        return int(server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
