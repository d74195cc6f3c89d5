"""The trading mutations over real HTTP against the API process (``graphql_api``), with the hot
path trading the paper venue: each expected outcome is a member of the mutation's result union,
never an error; an unauthenticated caller gets the named error."""

from __future__ import annotations

import dataclasses
import json
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from api import desk_results as d
from api.principals import SESSION_COOKIE
from api.webauthn_ceremonies import Ceremonies
from ledger.api_tokens import issue_token
from tests.api.conftest import GraphQLApi
from tests.api.desk_live import (  # noqa: F401 - fixtures used by name
    HotPathProcess,
    active_floor,
    command_producer,
    module_hotpath,
    resting_limit,
    risk_profiles,
    trading_state,
)
from tests.factories import Agent, cancel_command, enter_command
from tests.fixtures.desk import ACCOUNT, DeskTrader, arm
from tests.fixtures.hotpath import await_event
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from trading.arming_limits import OVER_QUANTITY, SYMBOL_NOT_ARMED
from trading.order_events import EventKind

STAGE = """
mutation Stage($ticket: OrderTicketInput!) {
  stageOrder(ticket: $ticket) {
    __typename
    ... on Staged { stagedId orderHash orderHashPrefix quantity limitPrice stopLoss side orderType tif }
    ... on Invalid { reason detail field }
  }
}"""
EXECUTE = """
mutation Execute($id: String!, $assertion: StepUpAssertionInput) {
  executeOrder(stagedId: $id, assertion: $assertion) {
    __typename
    ... on Executed { commandId state ceremony }
    ... on NotArmed { reason detail }
    ... on GrantExceeded { reason detail }
    ... on StepUpRequired { reason challengeId optionsJson expiresAt orderHash orderHashPrefix }
    ... on RiskRejected { commandId reason }
    ... on BreakerHalted { commandId reason }
    ... on Invalid { reason detail field }
  }
}"""
CANCEL = """
mutation Cancel($id: String!) {
  cancelOrder(commandId: $id) { __typename ... on CancelSent { commandId target } ... on Invalid { reason } }
}"""
CANCEL_ALL = """
mutation CancelAll($account: String!, $symbol: String) {
  cancelAllOrders(account: $account, symbol: $symbol) {
    __typename ... on CancelSent { commandId target } ... on Invalid { reason field }
  }
}"""
TRIP = """
mutation { tripBreaker { __typename
  ... on BreakerCommandSent { commandId kind } ... on Invalid { reason } } }"""
REARM = """
mutation { rearmBreaker { __typename
  ... on BreakerCommandSent { commandId kind } ... on NotArmed { reason } ... on Invalid { reason } } }"""
SUBMIT = """
mutation Submit($envelope: String!) {
  submitCommand(envelope: $envelope) {
    __typename
    ... on CommandPublished { commandId partition offset }
    ... on CommandRefused { reason detail field status }
  }
}"""


def cookie(who: DeskTrader) -> str:
    return f"{SESSION_COOKIE}={who.cookie}"


async def mutate(api: GraphQLApi, who: DeskTrader, query: str, **variables: Any) -> dict[str, Any]:
    data = await api.query(query, variables, cookie=cookie(who))
    (result,) = data.values()
    assert isinstance(result, dict)
    return result


def ticket_input(limit: Decimal, quantity: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "account": ACCOUNT,
        "symbol": "AAPL",
        "side": "BUY",
        "orderType": "LMT",
        "quantity": quantity,
        "limitPrice": str(limit),
        "stopLoss": str(limit - 5),
        **fields,
    }


async def test_stage_execute_step_up_and_cancel_over_graphql(
    floor_up: HotPathProcess,
    graphql_api: GraphQLApi,
    alice: DeskTrader,
    ceremonies: Ceremonies,
    paper: PaperStack,
    kafka_bootstrap: str,
) -> None:
    limit = await resting_limit(paper)
    staged = await mutate(graphql_api, alice, STAGE, ticket=ticket_input(limit, quantity=2))
    assert staged["__typename"] == "Staged", staged
    assert (staged["quantity"], staged["limitPrice"], staged["side"], staged["tif"]) == (
        2,
        str(limit),
        "BUY",
        "DAY",
    )
    assert staged["orderHashPrefix"] == staged["orderHash"][:8]

    unarmed = await mutate(graphql_api, alice, EXECUTE, id=staged["stagedId"])
    assert (unarmed["__typename"], unarmed["reason"]) == ("NotArmed", d.NOT_ARMED)

    await arm(ceremonies, alice, max_quantity=1)
    required = await mutate(graphql_api, alice, EXECUTE, id=staged["stagedId"])
    assert (required["__typename"], required["reason"]) == ("StepUpRequired", OVER_QUANTITY)
    assert required["orderHash"] == staged["orderHash"]
    # Through the API process, whose origin is its own address.
    browser = dataclasses.replace(alice.trader.authenticator, origin=graphql_api.origin)
    credential = browser.get(required["optionsJson"])

    executed = await mutate(
        graphql_api,
        alice,
        EXECUTE,
        id=staged["stagedId"],
        assertion={"challengeId": required["challengeId"], "credential": credential},
    )
    assert executed["__typename"] == "Executed", executed
    assert (executed["state"], executed["ceremony"]) == (d.ACCEPTED, "step_up")
    await await_event(kafka_bootstrap, executed["commandId"], EventKind.SUBMITTED)

    again = await mutate(graphql_api, alice, EXECUTE, id=staged["stagedId"])
    assert (again["__typename"], again["reason"]) == ("Invalid", d.ALREADY_EXECUTED)

    cancelled = await mutate(graphql_api, alice, CANCEL, id=executed["commandId"])
    assert (cancelled["__typename"], cancelled["target"]) == ("CancelSent", executed["commandId"])
    await await_event(kafka_bootstrap, executed["commandId"], EventKind.CANCELLED)


async def test_expected_refusals_are_result_types_and_no_caller_is_an_error(
    floor_up: HotPathProcess, graphql_api: GraphQLApi, alice: DeskTrader, ceremonies: Ceremonies
) -> None:
    bad = await mutate(graphql_api, alice, STAGE, ticket=ticket_input(Decimal("10.00"), symbol="TSLA"))
    assert (bad["__typename"], bad["reason"], bad["field"]) == ("Invalid", d.TICKET_INVALID, "symbol")

    await arm(ceremonies, alice, symbols=frozenset({"MSFT"}))
    staged = await mutate(graphql_api, alice, STAGE, ticket=ticket_input(Decimal("10.00")))
    refused = await mutate(graphql_api, alice, EXECUTE, id=staged["stagedId"])
    assert refused["__typename"] == "GrantExceeded", refused

    # REST's Execute, served by the same process, answers the refusal with 403 and its reason.
    async with httpx.AsyncClient(timeout=20.0) as client:
        rest = await client.post(
            f"{graphql_api.url}/v1/orders/{staged['stagedId']}/execute",
            json={},
            headers={"Cookie": cookie(alice)},
        )
    assert rest.status_code == 403
    assert (rest.json()["result"], rest.json()["error"]) == ("GrantExceeded", SYMBOL_NOT_ARMED)

    elsewhere = await mutate(graphql_api, alice, CANCEL_ALL, account="DU-SOMEONE-ELSE")
    assert (elsewhere["__typename"], elsewhere["reason"]) == ("Invalid", d.ACCOUNT_NOT_ALLOWED)

    assert await graphql_api.refusal(EXECUTE, {"id": staged["stagedId"]}) == "auth.unauthenticated"


async def test_a_trader_trips_and_re_arms_the_breaker_over_graphql(
    floor_up: HotPathProcess, graphql_api: GraphQLApi, alice: DeskTrader, ceremonies: Ceremonies
) -> None:
    await arm(ceremonies, alice)
    await ceremonies.disarm(alice.principal)
    tripped = await mutate(graphql_api, alice, TRIP)
    assert (tripped["__typename"], tripped["kind"]) == ("BreakerCommandSent", "breaker_trip"), tripped
    await eventually(lambda: trading_state(floor_up, "HALTED"), timeout=20.0)

    unarmed = await mutate(graphql_api, alice, REARM)
    assert unarmed["__typename"] == "NotArmed"
    await arm(ceremonies, alice)
    rearmed = await mutate(graphql_api, alice, REARM)
    assert (rearmed["__typename"], rearmed["kind"]) == ("BreakerCommandSent", "breaker_arm"), rearmed
    await eventually(lambda: trading_state(floor_up, "ACTIVE"), timeout=20.0)


async def test_a_program_submits_its_own_signed_command_with_the_doors_answers(
    floor_up: HotPathProcess,
    graphql_api: GraphQLApi,
    agent: Agent,
    cli_pool: asyncpg.Pool,
    paper: PaperStack,
    kafka_bootstrap: str,
) -> None:
    _, token = await issue_token(cli_pool, f"bot-{uuid.uuid4().hex[:8]}", "ops")
    limit = await resting_limit(paper)
    envelope = agent.sign(
        enter_command(agent.agent_id, account=ACCOUNT, limit=limit, stop=limit - 5, quantity=1)
    )

    published = await graphql_api.query(SUBMIT, {"envelope": envelope.to_wire().decode()}, token=token)
    assert published["submitCommand"]["__typename"] == "CommandPublished"
    assert published["submitCommand"]["commandId"] == envelope.command.command_id
    await await_event(kafka_bootstrap, envelope.command.command_id, EventKind.SUBMITTED)

    replayed = (await graphql_api.query(SUBMIT, {"envelope": envelope.to_wire().decode()}, token=token))[
        "submitCommand"
    ]
    assert (replayed["__typename"], replayed["status"]) == ("CommandRefused", 403)
    assert replayed["reason"].startswith("sentry.replayed")

    forged = json.loads(envelope.to_wire())
    forged["command"]["quantity"] = 2
    refused = (await graphql_api.query(SUBMIT, {"envelope": json.dumps(forged)}, token=token))[
        "submitCommand"
    ]
    assert (refused["__typename"], refused["reason"], refused["status"]) == (
        "CommandRefused", "sentry.bad_signature", 403,
    )  # fmt: skip
    malformed = (await graphql_api.query(SUBMIT, {"envelope": "{"}, token=token))["submitCommand"]
    assert (malformed["reason"], malformed["status"]) == ("malformed_json", 422)

    assert (
        await graphql_api.refusal(SUBMIT, {"envelope": envelope.to_wire().decode()}) == "auth.unauthenticated"
    )
    cancel = agent.sign(cancel_command(agent.agent_id, envelope.command.command_id, account=ACCOUNT))
    sent = (await graphql_api.query(SUBMIT, {"envelope": cancel.to_wire().decode()}, token=token))[
        "submitCommand"
    ]
    assert sent["__typename"] == "CommandPublished"
    await await_event(kafka_bootstrap, envelope.command.command_id, EventKind.CANCELLED)
