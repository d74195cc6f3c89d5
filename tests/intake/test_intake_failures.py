"""Failures intake did not foresee end in a named, recorded refusal, and the consumer's offset
moves past a record only once its decision is in the ledger.

Intake runs in the test's process over the real ledger (Postgres) and real Kafka: records come
through the consumer the hot path builds (:func:`hotpath.main.command_consumer`) and its
commits are read back from the broker's group coordinator. (Here, not among the hot path
suites: their hot path process would decide these records too.)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from decimal import Decimal
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from brokers.base import BrokerOrder, Placement
from bus.kafka import consumer as kafka_consumer
from bus.kafka import start_producer
from bus.topics import AGENT_COMMANDS
from hotpath.command_loop import IntakeHold, command_consumer, consume_commands, decide
from hotpath.decided_offsets import DecidedOffsets
from hotpath.intake import Intake
from hotpath.ledger_store import LedgerStore
from hotpath.ports import Ledgered
from hotpath.refusals import INTERNAL_ERROR
from tests.factories import Agent, enter_command
from tests.helpers import eventually
from tests.hotpath.conftest import VENUE_ACCOUNT
from tests.hotpath.in_process import BankrollOnly, in_process_intake
from tests.hotpath.test_iceberg_parents import iceberg
from trading.order_events import OrderEvent
from trading.security_events import SecurityEvent
from trading.signing import SignedCommand

AUTO_COMMIT_INTERVAL_S = 5.0
"""aiokafka's default auto-commit interval: a held record must stay uncommitted beyond it."""


class _NanBankroll(BankrollOnly):
    """A broker session reporting a net liquidation that is not a number."""

    async def net_liquidation(self, account: str) -> Decimal:
        return Decimal("NaN")


class _Broker(BankrollOnly):
    def __init__(self) -> None:
        self.placed: list[str] = []

    def place(self, order: BrokerOrder) -> Placement:
        self.placed.append(order.order_ref)
        return Placement(order.order_ref, True, time.perf_counter_ns(), "test", 1, len(self.placed))


class _LedgerDown(LedgerStore):
    """Postgres gone for the write-ahead append until :attr:`down` is cleared."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.down = True
        self.attempts = 0

    async def append_accepted(
        self, envelope: SignedCommand, sized_quantity: int, detail: Mapping[str, Any]
    ) -> Ledgered:
        self.attempts += 1
        if self.down:
            raise ConnectionRefusedError("connect call failed (the test took Postgres away)")
        return await super().append_accepted(envelope, sized_quantity, detail)


class _LedgerRefusing(LedgerStore):
    """Postgres answering, but refusing every write (the hot path's role lost its grants, say)
    until :attr:`refusing` is cleared: not an outage, so not what intake holds a record for."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.refusing = True
        self.ops_attempts = 0

    def _check(self) -> None:
        if self.refusing:
            raise asyncpg.InsufficientPrivilegeError("permission denied for table ledger_entries")

    async def append_accepted(
        self, envelope: SignedCommand, sized_quantity: int, detail: Mapping[str, Any]
    ) -> Ledgered:
        self._check()
        return await super().append_accepted(envelope, sized_quantity, detail)

    async def append_rejected(
        self, envelope: SignedCommand, reason: str, detail: Mapping[str, Any], *, authenticated: bool = True
    ) -> Ledgered:
        self._check()
        return await super().append_rejected(envelope, reason, detail, authenticated=authenticated)

    async def record_ops_event(self, kind: str, severity: str, detail: Mapping[str, Any]) -> None:
        self.ops_attempts += 1
        self._check()
        await super().record_ops_event(kind, severity, detail)

    async def record_security_event(self, event: SecurityEvent) -> None:
        self._check()
        await super().record_security_event(event)


@contextlib.asynccontextmanager
async def _consuming(
    intake: Intake, bootstrap: str, group_id: str, *, rejoin: bool = False
) -> AsyncIterator[AIOKafkaConsumer]:
    """``intake`` fed by the hot path's own command consumer in ``group_id``, committing its
    decided offsets, from the end of the topic (a new group) or the group's committed offset.
    Leaves as a killed process does: nothing flushed, nothing committed on the way out.

    ``rejoin``: the next process after a kill, reading from where the group committed. It is
    assigned the partition rather than joining the group, which would first wait out the dead
    member's session (the broker never heard it leave); what it reads is the same. (Its own
    commits are refused until that session ends: the group still has a member.)"""
    tp = TopicPartition(AGENT_COMMANDS, 0)
    if rejoin:
        consumer = kafka_consumer(bootstrap, group_id=group_id, auto_commit=False, fetch_max_wait_ms=5)
        consumer.assign([tp])
        await consumer.start()
    else:
        consumer = command_consumer(bootstrap, group_id, 5)
        await consumer.start()
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=50)
        # A new group: it starts where the topic ends now, as if it had been running all along.
        await consumer.seek_to_end(tp)
        await consumer.commit({tp: await consumer.position(tp)})
    offsets = DecidedOffsets(consumer)
    tasks = [
        asyncio.create_task(consume_commands(intake, consumer, offsets)),
        asyncio.create_task(offsets.run()),
    ]
    try:
        yield consumer
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await consumer.stop()


async def _committed(consumer: AIOKafkaConsumer) -> int:
    return await consumer.committed(TopicPartition(AGENT_COMMANDS, 0)) or -1


async def _send(producer: AIOKafkaProducer, env: SignedCommand) -> int:
    """Send ``env`` as agents do; its offset on the (single-partition) topic."""
    command = env.command
    meta = await producer.send_and_wait(
        AGENT_COMMANDS, env.to_wire(), key=f"{command.account}/{command.symbol}".encode()
    )
    return int(meta.offset)


async def _entries(pool: asyncpg.Pool, command_id: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    rows = await pool.fetch(
        "SELECT decision, reason, detail FROM ledger_entries WHERE command_id = $1 AND authenticated"
        " ORDER BY seq",
        command_id,
    )
    return [(r["decision"], r["reason"], json.loads(r["detail"]) if r["detail"] else {}) for r in rows]


async def _stays(predicate: Callable[[], Any], seconds: float) -> None:
    """``predicate`` holds throughout ``seconds`` (checked every 100 ms)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert await predicate()
        await asyncio.sleep(0.1)


async def test_a_nan_net_liquidation_is_refused_as_an_internal_error_and_its_offset_committed(
    agent: Agent, ledger_pool: asyncpg.Pool, risk_profiles: None, command_producer: AIOKafkaProducer,
    kafka_bootstrap: str,
) -> None:  # fmt: skip
    emitted: list[OrderEvent] = []
    intake = in_process_intake(LedgerStore(ledger_pool), _NanBankroll(), emitted)
    await intake.warm()
    env = agent.sign(enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=5))
    cid = env.command.command_id

    async with _consuming(intake, kafka_bootstrap, f"intake-{uuid.uuid4().hex[:8]}") as consumer:
        offset = await _send(command_producer, env)
        [(decision, reason, detail)] = await _eventually_entries(ledger_pool, cid)
        assert (decision, reason) == ("rejected", INTERNAL_ERROR)
        assert detail["exception"] == "InvalidOperation"
        await _eventually(lambda: _committed_past(consumer, offset))

    assert [(e.kind.value, e.reason) for e in emitted] == [("rejected", INTERNAL_ERROR)]


async def test_an_iceberg_parent_whose_record_cannot_be_published_ends_rejected_as_an_internal_error(
    agent: Agent, ledger_pool: asyncpg.Pool, risk_profiles: None, kafka_bootstrap: str
) -> None:
    """Ledgered, but Kafka failed as its ``accepted`` record went out, so no Sniper will ever
    start it: the parent ends ``rejected: intake.internal_error`` in its state rows."""
    producer = await start_producer(kafka_bootstrap, "intake-failures")
    await producer.stop()  # sends now fail as they do once the client has given up
    emitted: list[OrderEvent] = []
    intake = in_process_intake(LedgerStore(ledger_pool), BankrollOnly(), emitted, producer=producer)
    await intake.warm()
    env = agent.sign(dataclasses.replace(iceberg(agent.agent_id), account=VENUE_ACCOUNT))
    cid = env.command.command_id

    outcome = await intake.handle(env.to_wire(), source="test")

    assert outcome.reason == INTERNAL_ERROR
    assert [(d, r) for d, r, _ in await _entries(ledger_pool, cid)] == [("accepted", None)]
    rows = await ledger_pool.fetch("SELECT kind, reason FROM order_events WHERE command_id = $1", cid)
    assert [(r["kind"], r["reason"]) for r in rows] == [("rejected", INTERNAL_ERROR)]


async def test_a_command_held_through_a_ledger_outage_is_decided_once_by_the_next_process(
    agent: Agent, ledger_pool: asyncpg.Pool, risk_profiles: None, command_producer: AIOKafkaProducer,
    kafka_bootstrap: str,
) -> None:  # fmt: skip
    """The first process holds the record while Postgres is away and is killed holding it: its
    offset was never committed, so the next process in the group reads it and decides it."""
    group = f"intake-{uuid.uuid4().hex[:8]}"
    env = agent.sign(enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=5))
    cid = env.command.command_id
    first_broker, first_ledger = _Broker(), _LedgerDown(ledger_pool)
    first = in_process_intake(first_ledger, first_broker, [])
    await first.warm()

    async with _consuming(first, kafka_bootstrap, group) as consumer:
        offset = await _send(command_producer, env)
        await _eventually(lambda: first_ledger.attempts > 0)  # held
        # Longer than an auto-commit interval: what was handed out is not what is decided.
        await _stays(lambda: _committed_before(consumer, offset), AUTO_COMMIT_INTERVAL_S + 1)
    assert first_broker.placed == []

    second_broker, emitted = _Broker(), []
    second = in_process_intake(LedgerStore(ledger_pool), second_broker, emitted)
    await second.warm()
    async with _consuming(second, kafka_bootstrap, group, rejoin=True):
        await _eventually(lambda: second_broker.placed)

    assert second_broker.placed == [cid]
    assert [(d, r) for d, r, _ in await _entries(ledger_pool, cid)] == [("accepted", None)]


async def _committed_before(consumer: AIOKafkaConsumer, offset: int) -> bool:
    return await _committed(consumer) <= offset


async def _committed_past(consumer: AIOKafkaConsumer, offset: int) -> bool:
    return await _committed(consumer) > offset


async def _eventually(predicate: Callable[[], Any]) -> Any:
    return await eventually(predicate, timeout=15.0)


async def _eventually_entries(
    pool: asyncpg.Pool, command_id: str
) -> list[tuple[str, str | None, dict[str, Any]]]:
    async def entries() -> list[tuple[str, str | None, dict[str, Any]]]:
        return await _entries(pool, command_id)

    result: list[tuple[str, str | None, dict[str, Any]]] = await _eventually(entries)
    return result


async def test_a_record_whose_failure_cannot_even_be_recorded_is_held_not_decided(
    agent: Agent, ledger_pool: asyncpg.Pool, risk_profiles: None
) -> None:
    """The ledger refuses the entry, the refusal and the ops event alike: the record is held
    and tried again, as through an outage, rather than passed with nothing in the ledger."""
    ledger, broker = _LedgerRefusing(ledger_pool), _Broker()
    intake = in_process_intake(ledger, broker, [])
    await intake.warm()
    env = agent.sign(enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=5))
    cid = env.command.command_id
    record = dataclasses.make_dataclass("Record", ["value", "timestamp"])(env.to_wire(), None)
    hold = IntakeHold()

    deciding = asyncio.create_task(decide(intake, record, "agent.commands[0]@1", hold))
    try:
        await _eventually(lambda: deciding.done() or ledger.ops_attempts >= 2)
        assert not deciding.done(), "decided with nothing in the ledger"
        assert hold.as_dict() is not None and hold.attempts >= 2
        ledger.refusing = False
        await asyncio.wait_for(deciding, 15)
    finally:
        deciding.cancel()

    assert [(d, r) for d, r, _ in await _entries(ledger_pool, cid)] == [("accepted", None)]
    assert broker.placed == [cid]
