"""The door's outbox against a broker of the test's own that is killed and started again empty:
what the hot path had not decided is published again, what it had decided is not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from api.door import LEDGER_UNAVAILABLE, Door, Published, Rejected
from api.outbox import EXPIRED, REPUBLISHED, CommandOutbox
from bus.kafka import start_producer
from bus.topics import AGENT_COMMANDS, SECURITY_EVENTS
from config.settings import FloorSettings
from floor.supervisor import Supervisor
from ledger.access import LedgerAccess
from ledger.append import Decision, append_command, append_refusal
from observability.security import SecurityLog
from tests.api.test_hub import api_pool
from tests.factories import Agent, enter_command
from tests.fixtures.hotpath import command_id_of, read_until
from tests.fixtures.kafka import PrivateKafka, private_kafka
from tests.helpers import eventually

__all__ = ["api_pool"]  # the API's own role, as the hub's tests take it


@pytest.fixture
async def kafka(supervisor: Supervisor, floor_settings: FloorSettings) -> AsyncIterator[PrivateKafka]:
    async with private_kafka(supervisor, floor_settings) as broker:
        yield broker


@pytest.fixture
async def producer(kafka: PrivateKafka) -> AsyncIterator[AIOKafkaProducer]:
    p = await start_producer(kafka.bootstrap, "test-door-outbox")
    yield p
    await p.stop()


async def test_after_a_broker_restart_the_undecided_commands_are_published_again_and_the_decided_not(
    kafka: PrivateKafka,
    producer: AIOKafkaProducer,
    api_pool: asyncpg.Pool,
    ledger_pool: asyncpg.Pool,
    agent: Agent,
) -> None:
    ledger = LedgerAccess(api_pool)
    outbox = CommandOutbox(api_pool, producer, AGENT_COMMANDS, kafka.bootstrap, check_every_s=0.05)
    door = Door(
        ledger, ledger, producer, SecurityLog(ledger, None, SECURITY_EVENTS), AGENT_COMMANDS, outbox=outbox
    )
    decided, undecided, refused = (agent.sign(enter_command(agent.agent_id, quantity=q)) for q in (1, 2, 3))
    for env in (decided, undecided, refused):
        assert isinstance(await door.submit(env.to_wire(), "127.0.0.1"), Published)
    # As the hot path leaves them: one accepted, one refused by the sentry (unauthenticated).
    await append_command(ledger_pool, decided, decision=Decision.ACCEPTED, detail={"quantity": 1})
    await append_refusal(
        ledger_pool,
        payload=refused.canonical,
        signer=refused.signer,
        signature=refused.signature,
        reason="sentry.stale",
    )
    assert await outbox.check() == 0  # the broker has them all: nothing to do
    kept = await api_pool.fetch("SELECT command_id FROM command_outbox WHERE bootstrap = $1", kafka.bootstrap)
    assert [r["command_id"] for r in kept] == [undecided.command.command_id]

    await kafka.restart()
    try:
        assert await eventually(outbox.check, timeout=20.0) == 1
    finally:
        await outbox.close()

    wanted = undecided.command.command_id
    records = await read_until(kafka.bootstrap, AGENT_COMMANDS, lambda raw: command_id_of(raw) == wanted)
    assert [command_id_of(raw) for raw in records] == [wanted]  # the decided two are not sent again
    events = await ledger_pool.fetch(
        "SELECT detail FROM ops_events WHERE kind = $1 AND detail->'command_ids' ? $2", REPUBLISHED, wanted
    )
    assert len(events) == 1


async def test_without_a_restart_a_command_the_hot_path_has_not_read_yet_is_not_published_again(
    kafka: PrivateKafka, producer: AIOKafkaProducer, api_pool: asyncpg.Pool, agent: Agent
) -> None:
    """A hot path that is down (or slow) holds commands undecided: the broker still has them."""
    ledger = LedgerAccess(api_pool)
    outbox = CommandOutbox(api_pool, producer, AGENT_COMMANDS, kafka.bootstrap, check_every_s=0.05)
    door = Door(
        ledger, ledger, producer, SecurityLog(ledger, None, SECURITY_EVENTS), AGENT_COMMANDS, outbox=outbox
    )
    env = agent.sign(enter_command(agent.agent_id))
    assert isinstance(await door.submit(env.to_wire(), "127.0.0.1"), Published)
    try:
        await asyncio.sleep(0.1)  # kept for longer than a check: looked for in the broker
        for _ in range(3):
            assert await outbox.check() == 0
    finally:
        await outbox.close()


async def test_a_command_undecided_for_a_day_is_dropped_with_an_ops_event(
    kafka: PrivateKafka,
    producer: AIOKafkaProducer,
    api_pool: asyncpg.Pool,
    ledger_pool: asyncpg.Pool,
    agent: Agent,
) -> None:
    outbox = CommandOutbox(api_pool, producer, AGENT_COMMANDS, kafka.bootstrap)
    env = agent.sign(enter_command(agent.agent_id))
    await outbox.keep(env, b"DU100/AAPL")
    await outbox.published(env, 0, 0)
    await api_pool.execute(
        "UPDATE command_outbox SET published_at = now() - interval '25 hours' WHERE signature_hash = $1",
        env.signature_hash,
    )
    try:
        assert await outbox.check() == 0
    finally:
        await outbox.close()
    assert (
        await api_pool.fetchval(
            "SELECT count(*) FROM command_outbox WHERE signature_hash = $1", env.signature_hash
        )
        == 0
    )
    events = await ledger_pool.fetch(
        "SELECT severity FROM ops_events WHERE kind = $1 AND detail->'command_ids' ? $2",
        EXPIRED,
        env.command.command_id,
    )
    assert [e["severity"] for e in events] == ["warning"]


class _Killed(BaseException):
    """The door's process killed where it stands."""


class _DiesAtTheAck:
    """A real producer, in a door whose process is killed as the broker's ack comes in."""

    def __init__(self, inner: AIOKafkaProducer) -> None:
        self._inner = inner

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        await self._inner.send_and_wait(topic, value, key=key)
        raise _Killed


async def test_a_command_acknowledged_as_the_door_died_is_published_again_after_a_broker_restart(
    kafka: PrivateKafka, producer: AIOKafkaProducer, api_pool: asyncpg.Pool, agent: Agent
) -> None:
    ledger = LedgerAccess(api_pool)
    outbox = CommandOutbox(api_pool, producer, AGENT_COMMANDS, kafka.bootstrap, check_every_s=0.05)
    door = Door(
        ledger,
        ledger,
        _DiesAtTheAck(producer),
        SecurityLog(ledger, None, SECURITY_EVENTS),
        AGENT_COMMANDS,
        outbox=outbox,
    )
    env = agent.sign(enter_command(agent.agent_id))
    wanted = env.command.command_id
    with pytest.raises(_Killed):
        await door.submit(env.to_wire(), "127.0.0.1")
    try:
        await asyncio.sleep(0.1)  # kept for longer than a check: looked for in the broker
        assert await outbox.check() == 0  # the broker has it: nothing to do
        await kafka.restart()
        assert await eventually(outbox.check, timeout=20.0) == 1
    finally:
        await outbox.close()
    records = await read_until(kafka.bootstrap, AGENT_COMMANDS, lambda raw: command_id_of(raw) == wanted)
    assert [command_id_of(raw) for raw in records] == [wanted]


class _RefusingOutbox(CommandOutbox):
    """An outbox whose insert the database refuses."""

    async def keep(self, *args: Any) -> None:
        raise asyncpg.InsufficientPrivilegeError("permission denied for table command_outbox")


class _Counting:
    def __init__(self, inner: AIOKafkaProducer) -> None:
        self._inner = inner
        self.sent = 0

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        self.sent += 1
        return await self._inner.send_and_wait(topic, value, key=key)


async def test_a_command_the_outbox_cannot_keep_is_not_published_and_the_client_told_to_send_it_again(
    kafka: PrivateKafka, producer: AIOKafkaProducer, api_pool: asyncpg.Pool, agent: Agent
) -> None:
    ledger = LedgerAccess(api_pool)
    publisher = _Counting(producer)
    security = SecurityLog(ledger, None, SECURITY_EVENTS)
    refusing = _RefusingOutbox(api_pool, producer, AGENT_COMMANDS, kafka.bootstrap)
    env = agent.sign(enter_command(agent.agent_id))
    try:
        answer = await Door(ledger, ledger, publisher, security, AGENT_COMMANDS, outbox=refusing).submit(
            env.to_wire(), "127.0.0.1"
        )
    finally:
        await refusing.close()
    assert isinstance(answer, Rejected)
    assert (answer.status, answer.error, publisher.sent) == (503, LEDGER_UNAVAILABLE, 0)
    assert "send the command again" in answer.detail

    # Sent again once the outbox takes it: published, not refused as a replay.
    outbox = CommandOutbox(api_pool, producer, AGENT_COMMANDS, kafka.bootstrap)
    try:
        answer = await Door(ledger, ledger, publisher, security, AGENT_COMMANDS, outbox=outbox).submit(
            env.to_wire(), "127.0.0.1"
        )
    finally:
        await outbox.close()
    assert isinstance(answer, Published) and publisher.sent == 1
    row = await api_pool.fetchrow(
        "SELECT kafka_partition, kafka_offset FROM command_outbox WHERE signature_hash = $1",
        env.signature_hash,
    )
    assert (row["kafka_partition"], row["kafka_offset"]) == (answer.partition, answer.offset)
