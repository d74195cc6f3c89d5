"""A worker's Temporal metrics reach its ``/metrics``: what a workflow records through the
replay-safe ``workflow.metric_meter()`` (the Iceberg's fill quality) lands in the floor's own
instrument, with the SDK's own ``temporal_*`` metrics beside it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from observability.prometheus import exposition, registry_for
from observability.telemetry import Telemetry, setup
from observability.temporal_metrics import TemporalMetrics
from tests.observability.scrape import families, value
from workflows.iceberg_metrics import record_fill_quality
from workflows.slicing import FillQuality


@workflow.defn(sandboxed=False)
class RecordsFillQuality:
    @workflow.run
    async def run(self, cost_bps: float) -> None:
        meter = workflow.metric_meter()
        meter.create_histogram_float("floor.iceberg.fill_quality", "cost against the mid", "bp").record(
            cost_bps
        )


@workflow.defn(sandboxed=False)
class EndsBetterThanTheMid:
    @workflow.run
    async def run(self, cost_bps: str) -> None:
        cost = Decimal(cost_bps)
        quality = FillQuality(100, Decimal("99.99"), Decimal("100"), cost, cost)
        record_fill_quality(quality, "AAPL", "BUY")


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


async def test_a_fill_better_than_the_mid_is_recorded_as_an_improvement_and_the_workflow_ends(
    temporal_address: str, telemetry: Telemetry
) -> None:
    """Temporal's workflow meter refuses a negative value: recorded as is, a price improvement
    failed the Iceberg's last workflow task for ever."""
    forwarder = TemporalMetrics(telemetry)
    client = await Client.connect(temporal_address, runtime=forwarder.runtime)
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[EndsBetterThanTheMid]):
        for cost in ("-1.2", "3"):
            await asyncio.wait_for(
                client.execute_workflow(
                    EndsBetterThanTheMid.run, cost, id=f"{queue}-{cost}", task_queue=queue
                ),
                timeout=30,
            )
    assert forwarder.drain() > 0

    found = families(exposition(registry_for(telemetry), None)[0].decode())
    quality = "floor_iceberg_fill_quality_bp"
    improvement = {"against_mid": "improvement", "symbol": "AAPL", "side": "BUY"}
    assert value(found, quality, f"{quality}_count", **improvement) == 1
    assert value(found, quality, f"{quality}_bucket", le="2.0", **improvement) == 1
    assert value(found, quality, f"{quality}_bucket", le="1.0", **improvement) == 0
    assert value(found, quality, f"{quality}_count", against_mid="cost", symbol="AAPL", side="BUY") == 1
