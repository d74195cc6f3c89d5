"""GraphQL end to end with the real hot path and paper venue: a program's signed command goes in
through ``submitCommand`` (the REST door's checks), the hot path ledgers and sends it, and the
same API shows the order, its ledger entry and its events as they happen; and the venue's trades,
through the IB adapter and the hot path (``market.trades``, signed), reach a ``trades``
subscriber in the venue's order with exact prices, the volume at each price adding up to the
venue's own record of what traded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

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
from tests.api.gql_ws import GraphQLSocket, OperationError, graphql_socket
from tests.factories import Agent, enter_command
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import VENUE_ACCOUNT
from trading.symbols import UNKNOWN_SYMBOL

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


SYMBOL = "AAPL"
BUSY_RATE = 400.0
"""Model events a second at the venue while the test reads: a few dozen trades a second."""
WANTED = 30
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TRADES = """subscription($symbol: String!) {
  trades(symbol: $symbol) {
    __typename
    ... on TradeTape {
      symbol sessionVolume complete venueVolume
      last { symbol price size venueTs sessionVolume complete venueVolume }
      volumeAtPrice { price volume }
    }
    ... on Trade { symbol price size venueTs sessionVolume complete venueVolume }
  }
}"""


@pytest.fixture
async def read_token(cli_pool: asyncpg.Pool) -> str:
    _, secret = await issue_token(cli_pool, f"gql-trades-{uuid.uuid4().hex[:8]}", "read")
    return secret


@pytest.fixture
async def busy_tape(paper: PaperStack) -> AsyncIterator[None]:
    async with paper.event_rate(SYMBOL, BUSY_RATE):
        yield


async def subscribed(socket: GraphQLSocket, token: str) -> tuple[str, dict[str, Any]]:
    await socket.init({"token": token})
    op = await socket.subscribe(TRADES, {"symbol": SYMBOL})
    first = (await socket.next(op, timeout=20))["trades"]
    assert first["__typename"] == "TradeTape" and first["symbol"] == SYMBOL
    return op, first


async def next_trade(socket: GraphQLSocket, op: str) -> dict[str, Any]:
    item: dict[str, Any] = (await socket.next(op))["trades"]
    assert item["__typename"] == "Trade", "no new session or fall-behind snapshot mid-test"
    return item


async def streaming_since(ws_url: str, token: str, since: datetime) -> None:
    """Return once the API's tape has counted a trade the venue printed at or after ``since``.

    The module's hot path streams the symbol from before its fixture is ready, so every print
    since then reaches the tape; those between the previous module's hot path stopping and this
    one subscribing never do (the tape says so, ``complete`` false). A snapshot taken before
    this hot path's first trade arrived would end at the previous one's last, and the first
    trade after it would rightly jump past the prints nobody streamed."""
    async with graphql_socket(ws_url) as socket:
        op, tape = await subscribed(socket, token)
        last = tape["last"]
        while last is None or datetime.fromisoformat(last["venueTs"]) < since:
            last = await next_trade(socket, op)


def volume_at(tape: dict[str, Any]) -> dict[Decimal, int]:
    return {Decimal(row["price"]): int(row["volume"]) for row in tape["volumeAtPrice"]}


def venue_ms(trade: dict[str, Any]) -> int:
    return (datetime.fromisoformat(trade["venueTs"]) - EPOCH) // timedelta(milliseconds=1)


def matches(trade: dict[str, Any], print_: dict[str, Any]) -> bool:
    return (
        trade["price"] == print_["price"]
        and trade["size"] == print_["size"]
        and venue_ms(trade) == print_["time_ns"] // 1_000_000
    )


async def test_the_venues_trades_reach_a_subscriber_in_order_and_add_up_to_the_venues_record(
    graphql_api: GraphQLApi, hotpath: HotPathProcess, paper: PaperStack, read_token: str, busy_tape: None
) -> None:
    token = read_token
    await streaming_since(graphql_api.ws_url, token, datetime.now(UTC))
    async with graphql_socket(graphql_api.ws_url) as socket:
        op, first = await subscribed(socket, token)
        received = [await next_trade(socket, op) for _ in range(WANTED)]
        volume = int(first["sessionVolume"])
        # Complete only if the floor counted every trade the venue reports for the session
        # (a hot path that subscribed after the venue began trading missed the first ones).
        venue_volume = None if first["venueVolume"] is None else int(first["venueVolume"])
        assert first["complete"] == (venue_volume in (None, volume)) and (venue_volume or 0) >= volume
        for trade in received:
            volume += trade["size"]
            assert int(trade["sessionVolume"]) == volume, "every trade counted once, in order"
            if venue_volume is not None:
                assert int(trade["venueVolume"]) == venue_volume + trade["size"], "no trade lost between"
            venue_volume = int(trade["venueVolume"])
            assert trade["complete"] == received[0]["complete"], "no hole while the venue prints on"
            assert trade["symbol"] == SYMBOL and type(trade["size"]) is int
            assert Decimal(trade["price"]) * 100 == int(Decimal(trade["price"]) * 100), "on the cent grid"

        # A late subscriber's snapshot is the first snapshot plus the trades the first was sent.
        async with graphql_socket(graphql_api.ws_url) as late_socket:
            _, late = await subscribed(late_socket, token)
        late_volume = int(late["sessionVolume"])
        while int(received[-1]["sessionVolume"]) < late_volume:
            received.append(await next_trade(socket, op))
        assert int(received[-1]["sessionVolume"]) == late_volume
        assert late["last"] == {k: v for k, v in received[-1].items() if k != "__typename"}
        added = dict(volume_at(first))
        for trade in received:
            added[Decimal(trade["price"])] = added.get(Decimal(trade["price"]), 0) + trade["size"]
        assert volume_at(late) == added
        prices = [Decimal(row["price"]) for row in late["volumeAtPrice"]]
        assert prices == sorted(prices, reverse=True), "highest price first"

    # The venue's own record: the trades sent are consecutive prints of its tape, exactly, so
    # what the volume at each price grew by is what the venue says traded there.
    prints = (await paper.acontrol("GET", f"/symbols/{SYMBOL}/tape"))["prints"]
    n = len(received)
    starts = [
        k
        for k in range(len(prints) - n + 1)
        if all(matches(t, p) for t, p in zip(received, prints[k : k + n], strict=True))
    ]
    assert len(starts) == 1, f"{len(starts)} places on the venue's tape match the {n} trades sent"
    traded: dict[Decimal, int] = {}
    for p in prints[starts[0] : starts[0] + n]:
        traded[Decimal(p["price"])] = traded.get(Decimal(p["price"]), 0) + p["size"]
    grown = {p: v - volume_at(first).get(p, 0) for p, v in volume_at(late).items()}
    assert {p: v for p, v in grown.items() if v} == traded


async def test_the_tape_of_a_symbol_the_floor_does_not_trade_is_a_named_refusal(
    graphql_api: GraphQLApi, read_token: str
) -> None:
    token = read_token
    async with graphql_socket(graphql_api.ws_url) as socket:
        await socket.init({"token": token})
        op = await socket.subscribe(TRADES, {"symbol": "NOPE"})
        with pytest.raises(OperationError) as refused:
            await socket.next(op)
        assert refused.value.codes == [UNKNOWN_SYMBOL]
