"""An account's positions and balances are its own: the fills of the orders placed through it,
valued at the venue's marks (the venue sub-account of its number), whatever the venue's primary
account trades."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from schwab.client import AsyncClient
from schwab.orders.equities import equity_buy_market

from paper.venue.client import VenueClient
from paper.venue.messages import OrderSpec, PlaceOrder
from tests.fixtures.paper import PaperStack
from tests.fixtures.schwab import SchwabApi
from tests.helpers import eventually

FIELDS = [AsyncClient.Account.Fields.POSITIONS]


def held(account: dict[str, Any], symbol: str) -> float:
    rows = account["securitiesAccount"].get("positions", [])
    return sum(p["longQuantity"] - p["shortQuantity"] for p in rows if p["instrument"]["symbol"] == symbol)


async def test_fills_through_the_account_are_its_positions_and_others_on_the_venue_are_not(
    client: AsyncClient, schwab_api: SchwabApi, paper: PaperStack
) -> None:
    account = schwab_api.account_hash
    before = (await client.get_account(account, fields=FIELDS)).json()
    assert "positions" not in (await client.get_account(account)).json()["securitiesAccount"]

    # Another client of the venue (as an IBKR gateway's would be) buys AMZN: not this account's.
    venue = await VenueClient.connect(paper.host, paper.venue_port, "schwab-accounts-test")
    try:
        next_id = await venue.next_valid_id(91)
        other = await venue.place_order(PlaceOrder(91, next_id, OrderSpec("BUY", 3, "MKT"), symbol="AMZN"))
        assert other.update.filled == 3  # type: ignore[union-attr]
    finally:
        await venue.close()

    placed = await client.place_order(account, equity_buy_market("AMZN", 2))
    assert placed.status_code == 201, placed.text

    async def bought() -> dict[str, Any]:
        now = (await client.get_account(account, fields=FIELDS)).json()
        return now if held(now, "AMZN") == held(before, "AMZN") + 2 else {}

    after = await eventually(bought, timeout=10)
    cash = Decimal(str(after["securitiesAccount"]["currentBalances"]["cashBalance"]))
    was = Decimal(str(before["securitiesAccount"]["currentBalances"]["cashBalance"]))
    _, ask = await paper.quote("AMZN")
    assert Decimal(0) < was - cash < 2 * ask * Decimal("1.05")
    equity = after["aggregatedBalance"]["liquidationValue"]
    assert equity == after["securitiesAccount"]["currentBalances"]["liquidationValue"]
