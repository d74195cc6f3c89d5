"""Every GraphQL query over real HTTP against a real API process, Postgres and Kafka.

Order rows are stored the way the hot path stores them (``record_order_event``), each test on
accounts of its own, so what a query returns is exactly what the test put there."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from api.graphql.errors import BAD_CURSOR, BAD_PAGE_SIZE, OPS_ONLY
from api.webauthn_ceremonies import Ceremonies
from bus.kafka import start_producer
from bus.topics import MARKET_DEPTH
from ledger.api_tokens import issue_token
from ledger.append import Decision, append_command
from ledger.order_events import record_order_event
from ledger.security_events import record_security_event
from tests.api.conftest import GraphQLApi, book_symbol
from tests.factories import Agent, authorization, depth_record, enter_command, new_trader, order_event
from tests.fixtures.hotpath import RecordWriters, register
from tests.fixtures.identity import enrolled_and_signed_in
from tests.helpers import eventually
from tests.temporal.conftest import ledgered_iceberg
from trading.authorization import Ceremony
from trading.iceberg_parents import parent_workflow_id
from trading.order_events import EventKind
from trading.orders import Fill
from trading.record_signing import sign_record
from trading.security_events import SecurityEvent, Severity
from trading.sentry import ROLE_TRADER

ORDERS = """
query Orders($first: Int, $after: String, $state: [OrderState!], $symbol: String, $agent: String,
             $account: String) {
  orders(first: $first, after: $after, state: $state, symbol: $symbol, agent: $agent, account: $account) {
    edges { cursor node { id account symbol agent state quantity filledQuantity } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


def account() -> str:
    return f"GQ-{uuid.uuid4().hex[:8]}"


async def token(cli_pool: asyncpg.Pool, role: str) -> str:
    _, secret = await issue_token(cli_pool, f"gql-{role}-{uuid.uuid4().hex[:8]}", role)
    return secret


@pytest.fixture
async def read_token(cli_pool: asyncpg.Pool) -> str:
    return await token(cli_pool, "read")


@pytest.fixture
async def ops_token(cli_pool: asyncpg.Pool) -> str:
    return await token(cli_pool, "ops")


async def working_order(pool: asyncpg.Pool, on: str, *, symbol: str = "MSFT", agent: str = "alpha") -> str:
    """An order accepted and working at the venue, on account ``on``; its command id."""
    command_id = f"cmd-{uuid.uuid4().hex}"
    for n, kind in enumerate((EventKind.ACCEPTED, EventKind.SUBMITTED)):
        await record_order_event(
            pool, order_event(command_id, n, kind, account=on, symbol=symbol, agent_id=agent)
        )
    return command_id


async def filled_order(
    pool: asyncpg.Pool, on: str, fills: Sequence[tuple[int, str]], *, side: str = "BUY", symbol: str = "MSFT"
) -> str:
    """An order of ``sum(qty)`` shares filled by ``fills`` ((qty, price) each) on account ``on``."""
    command_id = f"cmd-{uuid.uuid4().hex}"
    quantity = sum(q for q, _ in fills)
    common: dict[str, Any] = dict(account=on, symbol=symbol, side=side, quantity=quantity)
    await record_order_event(pool, order_event(command_id, 0, EventKind.ACCEPTED, **common))
    await record_order_event(pool, order_event(command_id, 1, EventKind.SUBMITTED, **common))
    filled = 0
    for n, (qty, price) in enumerate(fills, start=2):
        filled += qty
        kind = EventKind.FILLED if filled == quantity else EventKind.PARTIALLY_FILLED
        fill = Fill(f"exec-{uuid.uuid4().hex}", qty, Decimal(price))
        await record_order_event(pool, order_event(command_id, n, kind, filled, fill, **common))
    return command_id


async def cancelled_order(pool: asyncpg.Pool, on: str) -> str:
    command_id = await working_order(pool, on)
    await record_order_event(pool, order_event(command_id, 5, EventKind.CANCELLED, account=on, reason="user"))
    return command_id


async def all_pages(api: GraphQLApi, auth: dict[str, str], size: int, **filters: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    after = None
    while True:
        data = await api.query(ORDERS, {"first": size, "after": after, **filters}, **auth)
        connection = data["orders"]
        pages.append([edge["node"]["id"] for edge in connection["edges"]])
        assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not connection["pageInfo"]["hasNextPage"]:
            return pages
        after = connection["pageInfo"]["endCursor"]
        assert after == connection["edges"][-1]["cursor"]


async def test_orders_page_newest_first_without_duplicates_or_gaps(
    graphql_api: GraphQLApi, ledger_pool: asyncpg.Pool, read_token: str
) -> None:
    mine = account()
    planted = [await working_order(ledger_pool, mine) for _ in range(7)]
    # Later rows of older orders must not move them up the blotter.
    await record_order_event(ledger_pool, order_event(planted[0], 9, EventKind.CANCELLED, account=mine))
    pages = await all_pages(graphql_api, {"token": read_token}, 3, account=mine)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [order for page in pages for order in page] == planted[::-1]


async def test_a_page_boundary_holds_while_new_orders_arrive(
    graphql_api: GraphQLApi, ledger_pool: asyncpg.Pool, read_token: str
) -> None:
    mine = account()
    planted = [await working_order(ledger_pool, mine) for _ in range(4)]
    first = (await graphql_api.query(ORDERS, {"first": 2, "account": mine}, token=read_token))["orders"]
    await working_order(ledger_pool, mine)
    after = first["pageInfo"]["endCursor"]
    second = await graphql_api.query(ORDERS, {"first": 2, "after": after, "account": mine}, token=read_token)
    assert [e["node"]["id"] for e in second["orders"]["edges"]] == planted[1::-1]


async def test_orders_filter_by_state_symbol_and_agent(
    graphql_api: GraphQLApi, ledger_pool: asyncpg.Pool, read_token: str
) -> None:
    mine = account()
    filled = await filled_order(ledger_pool, mine, [(150, "10.00"), (50, "10.50")])
    cancelled = await cancelled_order(ledger_pool, mine)
    working = await working_order(ledger_pool, mine, symbol="AAPL", agent="beta")
    # More orders than one scan batch between them, so a state filter has to read on.
    auth = {"token": read_token}

    async def ids(**filters: Any) -> list[str]:
        data = await graphql_api.query(ORDERS, {"account": mine, **filters}, **auth)
        return [e["node"]["id"] for e in data["orders"]["edges"]]

    assert await ids(state=["FILLED"]) == [filled]
    assert await ids(state=["CANCELLED", "ACCEPTED"]) == [working, cancelled]
    assert await ids(symbol="AAPL") == [working]
    assert await ids(agent="beta") == [working]
    assert await ids(agent="beta", symbol="MSFT") == []
    (node,) = [
        e["node"]
        for e in (await graphql_api.query(ORDERS, {"account": mine, "state": ["FILLED"]}, **auth))["orders"][
            "edges"
        ]
    ]
    assert (node["quantity"], node["filledQuantity"], node["state"]) == (200, 200, "FILLED")


async def test_a_state_filter_pages_through_orders_it_skips(
    graphql_api: GraphQLApi, ledger_pool: asyncpg.Pool, read_token: str
) -> None:
    mine = account()
    cancelled = [await cancelled_order(ledger_pool, mine) for _ in range(3)]
    for _ in range(5):
        await working_order(ledger_pool, mine)
    pages = await all_pages(graphql_api, {"token": read_token}, 2, account=mine, state=["CANCELLED"])
    assert [order for page in pages for order in page] == cancelled[::-1]


async def test_a_trader_sees_only_the_orders_of_its_accounts(
    graphql_api: GraphQLApi, ledger_pool: asyncpg.Pool, cli_pool: asyncpg.Pool, ceremonies: Ceremonies
) -> None:
    its, other = account(), account()
    own = await working_order(ledger_pool, its)
    foreign = await working_order(ledger_pool, other)
    _, _, cookie = await enrolled_and_signed_in(ceremonies, cli_pool, accounts=(its,))
    auth = {"cookie": f"floor_session={cookie}"}
    seen = [order for page in await all_pages(graphql_api, auth, 200) for order in page]
    assert own in seen and foreign not in seen
    assert (await graphql_api.query(ORDERS, {"account": other}, **auth))["orders"]["edges"] == []
    query = "query($id: ID!) { order(id: $id) { id account } }"
    assert (await graphql_api.query(query, {"id": foreign}, **auth))["order"] is None
    assert (await graphql_api.query(query, {"id": own}, **auth))["order"] == {"id": own, "account": its}


ORDER = """
query Order($id: ID!) {
  order(id: $id) {
    id state quantity filledQuantity averageFillPrice limitPrice timeInForce side parentId
    events { id kind filledQuantity fill { execId quantity price } }
    ledgerEntry {
      seq hash signer agent decision authenticated
      authorization { trader credentialId signCount ceremony orderHash }
    }
    iceberg {
      total displaySize filled working remaining slicesSent stopped slices { id state filledQuantity }
    }
  }
}
"""


async def test_an_order_shows_its_history_and_the_ledger_entry_with_who_authorised_it(
    graphql_api: GraphQLApi, ledger_pool: asyncpg.Pool, read_token: str
) -> None:
    mine = account()
    trader = new_trader(accounts=frozenset({mine}))
    # Registered like every key: the session's ledger is verified whole by other tests.
    await register(ledger_pool, trader, ROLE_TRADER)
    command = enter_command(
        trader.agent_id, account=mine, symbol="MSFT", authorization=authorization(trader.trader)
    )
    entry = await append_command(ledger_pool, trader.sign(command), decision=Decision.ACCEPTED)
    common: dict[str, Any] = dict(account=mine, agent_id=trader.agent_id, limit_price=Decimal("189.50"))
    await record_order_event(ledger_pool, order_event(command.command_id, 0, EventKind.ACCEPTED, **common))
    await record_order_event(ledger_pool, order_event(command.command_id, 1, EventKind.SUBMITTED, **common))
    fill = Fill(f"exec-{uuid.uuid4().hex}", 80, Decimal("189.25"))
    await record_order_event(
        ledger_pool, order_event(command.command_id, 2, EventKind.PARTIALLY_FILLED, 80, fill, **common)
    )

    order = (await graphql_api.query(ORDER, {"id": command.command_id}, token=read_token))["order"]
    assert order["state"] == "PARTIALLY_FILLED"
    assert (order["filledQuantity"], order["averageFillPrice"], order["limitPrice"]) == (
        80,
        "189.25",
        "189.50",
    )
    assert [e["kind"] for e in order["events"]] == ["ACCEPTED", "SUBMITTED", "PARTIALLY_FILLED"]
    assert order["events"][2]["fill"] == {"execId": fill.exec_id, "quantity": 80, "price": "189.25"}
    ledger = order["ledgerEntry"]
    assert (ledger["seq"], ledger["hash"], ledger["signer"]) == (
        entry.seq,
        entry.entry_hash.hex(),
        trader.key_id,
    )
    assert (ledger["decision"], ledger["authenticated"], ledger["agent"]) == (
        "accepted",
        True,
        trader.agent_id,
    )
    assert ledger["authorization"] == {
        "trader": trader.trader,
        "credentialId": "AAECAwQFBgcICQoLDA0ODxAREhM",
        "signCount": 7,
        "ceremony": Ceremony.ARMING.value,
        "orderHash": None,
    }
    assert order["iceberg"] is None
    assert (await graphql_api.query(ORDER, {"id": "cmd-unknown"}, token=read_token))["order"] is None


async def test_an_iceberg_parent_shows_its_slices_and_progress(
    graphql_api: GraphQLApi, ledger_pool: asyncpg.Pool, read_token: str, agent: Agent
) -> None:
    mine = account()
    parent = await ledgered_iceberg(
        ledger_pool, agent, account=mine, symbol="MSFT", quantity=300, display_size=100
    )
    workflow_id = parent_workflow_id(parent.command_id)
    first, second, third = (f"slice-{uuid.uuid4().hex}" for _ in range(3))
    common: dict[str, Any] = dict(account=mine, quantity=100, parent_id=workflow_id)
    for n, kind in enumerate((EventKind.ACCEPTED, EventKind.SUBMITTED)):
        await record_order_event(ledger_pool, order_event(first, n, kind, **common))
        await record_order_event(ledger_pool, order_event(second, n, kind, **common))
    fill = Fill(f"exec-{uuid.uuid4().hex}", 100, Decimal("20.01"))
    await record_order_event(ledger_pool, order_event(first, 2, EventKind.FILLED, 100, fill, **common))
    await record_order_event(ledger_pool, order_event(third, 0, EventKind.ACCEPTED, **common))

    order = (await graphql_api.query(ORDER, {"id": parent.command_id}, token=read_token))["order"]
    iceberg = order["iceberg"]
    assert (iceberg["total"], iceberg["displaySize"], iceberg["stopped"]) == (300, 100, None)
    assert {s["id"]: s["state"] for s in iceberg["slices"]} == {
        first: "FILLED",
        second: "ACCEPTED",
        third: "STAGED",
    }
    assert (iceberg["filled"], iceberg["slicesSent"]) == (100, 3)
    assert iceberg["working"] == 200 and iceberg["remaining"] == 0
    assert (order["state"], order["filledQuantity"], order["averageFillPrice"]) == (
        "PARTIALLY_FILLED",
        100,
        "20.010000",
    )
    assert order["ledgerEntry"]["signer"] == agent.key_id


async def test_positions_carry_realized_and_unrealized_pnl_at_the_books_mid(
    graphql_api: GraphQLApi,
    ledger_pool: asyncpg.Pool,
    read_token: str,
    kafka_bootstrap: str,
    record_writers: RecordWriters,
) -> None:
    mine = account()
    symbol = book_symbol()
    await filled_order(ledger_pool, mine, [(10, "100.00")], symbol=symbol)
    await filled_order(ledger_pool, mine, [(4, "110.00")], side="SELL", symbol=symbol)
    query = """query($a: String) {
      positions(account: $a) { account symbol quantity averageCost realizedPnl unrealizedPnl mark } }"""
    (position,) = (await graphql_api.query(query, {"a": mine}, token=read_token))["positions"]
    assert position == {
        "account": mine, "symbol": symbol, "quantity": 6, "averageCost": "100.000000",
        "realizedPnl": "40.0000", "unrealizedPnl": None, "mark": None,
    }  # fmt: skip

    producer = await start_producer(kafka_bootstrap, "gql-test-depth")
    try:
        record = depth_record(symbol, [("104.00", 5)], [("105.00", 7)])
        await producer.send_and_wait(MARKET_DEPTH, sign_record(MARKET_DEPTH, record, record_writers.hotpath))
    finally:
        await producer.stop()

    async def marked() -> dict[str, Any] | None:
        (found,) = (await graphql_api.query(query, {"a": mine}, token=read_token))["positions"]
        return found if found["mark"] is not None else None

    position = await eventually(marked)
    assert (position["mark"], position["unrealizedPnl"]) == ("104.50", "27.0000")


async def test_book_returns_the_top_levels_with_prices_as_strings_on_the_symbols_tick_grid(
    graphql_api: GraphQLApi, read_token: str, kafka_bootstrap: str, record_writers: RecordWriters
) -> None:
    symbol = book_symbol()
    query = """query($s: String!, $d: Int!) {
      book(symbol: $s, depth: $d) { symbol sequence tickSize bids { price size } asks { price size } } }"""
    assert (await graphql_api.query(query, {"s": symbol, "d": 2}, token=read_token))["book"] is None
    producer: AIOKafkaProducer = await start_producer(kafka_bootstrap, "gql-test-depth")
    try:
        bids = [("10.02", 3), ("10.01", 4), ("10.00", 5)]
        record = depth_record(symbol, bids, [("10.03", 6)])
        await producer.send_and_wait(MARKET_DEPTH, sign_record(MARKET_DEPTH, record, record_writers.hotpath))
    finally:
        await producer.stop()

    async def book() -> dict[str, Any] | None:
        found: dict[str, Any] | None = (
            await graphql_api.query(query, {"s": symbol, "d": 2}, token=read_token)
        )["book"]
        return found

    found = await eventually(book)
    assert found == {
        "symbol": symbol,
        "sequence": 1,
        "tickSize": "0.01",
        "bids": [{"price": "10.02", "size": 3}, {"price": "10.01", "size": 4}],
        "asks": [{"price": "10.03", "size": 6}],
    }


async def test_the_breaker_shows_the_trading_state_and_the_entry_that_set_it(
    graphql_api: GraphQLApi, ledger_pool: asyncpg.Pool, read_token: str
) -> None:
    from ledger.circuit_breaker import newest_breaker_entry

    newest = await newest_breaker_entry(ledger_pool, "floor-breaker")
    breaker = (await graphql_api.query("{ breaker { state seq kind by } }", token=read_token))["breaker"]
    if newest is None:
        assert breaker == {"state": "ACTIVE", "seq": None, "kind": None, "by": None}
    else:
        assert breaker == {
            "state": newest.state.value,
            "seq": newest.seq,
            "kind": newest.kind,
            "by": newest.agent_id,
        }


ME = """{ me { name kind role accounts stepUpEveryOrder
  authenticators { credentialId signCount synced createdAt }
  grant { expiresAt symbols maxQuantity maxNotional } } }"""


async def test_me_is_the_trader_with_its_passkeys_or_the_token(
    graphql_api: GraphQLApi, cli_pool: asyncpg.Pool, ceremonies: Ceremonies, read_token: str
) -> None:
    mine = account()
    trader, principal, cookie = await enrolled_and_signed_in(ceremonies, cli_pool, accounts=(mine,))
    me = (await graphql_api.query(ME, cookie=f"floor_session={cookie}"))["me"]
    assert (me["name"], me["kind"], me["role"], me["accounts"]) == (trader.name, "trader", "trader", [mine])
    (passkey,) = me["authenticators"]
    (known,) = await ceremonies.authenticators(principal)
    assert (passkey["credentialId"], passkey["signCount"], passkey["synced"]) == (
        known.credential_id,
        known.sign_count,
        known.synced,
    )
    assert me["grant"] is None
    token_me = (await graphql_api.query(ME, token=read_token))["me"]
    assert (token_me["kind"], token_me["role"], token_me["accounts"], token_me["authenticators"]) == (
        "token",
        "read",
        ["*"],
        [],
    )


SECURITY = """query($first: Int, $after: String) { securityEvents(first: $first, after: $after) {
  edges { cursor node { id reason severity source detail } } pageInfo { hasNextPage endCursor } } }"""


async def test_security_events_are_refused_to_every_role_but_ops(
    graphql_api: GraphQLApi, read_token: str, cli_pool: asyncpg.Pool, ceremonies: Ceremonies
) -> None:
    _, _, cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    assert await graphql_api.refusal(SECURITY, token=read_token) == OPS_ONLY
    assert await graphql_api.refusal(SECURITY, cookie=f"floor_session={cookie}") == OPS_ONLY


async def test_ops_pages_through_security_events_newest_first(
    graphql_api: GraphQLApi, ledger_pool: asyncpg.Pool, ops_token: str
) -> None:
    marker = f"test.gql_{uuid.uuid4().hex[:8]}"
    ids = [
        await record_security_event(
            ledger_pool,
            SecurityEvent(reason=marker, severity=Severity.WARNING, source="api", detail={"n": n}),
        )
        for n in range(5)
    ]
    seen: list[int] = []
    after = None
    while True:
        data = (await graphql_api.query(SECURITY, {"first": 2, "after": after}, token=ops_token))[
            "securityEvents"
        ]
        assert 1 <= len(data["edges"]) <= 2
        seen += [int(e["node"]["id"]) for e in data["edges"] if e["node"]["reason"] == marker]
        if len(seen) == len(ids):
            break
        assert data["pageInfo"]["hasNextPage"]
        after = data["pageInfo"]["endCursor"]
    assert seen == ids[::-1]


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"after": "bm90LWEtY3Vyc29y"}, BAD_CURSOR),
        ({"first": 0}, BAD_PAGE_SIZE),
        ({"first": 201}, BAD_PAGE_SIZE),
    ],
    ids=["foreign_cursor", "zero", "too_many"],
)
async def test_a_bad_page_request_gets_a_named_error(
    graphql_api: GraphQLApi, read_token: str, variables: dict[str, Any], code: str
) -> None:
    assert await graphql_api.refusal(ORDERS, variables, token=read_token) == code


async def test_a_security_event_cursor_is_no_orders_cursor(
    graphql_api: GraphQLApi, ops_token: str, ledger_pool: asyncpg.Pool
) -> None:
    await record_security_event(
        ledger_pool, SecurityEvent(reason="test.cursor", severity=Severity.INFO, source="api")
    )
    data = (await graphql_api.query(SECURITY, {"first": 1}, token=ops_token))["securityEvents"]
    cursor = data["pageInfo"]["endCursor"]
    assert await graphql_api.refusal(ORDERS, {"after": cursor}, token=ops_token) == BAD_CURSOR


async def test_a_decimal_sent_as_a_json_number_is_refused(graphql_api: GraphQLApi, read_token: str) -> None:
    mutation = """mutation($t: OrderTicketInput!) { stageOrder(ticket: $t) { __typename } }"""
    ticket = {
        "account": "DU1",
        "symbol": "AAPL",
        "side": "BUY",
        "orderType": "LMT",
        "quantity": 1,
        "limitPrice": 1.5,
    }
    response = await graphql_api.post(mutation, {"t": ticket}, token=read_token)
    (error,) = response.json()["errors"]
    assert "Decimal must be a string" in error["message"]
