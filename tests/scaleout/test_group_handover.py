"""The group-mode command consumer across a rebalance, on a Kafka of the test's own: a member
joining takes half the partitions from one that is deciding a backlog, and every record is
decided once, by one of them; the one giving partitions up lets its record in flight finish
and commits what it decided before they go. (Tansu takes a late commit from a member of the
previous generation too, which a real Kafka refuses: there the commit before the hand-over is
what keeps the new owner from reading decided records again, which the ledger would refuse as
duplicate deliveries.)"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import pytest

from brokers.ibkr import IbkrBroker, IbkrConfig
from bus.command_topic import ensure_command_topic
from bus.kafka import start_producer
from bus.topics import AGENT_COMMANDS
from config.ports import free_port
from config.settings import FloorSettings
from floor.supervisor import Supervisor
from hotpath.account import AccountBook
from hotpath.decided_offsets import DecidedOffsets
from hotpath.group_handover import ACCOUNTS_RELEASED, ACCOUNTS_TAKEN, Handover, group_command_consumer
from tests.fixtures.kafka import PrivateKafka
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually

PARTITIONS = 4
RECORDS = 80
DECIDING_S = 0.02
_client_ids = itertools.count(3200)  # apart from every other suite's ids


@pytest.fixture
async def kafka(supervisor: Supervisor, floor_settings: FloorSettings) -> AsyncIterator[PrivateKafka]:
    own = floor_settings.model_copy(update={"kafka_port": free_port(), "kafka_bootstrap": None})
    broker = PrivateKafka(supervisor, own)
    broker.start()
    try:
        await eventually(lambda: _made(broker.bootstrap), timeout=20.0)
        yield broker
    finally:
        broker.stop()


async def _made(bootstrap: str) -> bool:
    try:
        return await ensure_command_topic(bootstrap, PARTITIONS) == PARTITIONS
    except Exception:
        return False


class Member:
    """A group member deciding records as the hot path does: each marked decided before the
    next is asked for; the hand-over's ops events kept."""

    def __init__(
        self, name: str, settings: FloorSettings, group_id: str, pool: asyncpg.Pool, broker: IbkrBroker
    ):
        self.name = name
        self.ops: list[tuple[str, dict[str, object]]] = []
        self.handover = Handover(
            pool, broker, AccountBook(), {}, lambda kind, _, d: self.ops.append((kind, dict(d)))
        )
        self.consumer = group_command_consumer(settings, group_id, self.handover)
        self.offsets = DecidedOffsets(self.consumer)
        self.handover.consumer, self.handover.offsets = self.consumer, self.offsets
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self, decided: list[tuple[str, bytes]]) -> None:
        await self.consumer.start()

        async def decide() -> None:
            async for record in self.consumer:
                # Deciding takes a while (a ledger commit's time, and more): a partition is
                # taken away with its record still being decided.
                await asyncio.sleep(DECIDING_S)
                decided.append((self.name, record.value))
                self.offsets.decided(record.topic, record.partition, record.offset)

        self.tasks = [asyncio.create_task(decide()), asyncio.create_task(self.offsets.run())]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.consumer.intake_stopped()
        with contextlib.suppress(Exception):
            await self.offsets.close()
        await self.consumer.stop()


async def test_a_member_joining_takes_partitions_with_no_record_decided_twice_or_lost(
    kafka: PrivateKafka, paper: PaperStack, ledger_pool: asyncpg.Pool, floor_settings: FloorSettings
) -> None:
    settings = kafka.settings.model_copy(update={"hotpath_group_session_ms": 3000})
    group_id = f"g-{uuid.uuid4().hex[:8]}"
    broker = IbkrBroker(IbkrConfig.from_settings(floor_settings, client_id=next(_client_ids)))
    await broker.connect()
    producer = await start_producer(kafka.bootstrap, "test-group-handover")
    decided: list[tuple[str, bytes]] = []
    first = Member("first", settings, group_id, ledger_pool, broker)
    second = Member("second", settings, group_id, ledger_pool, broker)
    sent = [f"record-{i}".encode() for i in range(RECORDS)]
    try:
        # Many accounts, so every partition has records waiting when the group moves them.
        for i, value in enumerate(sent):
            await producer.send_and_wait(AGENT_COMMANDS, value, key=f"DU{i % 16}".encode())
        await first.start(decided)
        await eventually(lambda: len(decided) >= 10, timeout=30.0)
        await second.start(decided)
        await eventually(lambda: first.handover.held and second.handover.held, timeout=30.0)
        await eventually(lambda: {v for _, v in decided} >= set(sent), timeout=30.0)
    finally:
        await second.stop()
        await first.stop()
        await producer.stop()
        await broker.close()
    counts = Counter(value for _, value in decided)
    assert [v for v, n in counts.items() if n > 1] == []
    assert set(counts) == set(sent)
    released = [d for kind, d in first.ops if kind == ACCOUNTS_RELEASED]
    assert released and released[0]["records_decided"] and released[0]["offsets_committed"], first.ops
    assert any(kind == ACCOUNTS_TAKEN for kind, _ in second.ops)
