"""A consumer group across a restart of a broker that keeps its log in memory (one of the
test's own): the member rejoins and reads the whole new log, however far it had read the old."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from bus.kafka import consumer, ensure_topics, start_producer
from bus.topics import AGENT_COMMANDS
from config.settings import FloorSettings
from floor.supervisor import Supervisor
from tests.fixtures.kafka import PrivateKafka, private_kafka
from tests.helpers import eventually


@pytest.fixture
async def kafka(supervisor: Supervisor, floor_settings: FloorSettings) -> AsyncIterator[PrivateKafka]:
    async with private_kafka(supervisor, floor_settings) as broker:
        yield broker


async def test_a_member_that_read_far_into_the_old_log_reads_the_new_log_from_its_first_record(
    kafka: PrivateKafka,
) -> None:
    producer = await start_producer(kafka.bootstrap, "test-group-restart")
    member = consumer(
        kafka.bootstrap, AGENT_COMMANDS, group_id=f"g-{uuid.uuid4().hex[:8]}", fetch_max_wait_ms=5
    )
    await member.start()
    seen: list[bytes] = []

    async def read() -> None:
        async for record in member:  # as the hot path reads its commands
            seen.append(record.value)

    reading = asyncio.create_task(read())
    try:
        for i in range(30):
            await producer.send_and_wait(AGENT_COMMANDS, f"old-{i}".encode(), key=b"DU1/AAPL")
        await eventually(lambda: len(seen) == 30, timeout=15.0)

        await kafka.restart()
        await ensure_topics(kafka.bootstrap, (AGENT_COMMANDS,))  # as the floor's producers have it made
        new = [f"new-{i}".encode() for i in range(10)]
        for value in new:
            await producer.send_and_wait(AGENT_COMMANDS, value, key=b"DU1/AAPL")

        # Fewer records than the member had read: an offset carried over would skip them all.
        await eventually(lambda: set(new) <= set(seen), timeout=30.0, interval=0.1)
    finally:
        reading.cancel()
        await member.stop()
        await producer.stop()
