"""Broker events through a ledger or Kafka outage: nothing dropped, nothing doubled, in order.

The hot path's broker-event handling (:class:`hotpath.broker_events.BrokerEvents`) over the real
ledger (Postgres) and Kafka (Tansu), with the state-row write or the Kafka delivery made to fail
the way they fail when the connection goes (before the commit, or after it without an answer).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from brokers.base import (
    BrokerOrderStatus,
    Executed,
    OrderAccepted,
    SessionChange,
    SessionChanged,
    SessionRole,
)
from bus.kafka import ensure_topics, start_producer
from bus.signed_records import SigningProducer
from bus.topics import BROKER_SESSIONS, ORDERS_EVENTS
from hotpath.account import AccountBook
from hotpath.broker_events import BrokerEvents
from hotpath.floor_orders import FloorOrder
from hotpath.ledger_store import LedgerStore
from hotpath.retries import Backoff
from observability.telemetry import setup
from tests.factories import enter_command
from tests.fixtures.hotpath import RecordWriters
from tests.helpers import eventually
from trading.commands import Side
from trading.order_events import EventKind, OrderEvent, OrderEventError, decode

ACCOUNT = "DU-OUTAGE"
FAST = Backoff(first_s=0.01, max_s=0.05, timeout_s=2.0, report_every_s=60.0)


@pytest.fixture
async def producer(kafka_bootstrap: str, record_writers: RecordWriters) -> AsyncIterator[SigningProducer]:
    """Signs as the hot path does (``floor-hotpath``)."""
    p = await start_producer(kafka_bootstrap, "events-outage-test")
    yield SigningProducer(p, record_writers.hotpath)
    await p.stop()


class _FlakyRows(LedgerStore):
    """The first writes of a fill's state row fail as a lost connection does: before the
    commit, or after it (the row is in, but the caller never heard)."""

    def __init__(self, pool: asyncpg.Pool, failures: list[str]) -> None:
        super().__init__(pool)
        self._failures = list(failures)
        self.attempts = 0

    async def record_order_event(self, event: OrderEvent) -> None:
        self.attempts += 1
        if self._failures and event.last_fill is not None:
            when = self._failures.pop(0)
            if when == "after_commit":
                await super().record_order_event(event)
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        await super().record_order_event(event)


class _FlakyKafka:
    """A real producer whose first ``failures`` deliveries fail as a broker that went away does."""

    def __init__(self, inner: SigningProducer, failures: int) -> None:
        self._inner = inner
        self._failures = failures
        self.failed = 0

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        if self._failures > 0:
            self._failures -= 1
            failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            failed.set_exception(KafkaConnectionError("connection to the broker lost"))
            self.failed += 1
            return failed
        return await self._inner.send(topic, value, key=key, headers=headers)

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        if self._failures > 0:
            self._failures -= 1
            self.failed += 1
            raise KafkaConnectionError("connection to the broker lost")
        return await self._inner.send_and_wait(topic, value, key=key)


class _Tail:
    """``topic`` from its end as it is now: what the test's own records add."""

    def __init__(self, bootstrap: str, topic: str = ORDERS_EVENTS) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._topic = topic

    async def start(self) -> None:
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self._topic) or {0}
        self._consumer.assign([TopicPartition(self._topic, p) for p in partitions])
        await self._consumer.seek_to_end()

    async def raw_with(self, marker: str, timeout: float = 15.0) -> bytes:  # noqa: ASYNC109
        """The first record that holds ``marker`` (fails if none comes within ``timeout``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if record.value is not None and marker.encode() in record.value:
                        return record.value
        raise AssertionError(f"no record holding {marker!r} on {self._topic} within {timeout} s")

    async def records_of(self, command_id: str, count: int, timeout: float = 15.0) -> list[OrderEvent]:  # noqa: ASYNC109
        """The first ``count`` records of ``command_id`` (fails if fewer come within ``timeout``)."""
        seen: list[OrderEvent] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(seen) < count and loop.time() < deadline:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if record.value is None or command_id.encode() not in record.value:
                        continue
                    try:
                        seen.append(decode(record.value))
                    except OrderEventError:
                        continue
        assert len(seen) >= count, f"{len(seen)} of {count} records of {command_id} on {ORDERS_EVENTS}"
        return seen

    async def stop(self) -> None:
        await self._consumer.stop()


@pytest.fixture
async def tail(kafka_bootstrap: str) -> AsyncIterator[_Tail]:
    t = _Tail(kafka_bootstrap)
    await t.start()
    yield t
    await t.stop()


@pytest.fixture
async def sessions_tail(kafka_bootstrap: str) -> AsyncIterator[_Tail]:
    await ensure_topics(kafka_bootstrap, (BROKER_SESSIONS,))
    t = _Tail(kafka_bootstrap, BROKER_SESSIONS)
    await t.start()
    yield t
    await t.stop()


def _order(quantity: int = 100) -> FloorOrder:
    command = enter_command("alpha", account=ACCOUNT, quantity=quantity)
    return FloorOrder.from_command(command, quantity)


def _accepted(ref: str) -> OrderAccepted:
    return OrderAccepted(
        order_ref=ref, status=BrokerOrderStatus.SUBMITTED, client_id=1, order_id=7, perm_id=9,
        time=datetime.now(UTC),
    )  # fmt: skip


def _executed(ref: str, exec_id: str, qty: int, cum: int) -> Executed:
    price = Decimal("189.50")
    return Executed(
        order_ref=ref, exec_id=exec_id, account=ACCOUNT, symbol="AAPL", side=Side.BUY, quantity=qty,
        price=price, cum_quantity=cum, avg_price=price, time=datetime.now(UTC), perm_id=9, order_id=7,
        client_id=1,
    )  # fmt: skip


async def _ops_kinds(pool: asyncpg.Pool, command_id: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT kind FROM ops_events WHERE detail->>'command_id' = $1 ORDER BY id", command_id
    )
    return [r["kind"] for r in rows]


async def _told(pool: asyncpg.Pool, command_id: str, area: str) -> bool:
    """Ops heard of the outage (``<area>.retrying``) and of its end (``<area>.recovered``)."""
    kinds = await _ops_kinds(pool, command_id)
    return f"{area}.retrying" in kinds and f"{area}.recovered" in kinds


async def _running(events: BrokerEvents) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(events.run())


async def test_a_fill_met_by_a_failing_ledger_write_lands_once_in_order_and_on_kafka(
    ledger_pool: asyncpg.Pool, producer: SigningProducer, tail: _Tail
) -> None:
    order = _order()
    cid = order.command_id
    ledger = _FlakyRows(ledger_pool, ["before_commit", "after_commit", "before_commit"])
    events = BrokerEvents(
        {cid: order}, AccountBook(), ledger, producer, setup("events-outage").metrics, write_backoff=FAST
    )
    task = await _running(events)
    try:
        events.emit(order.event(EventKind.ACCEPTED))
        events.on_event(_accepted(cid))
        events.on_event(_executed(cid, f"{cid}.x1", 40, 40))
        events.on_event(_executed(cid, f"{cid}.x1", 40, 40))  # the broker reports it again
        events.on_event(_executed(cid, f"{cid}.x2", 60, 100))
        await asyncio.wait_for(events.drained(), 20)
    finally:
        task.cancel()

    assert ledger.attempts >= 4 + 3  # every failure was tried again
    rows = await ledger_pool.fetch(
        "SELECT kind, exec_id FROM order_events WHERE command_id = $1 ORDER BY id", cid
    )
    assert [(r["kind"], r["exec_id"]) for r in rows] == [
        ("accepted", None),
        ("submitted", None),
        ("partially_filled", f"{cid}.x1"),
        ("filled", f"{cid}.x2"),
    ]
    published = await tail.records_of(cid, 4)
    assert [e.kind for e in published] == [
        EventKind.ACCEPTED,
        EventKind.SUBMITTED,
        EventKind.PARTIALLY_FILLED,
        EventKind.FILLED,
    ]
    await eventually(lambda: _told(ledger_pool, cid, "order_events.write"), timeout=5)


async def test_a_record_kafka_fails_to_acknowledge_is_sent_again_and_delivered_in_order(
    ledger_pool: asyncpg.Pool, producer: SigningProducer, tail: _Tail
) -> None:
    order = _order()
    cid = order.command_id
    events = BrokerEvents(
        {cid: order},
        AccountBook(),
        LedgerStore(ledger_pool),
        _FlakyKafka(producer, failures=2),
        setup("events-outage").metrics,
    )
    task = await _running(events)
    try:
        events.emit(order.event(EventKind.ACCEPTED))
        events.on_event(_accepted(cid))
        await asyncio.wait_for(events.drained(), 20)
    finally:
        task.cancel()

    published = await tail.records_of(cid, 2)
    assert [e.kind for e in published[:2]] == [EventKind.ACCEPTED, EventKind.SUBMITTED]
    assert events.publisher.delivered == 2
    await eventually(lambda: _told(ledger_pool, cid, "order_events.publish"), timeout=5)


async def test_a_session_change_kafka_fails_to_acknowledge_is_sent_again(
    ledger_pool: asyncpg.Pool, producer: SigningProducer, sessions_tail: _Tail
) -> None:
    flaky = _FlakyKafka(producer, failures=2)
    events = BrokerEvents(
        {}, AccountBook(), LedgerStore(ledger_pool), flaky, setup("events-outage").metrics, accounts=[ACCOUNT]
    )
    cause = f"socket closed {uuid.uuid4().hex}"
    events.on_event(
        SessionChanged(
            change=SessionChange.DISCONNECTED, gateway="127.0.0.1:1", role=SessionRole.PRIMARY, cause=cause,
            epoch=3, time=datetime.now(UTC),
        )
    )  # fmt: skip

    published = json.loads(await sessions_tail.raw_with(cause))
    assert (published["change"], published["account"], flaky.failed) == ("disconnected", ACCOUNT, 2)


class _RefusingRows(LedgerStore):
    """The state row of the fill ``exec_id`` is refused outright, every time, as a violated
    constraint is."""

    def __init__(self, pool: asyncpg.Pool, exec_id: str) -> None:
        super().__init__(pool)
        self._exec_id = exec_id
        self.refused = 0

    async def record_order_event(self, event: OrderEvent) -> None:
        if event.last_fill is not None and event.last_fill.exec_id == self._exec_id:
            self.refused += 1
            raise asyncpg.CheckViolationError('new row for relation "order_events" violates check constraint')
        await super().record_order_event(event)


async def test_a_row_the_ledger_refuses_is_told_to_ops_and_the_rows_behind_it_still_land(
    ledger_pool: asyncpg.Pool, producer: SigningProducer, tail: _Tail
) -> None:
    order = _order()
    cid = order.command_id
    ledger = _RefusingRows(ledger_pool, f"{cid}.x1")
    events = BrokerEvents(
        {cid: order}, AccountBook(), ledger, producer, setup("events-outage").metrics, write_backoff=FAST
    )
    task = await _running(events)
    try:
        events.emit(order.event(EventKind.ACCEPTED))
        events.on_event(_accepted(cid))
        events.on_event(_executed(cid, f"{cid}.x1", 40, 40))  # refused
        events.on_event(_executed(cid, f"{cid}.x2", 60, 100))
        await asyncio.wait_for(events.drained(), 10)
    finally:
        task.cancel()

    assert ledger.refused == 1  # not tried again
    rows = await ledger_pool.fetch(
        "SELECT kind, exec_id FROM order_events WHERE command_id = $1 ORDER BY id", cid
    )
    assert [(r["kind"], r["exec_id"]) for r in rows] == [
        ("accepted", None),
        ("submitted", None),
        ("filled", f"{cid}.x2"),
    ]
    published = await tail.records_of(cid, 3)
    assert [e.kind for e in published[:3]] == [EventKind.ACCEPTED, EventKind.SUBMITTED, EventKind.FILLED]

    async def told() -> Any:
        return await ledger_pool.fetchrow(
            "SELECT severity, detail FROM ops_events WHERE kind = 'order_events.write.failed'"
            " AND detail->>'command_id' = $1",
            cid,
        )

    row = await eventually(told, timeout=5)
    detail = json.loads(row["detail"])
    assert row["severity"] == "critical"
    assert detail["record"]["last_fill"]["exec_id"] == f"{cid}.x1"
    assert "CheckViolationError" in detail["error"]
