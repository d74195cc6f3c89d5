"""The Schwab adapter's order path against the emulator: place, fill, cancel, replace."""

from __future__ import annotations

from brokers.base import (
    Broker,
    BrokerOrderStatus,
    EpochReconciled,
    Executed,
    OrderAccepted,
    OrderStatusChanged,
    SessionChange,
    SessionChanged,
)
from tests.brokers.schwab.conftest import Adapter, below
from tests.fixtures.paper import PaperStack


async def test_adapter_is_a_broker_and_opens_a_reconciled_epoch(adapter: Adapter) -> None:
    assert isinstance(adapter.broker, Broker)
    first = adapter.events.of(SessionChanged)[0]
    assert first.change is SessionChange.CONNECTED and first.epoch == 1
    assert first.accounts == (adapter.account,)
    listing = await adapter.events.next(EpochReconciled)
    assert listing.epoch == 1 and listing.accounts == (adapter.account,)
    assert adapter.broker.connected


async def test_market_order_is_accepted_and_filled_with_its_executions(adapter: Adapter) -> None:
    order = adapter.market(qty=7)
    placement = adapter.broker.place(order)
    assert placement.sent and placement.write_ns > 0
    accepted = await adapter.events.next(OrderAccepted, order_ref=order.order_ref)
    assert accepted.order_id > 0
    filled = await adapter.events.next(
        OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.FILLED
    )
    assert filled.filled == 7 and filled.remaining == 0 and filled.avg_fill_price is not None
    executions = adapter.events.of(Executed, order_ref=order.order_ref)
    assert sum(e.quantity for e in executions) == 7
    assert len({e.exec_id for e in executions}) == len(executions)
    assert executions[-1].cum_quantity == 7


async def test_resting_limit_is_cancelled(adapter: Adapter, paper: PaperStack) -> None:
    bid, _ = await paper.quote("MSFT")
    order = adapter.limit(below(bid))
    adapter.broker.place(order)
    await adapter.events.next(OrderAccepted, order_ref=order.order_ref)
    assert adapter.broker.cancel(order.order_ref) > 0
    cancelled = await adapter.events.next(
        OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED
    )
    assert cancelled.filled == 0


async def test_modify_is_a_replace_whose_new_id_is_reported_and_followed(
    adapter: Adapter, paper: PaperStack
) -> None:
    bid, _ = await paper.quote("MSFT")
    order = adapter.limit(below(bid))
    adapter.broker.place(order)
    first = await adapter.events.next(OrderAccepted, order_ref=order.order_ref)
    new_price = below(bid, "0.75")
    assert adapter.broker.modify(order.order_ref, limit_price=new_price) > 0
    second = await adapter.events.next(
        OrderAccepted, order_ref=order.order_ref, where=lambda e: e.order_id != first.order_id
    )
    listed = {o.order_id: o for o in await adapter.broker.open_orders()}
    assert second.order_id in listed and first.order_id not in listed
    assert listed[second.order_id].order_ref == order.order_ref
    assert listed[second.order_id].limit_price == new_price
    adapter.broker.cancel(order.order_ref)  # goes to the new id
    await adapter.events.next(
        OrderStatusChanged,
        order_ref=order.order_ref,
        status=BrokerOrderStatus.CANCELLED,
        where=lambda e: e.order_id == second.order_id,
    )
    assert not adapter.events.of(Executed, order_ref=order.order_ref)
