"""The hot path's command consumer (every partition assigned by itself, offsets kept under its
group id) across a restart of a broker that keeps its log in memory (one of the test's own):
it reads the new log from its first record, on whatever partitions the topic came back with,
however far it had read the old one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiokafka import AIOKafkaProducer

from bus.kafka import ensure_topics, start_producer
from bus.topics import AGENT_COMMANDS
from config.settings import FloorSettings
from floor.supervisor import Supervisor
from hotpath.command_loop import command_consumer
from tests.fixtures.kafka import PrivateKafka, private_kafka
from tests.helpers import eventually

OLD = 30
"""Records read of the old log."""
KEY = b"DU1/AAPL"


@pytest.fixture
async def kafka(supervisor: Supervisor, floor_settings: FloorSettings) -> AsyncIterator[PrivateKafka]:
    async with private_kafka(supervisor, floor_settings) as broker:
        yield broker


async def test_the_command_consumer_reads_a_restarted_brokers_new_log_on_every_partition(
    kafka: PrivateKafka,
) -> None:
    async def refill(producer: AIOKafkaProducer) -> list[bytes]:
        # The topic comes back as the first client asks for it (Tansu's default: 4
        # partitions), and records land on every one of them.
        new = [f"new-{i}".encode() for i in range(12)]
        for i, value in enumerate(new):
            key = f"DU{i}/S{i}".encode()
            await eventually(lambda v=value, k=key: _sent(producer, v, k), timeout=20.0)
        return new

    await _across_a_restart(kafka, refill)


async def test_the_command_consumer_reads_a_new_log_that_outgrew_its_position_from_its_beginning(
    kafka: PrivateKafka,
) -> None:
    async def refill(producer: AIOKafkaProducer) -> list[bytes]:
        # Made again as the floor makes it (one partition), and refilled at once past where
        # the consumer had read the old log: its position is no longer past the end.
        await ensure_topics(kafka.bootstrap, (AGENT_COMMANDS,))
        new = [f"new-{i}".encode() for i in range(OLD * 2)]
        await eventually(lambda: _sent(producer, new[0], KEY), timeout=20.0)
        for value in new[1:]:
            await producer.send_and_wait(AGENT_COMMANDS, value, key=KEY)
        return new

    await _across_a_restart(kafka, refill)


async def _across_a_restart(
    kafka: PrivateKafka, refill: Callable[[AIOKafkaProducer], Awaitable[list[bytes]]]
) -> None:
    producer = await start_producer(kafka.bootstrap, "test-assigned-restart")
    reader = command_consumer(kafka.bootstrap, f"g-{uuid.uuid4().hex[:8]}", 5)
    await reader.start()
    seen: list[bytes] = []

    async def read() -> None:
        async for record in reader:  # as the hot path reads its commands
            seen.append(record.value)

    reading = asyncio.create_task(read())
    try:
        for i in range(OLD):
            await producer.send_and_wait(AGENT_COMMANDS, f"old-{i}".encode(), key=KEY)
        await eventually(lambda: len(seen) == OLD, timeout=15.0)
        await reader.commit()

        await kafka.restart()  # started again empty
        new = await refill(producer)
        await eventually(lambda: set(new) <= set(seen), timeout=30.0, interval=0.1)
    finally:
        reading.cancel()
        await reader.stop()
        await producer.stop()


async def _sent(producer: AIOKafkaProducer, value: bytes, key: bytes) -> bool:
    try:
        await asyncio.wait_for(producer.send_and_wait(AGENT_COMMANDS, value, key=key), 5.0)
    except Exception:
        return False
    return True
