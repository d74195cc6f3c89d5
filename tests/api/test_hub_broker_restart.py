"""The API's hub across a restart of a broker that keeps its log in memory (a broker of the
test's own): it reads the new log from its beginning, so outcomes still arrive, and its order
streams, which may have lost records, end with ``resync.feed_interrupted``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from api.hub import Hub
from api.mailboxes import FEED_INTERRUPTED
from bus.kafka import ensure_topics, start_producer
from bus.topics import ORDERS_EVENTS, SECURITY_EVENTS
from config.settings import FloorSettings
from floor.supervisor import Supervisor
from ledger.access import LedgerAccess
from observability.security import SecurityLog
from tests.factories import order_event
from tests.fixtures.hotpath import RecordWriters
from tests.fixtures.kafka import PrivateKafka, private_kafka
from tests.helpers import eventually
from trading.order_events import EventKind, encode
from trading.record_signing import sign_record


@pytest.fixture
async def kafka(supervisor: Supervisor, floor_settings: FloorSettings) -> AsyncIterator[PrivateKafka]:
    async with private_kafka(supervisor, floor_settings) as broker:
        yield broker


@pytest.fixture
async def hub(kafka: PrivateKafka, postgres_url: str, record_writers: RecordWriters) -> AsyncIterator[Hub]:
    pool = await asyncpg.create_pool(kafka.settings.role_url("api"), min_size=1, max_size=2)
    hub = Hub(pool, SecurityLog(LedgerAccess(pool), None, SECURITY_EVENTS), kafka.settings)
    await hub.start()
    yield hub
    await hub.stop()
    await pool.close()


async def _accepted(producer: AIOKafkaProducer, writers: RecordWriters, command_id: str) -> None:
    """Publish the command's signed ``accepted`` record, sending again until the broker takes it
    (right after a restart the first sends may fail while the topic is made again)."""
    raw = sign_record(ORDERS_EVENTS, encode(order_event(command_id, 1, EventKind.ACCEPTED)), writers.hotpath)

    async def sent() -> bool:
        try:
            await asyncio.wait_for(producer.send_and_wait(ORDERS_EVENTS, raw, key=b"DU1/MSFT"), 5.0)
        except Exception:
            return False
        return True

    await eventually(sent, timeout=20.0, interval=0.2)


async def test_after_a_broker_restart_the_hub_reads_the_new_log_and_ends_the_order_streams(
    kafka: PrivateKafka, hub: Hub, record_writers: RecordWriters
) -> None:
    producer = await start_producer(kafka.bootstrap, "test-hub-restart")
    try:
        # The hub's position moves well past where the new log will start.
        for _ in range(20):
            before = f"cmd-{uuid.uuid4().hex[:8]}"
            outcome = hub.expect_outcome(before)
            await _accepted(producer, record_writers, before)
        await asyncio.wait_for(outcome, 10.0)
        stream = hub.subscribe_order_events(lambda event: True)

        await kafka.restart()
        # The topic back first (the floor's producers have it made again as they reconnect): a
        # record written before it exists may never be served, a Tansu fault no consumer can
        # mend (the door's outbox covers commands).
        await ensure_topics(kafka.bootstrap, (ORDERS_EVENTS,))
        after = f"cmd-{uuid.uuid4().hex[:8]}"
        outcome = hub.expect_outcome(after)
        await _accepted(producer, record_writers, after)

        event = await asyncio.wait_for(outcome, 15.0)
        assert event.command_id == after
        assert stream.ended_by == FEED_INTERRUPTED
    finally:
        await producer.stop()
