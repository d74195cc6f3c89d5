"""L1 and L2 streams through the adapter, from the paper venue's order-flow model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Generic, TypeVar

import pytest

from brokers.base import (
    BrokerOrder,
    DepthSnapshot,
    OrderType,
    Quote,
    ReadOnlySession,
    SessionChange,
    SessionChanged,
    Side,
    Trade,
)
from brokers.ib_market import UnknownSymbol
from brokers.ibkr import IbkrBroker, IbkrConfig
from tests.brokers.conftest import HOST, PaperStack, kill_gateway
from tests.brokers.recorder import Recorder

T = TypeVar("T")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Stream(Generic[T]):
    def __init__(self) -> None:
        self.items: asyncio.Queue[T] = asyncio.Queue()

    def __call__(self, item: T) -> None:
        self.items.put_nowait(item)

    async def next(self) -> T:
        return await asyncio.wait_for(self.items.get(), 10)


@pytest.fixture()
async def broker(paper: PaperStack) -> AsyncIterator[IbkrBroker]:
    b = IbkrBroker(IbkrConfig(HOST, paper.gateway_port, paper.standby_port, client_id=31))
    await b.connect()
    yield b
    await b.close()


async def test_quotes_stream_with_exact_prices(broker: IbkrBroker) -> None:
    quotes: Stream[Quote] = Stream()
    await broker.subscribe_quotes("AAPL", quotes)
    q = await quotes.next()
    while q.bid is None or q.ask is None:
        q = await quotes.next()
    assert q.symbol == "AAPL" and q.bid < q.ask
    assert q.bid == q.bid.quantize(Decimal("0.01"))  # on the venue's cent grid, exactly
    assert q.recv_ns > 0


async def test_depth_stream_delivers_the_whole_book_sorted(broker: IbkrBroker) -> None:
    books: Stream[DepthSnapshot] = Stream()
    sub = await broker.subscribe_depth("MSFT", books, rows=5)
    book = await books.next()
    while not (book.bids and book.asks):
        book = await books.next()
    assert book.symbol == "MSFT"
    assert len(book.bids) <= 5 and len(book.asks) <= 5
    assert [lv.price for lv in book.bids] == sorted((lv.price for lv in book.bids), reverse=True)
    assert [lv.price for lv in book.asks] == sorted(lv.price for lv in book.asks)
    assert book.bids[0].price < book.asks[0].price
    await broker.unsubscribe(sub)


async def test_trades_stream_every_venue_print_with_its_exact_price_time_and_volume(
    broker: IbkrBroker, paper: PaperStack
) -> None:
    """RTVolume, read raw: the venue's decimal price, its millisecond and its running volume."""
    trades: Stream[Trade] = Stream()
    quotes: Stream[Quote] = Stream()
    await broker.subscribe_quotes("NVDA", quotes)
    sub = await broker.subscribe_trades("NVDA", trades)
    async with paper.event_rate("NVDA", 400):
        got = [await trades.next() for _ in range(15)]
    prints = {p["volume"]: p for p in (await paper.acontrol("GET", "/symbols/NVDA/tape"))["prints"]}
    for before, trade in zip(got, got[1:], strict=False):
        assert trade.venue_volume == (before.venue_volume or 0) + trade.size, "none missed, none twice"
    for trade in got:
        assert trade.symbol == "NVDA" and trade.venue_volume is not None
        venue = prints[trade.venue_volume]
        assert (str(trade.price), trade.size) == (venue["price"], venue["size"])
        assert trade.time.utcoffset() == timedelta(0)
        assert (trade.time - EPOCH) // timedelta(milliseconds=1) == venue["time_ns"] // 1_000_000
    # One L1 request serves both: leaving the trades leaves the quotes flowing.
    await broker.unsubscribe(sub)
    while not quotes.items.empty():
        quotes.items.get_nowait()
    assert (await quotes.next()).symbol == "NVDA"


async def test_unknown_symbol_is_named(broker: IbkrBroker) -> None:
    with pytest.raises(UnknownSymbol):
        await broker.subscribe_quotes("ZZZZ", Stream[Quote]())


async def test_quotes_resume_on_the_standby_after_failover(own_stack: PaperStack) -> None:
    rec = Recorder()
    b = IbkrBroker(IbkrConfig(HOST, own_stack.gateway_port, own_stack.standby_port, client_id=32))
    b.set_event_handler(rec)
    await b.connect()
    try:
        quotes: Stream[Quote] = Stream()
        trades: Stream[Trade] = Stream()
        await b.subscribe_quotes("AAPL", quotes)
        await b.subscribe_trades("AAPL", trades)
        await quotes.next()
        await rec.next(SessionChanged, change=SessionChange.STANDBY_UP)
        kill_gateway(own_stack, "primary")
        await rec.next(SessionChanged, change=SessionChange.FAILED_OVER)
        await b.wait_connected()
        while not quotes.items.empty():
            quotes.items.get_nowait()
        after = await quotes.next()
        assert after.symbol == "AAPL"
        while not trades.items.empty():
            trades.items.get_nowait()
        assert (await trades.next()).symbol == "AAPL"  # the tape goes on on the standby
        assert b.active_gateway == f"{HOST}:{own_stack.standby_port}"
    finally:
        await b.close()


async def test_a_read_only_connection_streams_quotes_and_refuses_every_order_call(paper: PaperStack) -> None:
    b = IbkrBroker(IbkrConfig(HOST, paper.gateway_port, paper.standby_port, client_id=34, readonly=True))
    await b.connect()
    try:
        order = BrokerOrder("ro-1", "DU1234567", "AAPL", Side.BUY, 1, OrderType.MKT)
        calls = (
            lambda: b.place(order),
            lambda: b.cancel(order.order_ref),
            b.cancel_all,
            lambda: b.modify(order.order_ref, quantity=2),
        )
        for call in calls:
            with pytest.raises(ReadOnlySession):
                call()
        quotes: Stream[Quote] = Stream()
        await b.subscribe_quotes("AAPL", quotes)
        quote = await quotes.next()
        assert quote.symbol == "AAPL"
    finally:
        await b.close()
