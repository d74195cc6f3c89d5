"""Orders through the unchanged schwab-py client against the emulator over the paper venue."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
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
    assert placed.content == b"" and placed.headers["Schwab-Client-CorrelId"]
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


def _order(order_type: str, instruction: str, symbol: str, **prices: str) -> dict[str, Any]:
    """An order as schwab-py's OrderBuilder makes it (prices as strings)."""
    return {
        "session": "NORMAL",
        "duration": "GOOD_TILL_CANCEL",
        "orderType": order_type,
        "orderStrategyType": "SINGLE",
        "orderLegCollection": [
            {
                "instruction": instruction,
                "instrument": {"assetType": "EQUITY", "symbol": symbol},
                "quantity": 1,
            }
        ],
        **prices,
    }


@pytest.mark.parametrize(
    ("order_type", "extra", "echoed"),
    [
        ("STOP", {"stopPrice": "{far}"}, {"stopPrice": "{far}"}),
        (
            "STOP_LIMIT",
            {"stopPrice": "{far}", "price": "{farther}"},
            {"stopPrice": "{far}", "price": "{farther}"},
        ),
        (
            "TRAILING_STOP",
            {"stopPriceLinkBasis": "LAST", "stopPriceLinkType": "VALUE", "stopPriceOffset": "25.00"},
            {"stopPriceLinkType": "VALUE", "stopPriceOffset": "25.00"},
        ),
        (
            "TRAILING_STOP",
            {"stopPriceLinkBasis": "LAST", "stopPriceLinkType": "PERCENT", "stopPriceOffset": "20"},
            {"stopPriceLinkType": "PERCENT", "stopPriceOffset": "20"},
        ),
    ],
    ids=["stop", "stop-limit", "trailing-amount", "trailing-percent"],
)
async def test_each_stop_type_works_until_cancelled_and_reads_back_as_sent(
    client: AsyncClient,
    schwab_api: SchwabApi,
    paper: PaperStack,
    order_type: str,
    extra: dict[str, str],
    echoed: dict[str, str],
) -> None:
    account = schwab_api.account_hash
    bid, _ = await paper.quote("JPM")
    values = {
        "{far}": str((bid * Decimal("0.7")).quantize(Decimal("0.01"))),
        "{farther}": str((bid * Decimal("0.69")).quantize(Decimal("0.01"))),
    }
    fields = {k: values.get(v, v) for k, v in extra.items()}
    placed = await client.place_order(account, _order(order_type, "SELL", "JPM", **fields))
    assert placed.status_code == 201, placed.text
    order_id = Utils(client, account).extract_order_id(placed)
    order = (await client.get_order(order_id, account)).json()
    assert order["status"] == "WORKING" and order["orderType"] == order_type
    for key, value in echoed.items():
        expected = values.get(value, value)
        assert order[key] == (float(expected) if expected[0].isdigit() else expected), key
    # A replace (how a stop is moved at Schwab) makes a new order; the old one is REPLACED.
    replaced = await client.replace_order(account, order_id, _order(order_type, "SELL", "JPM", **fields))
    assert replaced.status_code == 201, replaced.text
    new_id = Utils(client, account).extract_order_id(replaced)
    assert (await client.get_order(order_id, account)).json()["status"] == "REPLACED"
    working = await client.get_orders_for_account(account, status=AsyncClient.Order.Status.WORKING)
    assert new_id in [o["orderId"] for o in working.json()] and order_id not in [
        o["orderId"] for o in working.json()
    ]
    assert (await client.cancel_order(new_id, account)).status_code == 200
    assert (await client.get_order(new_id, account)).json()["status"] == "CANCELED"


async def test_a_replacement_the_venue_refuses_leaves_the_old_order_cancelled_and_says_so(
    client: AsyncClient, schwab_api: SchwabApi, paper: PaperStack
) -> None:
    account = schwab_api.account_hash
    bid, _ = await paper.quote("MSFT")
    low = str((bid * Decimal("0.8")).quantize(Decimal("0.01")))
    placed = await client.place_order(account, equity_buy_limit("MSFT", 1, low))
    order_id = Utils(client, account).extract_order_id(placed)
    too_big = await client.replace_order(account, order_id, equity_buy_limit("MSFT", 10_000_000, low))
    assert too_big.status_code == 400
    assert too_big.json()["errors"][-1] == f"order {order_id} was cancelled and nothing replaced it"
    old = (await client.get_order(order_id, account)).json()
    assert old["status"] == "CANCELED" and old["statusDescription"].startswith("Replacement refused")
    assert "replacingOrderCollection" not in old
