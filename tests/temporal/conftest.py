"""Real Temporal dev server and real Kafka for the bridge and the worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from temporalio.client import Client

from bus.kafka import start_producer
from temporal.client import connect
from temporal.search_attributes import ensure_search_attributes


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
