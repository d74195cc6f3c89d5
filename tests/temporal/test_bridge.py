"""The orders.events -> Temporal bridge against real Kafka (Tansu) and a real Temporal dev server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import asyncpg
import pytest
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities.commands import CancelCommandRequest, OrderCommandRequest, PublishResult
from activities.iceberg_parent import IcebergParentActivities
from activities.lifecycle_order import LifecycleOrderActivities
from activities.market import QuoteRequest, QuoteResult
from activities.record_writers import RecordWriterActivities
from bus.kafka import ensure_topics
from bus.signed_records import SigningProducer
from bus.topics import ORDERS_EVENTS
from config.workflow_ids import iceberg_workflow_id
from observability.security import SecurityLog
from temporal import session_records
from temporal.bridge import Bridge, bridge_consumer, iceberg_expiry
from temporal.client import iceberg_input
from tests.factories import Agent, new_agent, order_event
from tests.helpers import eventually
from tests.temporal.conftest import RunningBridge, ledgered_iceberg, start_at_the_end, workflow_exists
from tests.temporal.test_ticket import current_details
from tests.workflows.sim import Controller, SimVenue, taken_up
from trading.commands import Command, CommandKind, Edge, Side, TimeInForce
from trading.order_events import EventKind, OrderEvent, encode
from trading.orders import Fill
from trading.reconciliation import ReconcileReport
from trading.session_calendar import SessionCalendar
from workflows.broker_session import BrokerSession, Change, SessionChange, SessionViewQuery
from workflows.iceberg import Iceberg, IcebergInput, IcebergStatus, ProgressQuery
from workflows.order_lifecycle import HistoryQuery, LifecycleState, OrderLifecycle

_event = partial(order_event, symbol="SYM", tif="GTC")
"""A record of one of the bridge's orders: ``_event(command_id, n, kind, filled, fill, **fields)``."""


async def _produce(producer: SigningProducer, *events: OrderEvent | bytes) -> None:
    for e in events:
        if isinstance(e, bytes):
            await producer.send_and_wait(ORDERS_EVENTS, e, key=b"DU1/SYM")
        else:
            await producer.send_and_wait(ORDERS_EVENTS, encode(e), key=e.key)


async def test_records_drive_one_lifecycle_per_order_findable_by_search_attributes(
    running: RunningBridge,
    temporal_client: Client,
    records_producer: SigningProducer,
    ledger_pool: asyncpg.Pool,
) -> None:
    cid = f"ord-{uuid.uuid4().hex}"
    symbol = f"Z{uuid.uuid4().hex[:6].upper()}"
    f1, f2 = Fill(f"{cid}-x1", 50, Decimal("10.01")), Fill(f"{cid}-x2", 150, Decimal("10.02"))
    accepted = _event(cid, 1, EventKind.ACCEPTED, 0, symbol=symbol)
    async with Worker(
        temporal_client,
        task_queue=running.queue,
        workflows=[OrderLifecycle],
        activities=[
            RecordWriterActivities(ledger_pool).record_writers,
            LifecycleOrderActivities(ledger_pool).lifecycle_order,
        ],
    ):
        await _produce(
            records_producer,
            accepted,
            b'{"kind": "filled"}',  # undecodable: skipped, logged, nothing lost downstream
            _event(cid, 2, EventKind.SUBMITTED, 0, symbol=symbol),
            _event(cid, 3, EventKind.PARTIALLY_FILLED, 50, f1, symbol=symbol),
            _event(cid, 3, EventKind.PARTIALLY_FILLED, 50, f1, symbol=symbol),
        )
        handle = temporal_client.get_workflow_handle_for(OrderLifecycle.run, cid)

        async def partially_filled() -> bool:
            try:
                view = await handle.query(OrderLifecycle.history, HistoryQuery())
            except Exception:
                return False
            return view.state is LifecycleState.PARTIALLY_FILLED

        await eventually(partially_filled, timeout=20)

        async def found() -> list[str]:
            query = (
                f'Symbol = "{symbol}" AND State = "PartiallyFilled" AND Account = "DU1" AND Agent = "alpha"'
            )
            return [w.id async for w in temporal_client.list_workflows(query)]

        assert await eventually(found, timeout=20) == [cid]
        await _produce(records_producer, _event(cid, 4, EventKind.FILLED, 200, f2, symbol=symbol))
        view = await handle.result()
        assert view.state is LifecycleState.FILLED and view.filled_qty == 200
        assert len(view.history) == 4
        # A record after the workflow finished does not start a second lifecycle.
        finished_before = running.bridge.stats.finished
        await _produce(records_producer, _event(cid, 5, EventKind.FILLED, 200, f2, symbol=symbol))
        await eventually(lambda: running.bridge.stats.finished > finished_before, timeout=20)
    assert running.bridge.stats.undecodable >= 1
    runs = [w async for w in temporal_client.list_workflows(f'WorkflowId = "{cid}"')]
    assert len(runs) == 1


async def test_slice_records_reach_the_iceberg_through_kafka(
    running: RunningBridge,
    temporal_client: Client,
    records_producer: SigningProducer,
    ledger_pool: asyncpg.Pool,
) -> None:
    """The venue side answers each slice by producing orders.events records; only the bridge
    carries them to the Iceberg workflow."""

    @activity.defn(name="get_quote")
    async def get_quote(req: QuoteRequest) -> QuoteResult:
        return QuoteResult(req.symbol, Decimal("20.00"), Decimal("20.01"), Decimal("0.01"), datetime.now(UTC))

    @activity.defn(name="publish_order")
    async def publish_order(req: OrderCommandRequest) -> PublishResult:
        base: dict[str, Any] = dict(
            parent_id=req.parent_id, quantity=req.quantity, symbol=req.symbol, agent_id=req.agent_id
        )
        fill = Fill(f"{req.command_id}-x", req.quantity, req.limit_price)
        await _produce(
            records_producer,
            _event(req.command_id, 1, EventKind.ACCEPTED, 0, **base),
            _event(req.command_id, 2, EventKind.FILLED, req.quantity, fill, **base),
        )
        return PublishResult(req.command_id, 0, 0)

    @activity.defn(name="publish_cancel")
    async def publish_cancel(req: CancelCommandRequest) -> PublishResult:
        raise AssertionError("no slice should need cancelling")

    parent = await ledgered_iceberg(ledger_pool, new_agent(), quantity=200, limit_price=None)
    iceberg_id = iceberg_workflow_id(parent.command_id)
    inp = iceberg_input(parent)
    async with Worker(
        temporal_client,
        task_queue=running.queue,
        workflows=[OrderLifecycle, Iceberg],
        activities=[
            get_quote,
            publish_order,
            publish_cancel,
            IcebergParentActivities(ledger_pool).check_iceberg_parent,
            RecordWriterActivities(ledger_pool).record_writers,
            LifecycleOrderActivities(ledger_pool).lifecycle_order,
        ],
    ):
        result = await temporal_client.execute_workflow(
            Iceberg.run, inp, id=iceberg_id, task_queue=running.queue, execution_timeout=timedelta(minutes=2)
        )
        assert result.status is IcebergStatus.COMPLETED and result.filled_qty == 200
        # Gaps are real seconds here (no time skipping): still between 3 and 7.
        gap = (result.slices[1].sent_at - result.slices[0].sent_at).total_seconds()
        assert 3.0 <= gap <= 7.5
        # Each slice also has its own lifecycle, started by the same records.
        for s in result.slices:
            view = await temporal_client.get_workflow_handle_for(OrderLifecycle.run, s.command_id).result()
            assert view.state is LifecycleState.FILLED


async def test_session_records_drive_the_account_broker_session(
    temporal_client: Client,
    kafka_bootstrap: str,
    records_producer: SigningProducer,
    ledger_pool: asyncpg.Pool,
    bridge_security: SecurityLog,
) -> None:
    await ensure_topics(kafka_bootstrap, (session_records.SESSIONS_TOPIC,))
    account = f"DU{uuid.uuid4().hex[:6]}"
    queue = f"sessions-{uuid.uuid4().hex[:6]}"
    bridge = Bridge(temporal_client, ledger=ledger_pool, security=bridge_security, task_queue=queue)
    consumer = bridge_consumer(kafka_bootstrap, group_id=f"sessions-{uuid.uuid4().hex[:6]}", sessions=True)
    await start_at_the_end(consumer)
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(consumer, stop))
    t0 = datetime.now(UTC)
    try:
        async with Worker(temporal_client, task_queue=queue, workflows=[BrokerSession]):
            for n, (change, epoch) in enumerate([(Change.DISCONNECTED, 0), (Change.FAILED_OVER, 1)]):
                # The failover's record carries the hot path's reconciliation of its epoch.
                report = ReconcileReport(account, epoch, t0) if change is Change.FAILED_OVER else None
                cause = "heartbeat missed"
                record = SessionChange(
                    f"{account}-{n}", change, "127.0.0.1:4012", cause, epoch, t0, reconcile=report
                )
                await records_producer.send_and_wait(
                    session_records.SESSIONS_TOPIC,
                    session_records.encode(account, record),
                    key=account.encode(),
                )
            await records_producer.send_and_wait(session_records.SESSIONS_TOPIC, b'{"change": "exploded"}')
            handle = temporal_client.get_workflow_handle_for(BrokerSession.run, f"broker-session/{account}")

            async def reconciled_once() -> bool:
                try:
                    view = await handle.query(BrokerSession.view, SessionViewQuery())
                except Exception:
                    return False
                return len(view.epochs) == 2 and view.epochs[1].reconcile is not None

            await eventually(reconciled_once, timeout=20)
            view = await handle.query(BrokerSession.view, SessionViewQuery())
            # What the UI shows: the account's session, connected after the failover.
            details = await current_details(handle)
            described = await handle.describe()
            await eventually(lambda: bridge.stats.undecodable >= 1, timeout=20)
            await handle.terminate()
    finally:
        stop.set()
        await task
        await consumer.stop()
    assert await described.static_summary() == f"Broker session {account}"
    lines = details.splitlines()
    assert lines[0].startswith("**Connected** to 127.0.0.1:4012 since ")
    assert lines[1] == f"account {account} · last reconciled epoch 1"
    assert lines[2].startswith("last: failed_over 127.0.0.1:4012 (heartbeat missed) at ")
    assert lines[2].endswith("; reconciled in sync")
    # Only the failover epoch was reconciled, and the workflow recorded its report once.
    assert [e.reconcile.epoch for e in view.epochs if e.reconcile is not None] == [1]
    assert [e.reconcile is not None for e in view.epochs] == [False, True]
    # The bridge reads broker.sessions from its start, so hot paths that ran earlier in the
    # session add their own epochs; this account's two are in the workflow's view above.
    assert bridge.stats.session_changes >= 2


def _iceberg_parent_record(command: Command, n: int, agent: Any) -> OrderEvent:
    return _event(
        command.command_id, n, EventKind.ACCEPTED, 0, quantity=300, tif="DAY",
        iceberg_envelope=agent.sign(command).to_wire().decode(),
    )  # fmt: skip


async def test_an_accepted_iceberg_parent_starts_one_iceberg_however_often_it_is_delivered(
    running: RunningBridge,
    temporal_client: Client,
    records_producer: SigningProducer,
    ledger_pool: asyncpg.Pool,
) -> None:
    agent = new_agent()
    command = await ledgered_iceberg(ledger_pool, agent)
    cid = command.command_id
    record = _iceberg_parent_record(command, 1, agent)
    # A genuine record of a parent the ledger does not hold (an envelope nobody ledgered).
    unledgered = dataclasses.replace(command, command_id=f"ice-bad-{uuid.uuid4().hex}")
    bad = _iceberg_parent_record(unledgered, 1, agent)
    # Same key (DU1/SYM) as the records above, so the bridge reaches it after them.
    after = _event(f"ord-{uuid.uuid4().hex}", 1, EventKind.ACCEPTED, 0)
    not_ledgered_before = running.bridge.stats.parents_not_ledgered
    # Delivered twice (a redelivery after a bridge restart), and an unledgered parent in
    # between: the bridge starts one workflow, shrugs off the copy and the other, and goes on.
    await _produce(records_producer, record, bad, record, after)
    assert await eventually(lambda: workflow_exists(temporal_client, after.command_id), timeout=30)
    assert running.bridge.stats.parents_not_ledgered > not_ledgered_before
    assert running.bridge.stats.icebergs_already_started >= 1

    handle = temporal_client.get_workflow_handle_for(Iceberg.run, iceberg_workflow_id(cid))
    try:
        description = await handle.describe()
        assert description.workflow_type == "Iceberg" and description.task_queue == running.queue
        runs = [w async for w in temporal_client.list_workflows(f'WorkflowId = "{iceberg_workflow_id(cid)}"')]
        assert len(runs) == 1
        # The parent is no broker order: no lifecycle under its command id.
        assert [w async for w in temporal_client.list_workflows(f'WorkflowId = "{cid}"')] == []
        history = await handle.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        payload = json.loads(started.input.payloads[0].data)
        assert (payload["total_qty"], payload["display_qty"], payload["limit_price"]) == (300, 100, "20.05")
        assert payload["agent_id"] == "sniper"
        # A DAY parent stops at the close of the session it was accepted in.
        assert datetime.fromisoformat(payload["expires_at"]) == SessionCalendar().close_after(record.ts)
    finally:
        await handle.terminate("test over")
        await temporal_client.get_workflow_handle(after.command_id).terminate("test over")
    ids = [
        w.id
        async for w in temporal_client.list_workflows(f'WorkflowId = "{iceberg_workflow_id(bad.command_id)}"')
    ]
    assert ids == []


def _iceberg_command(tif: TimeInForce | None) -> Command:
    return Command(
        kind=CommandKind.ICEBERG, command_id="ice-1", agent_id="alpha", account="DU1",
        nonce="n-1", issued_at=datetime(2026, 11, 24, 14, 0, tzinfo=UTC), symbol="SYM",
        side=Side.BUY, edge=Edge(Decimal("0.6"), Decimal("1.5"), Decimal("19")), tif=tif,
        quantity=300, display_size=100, limit_price=Decimal("20.05"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("tif", "accepted", "expires"),
    [
        # 09:00 New York time (EST): that day's 16:00 close.
        (
            TimeInForce.DAY,
            datetime(2026, 11, 24, 14, 0, tzinfo=UTC),
            datetime(2026, 11, 24, 21, 0, tzinfo=UTC),
        ),
        # Accepted after the close: the next session's.
        (
            TimeInForce.DAY,
            datetime(2026, 11, 24, 21, 30, tzinfo=UTC),
            datetime(2026, 11, 25, 21, 0, tzinfo=UTC),
        ),
        # Friday evening: Monday's close.
        (
            TimeInForce.DAY,
            datetime(2026, 11, 27, 22, 0, tzinfo=UTC),
            datetime(2026, 11, 30, 21, 0, tzinfo=UTC),
        ),
        # Summer time: 16:00 EDT is 20:00 UTC.
        (TimeInForce.DAY, datetime(2026, 7, 1, 14, 0, tzinfo=UTC), datetime(2026, 7, 1, 20, 0, tzinfo=UTC)),
        (TimeInForce.GTC, datetime(2026, 11, 24, 14, 0, tzinfo=UTC), None),
    ],
)
def test_an_iceberg_parent_expires_at_the_close_of_its_session_unless_gtc(
    tif: TimeInForce | None, accepted: datetime, expires: datetime | None
) -> None:
    assert iceberg_expiry(_iceberg_command(tif), accepted, SessionCalendar()) == expires


async def test_a_control_record_is_handed_to_its_iceberg_which_acts_only_on_what_the_ledger_holds(
    running: RunningBridge, temporal_client: Client, ledger_pool: asyncpg.Pool, agent: Agent
) -> None:
    """The bridge passes a control record's command id to the parent as the ``control`` signal
    and starts no lifecycle for it; the Iceberg pauses for the ledgered control and ignores one
    the ledger does not hold (a forged record)."""
    controller = Controller(ledger_pool, agent)
    venue = SimVenue(script=lambda n: "rest", ledger=ledger_pool)
    iceberg_id = f"iceberg-{uuid.uuid4().hex}"
    inp = IcebergInput(
        account="DU1", symbol="SYM", side=Side.BUY, total_qty=300, display_qty=100,
        edge=Edge(Decimal("0.6"), Decimal("1.5"), Decimal("19")),
    )  # fmt: skip

    def control_record(command_id: str) -> OrderEvent:
        return _event(command_id, 1, EventKind.ACCEPTED, 0, parent_id=iceberg_id, control="iceberg_pause")

    async with Worker(
        temporal_client, task_queue=running.queue, workflows=[Iceberg], activities=venue.activities()
    ):
        handle = await temporal_client.start_workflow(
            Iceberg.run, inp, id=iceberg_id, task_queue=running.queue, execution_timeout=timedelta(minutes=2)
        )
        try:
            forged = f"ctl-forged-{uuid.uuid4().hex}"
            await running.bridge.deliver(control_record(forged))
            await taken_up(handle, forged)
            progress = await handle.query(Iceberg.progress, ProgressQuery())
            assert progress.status is IcebergStatus.WORKING
            refused = [n for n in progress.notes if f"control {forged} not applied" in n]
            assert refused and "not in the ledger" in refused[0]

            pause = await controller.ledgered(iceberg_id, CommandKind.ICEBERG_PAUSE)
            await running.bridge.deliver(control_record(pause))
            await taken_up(handle, pause)
            assert (await handle.query(Iceberg.progress, ProgressQuery())).status is IcebergStatus.PAUSED
            assert not await workflow_exists(temporal_client, pause)
            assert not await workflow_exists(temporal_client, forged)
        finally:
            await handle.terminate("test over")
