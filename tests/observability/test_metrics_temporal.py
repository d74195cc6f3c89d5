"""A worker's Temporal metrics reach its ``/metrics``: what a workflow records through the
replay-safe ``workflow.metric_meter()`` (the Iceberg's fill quality) lands in the floor's own
instrument, with the SDK's own ``temporal_*`` metrics beside it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from observability.prometheus import exposition, registry_for
from observability.telemetry import Telemetry, setup
from observability.temporal_metrics import TemporalMetrics
from tests.observability.scrape import families, value


@workflow.defn(sandboxed=False)
class RecordsFillQuality:
    @workflow.run
    async def run(self, cost_bps: float) -> None:
        meter = workflow.metric_meter()
        meter.create_histogram_float("floor.iceberg.fill_quality", "cost against the mid", "bp").record(
            cost_bps
        )


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    telemetry = setup("worker-test", otlp=False)
    yield telemetry
    telemetry.shutdown()


async def test_a_workflows_metric_and_the_sdks_reach_the_process_metrics(
    temporal_address: str, telemetry: Telemetry
) -> None:
    forwarder = TemporalMetrics(telemetry)
    client = await Client.connect(temporal_address, runtime=forwarder.runtime)
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[RecordsFillQuality]):
        await client.execute_workflow(RecordsFillQuality.run, 1.5, id=queue, task_queue=queue)
    assert forwarder.drain() > 0

    found = families(exposition(registry_for(telemetry), None)[0].decode())
    quality = "floor_iceberg_fill_quality_bp"
    assert value(found, quality, f"{quality}_count") == 1
    assert value(found, quality, f"{quality}_bucket", le="2.0") == 1  # the floor's own buckets
    assert value(found, quality, f"{quality}_bucket", le="1.0") == 0
    assert value(found, "temporal_workflow_completed", "temporal_workflow_completed_total") >= 1
    latency = "temporal_workflow_endtoend_latency_seconds"  # the SDK's durations, in seconds
    assert value(found, latency, f"{latency}_count") >= 1
    assert value(found, latency, f"{latency}_bucket", le="60.0") >= 1
