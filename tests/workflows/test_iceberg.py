"""Iceberg workflow on the time-skipping server: intervals, repricing, no overfill, signals."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.activity import client as activity_client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.commands import OrderCommandRequest
from activities.record_writers import RecordWriter
from bus.topics import ORDERS_EVENTS
from ledger.append import Decision, append_command
from tests.helpers import eventually
from tests.workflows.sim import WRITER, Controller, SimVenue, pause_at_slice, taken_up
from trading.commands import Command, CommandKind, Edge, Side, utc_now_ms
from trading.order_events import EventKind, OrderEvent, encode
from trading.record_signing import HOTPATH_WRITER, sign_record
from trading.signing import generate_private_key, key_id, public_key_bytes
from workflows.iceberg import (
    AmendRequest,
    CancelRequest,
    ControlSignal,
    Iceberg,
    IcebergInput,
    IcebergResult,
    IcebergStatus,
    PauseRequest,
    ProgressQuery,
)
from workflows.signed_events import WRITERS_MAX_AGE, SignedOrderEvent

QUEUE = "iceberg-test"
EDGE = Edge(p=Decimal("0.55"), b=Decimal("2"), stop_price=Decimal("95"))


async def _run(env: WorkflowEnvironment, venue: SimVenue, inp: IcebergInput) -> IcebergResult:
    async with Worker(env.client, task_queue=QUEUE, workflows=[Iceberg], activities=venue.activities()):
        return await env.client.execute_workflow(
            Iceberg.run,
            inp,
            id=f"iceberg-{uuid.uuid4()}",
            task_queue=QUEUE,
            execution_timeout=timedelta(hours=1),
        )


QUOTE_FETCH_SLACK_S = 0.5


async def test_slices_fill_the_parent_exactly_with_randomized_3_to_7_second_gaps(
    skipping_env: WorkflowEnvironment,
) -> None:
    venue = SimVenue(script=lambda n: "partial:40" if n % 3 == 0 else "fill")
    inp = IcebergInput(
        account="DU1", symbol="AAPL", side=Side.BUY, total_qty=1000, display_qty=100, edge=EDGE
    )
    result = await _run(skipping_env, venue, inp)

    assert result.status is IcebergStatus.COMPLETED
    assert result.filled_qty == 1000 == sum(s.filled_qty for s in result.slices)
    assert all(s.filled_qty <= s.qty for s in result.slices)
    gaps = [
        (b.sent_at - a.sent_at).total_seconds()
        for a, b in zip(result.slices, result.slices[1:], strict=False)
    ]
    assert len(gaps) >= 10
    # The interval is timed from a slice's send; the next slice's quote is fetched after it,
    # and that activity's real time (milliseconds) is added to the gap on the skipping clock.
    assert all(3.0 <= g <= 7.0 + QUOTE_FETCH_SLACK_S for g in gaps), gaps
    assert len({round(g, 3) for g in gaps}) > 1
    # Spread 4 ticks wide: a buy improves the bid by one tick.
    assert {s.price for s in result.slices} == {Decimal("100.01")}
    partials = [s for s in result.slices if s.slice_no % 3 == 0]
    assert partials and all(s.outcome == "cancelled" and s.filled_qty == 40 for s in partials)
    assert len(venue.cancels) == len(partials)


def _inp(total: int = 1000, display: int = 100, **kw: Any) -> IcebergInput:
    return IcebergInput(
        account="DU1", symbol="AAPL", side=Side.BUY, total_qty=total, display_qty=display, edge=EDGE, **kw
    )


async def test_unconfirmed_cancel_holds_the_next_slice_back_so_nothing_overfills(
    skipping_env: WorkflowEnvironment,
) -> None:
    venue = SimVenue(script=lambda n: "ignore-cancel" if n == 1 else "fill")
    result = await _run(skipping_env, venue, _inp(total=300, cancel_confirm_timeout_s=30.0))

    assert result.filled_qty == 300 == sum(s.filled_qty for s in result.slices)
    first, second = result.slices[0], result.slices[1]
    assert first.filled_qty == 0 and first.outcome == "cancelled"
    assert [c.command_id for c in venue.cancels] == [f"{first.command_id}.x1", f"{first.command_id}.x2"]
    # The second slice waited for the confirmed cancel (re-sent after 30 s), not just the interval.
    assert (second.sent_at - first.sent_at).total_seconds() >= 33
    assert any("cancel not confirmed" in n for n in result.notes)


async def test_a_ledgered_cancel_pulls_the_working_slice_and_ends_cancelled(
    skipping_env: WorkflowEnvironment, controller: Controller
) -> None:
    async def cancel_at_third(n: int, req: OrderCommandRequest) -> None:
        if n == 3:
            await controller.cancel(activity_client(), str(req.parent_id))

    venue = SimVenue(
        script=lambda n: "fill" if n < 3 else "rest", on_slice=cancel_at_third, ledger=controller.pool
    )
    result = await _run(skipping_env, venue, _inp())

    assert result.status is IcebergStatus.CANCELLED
    assert result.filled_qty == 200 and len(result.slices) == 3
    assert result.slices[2].outcome == "cancelled"
    assert [c.target_command_id for c in venue.cancels] == [result.slices[2].command_id]


async def test_a_ledgered_amend_shrinks_the_parent_and_it_completes_at_the_new_total(
    skipping_env: WorkflowEnvironment, controller: Controller
) -> None:
    amends: list[str] = []

    async def amend_at_first(n: int, req: OrderCommandRequest) -> None:
        if n == 1:
            client, parent = activity_client(), str(req.parent_id)
            amends.append(await controller.amend(client, parent, quantity=250, display_size=60))
            amends.append(await controller.amend(client, parent, quantity=50))  # below filled

    venue = SimVenue(on_slice=amend_at_first, ledger=controller.pool)
    result = await _run(skipping_env, venue, _inp())

    assert result.status is IcebergStatus.COMPLETED
    assert result.total_qty == 250 == result.filled_qty
    assert [s.qty for s in result.slices] == [100, 60, 60, 30]
    assert any(f"{amends[1]} refused" in n for n in result.notes)


async def test_repeated_rejections_stop_the_iceberg_as_rejected(skipping_env: WorkflowEnvironment) -> None:
    venue = SimVenue(script=lambda n: "reject")
    result = await _run(skipping_env, venue, _inp())
    assert result.status is IcebergStatus.REJECTED
    assert result.filled_qty == 0 and len(result.slices) == 3
    assert result.quality is None


async def test_a_ledgered_pause_holds_slices_until_a_ledgered_resume(
    skipping_env: WorkflowEnvironment, controller: Controller
) -> None:
    venue = SimVenue(on_slice=pause_at_slice(2, controller), ledger=controller.pool)
    async with Worker(
        skipping_env.client, task_queue=QUEUE, workflows=[Iceberg], activities=venue.activities()
    ):
        handle = await skipping_env.client.start_workflow(
            Iceberg.run, _inp(total=400), id=f"iceberg-{uuid.uuid4()}", task_queue=QUEUE
        )

        async def paused() -> bool:
            p = await handle.query(Iceberg.progress, ProgressQuery())
            return p.status is IcebergStatus.PAUSED and p.working_qty == 0

        await eventually(paused, timeout=20)
        assert len(venue.orders) == 2
        await skipping_env.sleep(60)  # an hour of market time would not move a paused iceberg either
        assert len(venue.orders) == 2
        await controller.resume(skipping_env.client, handle.id)
        result = await handle.result()
    assert result.status is IcebergStatus.COMPLETED and result.filled_qty == 400


async def test_fill_quality_compares_vwap_with_the_mid_at_each_send(
    skipping_env: WorkflowEnvironment,
) -> None:
    venue = SimVenue(bid=Decimal("100.00"), ask=Decimal("100.04"))
    result = await _run(skipping_env, venue, _inp(total=300, display=100))
    q = result.quality
    assert q is not None
    # Every slice bought at 100.01 against a mid of 100.02: 1 cent better than mid.
    assert q.vwap == Decimal("100.01") and q.benchmark_mid == Decimal("100.02")
    assert q.cost_bps == Decimal("-1.00") and q.diff_bps == Decimal("-1.00")


@pytest.mark.parametrize("seed", range(5))
async def test_random_venue_behaviour_never_overfills(skipping_env: WorkflowEnvironment, seed: int) -> None:
    rng = random.Random(seed)
    choices = ["fill", "partial:30", "partial:70", "rest", "ignore-cancel", "reject"]
    script = {n: rng.choice(choices) for n in range(1, 200)}
    # Never three rejections in a row, so the parent can always complete.
    for n in range(3, 200):
        if script[n] == script[n - 1] == script[n - 2] == "reject":
            script[n] = "fill"
    venue = SimVenue(script=lambda n: script[n])
    total = rng.randrange(150, 700)
    result = await _run(
        skipping_env, venue, _inp(total=total, display=rng.choice([50, 100, 120]), jitter=Decimal("0.05"))
    )

    assert result.status is IcebergStatus.COMPLETED
    assert result.filled_qty == total == sum(venue.filled.get(s.command_id, 0) for s in result.slices)
    assert all(s.filled_qty <= s.qty for s in result.slices)
    # At most one slice worked at a time: each was sent after the previous one was over.
    assert len({o.command_id for o in venue.orders}) == len(result.slices)


async def test_refusal_of_a_repeated_delivery_does_not_end_a_live_slice(
    skipping_env: WorkflowEnvironment,
) -> None:
    venue = SimVenue(script=lambda n: "stale-copy" if n == 1 else "fill")
    result = await _run(skipping_env, venue, _inp(total=300))

    first = result.slices[0]
    # Still live at the broker: the iceberg cancelled it before sending the next slice.
    assert [c.target_command_id for c in venue.cancels] == [first.command_id]
    assert first.outcome == "cancelled" and result.filled_qty == 300
    assert any("repeated delivery refused" in n for n in result.notes)


async def test_a_fill_racing_the_cancel_is_counted_before_the_next_slice_is_sized(
    skipping_env: WorkflowEnvironment,
) -> None:
    """The broker confirms slice 2's cancel saying 40 filled, but that execution arrives only
    after slice 3 went out: slice 3 must already leave those 40 shares out of its size, or the
    parent ends 40 over."""
    venue = SimVenue(script=lambda n: "late-fill:40" if n == 2 else "fill")
    result = await _run(skipping_env, venue, _inp(total=200))

    assert result.status is IcebergStatus.COMPLETED
    assert result.filled_qty == 200 == sum(venue.filled.get(s.command_id, 0) for s in result.slices)
    assert [(s.qty, s.filled_qty) for s in result.slices] == [(100, 100), (100, 40), (60, 60)]


async def test_the_parent_waits_for_the_execution_of_a_last_slice_that_filled_as_it_was_cancelled(
    skipping_env: WorkflowEnvironment,
) -> None:
    """Slice 2 filled whole as its cancel went in: the broker says so with the cancel, and the
    parent, which needs nothing more, waits for the execution instead of sending a slice."""
    venue = SimVenue(script=lambda n: "late-fill:100" if n == 2 else "fill")

    async def deliver_when_racing() -> None:
        await eventually(lambda: bool(venue.late), timeout=30)
        await venue.deliver_late_fills(skipping_env.client)

    async with Worker(
        skipping_env.client, task_queue=QUEUE, workflows=[Iceberg], activities=venue.activities()
    ):
        handle = await skipping_env.client.start_workflow(
            Iceberg.run, _inp(total=200), id=f"iceberg-{uuid.uuid4()}", task_queue=QUEUE
        )
        await deliver_when_racing()
        result = await handle.result()

    assert result.status is IcebergStatus.COMPLETED
    assert result.filled_qty == 200 == sum(venue.filled.values())
    assert [(s.qty, s.filled_qty) for s in result.slices] == [(100, 100), (100, 100)]


async def test_direct_control_signals_change_nothing_and_a_control_for_another_parent_is_refused(
    skipping_env: WorkflowEnvironment, controller: Controller
) -> None:
    """Anyone who reaches Temporal can signal: a signal is no authority. Raising the total,
    moving the limit, pausing or cancelling by signal leaves the parent as it was; so does a
    ledgered control naming another parent."""
    elsewhere: list[str] = []

    async def meddle_at_first(n: int, req: OrderCommandRequest) -> None:
        if n != 1:
            return
        handle = activity_client().get_workflow_handle(str(req.parent_id))
        await handle.signal("amend", AmendRequest("a1", total_qty=5000, limit_price=Decimal("150")))
        await handle.signal("pause", PauseRequest("p1"))
        await handle.signal("cancel", CancelRequest("c1", reason="forged"))
        other = Controller(controller.pool, controller.agent)
        command = Command(
            kind=CommandKind.ICEBERG_CANCEL, command_id=f"ctl-{uuid.uuid4().hex}",
            agent_id=controller.agent.agent_id, account="DU1", nonce=uuid.uuid4().hex,
            issued_at=utc_now_ms(), parent_id="iceberg-someone-else",
        )  # fmt: skip
        await append_command(
            other.pool, other.agent.sign(command), decision=Decision.ACCEPTED,
            detail={"parent_id": "iceberg-someone-else"},
        )  # fmt: skip
        elsewhere.append(command.command_id)
        await handle.signal("control", ControlSignal(command.command_id))

    venue = SimVenue(on_slice=meddle_at_first, ledger=controller.pool)
    result = await _run(skipping_env, venue, _inp(total=300, limit_price=Decimal("100.02")))

    assert result.status is IcebergStatus.COMPLETED
    assert result.total_qty == 300 == result.filled_qty
    assert len(result.slices) == 3 and all(s.price <= Decimal("100.02") for s in result.slices)
    notes = " | ".join(result.notes)
    for name in ("amend", "pause", "cancel"):
        assert f"direct {name} signal ignored" in notes
    assert f"control {elsewhere[0]} not applied" in notes and "iceberg-someone-else" in notes


async def test_a_control_that_could_not_be_read_is_read_again_when_delivered_again(
    skipping_env: WorkflowEnvironment, controller: Controller
) -> None:
    """Delivered before the ledger could answer for it (here: before it was there at all), a
    control is not lost: the bridge's redelivery reads it afresh."""
    cancel = f"ctl-{uuid.uuid4().hex}"

    async def cancel_at_first(n: int, req: OrderCommandRequest) -> None:
        if n != 1:
            return
        handle = activity_client().get_workflow_handle_for(Iceberg.run, str(req.parent_id))
        await handle.signal(Iceberg.control, ControlSignal(cancel))
        await taken_up(handle, cancel)
        await controller.ledgered(handle.id, CommandKind.ICEBERG_CANCEL, cancel)
        await handle.signal(Iceberg.control, ControlSignal(cancel))

    venue = SimVenue(script=lambda n: "rest", on_slice=cancel_at_first, ledger=controller.pool)
    result = await _run(skipping_env, venue, _inp())
    assert result.status is IcebergStatus.CANCELLED and len(result.slices) == 1
    notes = " | ".join(result.notes)
    assert f"control {cancel} not applied" in notes and f"iceberg_cancel {cancel} by" in notes


async def test_a_record_signed_by_a_writer_key_revoked_while_the_iceberg_works_changes_nothing(
    skipping_env: WorkflowEnvironment,
) -> None:
    """A writer key stolen, then revoked (``floor keys revoke floor-hotpath``) while a parent
    works: the Iceberg read it as a writer at its start, but a ``cancelled`` it signs for the
    working slice afterwards is refused, so the next slice is not sent on top of the first."""
    stolen = generate_private_key()
    stolen_writer = RecordWriter(key_id(stolen), HOTPATH_WRITER, public_key_bytes(stolen).hex())
    venue = SimVenue(script=lambda n: "ignore-cancel", writers=[WRITER, stolen_writer])
    async with Worker(
        skipping_env.client, task_queue=QUEUE, workflows=[Iceberg], activities=venue.activities()
    ):
        handle = await skipping_env.client.start_workflow(
            Iceberg.run, _inp(total=300), id=f"ice-revoked-{uuid.uuid4()}", task_queue=QUEUE
        )
        await eventually(lambda: len(venue.orders) == 1, timeout=30)
        venue.writers.remove(stolen_writer)  # revoked in the registry
        await skipping_env.sleep(WRITERS_MAX_AGE + timedelta(seconds=1))
        working = venue.orders[0]
        forged = OrderEvent(
            event_id="forged-1", command_id=working.command_id, parent_id=working.parent_id,
            kind=EventKind.CANCELLED, account=working.account, symbol=working.symbol,
            agent_id=working.agent_id, side=working.side, quantity=working.quantity, filled_qty=0,
            avg_fill_price=None, last_fill=None, reason="broker.cancelled", ts=datetime.now(UTC),
            limit_price=working.limit_price,
        )  # fmt: skip
        await handle.signal(
            Iceberg.on_slice_record,
            SignedOrderEvent(sign_record(ORDERS_EVENTS, encode(forged), stolen).decode()),
        )

        async def refused() -> bool:
            notes = (await handle.query(Iceberg.progress, ProgressQuery())).notes
            return any("slice record refused" in n and stolen_writer.key_id in n for n in notes)

        await eventually(refused, timeout=30)
        progress = await handle.query(Iceberg.progress, ProgressQuery())
        await handle.terminate("test over")
    assert progress.slices_sent == 1 and progress.working_qty == 100
    assert len({o.command_id for o in venue.orders}) == 1
