"""Iceberg through outages and the session close: a quote gap, an unreachable intake or the
close ends nothing abruptly; the parent waits on workflow timers, never leaves a slice working,
and ends with a result that says why."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from temporalio.activity import client as activity_client
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows.sim import Controller, SimVenue, pause_at_slice
from tests.workflows.test_iceberg import QUEUE, _inp
from workflows.iceberg import (
    Iceberg,
    IcebergInput,
    IcebergResult,
    IcebergStatus,
)
from workflows.iceberg_policies import QUOTE_OUTAGE_LIMIT

EXECUTION_TIMEOUT = timedelta(hours=1)
CLOSE_TEST_TIMEOUT = timedelta(minutes=5)
"""Long past the close in these tests: a parent that ignored the close fails here, not later."""


async def _run_handle(
    env: WorkflowEnvironment,
    venue: SimVenue,
    inp: IcebergInput,
    execution_timeout: timedelta = EXECUTION_TIMEOUT,
) -> tuple[IcebergResult, WorkflowHandle[Iceberg, IcebergResult]]:
    async with Worker(env.client, task_queue=QUEUE, workflows=[Iceberg], activities=venue.activities()):
        handle = await env.client.start_workflow(
            Iceberg.run,
            inp,
            id=f"iceberg-{uuid.uuid4()}",
            task_queue=QUEUE,
            execution_timeout=execution_timeout,
        )
        result = await handle.result()
    return result, handle


async def _closed_ok(handle: WorkflowHandle[Iceberg, IcebergResult]) -> bool:
    """The run ended as a completed workflow (what ``sniper report`` lists), not a failed one."""
    return (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED


async def test_a_quote_gap_longer_than_the_activity_retries_is_waited_out_and_the_parent_completes(
    skipping_env: WorkflowEnvironment,
) -> None:
    # Quote attempts 2-16: three rounds of the activity's five retries find no book.
    venue = SimVenue(quote_fails=lambda n: 2 <= n <= 16)
    result, handle = await _run_handle(skipping_env, venue, _inp(total=300))

    assert result.status is IcebergStatus.COMPLETED and result.reason is None
    assert result.filled_qty == 300 == sum(s.filled_qty for s in result.slices)
    assert venue.quotes > 16
    first, second = result.slices[0], result.slices[1]
    # The second slice waited for the book to come back on workflow timers, well past the
    # few seconds the activity's own retries cover.
    assert (second.sent_at - first.sent_at).total_seconds() > 30
    assert any(n.startswith("no quote for AAPL") for n in result.notes), result.notes
    assert any(n.startswith("quotes for AAPL back after") for n in result.notes), result.notes
    assert await _closed_ok(handle)


async def test_quotes_that_never_come_back_end_the_parent_with_the_reason_and_no_slice_working(
    skipping_env: WorkflowEnvironment,
) -> None:
    venue = SimVenue(script=lambda n: "partial:40", quote_fails=lambda n: n >= 2)
    result, handle = await _run_handle(skipping_env, venue, _inp(total=300))

    assert await _closed_ok(handle)
    assert result.status is IcebergStatus.CANCELLED
    assert result.reason is not None and "no usable quote for AAPL" in result.reason
    assert result.filled_qty == 40 and len(result.slices) == 1
    # The partial slice was pulled before any quote was asked for; nothing works at the broker.
    only = result.slices[0]
    assert only.outcome == "cancelled" and [c.target_command_id for c in venue.cancels] == [only.command_id]
    assert all(s.outcome != "working" for s in result.slices)
    assert result.quality is not None
    gap = result.finished_at - only.sent_at
    assert QUOTE_OUTAGE_LIMIT <= gap < QUOTE_OUTAGE_LIMIT + timedelta(minutes=2)


async def test_a_cancel_during_a_quote_gap_ends_the_parent_without_waiting_out_the_gap(
    skipping_env: WorkflowEnvironment, controller: Controller
) -> None:
    async def cancel_in_the_gap(n: int, workflow_id: str) -> None:
        if n == 9:
            await controller.cancel(activity_client(), workflow_id)

    venue = SimVenue(quote_fails=lambda n: n >= 2, on_quote=cancel_in_the_gap, ledger=controller.pool)
    result, handle = await _run_handle(skipping_env, venue, _inp(total=300))

    assert await _closed_ok(handle)
    assert result.status is IcebergStatus.CANCELLED
    assert result.reason == f"cancelled: by {controller.agent.agent_id}"
    assert result.filled_qty == 100 and len(result.slices) == 1
    assert result.finished_at - result.started_at < timedelta(minutes=2)


async def test_an_order_publish_that_outlasts_its_retries_is_sent_again_under_the_same_id(
    skipping_env: WorkflowEnvironment,
) -> None:
    # Slice 2's first 12 publish attempts fail: more than one round of PUBLISH_RETRY.
    venue = SimVenue(publish_fails=lambda suffix, n: suffix == "s0002" and n <= 12)
    result, handle = await _run_handle(skipping_env, venue, _inp(total=300))

    assert await _closed_ok(handle)
    assert result.status is IcebergStatus.COMPLETED and result.filled_qty == 300
    assert len(result.slices) == 3 == len({o.command_id for o in venue.orders})
    assert venue.publish_attempts["s0002"] == 13
    assert any("slice 2" in n and "not published" in n for n in result.notes), result.notes


async def test_a_cancel_publish_that_outlasts_its_retries_is_sent_again_and_the_slice_is_pulled(
    skipping_env: WorkflowEnvironment,
) -> None:
    venue = SimVenue(
        script=lambda n: "rest" if n == 1 else "fill",
        publish_fails=lambda suffix, n: suffix == "s0001.x1" and n <= 12,
    )
    result, handle = await _run_handle(skipping_env, venue, _inp(total=300))

    assert await _closed_ok(handle)
    assert result.status is IcebergStatus.COMPLETED and result.filled_qty == 300
    first = result.slices[0]
    assert first.outcome == "cancelled" and first.filled_qty == 0
    # The same cancel command each round, which intake dedupes; the next slice waited for it.
    assert {c.command_id for c in venue.cancels} == {f"{first.command_id}.x1"}
    assert venue.publish_attempts["s0001.x1"] == 13
    assert result.slices[1].sent_at > first.sent_at + timedelta(seconds=5)


async def test_a_day_iceberg_stops_at_the_session_close_pulls_its_slice_and_ends_expired(
    skipping_env: WorkflowEnvironment,
) -> None:
    closes_at = await _soon(skipping_env, seconds=30)
    venue = SimVenue(script=lambda n: "fill" if n == 1 else "rest", closes_at=closes_at)
    result, handle = await _run_handle(
        skipping_env, venue, _inp(total=1000, expires_at=closes_at), CLOSE_TEST_TIMEOUT
    )

    assert await _closed_ok(handle)
    assert result.status is IcebergStatus.EXPIRED
    assert result.reason is not None and result.reason.startswith("expired at the session close")
    assert "100 of 1000 filled" in result.reason
    assert result.filled_qty == 100
    assert all(o.issued_at < closes_at for o in venue.orders)
    last = result.slices[-1]
    assert last.outcome == "cancelled" and all(s.outcome != "working" for s in result.slices)
    assert venue.cancels[-1].target_command_id == last.command_id
    assert venue.cancels[-1].reason == "sniper.expired"
    assert venue.cancels[-1].issued_at >= closes_at
    assert closes_at <= result.finished_at < closes_at + timedelta(seconds=5)


async def test_a_paused_day_iceberg_still_ends_expired_at_the_session_close(
    skipping_env: WorkflowEnvironment, controller: Controller
) -> None:
    closes_at = await _soon(skipping_env, seconds=120)
    venue = SimVenue(on_slice=pause_at_slice(1, controller), ledger=controller.pool, closes_at=closes_at)
    result, handle = await _run_handle(
        skipping_env, venue, _inp(total=500, expires_at=closes_at), CLOSE_TEST_TIMEOUT
    )

    assert await _closed_ok(handle)
    assert result.status is IcebergStatus.EXPIRED and result.filled_qty == 100
    assert len(venue.orders) == 1
    assert closes_at <= result.finished_at < closes_at + timedelta(seconds=5)


async def test_a_parent_without_expiry_sends_slices_past_any_close(
    skipping_env: WorkflowEnvironment,
) -> None:
    """GTC (expires_at None): the same script runs to completion however long it takes."""
    venue = SimVenue(script=lambda n: "rest" if n <= 12 else "fill")
    result, _ = await _run_handle(skipping_env, venue, _inp(total=300))
    assert result.status is IcebergStatus.COMPLETED and result.filled_qty == 300
    assert (result.finished_at - result.started_at).total_seconds() > 36


async def _soon(env: WorkflowEnvironment, *, seconds: int) -> datetime:
    return await env.get_current_time() + timedelta(seconds=seconds)
