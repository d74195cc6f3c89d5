"""The gateway's own word about its link to IB (1100, 1101, 1102) and the L2 feed's gaps."""

from __future__ import annotations

import asyncio

from brokers.base import DepthSnapshot, Quote, SessionChange, SessionChanged
from brokers.ibkr import IbkrBroker, IbkrConfig
from tests.brokers.conftest import HOST, PaperStack, kill_gateway
from tests.brokers.recorder import Recorder
from tests.brokers.test_ibkr_market import Stream


def _drain(stream: Stream[object]) -> None:
    while not stream.items.empty():
        stream.items.get_nowait()


async def test_lost_upstream_keeps_the_connection_and_1101_requests_the_market_data_again(
    own_stack: PaperStack,
) -> None:
    rec = Recorder()
    b = IbkrBroker(IbkrConfig(HOST, own_stack.gateway_port, client_id=41))
    b.set_event_handler(rec)
    await b.connect()
    try:
        quotes: Stream[Quote] = Stream()
        depth: Stream[DepthSnapshot] = Stream()
        await b.subscribe_quotes("AAPL", quotes)
        await b.subscribe_depth("AAPL", depth)
        await quotes.next()
        assert not (await depth.next()).gap
        session = b.router.sessions[0]
        ib = session.ib

        await own_stack.acontrol(
            "POST", "/gateways/primary/upstream-loss", {"seconds": 0.5, "data_lost": True}
        )
        down = await rec.next(SessionChanged, change=SessionChange.DISCONNECTED)
        assert "1100" in down.cause
        assert session.ib is ib and ib.isConnected()  # honoured, not hung up on
        await rec.next(SessionChanged, change=SessionChange.RECONNECTED)
        assert session.ib is ib  # the same connection carries orders again
        await b.wait_connected()
        _drain(quotes)  # type: ignore[arg-type]
        _drain(depth)  # type: ignore[arg-type]
        # The gateway dropped the subscriptions (1101): only a new request brings data back.
        assert (await quotes.next()).symbol == "AAPL"
        book = await depth.next()
        assert book.gap and book.bids and book.asks
        assert not (await depth.next()).gap
    finally:
        await b.close()


async def test_the_first_book_after_a_failover_is_marked_as_following_a_gap(own_stack: PaperStack) -> None:
    rec = Recorder()
    b = IbkrBroker(IbkrConfig(HOST, own_stack.gateway_port, own_stack.standby_port, client_id=42))
    b.set_event_handler(rec)
    await b.connect()
    try:
        depth: Stream[DepthSnapshot] = Stream()
        await b.subscribe_depth("MSFT", depth)
        assert not (await depth.next()).gap
        await rec.next(SessionChanged, change=SessionChange.STANDBY_UP)
        kill_gateway(own_stack, "primary")
        await rec.next(SessionChanged, change=SessionChange.FAILED_OVER)
        await b.wait_connected()
        books = [await depth.next()]
        while not books[-1].gap:
            books.append(await asyncio.wait_for(depth.next(), 10))
        assert books[-1].bids and books[-1].asks
        assert not (await depth.next()).gap
    finally:
        await b.close()
