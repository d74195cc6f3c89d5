"""A hot path killed with ``kill -9`` and started again still reaches every order it placed
before: a signed cancel, a ``cancel_all`` and a breaker trip each take the order off the paper
venue, and the cancel is recorded (ledger state row and ``orders.events``); so does an order
the broker works whose state rows were never written.

One kill and restart serves the module: its orders are placed before, each test acts on its
own (the cancel on an AAPL order, the ``cancel_all`` on MSFT only), the breaker's trip last."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from brokers.ibkr import IbkrBroker
from hotpath.broker_orders import broker_order
from ledger.append import Decision, append_command
from tests.factories import Agent, cancel_all_command, cancel_command
from tests.fixtures.hotpath import fresh_agent
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import (
    VENUE_ACCOUNT,
    HotPathProcess,
    the_dead_hotpaths_client,
    working_are,
    working_at_venue,
)
from tests.hotpath.live_floor import LiveFloor
from tests.hotpath.test_circuit_breaker_flow import applied, rearm, send_breaker
from trading.commands import CommandKind, TimeInForce
from trading.order_events import EventKind


@dataclass(frozen=True)
class Before:
    """Orders working at the venue when the hot path was killed, and the floor around them."""

    live: LiveFloor
    cancelled: str
    """AAPL: a signed cancel takes it off."""
    msft: str
    """MSFT: a ``cancel_all`` of MSFT takes it off."""
    tripped: str
    """AAPL: the breaker's trip takes it off."""
    lost: str
    """Working at the venue under the floor's orderRef, ledgered two days ago (GTC), its state
    rows never written: only the broker's listing brings it back."""


@pytest.fixture(scope="module")
async def before(
    hotpath: HotPathProcess,
    paper: PaperStack,
    ledger_pool: asyncpg.Pool,
    command_producer: AIOKafkaProducer,
    kafka_bootstrap: str,
    venue: IbkrBroker,
) -> AsyncIterator[Before]:
    agent = await fresh_agent(ledger_pool)
    live = LiveFloor(hotpath, paper, agent, command_producer, kafka_bootstrap, ledger_pool, VENUE_ACCOUNT)
    cancelled = (await live.resting_buy(2, Decimal("0.8"))).command.command_id
    msft = (await live.resting_buy(1, Decimal("0.8"), symbol="MSFT")).command.command_id
    tripped = (await live.resting_buy(1, Decimal("0.79"))).command.command_id
    resting = await live.below_bid(Decimal("0.78"))
    issued = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    lost = dataclasses.replace(
        live.enter(limit=resting, stop=resting - 5, quantity=1, issued_at=issued), tif=TimeInForce.GTC
    )
    ids = (cancelled, msft, tripped, lost.command_id)
    await eventually(lambda: working_are(venue, ids[:3], set(ids[:3])), timeout=10.0)

    async def placed_then_lost() -> None:
        await append_command(
            ledger_pool, agent.sign(lost), decision=Decision.ACCEPTED, detail={"quantity": 1}
        )
        # Written by the hot path's broker client before it died; no state row ever written.
        floor_client = await the_dead_hotpaths_client(hotpath.settings)
        try:
            assert floor_client.place(broker_order(lost, 1, None)).sent
            await eventually(lambda: working_are(venue, ids, set(ids)), timeout=10.0)
        finally:
            await floor_client.close()

    await hotpath.restart(while_down=placed_then_lost, kill=True)
    yield Before(live, cancelled, msft, tripped, lost.command_id)


async def test_a_signed_cancel_after_a_kill_9_restart_cancels_the_order_at_the_venue(
    before: Before, venue: IbkrBroker
) -> None:
    live, cid = before.live, before.cancelled
    await live.submit(cancel_command(live.agent.agent_id, cid, account=live.account))

    cancelled = await live.event(cid, EventKind.CANCELLED)
    assert cancelled.filled_qty == 0
    await eventually(lambda: working_are(venue, (cid,), set()), timeout=10.0)
    assert (await live.kinds(cid))[-1] == "cancelled"


async def test_cancel_all_after_a_kill_9_restart_cancels_the_accounts_orders_at_the_venue(
    before: Before, venue: IbkrBroker
) -> None:
    live, cid = before.live, before.msft
    await live.submit(cancel_all_command(live.agent.agent_id, account=live.account, symbol="MSFT"))

    await live.event(cid, EventKind.CANCELLED)
    assert (await live.kinds(cid))[-1] == "cancelled"
    await eventually(lambda: working_are(venue, (cid,), set()), timeout=10.0)
    assert await working_at_venue(venue, before.tripped) == {before.tripped}  # AAPL: not the symbol named


async def test_an_order_working_at_the_broker_that_the_floors_records_lost_is_adopted_and_cancelled(
    before: Before, venue: IbkrBroker
) -> None:
    live, cid = before.live, before.lost
    await live.submit(cancel_command(live.agent.agent_id, cid, account=live.account))

    await live.event(cid, EventKind.CANCELLED)
    await eventually(lambda: working_are(venue, (cid,), set()), timeout=10.0)
    assert await live.kinds(cid) == ["submitted", "cancelled"]


async def test_a_breaker_trip_after_a_kill_9_restart_cancels_and_records_the_orders_placed_before(
    before: Before, operator: Agent, venue: IbkrBroker
) -> None:
    live, cid = before.live, before.tripped
    try:
        trip = await send_breaker(live.producer, operator, CommandKind.BREAKER_TRIP)
        await eventually(lambda: applied(live.hotpath, trip.command.command_id), timeout=20.0)
        await live.event(cid, EventKind.CANCELLED)
        assert (await live.kinds(cid))[-1] == "cancelled"
        await eventually(lambda: working_are(venue, (cid,), set()), timeout=10.0)
    finally:
        await rearm(live.hotpath, live.producer, operator)
