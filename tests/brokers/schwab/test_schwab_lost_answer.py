"""A place whose answer is lost on the way back (Schwab has the order, the adapter has no id):
found again by its fields, never sent twice, and never taken for another of the floor's orders
whose answer is still on its way. And a replace sent while the adapter had not heard of the
order's fills: it replaces what is left, not the whole."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from brokers.base import BrokerOrderStatus, OrderAccepted, OrderStatusChanged
from brokers.schwab import SchwabBroker
from brokers.schwab_sync import list_orders
from brokers.schwab_wire import parse_order
from tests.brokers.recorder import Recorder
from tests.brokers.schwab.conftest import Adapter, below, config_for
from tests.fixtures.paper import PaperStack
from tests.fixtures.schwab import SchwabApi
from tests.helpers import eventually
from trading.commands import Side


class LosingAnswers(httpx.AsyncBaseTransport):
    """The adapter's HTTP hop to the emulator, where a place's answer can be lost (the request
    done at Schwab, a read timeout here) or held back until the test lets it go."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.lose = 0
        self.drop = 0
        self.block_reads = False
        """Every read of orders answered 503 (the adapter hears of no fill)."""
        """Places lost before they reach Schwab (a connection that failed on the way)."""
        self.hold: asyncio.Event | None = None
        self.holding = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.block_reads and request.method == "GET" and "/orders" in request.url.path:
            return httpx.Response(503, json={"message": "Service temporarily unavailable", "errors": []})
        if self.drop and request.method == "POST" and request.url.path.endswith("/orders"):
            self.drop -= 1
            raise httpx.ConnectError("the place never reached Schwab", request=request)
        response = await self._inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/orders"):
            if self.lose:
                self.lose -= 1
                await response.aread()
                raise httpx.ReadTimeout("the answer was lost", request=request)
            if self.hold is not None:
                hold, self.hold = self.hold, None
                self.holding.set()
                await hold.wait()
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
async def lossy(schwab_api: SchwabApi, tmp_path: Path) -> AsyncIterator[tuple[Adapter, LosingAnswers]]:
    broker = SchwabBroker(config_for(schwab_api, schwab_api.new_token_file(tmp_path), request_timeout_s=1.0))
    events = Recorder()
    broker.set_event_handler(events)
    await broker.connect()
    session = broker.ctx.client.session
    transport = LosingAnswers(session._transport)
    session._transport = transport
    try:
        yield Adapter(broker, events, schwab_api.account_number), transport
    finally:
        broker.cancel_all()
        await broker.close()


async def test_a_lost_place_is_not_taken_for_an_identical_one_whose_answer_is_on_its_way(
    lossy: tuple[Adapter, LosingAnswers], paper: PaperStack
) -> None:
    adapter, transport = lossy
    bid, _ = await paper.quote("MSFT")
    price = below(bid, "0.57")
    lost = adapter.limit(price, qty=6)
    later = adapter.limit(price, qty=6)  # the same order again, another of the floor's
    transport.lose = 1
    adapter.broker.place(lost)
    release = transport.hold = asyncio.Event()
    adapter.broker.place(later)
    await asyncio.wait_for(transport.holding.wait(), 10.0)
    # Polls run while the later order's answer is held: both orders are at Schwab, neither bound.
    polled = adapter.broker.sync.poll
    await polled()
    await polled()
    release.set()
    first = await adapter.events.next(OrderAccepted, order_ref=later.order_ref)
    found = await adapter.events.next(OrderAccepted, order_ref=lost.order_ref)
    assert found.order_id != first.order_id
    # Schwab has the two orders, each once, each the floor's under its own ref.
    listed = [o for o in await adapter.broker.open_orders() if o.symbol == "MSFT" and o.limit_price == price]
    assert sorted(o.order_ref for o in listed) == sorted((lost.order_ref, later.order_ref))


async def test_a_lost_place_cancelled_meanwhile_is_cancelled_once_found(
    lossy: tuple[Adapter, LosingAnswers], paper: PaperStack
) -> None:
    adapter, transport = lossy
    bid, _ = await paper.quote("MSFT")
    order = adapter.limit(below(bid, "0.56"), qty=7)
    transport.lose = 1
    adapter.broker.place(order)
    await eventually(lambda: adapter.broker.ctx.book.by_ref[order.order_ref].unknown_since is not None)
    adapter.broker.cancel(order.order_ref)  # the floor (or its breaker) cancels it meanwhile
    await adapter.events.next(
        OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED, timeout=10.0
    )
    assert [o for o in await adapter.broker.open_orders() if o.order_ref == order.order_ref] == []


async def test_a_place_that_never_arrived_cancelled_meanwhile_is_not_sent(
    lossy: tuple[Adapter, LosingAnswers], paper: PaperStack
) -> None:
    adapter, transport = lossy
    bid, _ = await paper.quote("MSFT")
    order = adapter.limit(below(bid, "0.55"), qty=8)
    transport.drop = 1
    adapter.broker.place(order)
    await eventually(lambda: adapter.broker.ctx.book.by_ref[order.order_ref].unknown_since is not None)
    adapter.broker.cancel(order.order_ref)
    await adapter.events.next(
        OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED, timeout=10.0
    )
    sent = [o for o in await list_orders(adapter.broker.ctx) if o.limit_price == order.limit_price]
    assert sent == []  # never sent after the cancel, not even to be cancelled at once


async def test_a_replace_leaves_out_the_fills_the_adapter_had_not_heard_of(
    lossy: tuple[Adapter, LosingAnswers], paper: PaperStack
) -> None:
    adapter, transport = lossy
    broker = adapter.broker
    _, ask = await paper.quote("NVDA")
    transport.block_reads = True  # the fills at the place are not heard of
    order = adapter.limit(ask, qty=3000, symbol="NVDA")  # takes what the ask has, rests the rest
    broker.place(order)
    first = await eventually(lambda: broker.ctx.book.by_ref[order.order_ref].order_id)
    broker.modify(order.order_ref, limit_price=ask - Decimal("5"))  # a new level, resting
    try:
        transport.block_reads = False
        moved = await adapter.events.next(
            OrderAccepted, order_ref=order.order_ref, where=lambda e: e.order_id != first, timeout=10.0
        )
        client = broker.ctx.client
        old = parse_order((await client.get_order(first, broker.ctx.hash_of(adapter.account))).json())
        new = parse_order(
            (await client.get_order(moved.order_id, broker.ctx.hash_of(adapter.account))).json()
        )
        assert old.filled > 0
        assert old.filled + new.quantity <= order.quantity  # never more than the order at Schwab
    finally:
        broker.cancel(order.order_ref)
        await adapter.events.next(
            OrderStatusChanged, order_ref=order.order_ref, status=BrokerOrderStatus.CANCELLED
        )
        tracked = broker.ctx.book.by_ref[order.order_ref]
        if tracked.filled:  # the account flat again for the tests after
            flat = adapter.market(qty=tracked.filled, side=Side.SELL, symbol="NVDA")
            broker.place(flat)
            await adapter.events.next(
                OrderStatusChanged, order_ref=flat.order_ref, status=BrokerOrderStatus.FILLED
            )
