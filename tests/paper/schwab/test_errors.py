"""Bad requests get Schwab's status codes and error shapes (ServiceError on the Trader API,
the error list on market data), each with a correlation id."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from schwab.client import AsyncClient
from schwab.orders.equities import equity_buy_limit

from tests.fixtures.schwab import SchwabApi

API = "https://api.schwabapi.com"
LIMIT = equity_buy_limit("AAPL", 1, "100.00").build()


def assert_service_error(response: httpx.Response, status: int, message: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"message", "errors"} and body["message"] == message
    assert all(isinstance(e, str) for e in body["errors"])
    assert response.headers["Schwab-Client-CorrelId"]
    return body


async def test_a_body_that_is_not_json_is_refused_with_400(
    client: AsyncClient, schwab_api: SchwabApi
) -> None:
    # The client's own OAuth session (its bearer token) sends what no builder would.
    response = await client.session.post(
        f"{API}/trader/v1/accounts/{schwab_api.account_hash}/orders",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert_service_error(response, 400, "Invalid JSON in the request body")


async def test_an_unknown_account_hash_is_404(client: AsyncClient) -> None:
    response = await client.place_order("0" * 64, equity_buy_limit("AAPL", 1, "1.00"))
    body = assert_service_error(response, 404, "Account not found")
    assert "accountNumbers" in body["errors"][0]
    assert_service_error(await client.get_account("0" * 64), 404, "Account not found")


@pytest.mark.parametrize(
    ("order", "says"),
    [
        (equity_buy_limit("ZZZZ", 1, "1.00").build(), "symbol 'ZZZZ' is not traded here"),
        (equity_buy_limit("AAPL", 1, "100.001").build(), "is not a multiple of AAPL's tick 0.01"),
        (
            {**LIMIT, "orderLegCollection": [{**LIMIT["orderLegCollection"][0], "quantity": 0}]},
            "quantity must be a whole number",
        ),
        (
            {**equity_buy_limit("AAPL", 1, "100.00").build(), "duration": "FILL_OR_KILL"},
            "IMMEDIATE_OR_CANCEL",
        ),
        ({**{k: v for k, v in LIMIT.items() if k != "price"}, "orderType": "STOP"}, "needs stopPrice"),
        ({**equity_buy_limit("AAPL", 1, "100.00").build(), "orderStrategyType": "OCO"}, "only SINGLE"),
    ],
    ids=["unknown-symbol", "off-tick", "zero-quantity", "fill-or-kill", "stop-without-stop-price", "oco"],
)
async def test_an_invalid_order_is_400_naming_what_to_change(
    client: AsyncClient, schwab_api: SchwabApi, order: dict[str, Any], says: str
) -> None:
    body = assert_service_error(
        await client.place_order(schwab_api.account_hash, order), 400, "Invalid order"
    )
    assert says in body["errors"][0]


async def test_an_unknown_order_is_404(client: AsyncClient, schwab_api: SchwabApi) -> None:
    assert_service_error(await client.get_order(1, schwab_api.account_hash), 404, "Order not found")
    assert_service_error(await client.cancel_order(1, schwab_api.account_hash), 404, "Order not found")


async def test_listing_orders_without_both_times_is_400(client: AsyncClient, schwab_api: SchwabApi) -> None:
    response = await client.session.get(f"{API}/trader/v1/accounts/{schwab_api.account_hash}/orders")
    body = assert_service_error(response, 400, "Invalid request")
    assert "fromEnteredTime and toEnteredTime" in body["errors"][0]
    times = {"fromEnteredTime": "2026-01-01T00:00:00Z", "toEnteredTime": "2026-01-02T00:00:00Z"}
    for bad, says in (({"status": "DONE"}, "status 'DONE'"), ({"maxResults": "0"}, "maxResults")):
        response = await client.session.get(
            f"{API}/trader/v1/accounts/{schwab_api.account_hash}/orders", params={**times, **bad}
        )
        assert says in assert_service_error(response, 400, "Invalid request")["errors"][0]


async def test_a_bad_token_is_401_in_each_api_shape(schwab_api: SchwabApi) -> None:
    bad = {"Authorization": "Bearer not-a-token"}
    async with httpx.AsyncClient(base_url=schwab_api.base_url, headers=bad) as http:
        trader = await http.get("/trader/v1/accounts/accountNumbers")
        assert trader.status_code == 401 and trader.json() == {
            "message": "Client not authorized",
            "errors": [],
        }
        market = await http.get("/marketdata/v1/quotes", params={"symbols": "AAPL"})
        assert market.status_code == 401
        [error] = market.json()["errors"]
        assert error["status"] == "401" and error["title"] == "Unauthorized" and error["id"]
        unauthenticated = await http.get("/trader/v1/userPreference", headers={"Authorization": ""})
        assert unauthenticated.status_code == 401


async def test_quotes_answer_for_known_symbols(client: AsyncClient) -> None:
    response = await client.get_quotes(["AAPL", "MSFT"])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"AAPL", "MSFT"}
    assert body["AAPL"]["quote"]["bidPrice"] < body["AAPL"]["quote"]["askPrice"]


async def test_a_malformed_path_or_an_unknown_route_answers_in_the_service_error_shape(
    client: AsyncClient, schwab_api: SchwabApi
) -> None:
    orders = f"{API}/trader/v1/accounts/{schwab_api.account_hash}/orders"
    body = assert_service_error(await client.session.get(f"{orders}/not-a-number"), 400, "Invalid request")
    assert "orderId" in body["errors"][0] or "order_id" in body["errors"][0]
    assert_service_error(await client.session.get(f"{API}/trader/v1/no-such-thing"), 404, "Not Found")
