"""A venue sub-account (the paper Schwab API's) is no IB client's business: its orders, fills and
positions never reach a gateway's clients, and IB's global cancel leaves its orders working."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from paper.venue.client import VenueClient
from paper.venue.messages import OrderAck, OrderSpec, PlaceOrder
from tests.fixtures.paper import PaperStack
from tests.paper.gateway.conftest import connected

CLIENT = 7200


@pytest.fixture
async def venue(paper: PaperStack) -> AsyncIterator[VenueClient]:
    client = await VenueClient.connect(paper.host, paper.venue_port, "sub-account-test")
    try:
        yield client
    finally:
        await client.close()


async def _place(venue: VenueClient, account: str, spec: OrderSpec) -> OrderAck:
    reply = await venue.place_order(
        PlaceOrder(CLIENT, await venue.next_valid_id(CLIENT), spec, symbol="MSFT", account=account)
    )
    assert isinstance(reply, OrderAck), reply
    return reply


async def test_an_ib_client_sees_no_order_fill_or_position_of_a_sub_account(
    paper: PaperStack, venue: VenueClient
) -> None:
    sub = paper.settings.schwab_accounts.split(",")[0]
    assert venue.welcome is not None and sub in venue.welcome.sub_accounts
    bid, _ = await paper.quote("MSFT")
    bought = await _place(venue, sub, OrderSpec("BUY", 2, "MKT"))
    working = await _place(
        venue, sub, OrderSpec("BUY", 1, "LMT", (bid * Decimal("0.8")).quantize(Decimal("0.01")))
    )
    try:
        async with connected(paper.gateway_port, 97) as ib:
            listed = {t.order.permId for t in await ib.reqAllOpenOrdersAsync()}
            assert working.perm_id not in listed
            fills = await ib.reqExecutionsAsync()
            assert bought.perm_id not in {f.execution.permId for f in fills}
            assert sub not in {f.execution.acctNumber for f in fills}
            await ib.reqPositionsAsync()
            assert sub not in {p.account for p in ib.positions()}
        assert sub in {p.account for p in await venue.positions(sub)}
    finally:
        await venue.cancel_order(CLIENT, working.update.order_id)
