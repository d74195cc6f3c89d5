"""The Temporal SDK's metrics in the process's own ``/metrics``.

A worker's Temporal Runtime buffers every metric it records (its own ``temporal_*`` metrics:
workflow and activity task latencies, polls, failures; and what workflows record through the
replay-safe ``workflow.metric_meter()``, such as an Iceberg's fill quality) in a
:class:`~temporalio.runtime.MetricBuffer`. :class:`TemporalMetrics` drains it every second into
the process's OpenTelemetry meter, so one scrape (or one OTLP push) carries both. A metric the
floor already defines (``floor.iceberg.fill_quality``) is recorded into that very instrument,
with its buckets; the rest get instruments of the same name and kind on first sight. Durations
arrive in seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    BufferedMetric,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

from observability.telemetry import Telemetry

log = logging.getLogger(__name__)

BUFFER_SIZE = 100_000
"""Updates the Runtime keeps between drains; beyond it the SDK drops updates (and logs it)."""
DRAIN_EVERY_S = 1.0
DURATION_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class TemporalMetrics:
    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry
        self._buffer = MetricBuffer(BUFFER_SIZE, MetricBufferDurationFormat.SECONDS)
        self.runtime = Runtime(telemetry=TelemetryConfig(metrics=self._buffer))
        """The Runtime every Temporal client of the process must be made with (``runtime=``,
        or installed as the default with ``Runtime.set_default`` before any client connects)."""
        self._known: dict[str, Any] = {"floor.iceberg.fill_quality": telemetry.metrics.iceberg_fill_quality}
        self._instruments: dict[tuple[str, int], Any] = {}

    def drain(self) -> int:
        """Record every buffered update into the process's meter; returns how many."""
        updates = self._buffer.retrieve_updates()
        for update in updates:
            instrument = self._instrument(update.metric)
            attributes = _attributes(update.attributes)
            kind = update.metric.kind
            if kind == BUFFERED_METRIC_KIND_COUNTER:
                instrument.add(update.value, attributes)
            elif kind == BUFFERED_METRIC_KIND_GAUGE:
                instrument.set(update.value, attributes)
            else:
                instrument.record(update.value, attributes)
        return len(updates)

    async def run(self) -> None:
        """Drain every second until cancelled (and once more then)."""
        try:
            while True:
                await asyncio.sleep(DRAIN_EVERY_S)
                self._drain_logged()
        finally:
            self._drain_logged()

    def _drain_logged(self) -> None:
        try:
            self.drain()
        except Exception:
            log.exception("could not move the Temporal SDK's metrics into /metrics; trying again")

    def _instrument(self, metric: BufferedMetric) -> Any:
        key = (metric.name, int(metric.kind))
        found = self._instruments.get(key)
        if found is not None:
            return found
        meter = self._telemetry.meter
        name, unit, description = metric.name, metric.unit or "", metric.description or ""
        instrument = self._known.get(name)
        if instrument is None:
            if metric.kind == BUFFERED_METRIC_KIND_COUNTER:
                instrument = meter.create_counter(name, unit, description)
            elif metric.kind == BUFFERED_METRIC_KIND_GAUGE:
                instrument = meter.create_gauge(name, unit, description)
            else:
                # Durations (request, task and end-to-end latencies) get buckets in seconds;
                # the SDK's default bounds (0 to 10,000) suit milliseconds.
                bounds = DURATION_BOUNDS if unit == "s" else None
                instrument = meter.create_histogram(
                    name, unit, description, explicit_bucket_boundaries_advisory=bounds
                )
        self._instruments[key] = instrument
        return instrument


def _attributes(attributes: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    return {k: v if isinstance(v, str | int | float | bool) else str(v) for k, v in attributes.items()}
