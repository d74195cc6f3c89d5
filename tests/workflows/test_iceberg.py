"""Iceberg workflow on the time-skipping server: intervals, repricing, no overfill, signals."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.sim import SimVenue
from workflows.iceberg import Iceberg, IcebergInput, IcebergResult, IcebergStatus

QUEUE = "iceberg-test"


async def _run(env: WorkflowEnvironment, venue: SimVenue, inp: IcebergInput) -> IcebergResult:
    async with Worker(env.client, task_queue=QUEUE, workflows=[Iceberg], activities=venue.activities()):
        return await env.client.execute_workflow(
            Iceberg.run,
            inp,
            id=f"iceberg-{uuid.uuid4()}",
            task_queue=QUEUE,
            execution_timeout=timedelta(hours=1),
        )


async def test_slices_fill_the_parent_exactly_with_randomized_3_to_7_second_gaps(
    skipping_env: WorkflowEnvironment,
) -> None:
    venue = SimVenue(script=lambda n: "partial:40" if n % 3 == 0 else "fill")
    inp = IcebergInput(account="DU1", symbol="AAPL", side="BUY", total_qty=1000, display_qty=100)
    result = await _run(skipping_env, venue, inp)

    assert result.status is IcebergStatus.COMPLETED
    assert result.filled_qty == 1000 == sum(s.filled_qty for s in result.slices)
    assert all(s.filled_qty <= s.qty for s in result.slices)
    gaps = [
        (b.sent_at - a.sent_at).total_seconds()
        for a, b in zip(result.slices, result.slices[1:], strict=False)
    ]
    assert len(gaps) >= 10
    assert all(3.0 <= g <= 7.0 for g in gaps), gaps
    assert len({round(g, 3) for g in gaps}) > 1
    # Spread 4 ticks wide: a buy improves the bid by one tick.
    assert {s.price for s in result.slices} == {Decimal("100.01")}
    partials = [s for s in result.slices if s.slice_no % 3 == 0]
    assert partials and all(s.outcome == "cancelled" and s.filled_qty == 40 for s in partials)
    assert len(venue.cancels) == len(partials)
