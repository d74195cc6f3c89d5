"""A hot path killed with ``kill -9`` and started again still reaches every order it placed
before: a signed cancel, a ``cancel_all`` and a breaker trip each take the order off the paper
venue, and the cancel is recorded (ledger state row and ``orders.events``)."""

from __future__ import annotations

import os
import signal
from decimal import Decimal

from config.ports import port_is_free
from floor.supervisor import stop_process_group
from tests.factories import Agent, cancel_all_command, cancel_command
from tests.helpers import eventually
from tests.hotpath.conftest import HotPathProcess
from tests.hotpath.live_floor import LiveFloor
from tests.hotpath.test_circuit_breaker_flow import applied, rearm, send_breaker
from trading.commands import CommandKind
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


async def _open_orders_are(live: LiveFloor, expected: int) -> bool:
    return await live.open_orders() == expected


async def test_a_signed_cancel_after_a_kill_9_restart_cancels_the_order_at_the_venue(live: LiveFloor) -> None:
    before = await live.open_orders()
    working = await live.resting_buy(2, Decimal("0.8"))
    cid = working.command.command_id
    await eventually(lambda: _open_orders_are(live, before + 1), timeout=10.0)

    await kill_and_restart(live.hotpath)
    await live.submit(cancel_command(live.agent.agent_id, cid, account=live.account))

    cancelled = await live.event(cid, EventKind.CANCELLED)
    assert cancelled.filled_qty == 0
    await eventually(lambda: _open_orders_are(live, before), timeout=10.0)
    assert (await live.kinds(cid))[-1] == "cancelled"


async def test_cancel_all_after_a_kill_9_restart_cancels_the_accounts_orders_at_the_venue(
    live: LiveFloor,
) -> None:
    before = await live.open_orders()
    first = await live.resting_buy(1, Decimal("0.8"))
    second = await live.resting_buy(1, Decimal("0.79"))
    await eventually(lambda: _open_orders_are(live, before + 2), timeout=10.0)

    await kill_and_restart(live.hotpath)
    await live.submit(cancel_all_command(live.agent.agent_id, account=live.account))

    for env in (first, second):
        await live.event(env.command.command_id, EventKind.CANCELLED)
        assert (await live.kinds(env.command.command_id))[-1] == "cancelled"
    await eventually(lambda: _open_orders_are(live, before), timeout=10.0)


async def test_a_breaker_trip_after_a_kill_9_restart_cancels_and_records_the_orders_placed_before(
    live: LiveFloor, operator: Agent
) -> None:
    working = await live.resting_buy(2, Decimal("0.8"))
    cid = working.command.command_id

    await kill_and_restart(live.hotpath)
    try:
        trip = await send_breaker(live.producer, operator, CommandKind.BREAKER_TRIP)
        await eventually(lambda: applied(live.hotpath, trip.command.command_id), timeout=20.0)
        await live.event(cid, EventKind.CANCELLED)
        assert (await live.kinds(cid))[-1] == "cancelled"
        await eventually(lambda: _open_orders_are(live, 0), timeout=10.0)
    finally:
        await rearm(live.hotpath, live.producer, operator)
