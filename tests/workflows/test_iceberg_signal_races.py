"""Iceberg controls (ledgered, read back by the workflow) that land while the workflow waits
(paused, or fetching a quote) and amends against a working slice: nothing is sent that the
controls ruled out, and nothing overfills."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio.activity import client as activity_client
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.commands import OrderCommandRequest
from tests.helpers import eventually
from tests.workflows.sim import Controller, SimVenue, pause_at_quote, pause_at_slice
from tests.workflows.test_iceberg import QUEUE, _inp
from workflows.iceberg import (
    Iceberg,
    IcebergInput,
    IcebergProgress,
    IcebergResult,
    IcebergStatus,
    ProgressQuery,
)

EXECUTION_TIMEOUT = timedelta(hours=1)


async def _start(env: WorkflowEnvironment, inp: IcebergInput) -> WorkflowHandle[Iceberg, IcebergResult]:
    return await env.client.start_workflow(
        Iceberg.run,
        inp,
        id=f"iceberg-{uuid.uuid4()}",
        task_queue=QUEUE,
        execution_timeout=EXECUTION_TIMEOUT,
    )


async def _first_task_failure(handle: WorkflowHandle[Iceberg, IcebergResult]) -> str:
    async def failure() -> str | None:
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                return event.workflow_task_failed_event_attributes.failure.message or "no message"
        return None

    return await eventually(failure, timeout=300, interval=0.2)


async def _result(handle: WorkflowHandle[Iceberg, IcebergResult]) -> IcebergResult:
    """The workflow's result; a workflow task that fails (and so would retry forever, leaving
    the iceberg Running) fails the test at once instead."""
    result = asyncio.ensure_future(handle.result())
    failed = asyncio.ensure_future(_first_task_failure(handle))
    done, _ = await asyncio.wait({result, failed}, return_when=asyncio.FIRST_COMPLETED)
    result.cancel()
    failed.cancel()
    if result in done:
        return result.result()
    await handle.terminate("workflow task failed")
    raise AssertionError(f"workflow task failed: {failed.result()}")


async def _run(env: WorkflowEnvironment, venue: SimVenue, inp: IcebergInput) -> IcebergResult:
    async with Worker(env.client, task_queue=QUEUE, workflows=[Iceberg], activities=venue.activities()):
        return await _result(await _start(env, inp))


async def _progress(handle: WorkflowHandle[Iceberg, IcebergResult]) -> IcebergProgress:
    return await handle.query(Iceberg.progress, ProgressQuery())


async def test_amend_to_the_filled_quantity_while_paused_completes_on_resume(
    skipping_env: WorkflowEnvironment, controller: Controller
) -> None:
    venue = SimVenue(on_slice=pause_at_slice(1, controller), ledger=controller.pool)
    async with Worker(
        skipping_env.client, task_queue=QUEUE, workflows=[Iceberg], activities=venue.activities()
    ):
        handle = await _start(skipping_env, _inp(total=400))

        async def paused_after_first_fill() -> bool:
            p = await _progress(handle)
            return p.status is IcebergStatus.PAUSED and p.filled_qty == 100 and p.working_qty == 0

        await eventually(paused_after_first_fill, timeout=20)
        # Skip past the longest interval (7 s) so the iceberg is waiting on the pause, not the
        # interval after slice 1.
        await skipping_env.sleep(10)
        amend = await controller.amend(skipping_env.client, handle.id, quantity=100)
        await controller.resume(skipping_env.client, handle.id)
        result = await _result(handle)

    assert result.status is IcebergStatus.COMPLETED
    assert result.total_qty == 100 == result.filled_qty
    assert len(result.slices) == 1 and len(venue.orders) == 1
    assert any(f"{amend} applied" in n for n in result.notes)


async def test_amend_to_the_filled_quantity_during_the_quote_sends_nothing_more(
    skipping_env: WorkflowEnvironment, controller: Controller
) -> None:
    async def amend_during_second_quote(n: int, workflow_id: str) -> None:
        if n == 2:
            await controller.amend(activity_client(), workflow_id, quantity=100)

    venue = SimVenue(on_quote=amend_during_second_quote, ledger=controller.pool)
    async with Worker(
        skipping_env.client, task_queue=QUEUE, workflows=[Iceberg], activities=venue.activities()
    ):
        result = await _result(await _start(skipping_env, _inp(total=400)))

    assert result.status is IcebergStatus.COMPLETED
    assert result.total_qty == 100 == result.filled_qty
    assert len(venue.orders) == 1 and venue.quotes == 2


async def test_cancel_during_the_quote_sends_no_slice(
    skipping_env: WorkflowEnvironment, controller: Controller
) -> None:
    async def cancel_during_second_quote(n: int, workflow_id: str) -> None:
        if n == 2:
            await controller.cancel(activity_client(), workflow_id)

    venue = SimVenue(on_quote=cancel_during_second_quote, ledger=controller.pool)
    result = await _run(skipping_env, venue, _inp(total=400))

    assert result.status is IcebergStatus.CANCELLED
    assert result.filled_qty == 100 and len(result.slices) == 1
    assert [o.command_id for o in venue.orders] == [result.slices[0].command_id]
    assert venue.cancels == []


async def test_pause_during_the_quote_holds_the_slice_until_resume(
    skipping_env: WorkflowEnvironment, controller: Controller
) -> None:
    venue = SimVenue(on_quote=pause_at_quote(2, controller), ledger=controller.pool)
    async with Worker(
        skipping_env.client, task_queue=QUEUE, workflows=[Iceberg], activities=venue.activities()
    ):
        handle = await _start(skipping_env, _inp(total=400))

        async def acted_on_the_second_quote() -> bool:
            # Parent check, quote, slice 1, quote: four activities done, and a workflow task
            # after the last.
            done, acted = 0, False
            async for event in handle.fetch_history_events():
                if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                    done, acted = done + 1, False
                elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                    acted = True
            return done >= 4 and acted

        # Skipping time while the quote is still in flight would time it out instead.
        await eventually(acted_on_the_second_quote, timeout=20)
        progress = await _progress(handle)
        assert progress.status is IcebergStatus.PAUSED and progress.slices_sent == 1
        await skipping_env.sleep(60)  # a minute of skipped time: a paused iceberg sends nothing
        progress = await _progress(handle)
        assert progress.status is IcebergStatus.PAUSED
        assert progress.slices_sent == 1 and progress.working_qty == 0
        assert len(venue.orders) == 1
        await controller.resume(skipping_env.client, handle.id)
        result = await _result(handle)

    assert result.status is IcebergStatus.COMPLETED and result.filled_qty == 400
    # The slice after the resume was priced from a fresh quote, not the one fetched before the pause.
    assert venue.quotes == len(result.slices) + 1


async def test_amend_below_filled_plus_the_working_slice_is_refused_so_nothing_overfills(
    skipping_env: WorkflowEnvironment, controller: Controller
) -> None:
    """100 filled, slice 2 (100) working and filling whole as it is pulled: a total of 150 would
    end 200 of 150, so it is refused, naming 200 as the smallest total it would take."""

    amends: list[str] = []

    async def amend_at_second(n: int, req: OrderCommandRequest) -> None:
        if n == 2:
            amends.append(await controller.amend(activity_client(), str(req.parent_id), quantity=150))

    venue = SimVenue(
        script=lambda n: "late-fill:100" if n == 2 else "fill",
        on_slice=amend_at_second,
        ledger=controller.pool,
    )
    async with Worker(
        skipping_env.client, task_queue=QUEUE, workflows=[Iceberg], activities=venue.activities()
    ):
        handle = await _start(skipping_env, _inp(total=300))

        # The racing execution arrives with the next slice, or from here if none is sent.
        await eventually(lambda: bool(venue.late) or len(venue.orders) >= 3, timeout=30)
        await venue.deliver_late_fills(skipping_env.client)
        result = await _result(handle)

    assert result.filled_qty <= result.total_qty
    assert result.status is IcebergStatus.COMPLETED
    assert result.total_qty == 300 == result.filled_qty == sum(venue.filled.values())
    assert [(s.qty, s.filled_qty) for s in result.slices] == [(100, 100), (100, 100), (100, 100)]
    refusal = [n for n in result.notes if f"{amends[0]} refused" in n]
    assert refusal and "smallest total accepted now is 200" in refusal[0], result.notes


async def test_amend_down_to_filled_plus_the_working_slice_is_accepted(
    skipping_env: WorkflowEnvironment, controller: Controller
) -> None:
    amends: list[str] = []

    async def amend_at_second(n: int, req: OrderCommandRequest) -> None:
        if n == 2:
            client, parent = activity_client(), str(req.parent_id)
            amends.append(await controller.amend(client, parent, quantity=199))
            amends.append(await controller.amend(client, parent, quantity=200))

    venue = SimVenue(
        script=lambda n: "rest" if n == 2 else "fill", on_slice=amend_at_second, ledger=controller.pool
    )
    result = await _run(skipping_env, venue, _inp(total=1000))

    assert result.status is IcebergStatus.COMPLETED
    assert result.total_qty == 200 == result.filled_qty
    notes = " | ".join(result.notes)
    assert f"{amends[0]} refused" in notes and f"{amends[1]} applied" in notes
    # Slice 2 rested to its interval and was repriced into slice 3.
    assert [(s.qty, s.filled_qty, s.outcome) for s in result.slices] == [
        (100, 100, "filled"),
        (100, 0, "cancelled"),
        (100, 100, "filled"),
    ]
