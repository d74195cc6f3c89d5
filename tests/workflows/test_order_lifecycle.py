"""OrderLifecycle on the time-skipping server: states, dedupe, DAY expiry, late fills."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.commands import CancelCommandRequest, PublishResult
from activities.lifecycle_order import LifecycleOrderActivities
from activities.record_writers import RecordWriter, Writers, WritersRequest
from bus.topics import ORDERS_EVENTS
from config.workflow_ids import lifecycle_workflow_id
from ledger.append import Decision, append_command
from tests.factories import enter_command, new_agent, order_event
from tests.fixtures.hotpath import register
from tests.helpers import eventually
from tests.workflows.sim import WRITER, LedgerOrders, record_writers, signed_event
from trading.commands import Command, Side, TimeInForce
from trading.order_events import EventKind, OrderEvent, encode
from trading.orders import Fill
from trading.record_signing import HOTPATH_WRITER, sign_record
from trading.session_calendar import SessionCalendar
from trading.signing import generate_private_key, key_id, public_key_bytes
from workflows.order_lifecycle import (
    CANCEL_RETRY_AFTER,
    HistoryQuery,
    LifecycleInput,
    LifecycleState,
    LifecycleView,
    OrderLifecycle,
)
from workflows.signed_events import WRITERS_MAX_AGE, SignedOrderEvent
from workflows.slicing import cancel_command_id

QUEUE = "lifecycle-test"
LEDGER = LedgerOrders()
"""The orders these tests start lifecycles for, as the ledger holds them."""


def _event(cid: str, n: int, kind: EventKind, filled: int, fill: Fill | None = None) -> OrderEvent:
    at = datetime(2026, 11, 24, 15, 0, tzinfo=UTC) + timedelta(seconds=n)
    return order_event(cid, n, kind, filled, fill, event_id=f"{cid}-e{n}", side="SELL", quantity=300, ts=at)


def _input(cid: str, **kw: Any) -> LifecycleInput:
    return LifecycleInput(
        command_id=cid,
        account="DU1",
        symbol="MSFT",
        agent_id="alpha",
        side="SELL",
        quantity=300,
        linger_seconds=60,
        **kw,
    )


class Canceller:
    """Stands in for intake + broker for the expiry cancel: records it and confirms it the way
    the bridge would deliver the broker's answer."""

    def __init__(self) -> None:
        self.requests: list[CancelCommandRequest] = []

    @activity.defn(name="publish_cancel")
    async def publish_cancel(self, req: CancelCommandRequest) -> PublishResult:
        self.requests.append(req)
        handle = activity.client().get_workflow_handle(req.target_command_id)
        await handle.signal("record", signed_event(_event(req.target_command_id, 99, EventKind.CANCELLED, 0)))
        return PublishResult(req.command_id, 0, 1)


async def _history_of(handle: WorkflowHandle, entries: int) -> LifecycleView:
    """The view once ``entries`` events are in its history: records wait, in order, until the
    workflow has read the writer keys."""

    async def view() -> LifecycleView | None:
        current: LifecycleView = await handle.query(OrderLifecycle.history, HistoryQuery())
        return current if len(current.history) >= entries else None

    found = await eventually(view)
    assert found is not None
    return found


_AS_INPUT: Any = object()


async def _start(
    env: WorkflowEnvironment, inp: LifecycleInput, first: OrderEvent, ledgered_expiry: Any = _AS_INPUT
) -> WorkflowHandle:
    """Start the lifecycle of an order the ledger holds as DAY, its session closing at
    ``ledgered_expiry`` (default: the input's expiry)."""
    expiry = inp.expires_at if ledgered_expiry is _AS_INPUT else ledgered_expiry
    LEDGER.add(inp.command_id, expiry, account=inp.account, symbol=inp.symbol, side=inp.side)
    return await env.client.start_workflow(
        OrderLifecycle.run,
        inp,
        id=inp.command_id,
        task_queue=QUEUE,
        start_signal="record",
        start_signal_args=[signed_event(first)],
    )


async def test_events_drive_states_and_duplicates_change_nothing(skipping_env: WorkflowEnvironment) -> None:
    cid = f"ord-{uuid.uuid4()}"
    f1 = Fill("x1", 100, Decimal("50.10"))
    f2 = Fill("x2", 200, Decimal("50.04"))
    async with Worker(
        skipping_env.client,
        task_queue=QUEUE,
        workflows=[OrderLifecycle],
        activities=[record_writers, LEDGER.lifecycle_order],
    ):
        handle = await _start(skipping_env, _input(cid), _event(cid, 1, EventKind.ACCEPTED, 0))
        events = [
            _event(cid, 2, EventKind.SUBMITTED, 0),
            _event(cid, 3, EventKind.PARTIALLY_FILLED, 100, f1),
            _event(cid, 3, EventKind.PARTIALLY_FILLED, 100, f1),  # redelivered record
            _event(cid, 4, EventKind.PARTIALLY_FILLED, 100, f1),  # new record, same execution
            _event(cid, 5, EventKind.SUBMITTED, 100),  # stale status after a fill
        ]
        for e in events:
            await handle.signal(OrderLifecycle.on_record, signed_event(e))
        mid = await _history_of(handle, 5)
        assert mid.state is LifecycleState.PARTIALLY_FILLED and mid.filled_qty == 100
        await handle.signal(OrderLifecycle.on_record, signed_event(_event(cid, 6, EventKind.FILLED, 300, f2)))
        view: LifecycleView = await handle.result()

    assert view.state is LifecycleState.FILLED and view.filled_qty == 300
    assert view.avg_fill_price == (Decimal("50.10") * 100 + Decimal("50.04") * 200) / 300
    assert [h.state for h in view.history] == [
        LifecycleState.STAGED,
        LifecycleState.PENDING,
        LifecycleState.PARTIALLY_FILLED,
        LifecycleState.PARTIALLY_FILLED,
        LifecycleState.PARTIALLY_FILLED,
        LifecycleState.FILLED,
    ]
    assert "duplicate execution x1" in (view.history[3].note or "")
    assert view.anomalies == []


async def _left_open_past_the_close(
    env: WorkflowEnvironment, canceller: Canceller
) -> tuple[str, datetime, LifecycleView]:
    """A DAY order submitted and never filled, its session closing in six (skipped) hours: its
    id, the close, and the lifecycle's final view."""
    cid = f"ord-{uuid.uuid4()}"
    close = (await _now(env)) + timedelta(hours=6)
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[OrderLifecycle],
        activities=[canceller.publish_cancel, record_writers, LEDGER.lifecycle_order],
    ):
        handle = await _start(env, _input(cid, expires_at=close), _event(cid, 1, EventKind.ACCEPTED, 0))
        await handle.signal(OrderLifecycle.on_record, signed_event(_event(cid, 2, EventKind.SUBMITTED, 0)))
        view: LifecycleView = await handle.result()
    return cid, close, view


async def test_day_order_open_at_the_close_is_cancelled_and_ends_expired(
    skipping_env: WorkflowEnvironment,
) -> None:
    canceller = Canceller()
    started = time.monotonic()
    cid, close, view = await _left_open_past_the_close(skipping_env, canceller)

    assert time.monotonic() - started < 10  # six hours of session, skipped
    assert view.state is LifecycleState.EXPIRED
    [req] = canceller.requests
    assert req.target_command_id == cid and req.reason == "tif.day_expired"
    assert req.issued_at >= close
    assert [h.what for h in view.history] == ["accepted", "submitted", "cancel_requested", "cancelled"]


class DroppingCanceller(Canceller):
    """Publishes fine, but the first cancel never reaches the broker (intake refused it, say):
    only the second is confirmed."""

    @activity.defn(name="publish_cancel")
    async def publish_cancel(self, req: CancelCommandRequest) -> PublishResult:
        self.requests.append(req)
        if len(self.requests) >= 2:
            handle = activity.client().get_workflow_handle(req.target_command_id)
            await handle.signal(
                "record", signed_event(_event(req.target_command_id, 99, EventKind.CANCELLED, 0))
            )
        return PublishResult(req.command_id, 0, 1)


async def test_an_expiry_cancel_published_but_never_confirmed_is_sent_again(
    skipping_env: WorkflowEnvironment,
) -> None:
    canceller = DroppingCanceller()
    cid, _, view = await _left_open_past_the_close(skipping_env, canceller)

    assert view.state is LifecycleState.EXPIRED
    first, second = canceller.requests
    # Each attempt its own id, and never the id an Iceberg gives its slice's cancel.
    assert [first.command_id, second.command_id] == [f"{cid}.tif1", f"{cid}.tif2"]
    assert cancel_command_id(cid, 1) not in (first.command_id, second.command_id)
    assert second.issued_at - first.issued_at >= CANCEL_RETRY_AFTER


async def test_order_filled_before_the_close_is_not_cancelled(skipping_env: WorkflowEnvironment) -> None:
    cid = f"ord-{uuid.uuid4()}"
    canceller = Canceller()
    close = (await _now(skipping_env)) + timedelta(hours=6)
    async with Worker(
        skipping_env.client,
        task_queue=QUEUE,
        workflows=[OrderLifecycle],
        activities=[canceller.publish_cancel, record_writers, LEDGER.lifecycle_order],
    ):
        handle = await _start(
            skipping_env, _input(cid, expires_at=close), _event(cid, 1, EventKind.ACCEPTED, 0)
        )
        await handle.signal(
            OrderLifecycle.on_record,
            signed_event(_event(cid, 2, EventKind.FILLED, 300, Fill("x9", 300, Decimal("50")))),
        )
        view: LifecycleView = await handle.result()
    assert view.state is LifecycleState.FILLED and canceller.requests == []


async def test_late_fill_after_cancel_is_recorded(skipping_env: WorkflowEnvironment) -> None:
    cid = f"ord-{uuid.uuid4()}"
    async with Worker(
        skipping_env.client,
        task_queue=QUEUE,
        workflows=[OrderLifecycle],
        activities=[record_writers, LEDGER.lifecycle_order],
    ):
        handle = await _start(skipping_env, _input(cid), _event(cid, 1, EventKind.SUBMITTED, 0))
        await handle.signal(OrderLifecycle.on_record, signed_event(_event(cid, 2, EventKind.CANCELLED, 0)))
        await handle.signal(
            OrderLifecycle.on_record,
            signed_event(_event(cid, 3, EventKind.PARTIALLY_FILLED, 100, Fill("late", 100, Decimal("50.2")))),
        )
        view: LifecycleView = await handle.result()
    assert view.state is LifecycleState.CANCELLED and view.filled_qty == 100
    assert view.history[-1].note == "late fill after Cancelled"


async def _now(env: WorkflowEnvironment) -> datetime:
    return await env.get_current_time()


async def test_refusal_of_a_repeated_delivery_is_not_the_end_of_the_order(
    skipping_env: WorkflowEnvironment,
) -> None:
    cid = f"ord-{uuid.uuid4()}"
    async with Worker(
        skipping_env.client,
        task_queue=QUEUE,
        workflows=[OrderLifecycle],
        activities=[record_writers, LEDGER.lifecycle_order],
    ):
        handle = await _start(skipping_env, _input(cid), _event(cid, 1, EventKind.ACCEPTED, 0))
        await handle.signal(OrderLifecycle.on_record, signed_event(_event(cid, 2, EventKind.SUBMITTED, 0)))
        stale = _event(cid, 3, EventKind.REJECTED, 0)
        await handle.signal(OrderLifecycle.on_record, signed_event(replace(stale, reason="sentry.stale")))
        mid = await _history_of(handle, 3)
        assert mid.state is LifecycleState.PENDING
        await handle.signal(
            OrderLifecycle.on_record,
            signed_event(replace(_event(cid, 4, EventKind.REJECTED, 0), reason="broker.inactive")),
        )
        view: LifecycleView = await handle.result()
    assert view.state is LifecycleState.REJECTED
    assert "repeated delivery ignored" in (view.history[2].note or "")


async def test_a_lifecycle_started_by_hand_cancels_nothing_and_forged_events_do_not_count(
    skipping_env: WorkflowEnvironment,
) -> None:
    """Anyone who can reach Temporal can start a lifecycle or signal it. One started by hand for
    a live order, due to expire at once, with unsigned events only, sends no cancel; the same
    order's genuine lifecycle takes no unsigned ``filled`` for the end of the order and cancels
    it at the close."""
    canceller = Canceller()
    env = skipping_env
    now = await _now(env)
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[OrderLifecycle],
        activities=[canceller.publish_cancel, record_writers, LEDGER.lifecycle_order],
    ):
        forged_id = f"ord-{uuid.uuid4()}"
        forged = await env.client.start_workflow(
            OrderLifecycle.run,
            _input(forged_id, expires_at=now),
            id=forged_id,
            task_queue=QUEUE,
            start_signal="event",
            start_signal_args=[_event(forged_id, 1, EventKind.SUBMITTED, 0)],
        )
        cid = f"ord-{uuid.uuid4()}"
        handle = await _start(
            env, _input(cid, expires_at=now + timedelta(hours=6)), _event(cid, 1, EventKind.ACCEPTED, 0)
        )
        filled = _event(cid, 2, EventKind.FILLED, 300, Fill("forged", 300, Decimal("1")))
        await handle.signal(OrderLifecycle.on_event, filled)
        view: LifecycleView = await handle.result()
        # The hand-started one has no ledgered order, so no expiry: it waits, acting on nothing.
        forged_view: LifecycleView = await forged.query(OrderLifecycle.history, HistoryQuery())

    assert canceller.requests and all(r.target_command_id == cid for r in canceller.requests)
    assert forged_view.state is LifecycleState.STAGED and forged_view.history == []
    assert any("nothing cancelled" in a for a in forged_view.anomalies)
    assert view.state is LifecycleState.EXPIRED and view.filled_qty == 0
    assert any("unsigned event" in a for a in view.anomalies)


async def test_an_input_expiring_before_the_orders_session_closes_is_held_to_the_close(
    skipping_env: WorkflowEnvironment,
) -> None:
    """An input is anyone's to write (a lifecycle started by hand before the bridge starts the
    real one): a DAY order is not cancelled before the close of the session its first genuine
    record belongs to, whatever expiry the input names."""
    canceller = Canceller()
    env = skipping_env
    now = await _now(env)
    cid = f"ord-{uuid.uuid4()}"
    accepted = replace(_event(cid, 1, EventKind.ACCEPTED, 0), ts=now)
    close = SessionCalendar().close_after(now)
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[OrderLifecycle],
        activities=[canceller.publish_cancel, record_writers, LEDGER.lifecycle_order],
    ):
        handle = await _start(env, _input(cid, expires_at=now + timedelta(seconds=1)), accepted, close)
        view: LifecycleView = await handle.result()
    [req] = canceller.requests
    assert req.issued_at >= close
    assert view.state is LifecycleState.EXPIRED


# --- the order as the ledger holds it (the real ledger, the real activity) --------------------


async def _ledgered_order(pool: asyncpg.Pool, tif: TimeInForce) -> Command:
    """An order accepted into the real ledger now, as intake leaves one it approved."""
    author = new_agent()
    await register(pool, author)
    command = replace(enter_command(author.agent_id, account="DU1", symbol="MSFT", side=Side.SELL), tif=tif)
    await append_command(pool, author.sign(command), decision=Decision.ACCEPTED, detail={"quantity": 300})
    return command


def _record_of(command: Command, ts: datetime) -> OrderEvent:
    """A genuine ``orders.events`` record of ``command`` (signed by the writer key), stamped ``ts``."""
    return replace(_event(command.command_id, 1, EventKind.SUBMITTED, 0), ts=ts)


async def test_a_lifecycle_started_by_hand_for_a_gtc_order_fed_a_genuine_old_record_cancels_nothing(
    skipping_env: WorkflowEnvironment, ledger_pool: asyncpg.Pool
) -> None:
    """Anyone who can reach Temporal: a lifecycle for a GTC order (a protective stop, say),
    claiming DAY and an expiry 30 s away, fed a genuine record of that order written three days
    ago. Under any workflow id, or under the order's own lifecycle id, it cancels nothing: the
    ledger says GTC, and a GTC order is never cancelled for expiry."""
    env = skipping_env
    canceller = Canceller()
    gtc = await _ledgered_order(ledger_pool, TimeInForce.GTC)
    now = await _now(env)
    inp = replace(_input(gtc.command_id, expires_at=now + timedelta(seconds=30)), tif="DAY")
    old = signed_event(_record_of(gtc, now - timedelta(days=3)))
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[OrderLifecycle],
        activities=[
            canceller.publish_cancel,
            record_writers,
            LifecycleOrderActivities(ledger_pool).lifecycle_order,
        ],
    ):
        handles = [
            await env.client.start_workflow(
                OrderLifecycle.run,
                inp,
                id=wid,
                task_queue=QUEUE,
                start_signal="record",
                start_signal_args=[old],
            )
            for wid in (f"evil-{uuid.uuid4()}", lifecycle_workflow_id(gtc.command_id))
        ]
        await env.sleep(timedelta(days=4))  # past the input's expiry and every session close
        views: list[LifecycleView] = [await h.query(OrderLifecycle.history, HistoryQuery()) for h in handles]
        for h in handles:
            await h.terminate("test over")
    assert canceller.requests == []
    assert any("acts on nothing" in a for a in views[0].anomalies)
    assert [h.what for h in views[1].history] == ["submitted"]  # the genuine record counts; no cancel


async def test_a_genuine_day_order_still_open_at_its_sessions_close_is_cancelled_by_the_workers_canceller(
    skipping_env: WorkflowEnvironment, ledger_pool: asyncpg.Pool
) -> None:
    env = skipping_env
    canceller = Canceller()
    day = await _ledgered_order(ledger_pool, TimeInForce.DAY)
    close = SessionCalendar().close_after(datetime.now(UTC))
    # The input's claims (no expiry, another canceller) are not what the lifecycle acts on.
    inp = _input(day.command_id, canceller_agent_id="sniper")
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[OrderLifecycle],
        activities=[
            canceller.publish_cancel,
            record_writers,
            LifecycleOrderActivities(ledger_pool).lifecycle_order,
        ],
    ):
        handle = await env.client.start_workflow(
            OrderLifecycle.run,
            inp,
            id=lifecycle_workflow_id(day.command_id),
            task_queue=QUEUE,
            start_signal="record",
            start_signal_args=[signed_event(_record_of(day, await _now(env)))],
        )
        view: LifecycleView = await handle.result()
    [req] = canceller.requests
    assert req.target_command_id == day.command_id and req.agent_id == "floor-lifecycle"
    assert req.issued_at >= close
    assert view.state is LifecycleState.EXPIRED


async def test_a_filled_record_signed_by_a_writer_key_revoked_since_the_start_does_not_end_the_order(
    skipping_env: WorkflowEnvironment,
) -> None:
    """A writer key stolen, then revoked while the order is open: a ``filled`` it signs
    afterwards is refused, so the lifecycle does not end (and would still cancel at the close)."""
    env = skipping_env
    stolen = generate_private_key()
    stolen_writer = RecordWriter(key_id(stolen), HOTPATH_WRITER, public_key_bytes(stolen).hex())
    registry = [WRITER, stolen_writer]

    @activity.defn(name="record_writers")
    async def writers(_: WritersRequest) -> Writers:
        return Writers(list(registry))

    cid = f"ord-{uuid.uuid4()}"
    async with Worker(
        env.client, task_queue=QUEUE, workflows=[OrderLifecycle], activities=[writers, LEDGER.lifecycle_order]
    ):
        now = await _now(env)
        handle = await _start(
            env, _input(cid, expires_at=now + timedelta(hours=6)), _event(cid, 1, EventKind.ACCEPTED, 0)
        )
        await _history_of(handle, 1)
        registry.remove(stolen_writer)  # revoked in the registry
        await env.sleep(WRITERS_MAX_AGE + timedelta(seconds=1))
        filled = _event(cid, 2, EventKind.FILLED, 300, Fill("forged", 300, Decimal("1")))
        await handle.signal(
            OrderLifecycle.on_record,
            SignedOrderEvent(sign_record(ORDERS_EVENTS, encode(filled), stolen).decode()),
        )

        async def refused() -> LifecycleView | None:
            view: LifecycleView = await handle.query(OrderLifecycle.history, HistoryQuery())
            return view if any(stolen_writer.key_id in a for a in view.anomalies) else None

        view = await eventually(refused, timeout=30)
        await handle.terminate("test over")
    assert view is not None and view.state is LifecycleState.STAGED and view.filled_qty == 0
