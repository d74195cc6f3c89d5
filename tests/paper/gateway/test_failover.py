"""A gateway is a window onto the venue: killing one loses nothing, control reaches it."""

from __future__ import annotations

import asyncio
import os
import signal

from ib_async import LimitOrder

from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.paper.gateway.conftest import HOST, connected, quote, status_of, stock


async def test_kill_9_primary_with_orders_resting_then_standby_shows_them(private_paper: PaperStack) -> None:
    async with connected(private_paper.gateway_port, 51) as ib:
        contract = await stock(ib)
        bid, _ = await quote(ib, contract)
        trades = [ib.placeOrder(contract, LimitOrder("BUY", 10 + i, round(bid * 0.5, 2))) for i in range(5)]
        for trade in trades:
            await status_of(trade, {"Submitted"})
        placed = {(t.order.orderId, t.order.permId, t.order.totalQuantity) for t in trades}
        lost = asyncio.Event()
        ib.disconnectedEvent += lost.set
        os.kill(private_paper.services["primary"].pid, signal.SIGKILL)
        await asyncio.wait_for(lost.wait(), 5)
    status = await private_paper.acontrol("GET", "/status")
    assert status["open_orders"] >= 5
    async with connected(private_paper.standby_port, 51) as standby:
        shown = {(t.order.orderId, t.order.permId, t.order.totalQuantity) for t in standby.openTrades()}
        assert placed <= shown
        # The standby serves them fully: cancel through it.
        for trade in standby.openTrades():
            standby.cancelOrder(trade.order)
        await eventually(lambda: not standby.openTrades())
    # Restarted, the primary hands out order ids above everything used before.
    private_paper.start_gateway("primary", private_paper.gateway_port)
    async with connected(private_paper.gateway_port, 51) as again:
        assert again.client.getReqId() > max(order_id for order_id, _, _ in placed)
        # ... and, new as it is, reports the orders that ended while it was gone.
        done = {t.order.permId: t.orderStatus.status for t in await again.reqCompletedOrdersAsync(True)}
        assert {perm_id for _, perm_id, _ in placed} <= set(done)
        assert {done[perm_id] for _, perm_id, _ in placed} == {"Cancelled"}


async def test_control_drop_closes_client_connections(private_paper: PaperStack) -> None:
    async with connected(private_paper.standby_port, 52) as ib:
        lost = asyncio.Event()
        ib.disconnectedEvent += lost.set
        await private_paper.acontrol("POST", "/gateways/standby/drop", {})
        await asyncio.wait_for(lost.wait(), 5)
    async with connected(private_paper.standby_port, 52) as ib:
        assert ib.isConnected()


async def freeze(stack: PaperStack, gateway: str, seconds: float) -> None:
    """Freeze ``gateway`` and return once it has gone silent (it logs the moment)."""
    log = stack.services[gateway].log_path
    frozen_before = log.read_text().count("control: freezing")
    await stack.acontrol("POST", f"/gateways/{gateway}/freeze", {"seconds": seconds})
    await eventually(lambda: log.read_text().count("control: freezing") > frozen_before)


async def test_control_freeze_holds_replies_until_it_ends(private_paper: PaperStack) -> None:
    async with connected(private_paper.standby_port, 53) as ib:
        await freeze(private_paper, "standby", 1.0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        answered = await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
        elapsed = loop.time() - started
        assert answered.year >= 2020
        assert elapsed >= 0.5, f"answered after {elapsed:.3f} s while frozen"
        assert ib.isConnected()


async def test_a_client_connecting_while_frozen_is_answered_after_it(private_paper: PaperStack) -> None:
    await freeze(private_paper, "standby", 1.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with connected(private_paper.standby_port, 54) as ib:
        elapsed = loop.time() - started
        assert elapsed >= 0.75, f"handshake answered after {elapsed:.3f} s while frozen"
        assert ib.isConnected()


async def test_control_kill_exits_the_gateway(private_paper: PaperStack) -> None:
    service = private_paper.start_gateway("spare", _free())
    await private_paper.acontrol("POST", "/gateways/spare/kill", {})
    await eventually(lambda: not service.alive(), timeout=5)
    assert service.process.returncode == -signal.SIGKILL


def _free() -> int:
    from config.ports import free_port

    return free_port(HOST)
