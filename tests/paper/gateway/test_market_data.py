"""L1 ticks and L2 depth through the gateway agree with the venue's own book."""

from __future__ import annotations

from typing import Any

from ib_async import IB, Ticker

from paper.venue.client import VenueClient
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.paper.gateway.conftest import connected, stock


def _count_depth_updates(ib: IB) -> list[int]:
    counter = [0]
    original = ib.wrapper.updateMktDepthL2

    def counting(*args: Any, **kwargs: Any) -> None:
        counter[0] += 1
        original(*args, **kwargs)

    # The decoder looks the handler up on the wrapper per message (updateMktDepth forwards
    # to updateMktDepthL2), so an instance attribute sees every row.
    ib.wrapper.updateMktDepthL2 = counting  # type: ignore[method-assign]
    return counter


def _view(ticker: Ticker) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    return (
        [(level.price, level.size) for level in ticker.domBids],
        [(level.price, level.size) for level in ticker.domAsks],
    )


async def test_l1_ticks_stream_a_consistent_quote(paper: PaperStack) -> None:
    async with connected(paper.gateway_port, 61) as ib:
        contract = await stock(ib)
        ticker = ib.reqMktData(contract)
        updates = [0]
        ticker.updateEvent += lambda _: updates.__setitem__(0, updates[0] + 1)
        await eventually(lambda: ticker.bid > 0 and ticker.ask > 0 and ticker.close > 0)
        assert ticker.bid < ticker.ask
        assert ticker.bidSize > 0 and ticker.askSize > 0
        assert ticker.marketDataType == 1
        await eventually(lambda: updates[0] >= 5)
        assert ticker.bid < ticker.ask
        ib.cancelMktData(contract)


async def test_each_trade_reaches_ib_async_as_an_rtvolume_tick_in_the_venues_order(paper: PaperStack) -> None:
    """Generic tick 233, as TWS sends it: one ``price;size;ms;volume;vwap;single`` per trade."""
    async with connected(paper.gateway_port, 63) as ib:
        contract = await stock(ib, "AMZN")
        ticks: list[tuple[float, float]] = []

        def on_tickers(tickers: set[Ticker]) -> None:
            for ticker in tickers:
                ticks.extend((t.price, t.size) for t in ticker.ticks if t.tickType == 48)

        ib.pendingTickersEvent += on_tickers
        ticker = ib.reqMktData(contract, "233")
        async with paper.event_rate("AMZN", 400):
            await eventually(lambda: len(ticks) >= 10)
        volume = ticker.rtVolume
        ib.cancelMktData(contract)
    prints = (await paper.acontrol("GET", "/symbols/AMZN/tape"))["prints"]
    n = len(ticks)
    starts = [
        k
        for k in range(len(prints) - n + 1)
        if [(float(p["price"]), float(p["size"])) for p in prints[k : k + n]] == ticks
    ]
    assert starts, "the ticks are consecutive prints of the venue's tape"
    assert any(prints[k + n - 1]["volume"] >= volume for k in starts)


async def test_snapshot_request_ends(paper: PaperStack) -> None:
    async with connected(paper.gateway_port, 62) as ib:
        contract = await stock(ib, "MSFT")
        [ticker] = await ib.reqTickersAsync(contract)
        assert ticker.bid > 0 and ticker.ask > ticker.bid


async def test_depth_matches_the_venue_book_after_10000_updates(private_paper: PaperStack) -> None:
    await private_paper.acontrol("POST", "/symbols/AAPL/rate", {"rate": 5000})
    observer = await VenueClient.connect("127.0.0.1", private_paper.venue_port, "observer")
    try:
        async with (
            connected(private_paper.gateway_port, 63) as five,
            connected(private_paper.standby_port, 64) as ten,
        ):
            counted = _count_depth_updates(five)
            contract = await stock(five)
            shallow = five.reqMktDepth(contract, numRows=5)
            deep = ten.reqMktDepth(await stock(ten), numRows=10)
            await eventually(lambda: counted[0] >= 10_000, timeout=60)
            await private_paper.acontrol("POST", "/clock", {"paused": True})
            book = await observer.subscribe_depth("AAPL")
            bids = [(float(lv.price), float(lv.size)) for lv in book.bids]
            asks = [(float(lv.price), float(lv.size)) for lv in book.asks]
            await eventually(lambda: _view(shallow) == (bids[:5], asks[:5]))
            await eventually(lambda: _view(deep) == (bids[:10], asks[:10]))
            assert bids[0][0] < asks[0][0]
    finally:
        await private_paper.acontrol("POST", "/clock", {"paused": False})
        await private_paper.acontrol("POST", "/symbols/AAPL/rate", {"rate": 20})
        await observer.close()


async def test_unknown_symbol_gets_200(paper: PaperStack) -> None:
    from ib_async import Stock

    async with connected(paper.gateway_port, 65) as ib:
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, *_: codes.append(code)
        assert not any(await ib.qualifyContractsAsync(Stock("NOPE", "SMART", "USD")))
        await eventually(lambda: 200 in codes)


async def test_depth_exchanges_list_the_venue_listings(paper: PaperStack) -> None:
    async with connected(paper.gateway_port, 66) as ib:
        descriptions = await ib.reqMktDepthExchangesAsync()
        assert {d.listingExch for d in descriptions} == {"NASDAQ", "NYSE"}
        assert all(d.secType == "STK" and d.serviceDataType == "Deep" for d in descriptions)


async def test_venue_reset_resets_subscribers_books(private_paper: PaperStack) -> None:
    observer = await VenueClient.connect("127.0.0.1", private_paper.venue_port, "observer-reset")
    try:
        async with connected(private_paper.gateway_port, 67) as ib:
            codes: list[int] = []
            ib.errorEvent += lambda req_id, code, *_: codes.append(code)
            ticker = ib.reqMktDepth(await stock(ib, "JPM"), numRows=5)
            await eventually(lambda: ticker.domBids and ticker.domAsks)
            await private_paper.acontrol("POST", "/reset", {"seed": 3, "paused": True})
            await eventually(lambda: 317 in codes)
            book = await observer.subscribe_depth("JPM")
            bids = [(float(lv.price), float(lv.size)) for lv in book.bids[:5]]
            asks = [(float(lv.price), float(lv.size)) for lv in book.asks[:5]]
            await eventually(lambda: _view(ticker) == (bids, asks))
    finally:
        await private_paper.acontrol("POST", "/clock", {"paused": False})
        await observer.close()
