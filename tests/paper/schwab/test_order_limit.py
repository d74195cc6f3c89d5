"""The order limit: place, replace and cancel requests per account per minute, 429 beyond."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from schwab.client import AsyncClient
from schwab.orders.equities import equity_buy_limit
from schwab.utils import Utils

from tests.fixtures.paper import PaperStack
from tests.fixtures.schwab import SchwabApi


@pytest.fixture
async def limit_of_three(schwab_api: SchwabApi) -> AsyncIterator[None]:
    await schwab_api.set_order_limit(3)
    try:
        yield
    finally:
        await schwab_api.set_order_limit(schwab_api.settings.schwab_order_rate_per_min)


async def test_the_request_past_the_limit_is_429_and_reads_are_not_counted(
    client: AsyncClient, schwab_api: SchwabApi, paper: PaperStack, limit_of_three: None
) -> None:
    account = schwab_api.account_hash
    bid, _ = await paper.quote("NVDA")
    low = str((bid * Decimal("0.7")).quantize(Decimal("0.01")))
    first = await client.place_order(account, equity_buy_limit("NVDA", 1, low))
    second = await client.place_order(account, equity_buy_limit("NVDA", 1, low))
    assert (first.status_code, second.status_code) == (201, 201)
    for _ in range(3):
        assert (await client.get_account_numbers()).status_code == 200
    order_id = Utils(client, account).extract_order_id(first)
    assert (await client.cancel_order(order_id, account)).status_code == 200

    refused = await client.cancel_order(Utils(client, account).extract_order_id(second), account)
    assert refused.status_code == 429
    assert refused.json()["message"] == "Too many requests"
    assert "order request limit of 3 per minute" in refused.json()["errors"][0]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    status = await schwab_api.status()
    assert status["order_requests_in_window"][schwab_api.account_number] == 3

    await schwab_api.set_order_limit(0)
    left = await client.cancel_order(Utils(client, account).extract_order_id(second), account)
    assert left.status_code == 200
