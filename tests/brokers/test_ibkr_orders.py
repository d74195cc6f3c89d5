"""The ib_async adapter against the real paper venue and gateways: the order path."""

from __future__ import annotations

import dataclasses
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from brokers.base import (
    Broker,
    BrokerNotice,
    BrokerOrder,
    BrokerOrderStatus,
    CommissionReported,
    DuplicateOrderRef,
    Executed,
    OrderAccepted,
    OrderRejected,
    OrderStatusChanged,
    OrderType,
    Position,
    SessionChange,
    SessionChanged,
    Side,
    UnknownOrderRef,
)
from brokers.ibkr import IbkrBroker, IbkrConfig
from tests.brokers.conftest import HOST, PaperStack
from tests.brokers.recorder import Recorder

ACCOUNT = "DU1234567"
_client_ids = itertools.count(1100)  # apart from every other suite's ids


def ref() -> str:
    return f"cmd-{uuid.uuid4().hex[:12]}"


def limit(price: str, qty: int = 10, side: Side = Side.BUY, symbol: str = "AAPL") -> BrokerOrder:
    return BrokerOrder(ref(), ACCOUNT, symbol, side, qty, OrderType.LMT, limit_price=Decimal(price))


def market(qty: int = 10, side: Side = Side.BUY) -> BrokerOrder:
    return BrokerOrder(ref(), ACCOUNT, "AAPL", side, qty, OrderType.MKT)


@pytest.fixture()
async def broker(paper: PaperStack) -> AsyncIterator[tuple[IbkrBroker, Recorder]]:
    b = IbkrBroker(IbkrConfig(HOST, paper.gateway_port, paper.standby_port, client_id=next(_client_ids)))
    rec = Recorder()
    b.set_event_handler(rec)
    await b.connect()
    yield b, rec
    await b.close()


async def test_adapter_is_a_broker(broker: tuple[IbkrBroker, Recorder]) -> None:
    b, rec = broker
    assert isinstance(b, Broker)
    first = rec.of(SessionChanged)[0]
    assert first.change is SessionChange.CONNECTED and first.epoch == 1
    assert b.connected


async def test_market_order_is_accepted_filled_with_executions_and_commission(
    broker: tuple[IbkrBroker, Recorder],
) -> None:
    b, rec = broker
    order = market(qty=25)
    before = time.perf_counter_ns()
    placement = b.place(order)
    assert placement.sent and placement.order_id is not None
    assert before < placement.write_ns <= time.perf_counter_ns()
    assert b.last_write_ns(order.order_ref) == placement.write_ns

    await rec.next(OrderAccepted, order_ref=order.order_ref)
    filled = await rec.next(OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.FILLED)
    assert (filled.filled, filled.remaining) == (25, 0)
    assert filled.avg_fill_price is not None and filled.avg_fill_price > 0
    await rec.next(CommissionReported, order_ref=order.order_ref)
    fills = rec.of(Executed, order_ref=order.order_ref)
    assert sum(f.quantity for f in fills) == 25
    assert len({f.exec_id for f in fills}) == len(fills)
    assert all(f.side is Side.BUY and f.symbol == "AAPL" and f.account == ACCOUNT for f in fills)
    # Average of the executions, exactly, is the reported average fill price.
    total = sum((f.price * f.quantity for f in fills), Decimal(0))
    assert (total / 25).quantize(Decimal("0.0001")) == filled.avg_fill_price.quantize(Decimal("0.0001"))
    # Each execution gets its commission report. The venue, like IB, charges an order's minimum
    # on its first fill, so a later fill's own commission may be 0; the order's total is not.
    commissions = [(await rec.next(CommissionReported, exec_id=f.exec_id)).commission for f in fills]
    assert all(c >= 0 for c in commissions) and sum(commissions) > 0, commissions


async def test_place_is_idempotent_per_order_ref(broker: tuple[IbkrBroker, Recorder]) -> None:
    b, rec = broker
    order = limit("100.00")
    first = b.place(order)
    again = b.place(order)
    assert again.duplicate and again.order_id == first.order_id
    await rec.next(OrderAccepted, order_ref=order.order_ref)
    mine = [o for o in await b.open_orders() if o.order_ref == order.order_ref]
    assert len(mine) == 1
    b.cancel(order.order_ref)
    await rec.next(OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED)


async def test_cancel_of_a_resting_order_reports_cancelled(broker: tuple[IbkrBroker, Recorder]) -> None:
    b, rec = broker
    order = limit("100.00")
    b.place(order)
    accepted = await rec.next(OrderAccepted, order_ref=order.order_ref)
    assert accepted.perm_id > 0
    assert b.cancel(order.order_ref) > 0
    done = await rec.next(OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED)
    assert done.filled == 0
    assert order.order_ref not in {o.order_ref for o in await b.open_orders()}


async def test_cancel_all_cancels_every_open_order(broker: tuple[IbkrBroker, Recorder]) -> None:
    b, rec = broker
    orders = [limit("100.00"), limit("101.00"), limit("900.00", side=Side.SELL)]
    for o in orders:
        b.place(o)
    for o in orders:
        await rec.next(OrderAccepted, order_ref=o.order_ref)
    assert b.cancel_all() > 0
    for o in orders:
        await rec.next(OrderStatusChanged, order_ref=o.order_ref, status=BrokerOrderStatus.CANCELLED)
    assert not [o for o in await b.open_orders() if o.account == ACCOUNT]


async def test_modify_changes_the_working_order_in_place(broker: tuple[IbkrBroker, Recorder]) -> None:
    b, rec = broker
    order = limit("100.00")
    placed = b.place(order)
    await rec.next(OrderAccepted, order_ref=order.order_ref)
    assert b.modify(order.order_ref, limit_price=Decimal("101.50"), quantity=7) > 0

    async def modified() -> bool:
        mine = [o for o in await b.open_orders() if o.order_ref == order.order_ref]
        return bool(mine) and mine[0].limit_price == Decimal("101.50") and mine[0].quantity == 7

    from tests.helpers import eventually

    await eventually(modified)  # type: ignore[arg-type]
    mine = [o for o in await b.open_orders() if o.order_ref == order.order_ref]
    assert mine[0].order_id == placed.order_id
    b.cancel(order.order_ref)
    await rec.next(OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED)


async def test_rejection_maps_to_order_rejected_with_the_ib_code(broker: tuple[IbkrBroker, Recorder]) -> None:
    b, rec = broker
    unknown = BrokerOrder(ref(), ACCOUNT, "ZZZZ", Side.BUY, 1, OrderType.LMT, limit_price=Decimal("1.00"))
    b.place(unknown)
    rejected = await rec.next(OrderRejected, order_ref=unknown.order_ref)
    assert rejected.code == 200 and rejected.category == "order_rejected"
    assert not rejected.order_still_working
    await rec.next(OrderStatusChanged, order_ref=unknown.order_ref, status=BrokerOrderStatus.INACTIVE)

    too_big = limit("229.00", qty=1_000_000)
    b.place(too_big)
    rejected = await rec.next(OrderRejected, order_ref=too_big.order_ref)
    assert rejected.code == 201 and "reject" in rejected.reason.lower()
    assert not rec.of(OrderAccepted, order_ref=too_big.order_ref)


async def test_cancel_of_a_done_order_writes_nothing_and_unknown_ref_is_named(
    broker: tuple[IbkrBroker, Recorder],
) -> None:
    b, rec = broker
    order = market(qty=1)
    b.place(order)
    await rec.next(OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.FILLED)
    assert b.cancel(order.order_ref) == 0
    with pytest.raises(UnknownOrderRef):
        b.cancel("cmd-never-placed")
    with pytest.raises(DuplicateOrderRef):
        b.place(dataclasses.replace(order, quantity=2))


async def test_net_liquidation_is_reported_exactly(broker: tuple[IbkrBroker, Recorder]) -> None:
    b, _ = broker
    value = await b.net_liquidation(ACCOUNT)
    assert isinstance(value, Decimal) and value > 0


async def test_a_late_duplicate_of_a_resent_order_is_cancelled_and_does_not_touch_the_order(
    broker: tuple[IbkrBroker, Recorder],
) -> None:
    from ib_async import Order, OrderStatus, Stock, Trade

    b, rec = broker
    order = limit("100.00")
    placed = b.place(order)
    await rec.next(OrderAccepted, order_ref=order.order_ref)
    session = b.router.active
    assert session is not None and placed.order_id is not None
    # What the broker would report if an earlier copy of this order (sent before a failover,
    # under another order id) surfaced late.
    stray_id = placed.order_id + 1000
    stray = Trade(
        Stock("AAPL", "SMART", "USD"),
        Order(orderId=stray_id, clientId=placed.client_id or 0, permId=0, orderRef=order.order_ref),
        OrderStatus(orderId=stray_id, status="Submitted", clientId=placed.client_id or 0),
    )
    written_before = session.conn.numMsgSent if session.conn else 0
    b.translator.on_trade(session, stray)
    notice = await rec.next(BrokerNotice, code=0)
    assert str(stray_id) in notice.message and order.order_ref in notice.message
    assert session.conn is not None and session.conn.numMsgSent == written_before + 1
    # The tracked order is untouched: still working under its own id.
    mine = [o for o in await b.open_orders() if o.order_ref == order.order_ref]
    assert [o.order_id for o in mine] == [placed.order_id]
    assert not rec.of(OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED)
    b.cancel(order.order_ref)
    await rec.next(OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED)


async def test_positions_and_executions_since_reflect_a_fill(broker: tuple[IbkrBroker, Recorder]) -> None:
    b, rec = broker

    def aapl(positions: list[Position]) -> int:
        return sum(p.quantity for p in positions if p.symbol == "AAPL" and p.account == ACCOUNT)

    before = aapl(await b.positions())
    since = datetime.now(UTC).replace(microsecond=0)
    order = market(qty=3)
    b.place(order)
    await rec.next(OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.FILLED)
    assert aapl(await b.positions()) == before + 3
    recent = await b.executions(since=since)
    mine = [e for e in recent if e.order_ref == order.order_ref]
    assert sum(e.quantity for e in mine) == 3
    assert all(e.time >= since for e in recent)
    assert {e.exec_id for e in mine} == {e.exec_id for e in rec.of(Executed, order_ref=order.order_ref)}


async def test_an_unreachable_standby_is_reported_and_orders_still_flow(paper: PaperStack) -> None:
    from config.ports import free_port

    b = IbkrBroker(IbkrConfig(HOST, paper.gateway_port, free_port(), client_id=next(_client_ids)))
    rec = Recorder()
    b.set_event_handler(rec)
    await b.connect()
    try:
        down = await rec.next(SessionChanged, change=SessionChange.STANDBY_DOWN)
        assert "cannot connect" in down.cause
        order = limit("100.00")
        assert b.place(order).sent
        await rec.next(OrderAccepted, order_ref=order.order_ref)
        b.cancel(order.order_ref)
        await rec.next(OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED)
        assert len(rec.of(SessionChanged, change=SessionChange.STANDBY_DOWN)) == 1
    finally:
        await b.close()


async def test_cancel_all_overtakes_orders_queued_by_the_pacing_throttle(paper: PaperStack) -> None:
    b = IbkrBroker(
        IbkrConfig(
            HOST, paper.gateway_port, None, client_id=next(_client_ids), max_requests_per_s=4,
            # At 4 messages/s the start-up sync and the heartbeats queue behind the throttle;
            # on a busy machine the defaults would call the session dead while it is not.
            connect_timeout=20.0, reconcile_timeout=20.0, heartbeat_timeout=10.0,
        )  # fmt: skip
    )
    rec = Recorder()
    b.set_event_handler(rec)
    try:
        await b.connect()
        orders = [limit(f"100.{i:02d}") for i in range(10)]
        placements = [b.place(o) for o in orders]
        assert all(p.sent for p in placements)
        # Asked now, not from the placements: on a stalled machine the throttle's window can
        # pass during the placing, and a later place flushes earlier queued orders.
        queued = [o for o in orders if b.last_write_ns(o.order_ref) == 0]
        written = [o for o in orders if b.last_write_ns(o.order_ref) > 0]
        assert queued, "the throttle should have queued some orders"

        started = time.perf_counter_ns()
        assert b.cancel_all() > started  # written now, not after the throttle's second
        for o in queued:
            await rec.next(OrderStatusChanged, order_ref=o.order_ref, status=BrokerOrderStatus.CANCELLED)
        for o in written:
            await rec.next(OrderStatusChanged, order_ref=o.order_ref, status=BrokerOrderStatus.CANCELLED)
        refs = {o.order_ref for o in await b.open_orders()}
        assert not refs & {o.order_ref for o in orders}
        assert not any(rec.of(OrderAccepted, order_ref=o.order_ref) for o in queued)
        assert all(b.last_write_ns(o.order_ref) == 0 for o in queued)
    finally:
        await b.close()
