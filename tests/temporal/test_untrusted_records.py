"""Kafka and Temporal are not trust boundaries: records nobody signed, an Iceberg started by hand
and signals sent straight to a workflow make the floor do nothing. Real Kafka (Tansu), Postgres
and a Temporal dev server; the bridge runs in process."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.commands import CancelCommandRequest, OrderCommandRequest, PublishResult
from activities.iceberg_parent import IcebergLimits, IcebergParentActivities
from activities.market import QuoteRequest, QuoteResult
from activities.record_writers import RecordWriterActivities
from bus.signed_records import SigningProducer
from bus.topics import BROKER_SESSIONS, ORDERS_EVENTS
from config.workflow_ids import broker_session_workflow_id, iceberg_workflow_id
from ledger.append import Decision, append_command
from ledger.security_events import recent_security_events
from observability.flood import FULL_EVENTS_PER_WINDOW, REPEATS
from observability.security import SecurityLog
from temporal import session_records
from temporal.bridge import Bridge
from temporal.client import iceberg_input, start_iceberg
from temporal.record_traces import RawRecord
from tests.factories import Agent, new_agent, order_event
from tests.fixtures.hotpath import RecordWriters, register
from tests.helpers import eventually
from tests.temporal.conftest import RunningBridge, ledgered_iceberg, workflow_exists
from trading.commands import Command, CommandKind, Edge, Side, TimeInForce, utc_now_ms
from trading.order_events import EventKind, OrderEvent, encode
from trading.record_signing import UNSIGNED, sign_record
from trading.security_events import SecurityEvent
from trading.signing import SignedCommand
from workflows.broker_session import Change, SessionChange
from workflows.iceberg import Iceberg, IcebergInput, IcebergStatus, ProgressQuery
from workflows.signed_events import SignedOrderEvent


async def _security_events(pool: asyncpg.Pool, since: datetime) -> list[SecurityEvent]:
    return [e for e in await recent_security_events(pool, limit=500) if e.ts is not None and e.ts >= since]


def _record(command_id: str, n: int, kind: EventKind, **fields: object) -> OrderEvent:
    return order_event(command_id, n, kind, **{"symbol": "SYM", "quantity": 100, "tif": "DAY", **fields})


@pytest.fixture
async def agent_on_a(ledger_pool: asyncpg.Pool) -> Agent:
    """An agent allowed only on DU-A, registered before the bridge starts: the bridge loads the
    key registry on its first record and reloads it for an unknown key at most once a second, so a
    key registered after any record (another process's order event) reached it reads as unknown
    for up to a second. Listed before ``running`` so it is set up first."""
    agent = new_agent(accounts=frozenset({"DU-A"}))
    await register(ledger_pool, agent)
    return agent


async def test_an_agent_cannot_start_an_iceberg_on_another_account_by_publishing_an_accepted_record(
    agent_on_a: Agent,
    running: RunningBridge,
    temporal_client: Client,
    events_producer: AIOKafkaProducer,
    ledger_pool: asyncpg.Pool,
) -> None:
    """The issue's scenario: an agent allowed only on account A publishes an ``accepted`` record
    whose envelope is an iceberg for account B with a zero signature. No Iceberg runs, and a
    security event names orders.events; the same record signed with the agent's own key fares
    no better (the agent is no writer of orders.events)."""
    since = datetime.now(UTC)
    agent = agent_on_a
    forged = Command(
        kind=CommandKind.ICEBERG, command_id=f"ice-forged-{uuid.uuid4().hex}", agent_id=agent.agent_id,
        account="DU-B", nonce=uuid.uuid4().hex, issued_at=utc_now_ms(), symbol="SYM", side=Side.BUY,
        edge=Edge(Decimal("0.6"), Decimal("1.5"), Decimal("19")), tif=TimeInForce.DAY,
        quantity=5000, display_size=100, limit_price=Decimal("20.05"),
    )  # fmt: skip
    envelope = SignedCommand(forged, signer=agent.key_id, signature=bytes(64))
    record = _record(
        forged.command_id, 1, EventKind.ACCEPTED, account="DU-B", agent_id=agent.agent_id, quantity=5000,
        iceberg_envelope=envelope.to_wire().decode(),
    )  # fmt: skip
    second = dataclasses.replace(record, event_id=f"{record.event_id}-signed")
    after = _record(f"ord-{uuid.uuid4().hex}", 1, EventKind.ACCEPTED)
    await events_producer.send_and_wait(ORDERS_EVENTS, encode(record), key=record.key)
    await events_producer.send_and_wait(
        ORDERS_EVENTS, sign_record(ORDERS_EVENTS, encode(second), agent.private_key), key=record.key
    )
    # An unsigned record behind them: dropped too, so the bridge has read past both forgeries.
    await events_producer.send_and_wait(ORDERS_EVENTS, encode(after), key=after.key)

    async def refused() -> list[SecurityEvent]:
        # Only this test's records: other bridges in the session re-read the topic's forgeries, and
        # an API process's hub (source "api") refuses the same records on its own.
        ours = {forged.command_id, after.command_id}
        events = await _security_events(ledger_pool, since)
        mine = [
            e
            for e in events
            if e.detail.get("topic") == ORDERS_EVENTS
            and e.detail.get("claimed_command_id") in ours
            and e.source != "api"
        ]
        return mine if len(mine) >= 3 else []

    events = await eventually(refused, timeout=30)
    assert {e.reason for e in events} >= {"record.unsigned", "record.not_a_writer"}
    assert all(e.source == "temporal-bridge" and e.severity == "critical" for e in events)
    assert all(e.source_address == f"{ORDERS_EVENTS}[0]" and e.detail.get("offset") for e in events)
    assert any(e.key_id == agent.key_id for e in events)
    assert not await workflow_exists(temporal_client, iceberg_workflow_id(forged.command_id))
    assert not await workflow_exists(temporal_client, after.command_id)


async def test_a_forged_broker_sessions_record_is_dropped_with_a_security_event(
    running: RunningBridge,
    temporal_client: Client,
    events_producer: AIOKafkaProducer,
    records_producer: SigningProducer,
    ledger_pool: asyncpg.Pool,
) -> None:
    since = datetime.now(UTC)
    forged_account = f"DUF{uuid.uuid4().hex[:6]}"
    genuine_account = f"DUG{uuid.uuid4().hex[:6]}"
    change = SessionChange(f"{forged_account}-1", Change.FAILED_OVER, "10.0.0.9:4002", "forged", 1, since)
    await events_producer.send_and_wait(
        BROKER_SESSIONS, session_records.encode(forged_account, change), key=forged_account.encode()
    )
    real = dataclasses.replace(change, event_id=f"{genuine_account}-1", cause="heartbeat missed")
    await records_producer.send_and_wait(
        BROKER_SESSIONS, session_records.encode(genuine_account, real), key=genuine_account.encode()
    )
    # The genuine record is read after the forged one (same topic, one partition).
    assert await eventually(
        lambda: workflow_exists(temporal_client, broker_session_workflow_id(genuine_account)), timeout=30
    )
    try:
        assert not await workflow_exists(temporal_client, broker_session_workflow_id(forged_account))
        events = [
            e
            for e in await _security_events(ledger_pool, since)
            if e.detail.get("topic") == BROKER_SESSIONS and e.detail.get("claimed_account") == forged_account
        ]
        assert [e.reason for e in events] == ["record.unsigned"]
    finally:
        await temporal_client.get_workflow_handle(broker_session_workflow_id(genuine_account)).terminate()


@dataclass
class Desk:
    """The far side of the slices: each is answered with the hot path's signed records through
    Kafka (accepted, submitted) and then rests; cancels are never confirmed, so the slice keeps
    working for as long as the test lasts."""

    producer: SigningProducer
    orders: list[OrderCommandRequest] = dataclasses.field(default_factory=list)
    cancels: list[CancelCommandRequest] = dataclasses.field(default_factory=list)

    def activities(self, ledger: asyncpg.Pool) -> list[object]:
        @activity.defn(name="get_quote")
        async def get_quote(req: QuoteRequest) -> QuoteResult:
            return QuoteResult(
                req.symbol, Decimal("20.00"), Decimal("20.04"), Decimal("0.01"), datetime.now(UTC)
            )

        @activity.defn(name="publish_order")
        async def publish_order(req: OrderCommandRequest) -> PublishResult:
            if all(o.command_id != req.command_id for o in self.orders):
                self.orders.append(req)
                for n, kind in enumerate((EventKind.ACCEPTED, EventKind.SUBMITTED)):
                    record = _slice_record(req, n, kind)
                    await self.producer.send_and_wait(ORDERS_EVENTS, encode(record), key=record.key)
            return PublishResult(req.command_id, 0, 0)

        @activity.defn(name="publish_cancel")
        async def publish_cancel(req: CancelCommandRequest) -> PublishResult:
            self.cancels.append(req)
            return PublishResult(req.command_id, 0, 0)

        return [
            get_quote,
            publish_order,
            publish_cancel,
            # Tests run the 3-7 s intervals ten times faster; the worker allows that, no more.
            IcebergParentActivities(
                ledger, limits=IcebergLimits(min_interval_scale=Decimal("0.1"))
            ).check_iceberg_parent,
            RecordWriterActivities(ledger).record_writers,
        ]


def _slice_record(req: OrderCommandRequest, n: int, kind: EventKind, **fields: object) -> OrderEvent:
    values: dict[str, object] = dict(
        parent_id=req.parent_id, account=req.account, symbol=req.symbol, agent_id=req.agent_id,
        quantity=req.quantity, limit_price=req.limit_price,
    )  # fmt: skip
    values.update(fields)
    return _record(req.command_id, n, kind, **values)


async def test_forged_cancelled_records_and_signals_do_not_make_the_iceberg_send_its_next_slice(
    running: RunningBridge,
    temporal_client: Client,
    events_producer: AIOKafkaProducer,
    records_producer: SigningProducer,
    ledger_pool: asyncpg.Pool,
    record_writers: RecordWriters,
) -> None:
    """While slice 1 works, an attacker claims it was cancelled: on Kafka unsigned, on Kafka
    signed by an agent's key, as a ``slice_event`` signal straight to Temporal, and as a
    ``slice_record`` signal signed by the wrong key. Any of these believed would free the
    Iceberg to send slice 2 on top of the working slice 1 (an overfill)."""
    desk = Desk(records_producer)
    parent = await ledgered_iceberg(ledger_pool, new_agent(), quantity=300, display_size=100)
    inp = dataclasses.replace(iceberg_input(parent), interval_scale=Decimal("0.1"))
    workflow_id = iceberg_workflow_id(parent.command_id)
    intruder = new_agent()
    await register(ledger_pool, intruder)
    async with Worker(
        temporal_client,
        task_queue=running.queue,
        workflows=[Iceberg],
        activities=desk.activities(ledger_pool),  # type: ignore[arg-type]
    ):
        handle = await temporal_client.start_workflow(
            Iceberg.run, inp, id=workflow_id, task_queue=running.queue, execution_timeout=timedelta(minutes=2)
        )
        try:
            await eventually(lambda: len(desk.orders) == 1, timeout=30)
            working = desk.orders[0]
            fakes = [
                _slice_record(working, 10 + n, EventKind.CANCELLED, reason="broker.cancelled")
                for n in range(4)
            ]
            await events_producer.send_and_wait(ORDERS_EVENTS, encode(fakes[0]), key=fakes[0].key)
            await events_producer.send_and_wait(
                ORDERS_EVENTS,
                sign_record(ORDERS_EVENTS, encode(fakes[1]), intruder.private_key),
                key=fakes[1].key,
            )
            await handle.signal("slice_event", fakes[2])
            await handle.signal(
                "slice_record",
                SignedOrderEvent(sign_record(ORDERS_EVENTS, encode(fakes[3]), intruder.private_key).decode()),
            )

            async def refused_everywhere() -> bool:
                notes = (await handle.query(Iceberg.progress, ProgressQuery())).notes
                return (
                    running.bridge.stats.unverified >= 2
                    and any("unsigned slice event" in n for n in notes)
                    and any("slice record refused" in n for n in notes)
                    # The slice's interval is over: the Iceberg has asked for it to be pulled.
                    and len(desk.cancels) >= 1
                )

            await eventually(refused_everywhere, timeout=30)
            progress = await handle.query(Iceberg.progress, ProgressQuery())
            assert len(desk.orders) == 1 and progress.slices_sent == 1
            assert progress.working_qty == 100
            # The genuine records, signed by the hot path's key, did reach it.
            assert progress.status is IcebergStatus.WORKING
        finally:
            await handle.terminate("test over")


async def _refused(client: Client, inp: IcebergInput, workflow_id: str, queue: str) -> str:
    """Run an Iceberg someone started by hand; it must fail. Returns why."""
    try:
        await client.execute_workflow(
            Iceberg.run, inp, id=workflow_id, task_queue=queue, execution_timeout=timedelta(minutes=1)
        )
    except WorkflowFailureError as exc:
        assert isinstance(exc.cause, ApplicationError) and exc.cause.type == "IcebergRefused"
        return exc.cause.message
    raise AssertionError(f"{workflow_id} ran")


async def _worked_by_the_genuine_start(client: Client, desk: Desk, parent: Command, queue: str) -> None:
    """The bridge's start of ``parent`` goes through after the forged run and sends a slice."""
    handle = await start_iceberg(client, parent, task_queue=queue)
    try:
        await eventually(lambda: len(desk.orders) == 1, timeout=30)
    finally:
        await handle.terminate("test over")


async def test_an_iceberg_started_directly_in_temporal_for_a_parent_the_ledger_lacks_fails(
    temporal_client: Client, ledger_pool: asyncpg.Pool, records_producer: SigningProducer
) -> None:
    """Temporal authenticates nobody either: an Iceberg started by hand for a parent the ledger
    does not hold, or with a total other than the ledgered parent's, fails having sent nothing;
    the genuine parent is still started, and worked."""
    desk = Desk(records_producer)
    queue = f"direct-{uuid.uuid4().hex[:8]}"
    agent = new_agent(accounts=frozenset({"DU1"}))
    genuine = await ledgered_iceberg(ledger_pool, agent)
    unheld = dataclasses.replace(genuine, command_id=f"ice-unheld-{uuid.uuid4().hex}", account="DU2")
    inflated = dataclasses.replace(iceberg_input(genuine), total_qty=30_000)
    async with Worker(
        temporal_client,
        task_queue=queue,
        workflows=[Iceberg],
        activities=desk.activities(ledger_pool),  # type: ignore[arg-type]
    ):
        unheld_reason = await _refused(
            temporal_client, iceberg_input(unheld), iceberg_workflow_id(unheld.command_id), queue
        )
        inflated_reason = await _refused(
            temporal_client, inflated, iceberg_workflow_id(genuine.command_id), queue
        )
        assert desk.orders == []
        await _worked_by_the_genuine_start(temporal_client, desk, genuine, queue)
    assert unheld_reason.startswith("iceberg.parent_unknown")
    assert "total_qty" in inflated_reason


async def test_an_iceberg_started_before_its_parent_is_ledgered_cannot_keep_the_parent_from_being_worked(
    temporal_client: Client, ledger_pool: asyncpg.Pool, records_producer: SigningProducer
) -> None:
    """The kill: the parent's id is readable on agent.commands before intake ledgers it, so
    someone starts ``iceberg-<command id>`` first. That run fails (no such parent yet), and the
    bridge's start once the parent is accepted still goes through."""
    desk = Desk(records_producer)
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    agent = new_agent(accounts=frozenset({"DU1"}))
    template = await ledgered_iceberg(ledger_pool, agent)
    parent = dataclasses.replace(template, command_id=f"ice-cmd-{uuid.uuid4().hex}", nonce=uuid.uuid4().hex)
    async with Worker(
        temporal_client,
        task_queue=queue,
        workflows=[Iceberg],
        activities=desk.activities(ledger_pool),  # type: ignore[arg-type]
    ):
        reason = await _refused(
            temporal_client, iceberg_input(parent), iceberg_workflow_id(parent.command_id), queue
        )
        await append_command(
            ledger_pool, agent.sign(parent), decision=Decision.ACCEPTED, detail={"quantity": 300}
        )
        await _worked_by_the_genuine_start(temporal_client, desk, parent, queue)
    assert reason.startswith("iceberg.parent_unknown")


async def test_an_iceberg_hijacked_with_its_own_pacing_fails_and_the_genuine_start_works_the_parent(
    temporal_client: Client, ledger_pool: asyncpg.Pool, records_producer: SigningProducer
) -> None:
    """The hijack: started right after the parent is accepted, racing the bridge, with every
    ledgered field right and the floor's slicer, but slices every few milliseconds, each up to
    twice the display size, and no expiry for a DAY parent. The pacing is the worker's to set:
    the run fails having sent nothing, and the bridge's start works the parent."""
    desk = Desk(records_producer)
    queue = f"hijack-{uuid.uuid4().hex[:8]}"
    genuine = await ledgered_iceberg(ledger_pool, new_agent(accounts=frozenset({"DU1"})))
    hijack = dataclasses.replace(
        iceberg_input(genuine, agent_id="sniper"),
        interval_scale=Decimal("0.001"),
        jitter=Decimal("0.99"),
        expires_at=None,
    )
    async with Worker(
        temporal_client,
        task_queue=queue,
        workflows=[Iceberg],
        activities=desk.activities(ledger_pool),  # type: ignore[arg-type]
    ):
        reason = await _refused(temporal_client, hijack, iceberg_workflow_id(genuine.command_id), queue)
        assert desk.orders == []
        await _worked_by_the_genuine_start(temporal_client, desk, genuine, queue)
    assert reason.startswith("iceberg.pacing_not_allowed")
    assert "interval scale" in reason and "jitter" in reason


async def test_a_burst_of_forged_records_adds_security_rows_per_window_not_per_record(
    temporal_client: Client, ledger_pool: asyncpg.Pool, bridge_security: SecurityLog
) -> None:
    """Sixty unsigned records from one partition: the first few are recorded in full, the rest
    counted into one summary per reason, written when the window closes or the bridge stops."""
    bridge = Bridge(
        temporal_client, ledger=ledger_pool, security=bridge_security, flood_window=timedelta(minutes=5)
    )
    partition = f"orders.events-{uuid.uuid4().hex[:8]}[0]"  # this test's own source
    burst = 60
    unsigned = encode(_record(f"cmd-forged-{uuid.uuid4().hex}", 1, EventKind.CANCELLED))
    await bridge.deliver_raw([RawRecord(f"{partition}@{offset}", unsigned) for offset in range(burst)])

    rows = await ledger_pool.fetch(
        "SELECT reason, detail FROM security_events WHERE remote_addr = $1", partition
    )
    assert [r["reason"] for r in rows] == [UNSIGNED] * FULL_EVENTS_PER_WINDOW
    await bridge.close()
    rows = await ledger_pool.fetch(
        "SELECT detail->>$2 AS repeats FROM security_events WHERE remote_addr = $1 AND detail ? $2",
        partition,
        REPEATS,
    )
    assert [int(r["repeats"]) for r in rows] == [burst - FULL_EVENTS_PER_WINDOW]
