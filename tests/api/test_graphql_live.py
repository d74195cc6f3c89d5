"""GraphQL end to end with the real hot path and paper venue: a program's signed command goes in
through ``submitCommand`` (the REST door's checks), the hot path ledgers and sends it, and the
same API shows the order, its ledger entry and its events as they happen."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from ledger.api_tokens import issue_token
from tests.api.conftest import GraphQLApi
from tests.api.desk_live import (  # noqa: F401 - fixtures used by name
    HotPathProcess,
    active_floor,
    command_producer,
    module_hotpath,
    resting_limit,
    risk_profiles,
)
from tests.api.gql_ws import graphql_socket
from tests.factories import Agent, enter_command
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import VENUE_ACCOUNT

SUBMIT = """mutation($envelope: String!) { submitCommand(envelope: $envelope) {
  __typename ... on CommandPublished { commandId } ... on CommandRefused { reason detail } } }"""
ORDER = """query($id: ID!) { order(id: $id) {
  id state account agent quantity limitPrice events { kind } ledgerEntry { seq signer decision agent } } }"""
EVENTS = """subscription($account: String) { orderEvents(account: $account) { orderId kind account } }"""


async def test_an_order_submitted_over_graphql_is_ledgered_sent_and_followed_live(
    graphql_api: GraphQLApi, floor_up: HotPathProcess, paper: PaperStack, agent: Agent, cli_pool: asyncpg.Pool
) -> None:
    _, token = await issue_token(cli_pool, f"gql-live-{uuid.uuid4().hex[:8]}", "read")
    limit = await resting_limit(paper)
    command = enter_command(agent.agent_id, account=VENUE_ACCOUNT, limit=limit, stop=limit - 5, quantity=5)
    async with graphql_socket(graphql_api.ws_url) as socket:
        await socket.init({"token": token})
        op = await socket.subscribe(EVENTS, {"account": VENUE_ACCOUNT})
        # The stream is live at the hub once the connection answers a later operation.
        probe = await socket.subscribe("subscription { breakerState { state } }")
        assert (await socket.next(probe))["breakerState"]["state"] == "ACTIVE"

        published = await graphql_api.query(
            SUBMIT, {"envelope": agent.sign(command).to_wire().decode()}, token=token
        )
        assert published["submitCommand"] == {
            "__typename": "CommandPublished",
            "commandId": command.command_id,
        }

        kinds: list[str] = []
        while "SUBMITTED" not in kinds:
            event = (await socket.next(op, timeout=30))["orderEvents"]
            if event["orderId"] == command.command_id:
                kinds.append(event["kind"])
        assert kinds[0] == "ACCEPTED"

    async def working() -> dict[str, Any] | None:
        order: dict[str, Any] | None = (
            await graphql_api.query(ORDER, {"id": command.command_id}, token=token)
        )["order"]
        return order if order is not None and order["state"] == "ACCEPTED" else None

    order = await eventually(working, timeout=20)
    assert (order["account"], order["agent"], order["limitPrice"]) == (
        VENUE_ACCOUNT,
        agent.agent_id,
        str(limit),
    )
    assert [e["kind"] for e in order["events"]][:2] == ["ACCEPTED", "SUBMITTED"]
    assert order["ledgerEntry"]["signer"] == agent.key_id
    assert (order["ledgerEntry"]["decision"], order["ledgerEntry"]["agent"]) == ("accepted", agent.agent_id)

    refused = await graphql_api.query(
        SUBMIT, {"envelope": agent.sign(command).to_wire().decode()}, token=token
    )
    assert refused["submitCommand"]["__typename"] == "CommandRefused"
