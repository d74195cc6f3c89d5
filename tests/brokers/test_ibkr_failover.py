"""Failover, outage and reconnect against real gateway processes killed with SIGKILL."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from brokers.base import (
    BrokerOrder,
    BrokerOrderStatus,
    ClientIdInUse,
    CommissionReported,
    EpochReconciled,
    Executed,
    OrderAccepted,
    OrderStatusChanged,
    OrderType,
    SessionChange,
    SessionChanged,
    SessionRole,
    Side,
    SourceAddressRefused,
)
from brokers.ibkr import IbkrBroker, IbkrConfig
from tests.brokers.conftest import HOST, PaperStack, gateway_ports, kill_gateway, restart_gateway
from tests.brokers.recorder import Recorder
from tests.helpers import eventually

ACCOUNT = "DU1234567"
_client_ids = itertools.count(1500)  # apart from every other suite's ids


def resting(price: str = "100.00") -> BrokerOrder:
    return BrokerOrder(
        f"cmd-{uuid.uuid4().hex[:12]}",
        ACCOUNT,
        "AAPL",
        Side.BUY,
        5,
        OrderType.LMT,
        limit_price=Decimal(price),
    )


@pytest.fixture()
async def broker(own_stack: PaperStack) -> AsyncIterator[tuple[IbkrBroker, Recorder]]:
    b = IbkrBroker(
        IbkrConfig(HOST, own_stack.gateway_port, own_stack.standby_port, client_id=next(_client_ids))
    )
    rec = Recorder()
    b.set_event_handler(rec)
    await b.connect()
    yield b, rec
    await b.close()


async def test_killed_primary_fails_over_and_standby_serves_the_resting_order(
    own_stack: PaperStack, broker: tuple[IbkrBroker, Recorder]
) -> None:
    b, rec = broker
    await rec.next(SessionChanged, change=SessionChange.STANDBY_UP)
    order = resting()
    b.place(order)
    await rec.next(OrderAccepted, order_ref=order.order_ref)

    killed_at = time.monotonic()
    kill_gateway(own_stack, "primary")
    change = await rec.next(SessionChanged, change=SessionChange.FAILED_OVER)
    took = time.monotonic() - killed_at
    assert change.gateway == f"{HOST}:{own_stack.standby_port}"
    assert change.previous_gateway == f"{HOST}:{own_stack.gateway_port}"
    assert change.role is SessionRole.STANDBY and change.epoch == 2
    assert took < 0.2, took  # the closed socket is news at once, not at the next heartbeat

    # Placing the same command again (an idempotent resend) writes nothing new.
    assert b.place(order).duplicate
    # The standby session can manage the order the primary placed.
    await asyncio.wait_for(b.wait_connected(), 5)
    mine = [o for o in await b.open_orders() if o.order_ref == order.order_ref]
    assert len(mine) == 1
    assert b.cancel(order.order_ref) > 0
    await rec.next(OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED)
    # A new order goes out through the standby at once.
    after = resting("99.00")
    assert b.place(after).sent
    await rec.next(OrderAccepted, order_ref=after.order_ref)
    assert len(rec.of(OrderAccepted, order_ref=order.order_ref)) == 1


async def test_orders_placed_while_both_gateways_are_down_are_sent_once_on_reconnect(
    own_stack: PaperStack, broker: tuple[IbkrBroker, Recorder]
) -> None:
    b, rec = broker
    await rec.next(SessionChanged, change=SessionChange.STANDBY_UP)
    kill_gateway(own_stack, "primary")
    await rec.next(SessionChanged, change=SessionChange.FAILED_OVER)
    kill_gateway(own_stack, "standby")
    down = await rec.next(SessionChanged, change=SessionChange.DISCONNECTED)
    assert down.held_orders == 0
    assert not b.connected

    held = [resting("100.00"), resting("100.01"), resting("100.02")]
    placements = [b.place(o) for o in held]
    assert all(not p.sent and p.write_ns == 0 and p.order_id is None for p in placements)
    assert all(b.place(o).duplicate for o in held)
    cancelled = resting("100.03")
    b.place(cancelled)
    b.cancel(cancelled.order_ref)  # cancelled while held: never sent
    await rec.next(OrderStatusChanged, order_ref=cancelled.order_ref, status=BrokerOrderStatus.CANCELLED)

    await asyncio.to_thread(restart_gateway, own_stack, "standby")
    back = await rec.next(SessionChanged, change=SessionChange.RECONNECTED, timeout=15)
    assert back.held_orders == 3
    for o in held:
        await rec.next(OrderAccepted, order_ref=o.order_ref)
    await asyncio.wait_for(b.wait_connected(), 5)
    at_broker = [o.order_ref for o in await b.open_orders()]
    for o in held:
        assert at_broker.count(o.order_ref) == 1
    assert cancelled.order_ref not in at_broker
    assert not rec.of(OrderAccepted, order_ref=cancelled.order_ref)
    b.cancel_all()


async def test_frozen_primary_misses_heartbeats_and_fails_over(
    own_stack: PaperStack, broker: tuple[IbkrBroker, Recorder]
) -> None:
    b, rec = broker
    await rec.next(SessionChanged, change=SessionChange.STANDBY_UP)
    async with httpx.AsyncClient(headers=own_stack.control_headers) as http:
        reply = await http.post(own_stack.control_url + "/gateways/primary/freeze", json={"seconds": 5})
        assert reply.status_code == 200, reply.text
    frozen_at = time.monotonic()
    change = await rec.next(SessionChanged, change=SessionChange.FAILED_OVER)
    assert "heartbeat" in change.cause
    assert time.monotonic() - frozen_at < 2.0
    await asyncio.wait_for(b.wait_connected(), 5)
    order = resting()
    assert b.place(order).sent
    await rec.next(OrderAccepted, order_ref=order.order_ref)
    b.cancel(order.order_ref)


async def _freeze(stack: PaperStack, gateway: str, seconds: float) -> float:
    await stack.acontrol("POST", f"/gateways/{gateway}/freeze", {"seconds": seconds})
    return time.monotonic()


async def test_an_idle_frozen_primary_is_found_by_three_missed_heartbeats_well_inside_a_second(
    own_stack: PaperStack, broker: tuple[IbkrBroker, Recorder]
) -> None:
    b, rec = broker
    await rec.next(SessionChanged, change=SessionChange.STANDBY_UP)
    frozen_at = await _freeze(own_stack, "primary", 3)
    change = await rec.next(SessionChanged, change=SessionChange.FAILED_OVER)
    took = time.monotonic() - frozen_at
    assert "missed heartbeat: 3 probes unanswered" in change.cause
    # 250 ms of silence, then 3 answer windows of 50 ms (bench.failover measures it); the old
    # heartbeat waited 250 ms + a 500 ms timeout, never under 0.75 s.
    assert took < 0.7, took


async def test_a_primary_frozen_while_orders_flow_is_found_by_the_unanswered_orders(
    own_stack: PaperStack, broker: tuple[IbkrBroker, Recorder]
) -> None:
    b, rec = broker
    await rec.next(SessionChanged, change=SessionChange.STANDBY_UP)
    placed: list[BrokerOrder] = []

    async def flow() -> None:
        while True:  # 40 orders a second, inside ib_async's throttle
            order = resting("90.00")
            b.place(order)
            placed.append(order)
            await asyncio.sleep(0.025)

    flowing = asyncio.create_task(flow())
    try:
        await rec.next(OrderAccepted, order_ref=(await _first(placed)).order_ref)
        frozen_at = await _freeze(own_stack, "primary", 3)
        await rec.next(SessionChanged, change=SessionChange.FAILED_OVER)
        took = time.monotonic() - frozen_at
    finally:
        flowing.cancel()
    # The orders are the probes: three of them unanswered, about 110 ms in all.
    assert took < 0.5, took
    last = placed[-1]
    await rec.next(OrderAccepted, order_ref=last.order_ref)
    b.cancel_all()


async def _first(placed: list[BrokerOrder]) -> BrokerOrder:
    await eventually(lambda: bool(placed))
    return placed[0]


async def test_a_client_id_in_use_is_named_and_a_start_waits_until_the_gateway_frees_it(
    paper: PaperStack,
) -> None:
    """IB's 326: the refusal names the id (it used to read as a refused source address), and a
    process started again while the gateway still holds its dead session's id connects once the
    id is free instead of failing its start."""
    client_id = next(_client_ids)
    holder = IbkrBroker(IbkrConfig(HOST, paper.gateway_port, None, client_id=client_id))
    await holder.connect()
    waiting = IbkrBroker(IbkrConfig(HOST, paper.gateway_port, None, client_id=client_id))
    connecting: asyncio.Task[None] | None = None
    try:
        impatient = IbkrBroker(
            IbkrConfig(HOST, paper.gateway_port, None, client_id=client_id, client_id_wait=0.0)
        )
        with pytest.raises(ClientIdInUse) as info:
            await impatient.connect()
        assert info.value.client_id == client_id and str(paper.gateway_port) in str(info.value)

        connecting = asyncio.create_task(waiting.connect())
        [session] = waiting.router.sessions
        await eventually(lambda: isinstance(session.last_error, ClientIdInUse))
        assert not connecting.done()
    finally:
        await holder.close()
    try:
        assert connecting is not None
        await asyncio.wait_for(connecting, timeout=15.0)
        assert waiting.connected
    finally:
        await waiting.close()


async def test_sockets_bind_to_the_configured_source_address(trusting_127_0_0_2: PaperStack) -> None:
    ports = gateway_ports(trusting_127_0_0_2)
    refused = IbkrBroker(
        IbkrConfig(HOST, ports["primary"], ports["standby"], client_id=71, source_address=HOST)
    )
    with pytest.raises(SourceAddressRefused) as info:
        await refused.connect()
    assert info.value.source_address == HOST

    bound = IbkrBroker(
        IbkrConfig(HOST, ports["primary"], ports["standby"], client_id=72, source_address="127.0.0.2")
    )
    await bound.connect()
    try:
        assert bound.connected
        for session in bound.router.sessions:
            assert session.conn is not None and session.conn.transport is not None
            assert session.conn.transport.get_extra_info("sockname")[0] == "127.0.0.2"
    finally:
        await bound.close()


async def test_order_written_to_a_frozen_primary_is_resent_once_and_not_duplicated(
    own_stack: PaperStack, broker: tuple[IbkrBroker, Recorder]
) -> None:
    b, rec = broker
    await rec.next(SessionChanged, change=SessionChange.STANDBY_UP)
    await own_stack.acontrol("POST", "/gateways/primary/freeze", {"seconds": 1.5})
    order = resting()
    first = b.place(order)  # written into the frozen gateway's socket; it never answers
    assert first.sent
    change = await rec.next(SessionChanged, change=SessionChange.FAILED_OVER)
    assert "heartbeat" in change.cause
    accepted = await rec.next(OrderAccepted, order_ref=order.order_ref)
    assert accepted.order_id != first.order_id  # resent through the standby under a new id
    # The primary thaws and comes back as the standby; whatever it passed on late is cancelled.
    await rec.next(
        SessionChanged,
        timeout=15,
        change=SessionChange.STANDBY_UP,
        gateway=f"{HOST}:{own_stack.gateway_port}",
    )

    async def exactly_one_working() -> bool:
        return [o.order_ref for o in await b.open_orders()].count(order.order_ref) == 1

    await eventually(exactly_one_working)  # type: ignore[arg-type]
    working = [o for o in await b.open_orders() if o.order_ref == order.order_ref]
    assert working[0].order_id == accepted.order_id


async def test_a_cancel_written_to_a_frozen_primary_is_written_again_to_the_standby(
    own_stack: PaperStack, broker: tuple[IbkrBroker, Recorder]
) -> None:
    b, rec = broker
    await rec.next(SessionChanged, change=SessionChange.STANDBY_UP)
    order = resting()
    b.place(order)
    await rec.next(OrderAccepted, order_ref=order.order_ref)
    await _freeze(own_stack, "primary", 6)
    assert b.cancel(order.order_ref) > 0  # written into the frozen gateway's socket
    await rec.next(SessionChanged, change=SessionChange.FAILED_OVER)
    # The frozen gateway passes nothing on until it thaws; the standby's epoch writes it again.
    await rec.next(
        OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED, timeout=3
    )
    assert order.order_ref not in {o.order_ref for o in await b.open_orders()}


async def _working_then_both_gateways_down(
    stack: PaperStack, b: IbkrBroker, rec: Recorder, order: BrokerOrder | None = None
) -> BrokerOrder:
    """``order`` (a resting one by default) acknowledged by the broker, then the primary and
    the standby die."""
    await rec.next(SessionChanged, change=SessionChange.STANDBY_UP)
    order = order or resting()
    b.place(order)
    await rec.next(OrderAccepted, order_ref=order.order_ref)
    kill_gateway(stack, "primary")
    await rec.next(SessionChanged, change=SessionChange.FAILED_OVER)
    kill_gateway(stack, "standby")
    await rec.next(SessionChanged, change=SessionChange.DISCONNECTED)
    return order


async def test_fills_during_an_outage_are_recovered_on_reconnect(
    own_stack: PaperStack, broker: tuple[IbkrBroker, Recorder]
) -> None:
    b, rec = broker
    await rec.next(SessionChanged, change=SessionChange.STANDBY_UP)
    status = await own_stack.acontrol("GET", "/status")
    bid = Decimal(next(s for s in status["symbols"] if s["symbol"] == "AAPL")["bid"])
    order = await _working_then_both_gateways_down(own_stack, b, rec, resting(str(bid - Decimal("1.00"))))
    # The market falls through the resting buy while the floor sees nothing.
    await own_stack.acontrol("POST", "/symbols/AAPL/move", {"pct": -5, "ms": 50})

    async def filled_at_venue() -> bool:
        return (await own_stack.acontrol("GET", "/status"))["open_orders"] == 0

    await eventually(filled_at_venue)  # type: ignore[arg-type]
    assert not rec.of(Executed, order_ref=order.order_ref)

    await asyncio.to_thread(restart_gateway, own_stack, "primary")
    await rec.next(SessionChanged, change=SessionChange.RECONNECTED, timeout=15)
    done = await rec.next(OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.FILLED)
    assert done.filled == 5
    fills = rec.of(Executed, order_ref=order.order_ref)
    assert sum(f.quantity for f in fills) == 5
    assert all(f.price <= bid - Decimal("1.00") for f in fills)
    for f in fills:
        await rec.next(CommissionReported, exec_id=f.exec_id)
    # Asked again, the broker reports the same executions; nothing new is emitted.
    again = [e for e in await b.executions() if e.order_ref == order.order_ref]
    assert {e.exec_id for e in again} == {f.exec_id for f in fills}


async def test_cancel_all_while_disconnected_is_sent_on_reconnect_and_spares_later_orders(
    own_stack: PaperStack, broker: tuple[IbkrBroker, Recorder]
) -> None:
    b, rec = broker
    working = await _working_then_both_gateways_down(own_stack, b, rec, resting("100.00"))

    before = resting("100.01")
    b.place(before)
    assert b.cancel_all() == 0  # nothing to write to yet
    await rec.next(OrderStatusChanged, order_ref=before.order_ref, status=BrokerOrderStatus.CANCELLED)
    after = resting("100.02")
    assert not b.place(after).sent

    await asyncio.to_thread(restart_gateway, own_stack, "standby")
    await rec.next(SessionChanged, change=SessionChange.RECONNECTED, timeout=15)
    await rec.next(OrderStatusChanged, order_ref=working.order_ref, status=BrokerOrderStatus.CANCELLED)
    await rec.next(OrderAccepted, order_ref=after.order_ref)
    refs = [o.order_ref for o in await b.open_orders()]
    assert refs.count(after.order_ref) == 1
    assert working.order_ref not in refs and before.order_ref not in refs
    assert not rec.of(OrderAccepted, order_ref=before.order_ref)
    assert b.last_cancel_all_ns > 0


async def test_gateways_losing_the_venue_take_the_session_down_until_it_is_back(
    own_stack: PaperStack, broker: tuple[IbkrBroker, Recorder]
) -> None:
    b, rec = broker
    await rec.next(SessionChanged, change=SessionChange.STANDBY_UP)
    kill_gateway(own_stack, "venue")  # both gateways stay up but lose their upstream (1100)
    down = await rec.next(SessionChanged, change=SessionChange.DISCONNECTED)
    assert "1100" in down.cause
    held = resting()
    assert not b.place(held).sent

    await asyncio.to_thread(own_stack.start_venue)
    await rec.next(SessionChanged, change=SessionChange.RECONNECTED, timeout=20)
    await rec.next(OrderAccepted, order_ref=held.order_ref, timeout=10)


async def test_an_order_that_ended_during_an_outage_is_not_sent_again(
    own_stack: PaperStack, broker: tuple[IbkrBroker, Recorder]
) -> None:
    b, rec = broker
    day_order = await _working_then_both_gateways_down(own_stack, b, rec)
    # The close of the trading day expires the DAY order while the floor hears nothing.
    await own_stack.acontrol("POST", "/session/close")
    # A modify of a held order changes what will be sent.
    held = resting("100.00")
    b.place(held)
    assert b.modify(held.order_ref, limit_price=Decimal("99.50"), quantity=4) == 0

    await asyncio.to_thread(restart_gateway, own_stack, "primary")
    await rec.next(SessionChanged, change=SessionChange.RECONNECTED, timeout=15)
    ended = await rec.next(
        OrderStatusChanged, order_ref=day_order.order_ref, status=BrokerOrderStatus.CANCELLED
    )
    assert ended.filled == 0
    await rec.next(OrderAccepted, order_ref=held.order_ref)
    at_broker = {o.order_ref: o for o in await b.open_orders()}
    assert day_order.order_ref not in at_broker
    assert len(rec.of(OrderAccepted, order_ref=day_order.order_ref)) == 1
    sent = at_broker[held.order_ref]
    assert (sent.limit_price, sent.quantity) == (Decimal("99.50"), 4)


async def test_an_order_the_broker_lost_during_an_outage_is_listed_as_lost_and_not_sent_again(
    own_stack: PaperStack, broker: tuple[IbkrBroker, Recorder]
) -> None:
    b, rec = broker
    order = await _working_then_both_gateways_down(own_stack, b, rec)
    # The venue starts over: the order is listed neither open nor completed nor executed.
    await own_stack.acontrol("POST", "/reset", {"seed": 7})

    await asyncio.to_thread(restart_gateway, own_stack, "primary")
    reconnected = await rec.next(SessionChanged, change=SessionChange.RECONNECTED, timeout=15)
    listing = await rec.next(EpochReconciled, epoch=reconnected.epoch)
    # Ending it is the owner of the ledger's decision (hotpath.reconciler): the adapter lists it
    # as lost and ends it with no status of its own, and never sends it again.
    assert listing.lost == (order.order_ref,)
    assert not rec.of(OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED)
    assert order.order_ref not in {o.order_ref for o in await b.open_orders()}
    assert len(rec.of(OrderAccepted, order_ref=order.order_ref)) == 1
    assert b.cancel(order.order_ref) == 0
