"""The Schwab adapter's order path against the emulator: place, fill, cancel, replace."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from brokers import schwab_sync
from brokers.base import (
    Broker,
    BrokerOrderStatus,
    DepthSnapshot,
    EpochReconciled,
    Executed,
    OrderAccepted,
    OrderStatusChanged,
    Quote,
    SessionChange,
    SessionChanged,
    Trade,
)
from brokers.schwab import SchwabBroker
from tests.brokers.recorder import Recorder
from tests.brokers.schwab.conftest import Adapter, below, config_for
from tests.fixtures.paper import PaperStack
from tests.fixtures.schwab import SchwabApi
from tests.helpers import eventually
from trading.commands import TimeInForce


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


async def test_an_order_of_an_earlier_process_is_found_by_its_fields_and_a_missing_one_is_lost(
    schwab_api: SchwabApi, paper: PaperStack, tmp_path: Path
) -> None:
    bid, _ = await paper.quote("MSFT")
    earlier = SchwabBroker(config_for(schwab_api, schwab_api.new_token_file(tmp_path)))
    earlier_events = Recorder()
    earlier.set_event_handler(earlier_events)
    await earlier.connect()
    working = Adapter(earlier, earlier_events, schwab_api.account_number).limit(below(bid, "0.61"), qty=3)
    earlier.place(working)
    accepted = await earlier_events.next(OrderAccepted, order_ref=working.order_ref)
    await earlier.close()  # as a hot path that stopped: the order works on at Schwab

    gone = Adapter(earlier, earlier_events, schwab_api.account_number).limit(below(bid, "0.59"), qty=4)
    later = SchwabBroker(config_for(schwab_api, schwab_api.new_token_file(tmp_path)))
    events = Recorder()
    later.set_event_handler(events)
    later.adopt(working)
    later.adopt(gone)  # acknowledged once, but Schwab has no such order
    await later.connect()
    try:
        listing = await events.next(EpochReconciled)
        assert listing.lost == (gone.order_ref,)
        assert {o.order_ref: o.order_id for o in listing.open_orders}[working.order_ref] == accepted.order_id
        later.cancel(working.order_ref)
        await events.next(OrderStatusChanged, order_ref=working.order_ref, status=BrokerOrderStatus.CANCELLED)
    finally:
        await later.close()


async def test_quotes_books_and_trades_stream_from_the_streamer(adapter: Adapter) -> None:
    quotes: list[Quote] = []
    books: list[DepthSnapshot] = []
    trades: list[Trade] = []
    await adapter.broker.subscribe_quotes("AAPL", quotes.append)
    await adapter.broker.subscribe_depth("AAPL", books.append)
    await adapter.broker.subscribe_trades("AAPL", trades.append)
    await eventually(lambda: quotes and books and trades, timeout=10.0)
    quote = quotes[-1]
    assert quote.bid is not None and quote.ask is not None and quote.bid < quote.ask
    book = books[-1]
    assert book.bids and book.asks and book.bids[0].price < book.asks[0].price
    assert all(t.size > 0 and t.price > 0 and t.venue_volume for t in trades)


async def test_an_order_entered_before_the_listings_reach_is_not_lost(
    adapter: Adapter, paper: PaperStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GTC order (a protective stop) works at Schwab for days; the listing reaches back one
    day. Here the reach is shortened to a second, as the order's age is what matters."""
    bid, _ = await paper.quote("MSFT")
    order = dataclasses.replace(adapter.limit(below(bid, "0.58"), qty=4), tif=TimeInForce.GTC)
    adapter.broker.place(order)
    accepted = await adapter.events.next(OrderAccepted, order_ref=order.order_ref)
    monkeypatch.setattr(schwab_sync, "LOOKBACK", timedelta(seconds=1))
    await asyncio.sleep(2.1)  # the order's age passes the listing's reach: only the clock marks it
    listing = await adapter.broker.sync.reconcile(adapter.broker.epoch)
    assert order.order_ref not in listing.lost
    assert accepted.order_id in {o.order_id for o in listing.open_orders}
    adapter.broker.cancel(order.order_ref)
    await adapter.events.next(
        OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED
    )
