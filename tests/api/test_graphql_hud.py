"""What the HUD reads besides orders and books, end to end with the hot path and the paper venue:
the Kelly suggestion for a ticket (from the net liquidation the hot path sizes with), the
session's staged orders, another passkey added from an armed session, and what a flash crash's
trip did, through the ``breaker`` query and the ``breakerState`` subscription."""

from __future__ import annotations

import uuid
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction
from math import floor
from typing import Any

import asyncpg

from api.webauthn_ceremonies import Ceremonies
from hotpath.circuit_breaker_log import BREAKER_AGENT
from ledger.api_tokens import issue_token
from ledger.risk_profiles import get_profile
from tests.api.conftest import GraphQLApi
from tests.api.desk_live import (  # noqa: F401 - fixtures used by name
    HotPathProcess,
    active_floor,
    command_producer,
    hotpath_fixture,
    resting_limit,
    risk_profiles,
    trading_state,
)
from tests.api.gql_ws import graphql_socket
from tests.api.test_desk_graphql import EXECUTE, STAGE, cookie, mutate, ticket_input
from tests.fixtures.desk import ACCOUNT, DeskTrader, arm
from tests.fixtures.hotpath import await_event
from tests.fixtures.identity import sign_in
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import TIGHT_ACCOUNT
from tests.webauthn_authenticator import SoftwareAuthenticator
from trading.order_events import EventKind

SUGGEST = """
query Suggest($ticket: OrderTicketInput!, $p: Decimal!, $b: Decimal) {
  sizingSuggestion(ticket: $ticket, winProbability: $p, payoff: $b) {
    quantity maxTradeSize binding kellyFraction netLiquidation detail
  }
}"""
STAGED = "{ stagedOrders { stagedId orderHash orderHashPrefix symbol side quantity limitPrice createdAt } }"
BEGIN_ADD = """mutation { beginAddPasskey { __typename
  ... on CeremonyChallenge { challengeId optionsJson } ... on WebAuthnRefused { reason detail } } }"""
CONFIRM_ADD = """mutation($id: String!, $credential: String!) {
  confirmAddPasskey(challengeId: $id, credential: $credential) { __typename
    ... on CeremonyChallenge { challengeId optionsJson } ... on WebAuthnRefused { reason detail } } }"""
FINISH_ADD = """mutation($id: String!, $credential: String!) {
  finishAddPasskey(challengeId: $id, credential: $credential) { __typename
    ... on Authenticator { credentialId synced backupEligible }
    ... on WebAuthnRefused { reason detail } } }"""
TRIP_FIELDS = "state kind trip { reason symbol drop referencePrice price cancelledOrders cancelMillis }"


floor_breaker_hotpath = hotpath_fixture(breaker_agent=BREAKER_AGENT)
"""This module's hot path, its breaker signing as the floor's ``floor-breaker`` (the only breaker
key whose automatic trips the API process believes, as ``floor up`` runs them)."""


async def net_liquidation_row(pool: asyncpg.Pool) -> Decimal | None:
    value: Decimal | None = await pool.fetchval(
        "SELECT net_liquidation FROM account_values WHERE account = $1", ACCOUNT
    )
    return value


async def test_the_kelly_suggestion_sizes_with_the_net_liquidation_the_hot_path_has_from_the_broker(
    floor_up: HotPathProcess,
    graphql_api: GraphQLApi,
    alice: DeskTrader,
    paper: PaperStack,
    ledger_pool: asyncpg.Pool,
) -> None:
    bankroll = await eventually(lambda: net_liquidation_row(ledger_pool), timeout=20.0)
    profile = await get_profile(ledger_pool, ACCOUNT)
    assert profile is not None
    limit = await resting_limit(paper)  # rests: every fill is at the limit
    # An edge whose Kelly stake buys about 100 shares, so Kelly (not a profile cap) binds.
    f = (100 * limit / bankroll / profile.kelly_fraction).quantize(Decimal("0.0001"), ROUND_DOWN)
    p = (1 + f) / 2  # with b = 1, f* = 2p - 1 = f exactly
    got = (
        await graphql_api.query(SUGGEST, {"ticket": ticket_input(limit), "p": str(p)}, cookie=cookie(alice))
    )["sizingSuggestion"]
    kelly = floor(Fraction(f) * Fraction(bankroll) * Fraction(profile.kelly_fraction) / Fraction(limit))
    assert (got["quantity"], got["binding"]) == (kelly, "kelly"), got
    assert Decimal(got["kellyFraction"]) == f and Decimal(got["netLiquidation"]) == bankroll
    assert got["maxTradeSize"] == floor(Fraction(profile.max_trade_size) / Fraction(limit))

    # The same ticket on an account the trader is not allowed on is refused, not sized.
    other = ticket_input(limit, account=TIGHT_ACCOUNT)
    refused = await graphql_api.refusal(SUGGEST, {"ticket": other, "p": str(p)}, cookie=cookie(alice))
    assert refused == "query.bad_argument"
    assert (
        await graphql_api.refusal(SUGGEST, {"ticket": ticket_input(limit), "p": "0.6"})
        == "auth.unauthenticated"
    )
    no_edge = await graphql_api.refusal(
        SUGGEST, {"ticket": ticket_input(limit), "p": "1.5"}, cookie=cookie(alice)
    )
    assert no_edge == "query.bad_argument"


async def test_staged_orders_are_the_sessions_own_not_yet_executed(
    floor_up: HotPathProcess,
    graphql_api: GraphQLApi,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    paper: PaperStack,
    cli_pool: asyncpg.Pool,
    kafka_bootstrap: str,
) -> None:
    limit = await resting_limit(paper)
    first = await mutate(graphql_api, alice, STAGE, ticket=ticket_input(limit, quantity=1))
    second = await mutate(graphql_api, alice, STAGE, ticket=ticket_input(limit - 1, quantity=2))
    await arm(ceremonies, alice)
    executed = await mutate(graphql_api, alice, EXECUTE, id=first["stagedId"])
    assert executed["__typename"] == "Executed", executed

    staged = (await graphql_api.query(STAGED, cookie=cookie(alice)))["stagedOrders"]
    assert [(s["stagedId"], s["orderHash"], s["quantity"], s["limitPrice"]) for s in staged] == [
        (second["stagedId"], second["orderHash"], 2, str(limit - 1))
    ]
    # Another session of the same trader, and a program, see none of them.
    _, elsewhere = await sign_in(ceremonies, alice.trader)
    assert (await graphql_api.query(STAGED, cookie=f"floor_session={elsewhere}"))["stagedOrders"] == []
    _, token = await issue_token(cli_pool, f"hud-{uuid.uuid4().hex[:8]}", "read")
    assert (await graphql_api.query(STAGED, token=token))["stagedOrders"] == []
    await await_event(kafka_bootstrap, executed["commandId"], EventKind.SUBMITTED)


DISCARD = """mutation($id: String!) { discardStaged(stagedId: $id) { __typename
  ... on Discarded { stagedId } ... on Invalid { reason detail } } }"""


async def test_a_discarded_staged_order_is_neither_listed_nor_executed(
    graphql_api: GraphQLApi, alice: DeskTrader, ceremonies: Ceremonies
) -> None:
    staged = await mutate(graphql_api, alice, STAGE, ticket=ticket_input(Decimal("10.00")))
    assert staged["__typename"] == "Staged", staged
    discarded = await mutate(graphql_api, alice, DISCARD, id=staged["stagedId"])
    assert discarded == {"__typename": "Discarded", "stagedId": staged["stagedId"]}
    listed = await graphql_api.query(STAGED, cookie=cookie(alice))
    assert staged["stagedId"] not in {s["stagedId"] for s in listed["stagedOrders"]}
    await arm(ceremonies, alice)
    executed = await mutate(graphql_api, alice, EXECUTE, id=staged["stagedId"])
    assert (executed["__typename"], executed["reason"]) == ("Invalid", "desk.staged_discarded")


async def test_a_signed_in_trader_adds_a_passkey_its_own_passkey_confirmed(
    graphql_api: GraphQLApi, alice: DeskTrader, cli_pool: asyncpg.Pool
) -> None:
    _, token = await issue_token(cli_pool, f"hud-{uuid.uuid4().hex[:8]}", "ops")
    program = (await graphql_api.query(BEGIN_ADD, token=token))["beginAddPasskey"]
    assert (program["__typename"], program["reason"]) == ("WebAuthnRefused", "auth.trader_session_required")

    begun = await mutate(graphql_api, alice, BEGIN_ADD)
    assert begun["__typename"] == "CeremonyChallenge", begun
    alice.trader.authenticator.origin = graphql_api.origin  # the ceremony runs on this API's page
    challenge = await mutate(
        graphql_api,
        alice,
        CONFIRM_ADD,
        id=begun["challengeId"],
        credential=alice.trader.authenticator.get(begun["optionsJson"]),
    )
    assert challenge["__typename"] == "CeremonyChallenge", challenge
    phone = SoftwareAuthenticator(origin=graphql_api.origin, backup_eligible=True)
    added = await mutate(
        graphql_api,
        alice,
        FINISH_ADD,
        id=challenge["challengeId"],
        credential=phone.create(challenge["optionsJson"]),
    )
    assert (added["__typename"], added["synced"]) == ("Authenticator", True), added
    me = await graphql_api.query("{ me { authenticators { credentialId synced } } }", cookie=cookie(alice))
    assert {(a["credentialId"], a["synced"]) for a in me["me"]["authenticators"]} >= {
        (added["credentialId"], True)
    }
    assert len(me["me"]["authenticators"]) == 2


async def test_a_flash_crash_trip_shows_the_symbol_the_drop_and_the_orders_cancelled_in_ms(
    floor_up: HotPathProcess,
    graphql_api: GraphQLApi,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    paper: PaperStack,
    kafka_bootstrap: str,
) -> None:
    limit = await resting_limit(paper)  # 20 % under the bid: a 15 % crash never fills it
    staged = await mutate(graphql_api, alice, STAGE, ticket=ticket_input(limit))
    await arm(ceremonies, alice)
    executed = await mutate(graphql_api, alice, EXECUTE, id=staged["stagedId"])
    assert executed["__typename"] == "Executed", executed
    await await_event(kafka_bootstrap, executed["commandId"], EventKind.SUBMITTED)

    async with graphql_socket(graphql_api.ws_url, cookie=cookie(alice)) as socket:
        await socket.init()
        op = await socket.subscribe(f"subscription {{ breakerState {{ {TRIP_FIELDS} }} }}")
        now = (await socket.next(op))["breakerState"]
        assert now["state"] == "ACTIVE" and now["trip"] is None
        await paper.acontrol("POST", "/symbols/AAPL/flash-crash", {"pct": 15, "ms": 300})
        try:
            while (pushed := (await socket.next(op, timeout=20))["breakerState"])["state"] == "ACTIVE":
                pass
            await await_event(kafka_bootstrap, executed["commandId"], EventKind.CANCELLED)
        finally:
            # Back up for the rest of the session (1/0.85 - 1 = 17.65 %); floor_up re-arms.
            await paper.acontrol("POST", "/symbols/AAPL/move", {"pct": 17.65, "ms": 0})
    trip: dict[str, Any] = pushed["trip"]
    assert (pushed["state"], pushed["kind"], trip["reason"], trip["symbol"]) == (
        "HALTED",
        "breaker_tripped",
        "flash_crash",
        "AAPL",
    ), pushed
    reference, price, drop = Decimal(trip["referencePrice"]), Decimal(trip["price"]), Decimal(trip["drop"])
    assert Decimal("0.10") <= drop < 1  # a fraction past the 10 % threshold, not a percentage
    assert abs((reference - price) / reference - drop) < Decimal("0.0001")
    assert trip["cancelledOrders"] >= 1  # alice's order at least
    assert 1 <= trip["cancelMillis"] < 50
    queried = (await graphql_api.query(f"{{ breaker {{ {TRIP_FIELDS} }} }}", cookie=cookie(alice)))["breaker"]
    assert queried == pushed
    assert await trading_state(floor_up, "HALTED")
