"""The Kelly suggestion sizes only with a net liquidation the hot path confirmed lately: a row
it stopped refreshing (broker disconnected, hot path down) is refused, with its age."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from api.webauthn_ceremonies import Ceremonies
from config.settings import FloorSettings
from ledger.account_values import record_net_liquidation
from ledger.risk_profiles import set_profile
from tests.api.conftest import GraphQLApi
from tests.api.test_desk_graphql import cookie, ticket_input
from tests.api.test_graphql_hud import SUGGEST
from tests.fixtures.desk import desk_trader
from tests.fixtures.hotpath import fresh_agent
from tests.hotpath.conftest import MAIN_PROFILE
from trading.sizing_suggestion import STALE_BANKROLL, STALE_BANKROLL_S


async def test_a_bankroll_the_hot_path_stopped_confirming_is_not_sized_with(
    graphql_api: GraphQLApi,
    ceremonies: Ceremonies,
    cli_pool: asyncpg.Pool,
    ledger_pool: asyncpg.Pool,
    floor_settings: FloorSettings,
) -> None:
    account = f"DU{uuid.uuid4().hex[:8]}"  # no hot path reports it: this test alone writes its row
    operator = await fresh_agent(ledger_pool, f"ops-{uuid.uuid4().hex[:8]}", "operator")
    await set_profile(
        ledger_pool, account, MAIN_PROFILE, operator_id=operator.agent_id, operator_key=operator.private_key
    )
    trader = await desk_trader(ceremonies, cli_pool, ledger_pool, floor_settings, accounts=(account,))
    variables = {"ticket": ticket_input(Decimal("100"), account=account), "p": "0.6"}
    as_hotpath = await asyncpg.connect(floor_settings.role_url("hotpath"))
    try:
        old = datetime.now(UTC) - timedelta(seconds=STALE_BANKROLL_S + 50)
        await record_net_liquidation(as_hotpath, account, Decimal("1000000"), old)
        stale = (await graphql_api.query(SUGGEST, variables, cookie=cookie(trader)))["sizingSuggestion"]
        assert (stale["quantity"], stale["binding"]) == (0, STALE_BANKROLL), stale
        age = re.search(r"confirmed by the broker ([0-9.]+) s ago", stale["detail"])
        assert age is not None and float(age.group(1)) >= STALE_BANKROLL_S + 50, stale["detail"]
        assert stale["maxTradeSize"] > 0  # the cap does not depend on the bankroll

        await record_net_liquidation(as_hotpath, account, Decimal("1000000"), datetime.now(UTC))
        fresh = (await graphql_api.query(SUGGEST, variables, cookie=cookie(trader)))["sizingSuggestion"]
        assert fresh["binding"] != STALE_BANKROLL and fresh["quantity"] > 0, fresh
    finally:
        await as_hotpath.close()
