"""A command the bus did not take is not published, and its retry is not a replay."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiokafka.errors import KafkaConnectionError
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from api.door import Door, Published, Rejected
from bus.kafka import start_producer
from bus.topics import AGENT_COMMANDS, SECURITY_EVENTS
from ledger.access import LedgerAccess
from observability.security import SecurityLog
from observability.telemetry import counter_value, setup
from tests.factories import Agent, enter_command


class FlakyBus:
    """The real producer, failing its first send the way aiokafka does when the broker is gone."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self.failures_left = 1

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        if self.failures_left:
            self.failures_left -= 1
            raise KafkaConnectionError("broker unreachable")
        return await self._producer.send_and_wait(topic, value, key=key)


async def test_a_command_the_bus_refused_can_be_sent_again(
    ledger_pool: asyncpg.Pool, kafka_bootstrap: str, agent: Agent
) -> None:
    producer = await start_producer(kafka_bootstrap, "test-door")
    telemetry = setup("api-test")
    try:
        ledger = LedgerAccess(ledger_pool)
        security = SecurityLog(ledger, producer, SECURITY_EVENTS)
        door = Door(ledger, ledger, FlakyBus(producer), security, AGENT_COMMANDS, metrics=telemetry.metrics)
        body = agent.sign(enter_command(agent.agent_id)).to_wire()
        first = await door.submit(body, "127.0.0.1")
        assert isinstance(first, Rejected) and (first.status, first.error) == (503, "bus_unavailable")
        second = await door.submit(body, "127.0.0.1")
        assert isinstance(second, Published)
        third = await door.submit(body, "127.0.0.1")
        assert isinstance(third, Rejected) and (third.status, third.error) == (403, "sentry.replayed_nonce")
        reader = telemetry.reader
        assert isinstance(reader, InMemoryMetricReader)
        assert counter_value(reader, "floor.commands.received") == 3
        assert counter_value(reader, "floor.commands.refused", reason="bus_unavailable") == 1
        assert counter_value(reader, "floor.security.events", reason="sentry.replayed_nonce") == 1
    finally:
        telemetry.shutdown()
        await producer.stop()
