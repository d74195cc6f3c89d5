"""The venue behind the emulator goes away and comes back, or is reset: 503 meanwhile, then
the orders it no longer has are CANCELED (a restarted venue starts empty) and trading goes on."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from schwab.client import AsyncClient
from schwab.orders.equities import equity_buy_limit, equity_buy_market
from schwab.utils import Utils

from config.ports import free_port
from config.settings import FloorSettings
from floor.supervisor import Supervisor
from tests.fixtures.paper import PaperStack
from tests.fixtures.schwab import SchwabApi, start_schwab_api
from tests.helpers import eventually
from tests.paper.schwab.conftest import schwab_client

# A venue of its own, killed and started again: seconds, so left to `make test-long`.
pytestmark = pytest.mark.long


@pytest.fixture(scope="module")
def venue_and_emulator(floor_settings: FloorSettings) -> Iterator[tuple[PaperStack, SchwabApi]]:
    settings = floor_settings.model_copy(
        update={"venue_port": free_port(), "venue_control_port": free_port(), "schwab_api_port": free_port()}
    )
    supervisor = Supervisor(Path(floor_settings.log_dir) / "schwab-venue-outage")
    try:
        stack = PaperStack(supervisor, settings, "schwab-outage")
        stack.start_venue()
        yield stack, start_schwab_api(supervisor, settings, prefix="schwab-outage")
    finally:
        supervisor.stop_all()


async def test_while_the_venue_is_down_orders_get_503_and_after_its_restart_lost_orders_are_canceled(
    venue_and_emulator: tuple[PaperStack, SchwabApi], tmp_path: Path
) -> None:
    stack, api = venue_and_emulator
    account = api.account_hash
    client = schwab_client(api, api.new_token_file(tmp_path))
    try:
        bid, _ = await stack.quote("AAPL")
        low = str((bid * Decimal("0.8")).quantize(Decimal("0.01")))
        placed = await client.place_order(account, equity_buy_limit("AAPL", 1, low))
        order_id = Utils(client, account).extract_order_id(placed)

        venue = stack.services.pop("venue")
        os.killpg(venue.pid, signal.SIGKILL)
        venue.process.wait()
        stack.supervisor.running.remove(venue)

        async def unavailable() -> httpx.Response | None:
            response = await client.place_order(account, equity_buy_limit("AAPL", 1, low))
            return response if response.status_code == 503 else None

        refused = await eventually(unavailable, timeout=10)
        assert refused.status_code == 503
        assert refused.json()["message"] == "Service temporarily unavailable"

        stack.start_venue()

        async def canceled() -> bool:
            return bool((await client.get_order(order_id, account)).json()["status"] == "CANCELED")

        await eventually(canceled, timeout=15)
        order = (await client.get_order(order_id, account)).json()
        assert "no longer has this order" in order["statusDescription"]
        again = await client.place_order(account, equity_buy_limit("AAPL", 1, low))
        assert again.status_code == 201, again.text
        assert Utils(client, account).extract_order_id(again) > order_id
    finally:
        await client.close_async_session()


async def test_a_venue_reset_ends_working_orders_and_starts_the_accounts_afresh(
    venue_and_emulator: tuple[PaperStack, SchwabApi], tmp_path: Path
) -> None:
    stack, api = venue_and_emulator
    account = api.account_hash
    client = schwab_client(api, api.new_token_file(tmp_path))
    fields = [AsyncClient.Account.Fields.POSITIONS]
    try:
        bought = await client.place_order(account, equity_buy_market("MSFT", 4))
        assert bought.status_code == 201, bought.text

        async def holding() -> bool:
            rows = (await client.get_account(account, fields=fields)).json()["securitiesAccount"]["positions"]
            return any(p["instrument"]["symbol"] == "MSFT" for p in rows)

        await eventually(holding, timeout=10)
        bid, _ = await stack.quote("MSFT")
        low = str((bid * Decimal("0.8")).quantize(Decimal("0.01")))
        working = Utils(client, account).extract_order_id(
            await client.place_order(account, equity_buy_limit("MSFT", 1, low))
        )
        await stack.acontrol("POST", "/reset", {"seed": 11})

        async def canceled() -> bool:
            return bool((await client.get_order(working, account)).json()["status"] == "CANCELED")

        await eventually(canceled, timeout=10)
        after = (await client.get_account(account, fields=fields)).json()["securitiesAccount"]
        assert after["positions"] == [] and after["currentBalances"]["cashBalance"] == 1_000_000.0
    finally:
        await client.close_async_session()
