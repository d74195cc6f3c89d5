"""The hot path trades the symbols it is given less those the broker has no contract for,
against the real paper gateway."""

from __future__ import annotations

from brokers.base import DepthSnapshot, Quote
from brokers.ibkr import IbkrBroker, IbkrConfig
from hotpath.streams import stream_symbols
from tests.fixtures.paper import HOST, PaperStack
from tests.helpers import eventually


async def test_a_symbol_the_broker_has_no_contract_for_is_not_traded_and_the_others_stream(
    paper: PaperStack,
) -> None:
    broker = IbkrBroker(IbkrConfig(HOST, paper.gateway_port, paper.standby_port, client_id=33))
    await broker.connect()
    quotes: list[Quote] = []
    books: list[DepthSnapshot] = []
    try:
        traded = await stream_symbols(broker, ["AAPL", "ZZZZ"], quotes.append, books.append)

        assert traded == frozenset({"AAPL"})
        await eventually(lambda: any(q.symbol == "AAPL" for q in quotes) and bool(books), timeout=10.0)
    finally:
        await broker.close()
