"""A hot path killed with ``kill -9`` and started again still reaches every order it placed
before: a signed cancel, a ``cancel_all`` and a breaker trip each take the order off the paper
venue, and the cancel is recorded (ledger state row and ``orders.events``)."""

from __future__ import annotations

import dataclasses
import os
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from brokers.ibkr import IbkrBroker, IbkrConfig
from config.ports import port_is_free
from config.settings import FloorSettings
from floor.supervisor import stop_process_group
from hotpath.broker_orders import broker_order
from ledger.append import Decision, append_command
from tests.factories import Agent, cancel_all_command, cancel_command
from tests.helpers import eventually
from tests.hotpath.conftest import HotPathProcess
from tests.hotpath.live_floor import LiveFloor
from tests.hotpath.test_circuit_breaker_flow import applied, rearm, send_breaker
from trading.commands import CommandKind, TimeInForce
from trading.order_events import EventKind


async def kill_and_restart(hotpath: HotPathProcess) -> None:
    """``kill -9`` the hot path's process group (no drain, no goodbye to the broker), then start
    it again as it was; returns once it consumes."""
    assert hotpath.supervisor is not None and hotpath.service is not None
    service = hotpath.service
    hotpath.supervisor.running.remove(service)
    os.killpg(service.pid, signal.SIGKILL)
    stop_process_group(service.pid)  # waits for the group to be gone (it already is)
    # Connections the killed process had accepted linger for a moment (closed by the kernel,
    # not by the process); its ports come free once they are gone.
    for address in service.spec.ports:
        await eventually(lambda a=address: _port_free(*a), timeout=30.0)
    hotpath.service = hotpath.supervisor.start(service.spec)


async def _port_free(host: str, port: int) -> bool:
    return port_is_free(host, port)


@pytest.fixture
async def venue(floor_settings: FloorSettings) -> AsyncIterator[IbkrBroker]:
    """A client of the paper gateway of its own, to read the venue's working orders (every
    client's) by orderRef."""
    broker = IbkrBroker(IbkrConfig.from_settings(floor_settings, client_id=90 + uuid.uuid4().int % 9))
    await broker.connect()
    yield broker
    await broker.close()


async def _working(venue: IbkrBroker, *command_ids: str) -> set[str]:
    """Which of ``command_ids`` the venue lists as working."""
    return {o.order_ref for o in await venue.open_orders()} & set(command_ids)


async def _working_are(venue: IbkrBroker, command_ids: tuple[str, ...], expected: set[str]) -> bool:
    return await _working(venue, *command_ids) == expected


async def test_a_signed_cancel_after_a_kill_9_restart_cancels_the_order_at_the_venue(
    live: LiveFloor, venue: IbkrBroker
) -> None:
    working = await live.resting_buy(2, Decimal("0.8"))
    cid = working.command.command_id
    await eventually(lambda: _working_are(venue, (cid,), {cid}), timeout=10.0)

    await kill_and_restart(live.hotpath)
    await live.submit(cancel_command(live.agent.agent_id, cid, account=live.account))

    cancelled = await live.event(cid, EventKind.CANCELLED)
    assert cancelled.filled_qty == 0
    await eventually(lambda: _working_are(venue, (cid,), set()), timeout=10.0)
    assert (await live.kinds(cid))[-1] == "cancelled"


async def test_cancel_all_after_a_kill_9_restart_cancels_the_accounts_orders_at_the_venue(
    live: LiveFloor, venue: IbkrBroker
) -> None:
    first = await live.resting_buy(1, Decimal("0.8"))
    second = await live.resting_buy(1, Decimal("0.79"))
    ids = (first.command.command_id, second.command.command_id)
    await eventually(lambda: _working_are(venue, ids, set(ids)), timeout=10.0)

    await kill_and_restart(live.hotpath)
    await live.submit(cancel_all_command(live.agent.agent_id, account=live.account))

    for cid in ids:
        await live.event(cid, EventKind.CANCELLED)
        assert (await live.kinds(cid))[-1] == "cancelled"
    await eventually(lambda: _working_are(venue, ids, set()), timeout=10.0)


async def test_a_breaker_trip_after_a_kill_9_restart_cancels_and_records_the_orders_placed_before(
    live: LiveFloor, operator: Agent, venue: IbkrBroker
) -> None:
    working = await live.resting_buy(2, Decimal("0.8"))
    cid = working.command.command_id
    await eventually(lambda: _working_are(venue, (cid,), {cid}), timeout=10.0)

    await kill_and_restart(live.hotpath)
    try:
        trip = await send_breaker(live.producer, operator, CommandKind.BREAKER_TRIP)
        await eventually(lambda: applied(live.hotpath, trip.command.command_id), timeout=20.0)
        await live.event(cid, EventKind.CANCELLED)
        assert (await live.kinds(cid))[-1] == "cancelled"
        await eventually(lambda: _working_are(venue, (cid,), set()), timeout=10.0)
    finally:
        await rearm(live.hotpath, live.producer, operator)


async def test_an_order_working_at_the_broker_that_the_floors_records_lost_is_adopted_and_cancelled(
    live: LiveFloor, venue: IbkrBroker
) -> None:
    """Placed by the hot path's broker client, its ledger entry older than the resend horizon,
    its state rows never written: only the broker's open orders (by orderRef) bring it back."""
    resting = await live.below_bid(Decimal("0.8"))
    issued = datetime.now(UTC) - timedelta(days=2)
    command = dataclasses.replace(
        live.enter(limit=resting, stop=resting - 5, quantity=1, issued_at=issued.replace(microsecond=0)),
        tif=TimeInForce.GTC,
    )
    cid = command.command_id

    async def placed_then_lost() -> None:
        await append_command(
            live.pool, live.agent.sign(command), decision=Decision.ACCEPTED, detail={"quantity": 1}
        )
        floor_client = IbkrBroker(IbkrConfig.from_settings(live.hotpath.settings))
        await floor_client.connect()
        try:
            assert floor_client.place(broker_order(command, 1, None)).sent
            await eventually(lambda: _working_are(venue, (cid,), {cid}), timeout=10.0)
        finally:
            await floor_client.close()

    await live.hotpath.restart(while_down=placed_then_lost)
    await live.submit(cancel_command(live.agent.agent_id, cid, account=live.account))

    await live.event(cid, EventKind.CANCELLED)
    await eventually(lambda: _working_are(venue, (cid,), set()), timeout=10.0)
    assert await live.kinds(cid) == ["submitted", "cancelled"]
