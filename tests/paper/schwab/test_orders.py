"""Orders through the unchanged schwab-py client against the emulator over the paper venue."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from schwab.client import AsyncClient
from schwab.orders.equities import equity_buy_limit, equity_buy_market
from schwab.utils import Utils

from tests.fixtures.paper import PaperStack
from tests.fixtures.schwab import SchwabApi
from tests.helpers import eventually


async def test_account_numbers_name_the_configured_account_with_its_hash(
    client: AsyncClient, schwab_api: SchwabApi
) -> None:
    response = await client.get_account_numbers()
    assert response.status_code == 200
    assert response.json() == [
        {"accountNumber": schwab_api.account_number, "hashValue": schwab_api.account_hash}
    ]


async def test_limit_order_is_placed_replaced_with_a_new_id_and_cancelled(
    client: AsyncClient, schwab_api: SchwabApi, paper: PaperStack
) -> None:
    account = schwab_api.account_hash
    bid, _ = await paper.quote("MSFT")
    low = str((bid * Decimal("0.8")).quantize(Decimal("0.01")))
    placed = await client.place_order(account, equity_buy_limit("MSFT", 3, low))
    assert placed.status_code == 201, placed.text
    assert placed.content == b""
    order_id = Utils(client, account).extract_order_id(placed)
    assert order_id is not None
    order = (await client.get_order(order_id, account)).json()
    assert order["status"] == "WORKING"
    assert order["orderType"] == "LIMIT" and order["price"] == float(low) and order["quantity"] == 3

    replaced = await client.replace_order(account, order_id, equity_buy_limit("MSFT", 2, low))
    assert replaced.status_code == 201, replaced.text
    new_id = Utils(client, account).extract_order_id(replaced)
    assert new_id is not None and new_id != order_id
    old = (await client.get_order(order_id, account)).json()
    assert old["status"] == "REPLACED"
    assert old["replacingOrderCollection"][0]["orderId"] == new_id

    cancelled = await client.cancel_order(new_id, account)
    assert cancelled.status_code == 200 and cancelled.content == b""
    assert (await client.get_order(new_id, account)).json()["status"] == "CANCELED"
    again = await client.cancel_order(new_id, account)
    assert again.status_code == 400
    assert again.json()["message"] == "Order not cancelable"


async def test_market_order_fills_and_shows_its_executions(
    client: AsyncClient, schwab_api: SchwabApi
) -> None:
    account = schwab_api.account_hash
    placed = await client.place_order(account, equity_buy_market("AAPL", 2))
    assert placed.status_code == 201, placed.text
    order_id = Utils(client, account).extract_order_id(placed)

    async def filled() -> dict[str, Any]:
        order = (await client.get_order(order_id, account)).json()
        return order if order["status"] == "FILLED" else {}

    order = await eventually(filled, timeout=10)
    assert order["filledQuantity"] == 2 and order["remainingQuantity"] == 0
    legs = [leg for a in order["orderActivityCollection"] for leg in a["executionLegs"]]
    assert sum(leg["quantity"] for leg in legs) == 2
    listed = await client.get_orders_for_account(account)
    assert listed.status_code == 200
    assert order_id in [o["orderId"] for o in listed.json()]
