"""Real Temporal dev server and real Kafka for the bridge and the worker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from bus.kafka import ensure_topics, start_producer
from bus.signed_records import SigningProducer
from bus.topics import SECURITY_EVENTS
from ledger.access import LedgerAccess
from ledger.append import Decision, append_command
from ledger.keys import get_key
from observability.security import SecurityLog
from temporal import session_records
from temporal.bridge import Bridge, bridge_consumer
from temporal.client import connect
from temporal.config import DATA_CONVERTER
from temporal.search_attributes import ensure_search_attributes
from tests.factories import Agent
from tests.fixtures.hotpath import RecordWriters, package_api_url, register
from trading.commands import Command, CommandKind, Edge, Side, TimeInForce, utc_now_ms


@pytest.fixture(scope="session")
async def temporal_client(temporal_address: str) -> Client:
    client = await connect(temporal_address)
    await ensure_search_attributes(client)
    return client


@pytest.fixture(scope="session")
async def events_producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = await start_producer(kafka_bootstrap, "bridge-test")
    yield producer
    await producer.stop()


@pytest.fixture(scope="session")
def records_producer(events_producer: AIOKafkaProducer, record_writers: RecordWriters) -> SigningProducer:
    """Produces records as the hot path does: signed with its floor-hotpath key."""
    return SigningProducer(events_producer, record_writers.hotpath)


@pytest.fixture
def bridge_security(ledger_pool: asyncpg.Pool, events_producer: AIOKafkaProducer) -> SecurityLog:
    """Where a bridge under test records the records it refuses: the real table and topic."""
    return SecurityLog(LedgerAccess(ledger_pool), events_producer, SECURITY_EVENTS)


async def start_at_the_end(consumer: AIOKafkaConsumer) -> None:
    """Start a test bridge's consumer past every record already on its topics.

    A new group would read the shared topics from the start: every order the suites before
    this one traded (thousands, once the hot path and API suites have run), each a workflow
    start the bridge makes before it reaches the test's own records, which then arrive a
    minute late. A test's bridge only needs the records its test produces after this returns.
    """
    await consumer.start()
    while not consumer.assignment():  # the group's first join; what this fetches predates the test
        await consumer.getmany(timeout_ms=50)
    await consumer.seek_to_end()


async def group_starts_at_the_end(bootstrap: str, group_id: str, *topics: str) -> None:
    """Commit ``group_id``'s offsets at the end of ``topics``, so a bridge process started with
    that new group skips the records earlier suites left there, as :func:`start_at_the_end`."""
    await ensure_topics(bootstrap, topics)
    seeker = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    await seeker.start()
    try:
        await seeker.topics()  # the partitions' metadata
        partitions = [TopicPartition(t, p) for t in topics for p in seeker.partitions_for_topic(t) or ()]
        seeker.assign(partitions)  # a commit outside the group's membership: no rebalance to wait for
        ends = await seeker.end_offsets(partitions)
        await seeker.commit({tp: offset for tp, offset in ends.items()})
    finally:
        await seeker.stop()


@dataclass
class RunningBridge:
    bridge: Bridge
    queue: str


@pytest.fixture
async def running(
    temporal_client: Client, kafka_bootstrap: str, ledger_pool: asyncpg.Pool, bridge_security: SecurityLog
) -> AsyncIterator[RunningBridge]:
    """A bridge of its own (consumer group, task queue) over both topics, as `floor up` runs it."""
    await ensure_topics(kafka_bootstrap, (session_records.SESSIONS_TOPIC,))
    queue = f"bridge-{uuid.uuid4().hex[:8]}"
    # With a window of a microsecond each security event is its own window, recorded in full, so a
    # test finds its records' events by their ids. (Summarising is tested on its own.)
    bridge = Bridge(
        temporal_client, ledger=ledger_pool, security=bridge_security, task_queue=queue, linger_seconds=1.0,
        flood_window=timedelta(microseconds=1),
    )  # fmt: skip
    consumer = bridge_consumer(kafka_bootstrap, group_id=f"bridge-test-{uuid.uuid4().hex[:8]}", sessions=True)
    await start_at_the_end(consumer)
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(consumer, stop))
    try:
        yield RunningBridge(bridge, queue)
    finally:
        stop.set()
        await task
        await consumer.stop()


async def ledgered_iceberg(
    pool: asyncpg.Pool, agent: Agent, *, account: str = "DU1", symbol: str = "SYM", **fields: Any
) -> Command:
    """An iceberg command by ``agent`` (registered here if it is not yet), in the ledger as
    accepted, as intake leaves a parent it approved."""
    if await get_key(pool, agent.key_id) is None:
        await register(pool, agent)
    values: dict[str, Any] = dict(
        kind=CommandKind.ICEBERG, command_id=f"ice-cmd-{uuid.uuid4().hex}", agent_id=agent.agent_id,
        account=account, nonce=uuid.uuid4().hex, issued_at=utc_now_ms(), symbol=symbol, side=Side.BUY,
        edge=Edge(Decimal("0.6"), Decimal("1.5"), Decimal("19")), tif=TimeInForce.DAY,
        quantity=300, display_size=100, limit_price=Decimal("20.05"),
    )  # fmt: skip
    values.update(fields)
    command = Command(**values)
    await append_command(
        pool, agent.sign(command), decision=Decision.ACCEPTED, detail={"quantity": command.quantity}
    )
    return command


async def workflow_exists(client: Client, workflow_id: str) -> bool:
    """Whether Temporal knows a workflow of this id (running or not)."""
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def current_details(handle: WorkflowHandle) -> str:
    """What the UI shows as the workflow's current details (the SDK's metadata query)."""
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


async def summaries(handle: WorkflowHandle, kind: EventType.ValueType) -> list[str]:
    """The user metadata summaries of the history's events of ``kind``."""
    convert = DATA_CONVERTER.payload_converter
    history = await handle.fetch_history()
    return [
        convert.from_payloads([e.user_metadata.summary], [str])[0]
        for e in history.events
        if e.event_type == kind and e.user_metadata.HasField("summary")
    ]


api_url = pytest.fixture(scope="package", name="api_url")(package_api_url)
"""The floor's API process for this package's tests (:func:`tests.fixtures.hotpath.package_api_url`)."""
