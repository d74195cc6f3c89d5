"""The reconciliation activity against the real paper gateway, Postgres ledger and Kafka: a fill
the ledger missed is recorded once, an order the broker never had is marked, and a second run
finds nothing left to do."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from temporalio.testing import ActivityEnvironment

from activities.broker_session import UNKNOWN_AT_BROKER, BrokerSessionActivities, ReconcileRequest
from brokers.base import BrokerEvent, BrokerOrder, Executed, OrderType, Side
from brokers.ibkr import IbkrBroker, IbkrConfig
from bus.kafka import start_producer
from bus.topics import ORDERS_EVENTS
from ledger.order_events import order_history, order_state, record_order_event
from tests.fixtures.hotpath import read_until
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from trading.order_events import EventKind, OrderEvent, decode

ACCOUNT = "DU1234567"


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = await start_producer(kafka_bootstrap, "reconcile-test")
    yield p
    await p.stop()


async def _broker(paper: PaperStack, client_id: int) -> IbkrBroker:
    broker = IbkrBroker(IbkrConfig(host=paper.host, port=paper.gateway_port, client_id=client_id))
    await broker.connect()
    return broker


def _submitted(cid: str, qty: int, ts: datetime) -> OrderEvent:
    return OrderEvent(
        event_id=f"{cid}-submitted",
        command_id=cid,
        parent_id=None,
        kind=EventKind.SUBMITTED,
        account=ACCOUNT,
        symbol="AAPL",
        agent_id="alpha",
        side="BUY",
        quantity=qty,
        filled_qty=0,
        avg_fill_price=None,
        last_fill=None,
        reason=None,
        ts=ts,
        tif="DAY",
    )


async def test_missed_fill_is_recorded_once_and_a_lost_order_is_marked(
    paper: PaperStack, ledger_pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    filled_cid, lost_cid = f"rec-{uuid.uuid4().hex[:10]}", f"rec-{uuid.uuid4().hex[:10]}"
    executions: list[Executed] = []

    def on_event(event: BrokerEvent) -> None:
        if isinstance(event, Executed) and event.order_ref == filled_cid:
            executions.append(event)

    trader = await _broker(paper, random.randint(100, 400))
    reconciler = await _broker(paper, 0)  # the master client sees every client's executions
    try:
        trader.set_event_handler(on_event)
        trader.place(BrokerOrder(filled_cid, ACCOUNT, "AAPL", Side.BUY, 7, OrderType.MKT))
        await eventually(lambda: sum(e.quantity for e in executions) == 7, timeout=20)
        # The ledger heard of both orders' submission and of no fill: the fill happened while
        # the floor could not hear, and the second order never reached the broker at all.
        long_ago = datetime.now(UTC) - timedelta(minutes=1)
        for cid in (filled_cid, lost_cid):
            await record_order_event(ledger_pool, _submitted(cid, 7, long_ago))

        activities = BrokerSessionActivities(reconciler, ledger_pool, producer)
        env = ActivityEnvironment()
        report = await env.run(activities.reconcile_account, ReconcileRequest(ACCOUNT, epoch=1, since=since))

        exec_ids = sorted(e.exec_id for e in executions)
        assert sorted(report.missed_fills) == exec_ids
        assert lost_cid in report.unknown_at_broker and filled_cid not in report.unknown_at_broker
        state = await order_state(ledger_pool, filled_cid)
        assert state is not None and state.kind is EventKind.FILLED and state.filled_qty == 7
        lost = await order_state(ledger_pool, lost_cid)
        assert lost is not None and lost.kind is EventKind.CANCELLED and lost.reason == UNKNOWN_AT_BROKER
        published = await read_until(
            kafka_bootstrap, ORDERS_EVENTS, lambda v: f"reconcile-{lost_cid}".encode() in v
        )
        ours = [decode(v) for v in published if filled_cid.encode() in v or lost_cid.encode() in v]
        assert {e.last_fill.exec_id for e in ours if e.last_fill} == set(exec_ids)

        again = await env.run(activities.reconcile_account, ReconcileRequest(ACCOUNT, epoch=2, since=since))
        assert not set(again.missed_fills) & set(exec_ids)
        assert lost_cid not in again.unknown_at_broker
        rows = [e for e in await order_history(ledger_pool, filled_cid) if e.last_fill is not None]
        assert sorted(e.last_fill.exec_id for e in rows if e.last_fill) == exec_ids
        assert report.last_exec_time is not None and report.last_exec_time >= since
    finally:
        await asyncio.gather(trader.close(), reconciler.close())
