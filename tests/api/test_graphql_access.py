"""Who may call /graphql, over HTTP and WebSocket, against a real API process."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import httpx
import pytest
from websockets.exceptions import InvalidStatus

from api.door_guard import DEFAULT_BURST, RATE_LIMITED
from api.graphql.errors import UNAUTHENTICATED
from api.graphql.limits import MAX_ALIASES
from api.graphql.router import FORBIDDEN_CODE, SIGNED_OUT
from api.webauthn_ceremonies import Ceremonies
from ledger.api_tokens import issue_token, revoke_token
from tests.api.conftest import GraphQLApi
from tests.api.gql_ws import graphql_socket
from tests.api.http import client_from
from tests.fixtures.identity import enrolled_and_signed_in

FRAME_ANCESTORS = "frame-ancestors 'none'"


async def test_an_unauthenticated_query_gets_the_named_error(graphql_api: GraphQLApi) -> None:
    assert await graphql_api.refusal("{ me { name } }") == UNAUTHENTICATED
    orders = "{ orders { edges { cursor } } }"
    assert await graphql_api.refusal(orders, token="not-a-token") == UNAUTHENTICATED


async def test_every_response_forbids_framing(graphql_api: GraphQLApi) -> None:
    async with httpx.AsyncClient(base_url=graphql_api.url, timeout=10.0) as client:
        responses = [
            await client.get("/health"),
            await client.get("/graphql", headers={"Accept": "text/html"}),
            await client.post("/graphql", json={"query": "{ me { name } }"}),
            await client.post("/v1/commands", content=b"{", headers={"Content-Type": "application/json"}),
        ]
    assert [r.status_code for r in responses] == [200, 200, 200, 422]
    for response in responses:
        assert response.headers["content-security-policy"] == FRAME_ANCESTORS


async def test_graphiql_is_served_to_a_browser(graphql_api: GraphQLApi) -> None:
    async with httpx.AsyncClient(timeout=10.0) as client:
        page = await client.get(graphql_api.graphql_url, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


@pytest.mark.parametrize(
    "payload", [{}, {"token": "not-a-token"}, {"token": 42}], ids=["none", "bad", "not-text"]
)
async def test_a_websocket_without_a_valid_token_is_closed_with_4403(
    graphql_api: GraphQLApi, payload: dict[str, object]
) -> None:
    async with graphql_socket(graphql_api.ws_url) as socket:
        await socket.ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        code, _ = await socket.closed()
    assert code == 4403


async def test_a_websocket_with_a_bad_session_cookie_is_closed_with_4403(graphql_api: GraphQLApi) -> None:
    async with graphql_socket(graphql_api.ws_url, cookie="floor_session=forged") as socket:
        await socket.ws.send('{"type": "connection_init"}')
        code, _ = await socket.closed()
    assert code == 4403


async def test_a_websocket_from_a_page_on_another_origin_is_refused(graphql_api: GraphQLApi) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with graphql_socket(graphql_api.ws_url, origin="http://evil.example"):
            pass
    assert refused.value.response.status_code == 403


async def test_a_websocket_is_closed_when_its_trader_signs_out(
    graphql_api: GraphQLApi, cli_pool: asyncpg.Pool, ceremonies: Ceremonies
) -> None:
    _, principal, cookie = await enrolled_and_signed_in(ceremonies, cli_pool)
    async with graphql_socket(graphql_api.ws_url, cookie=f"floor_session={cookie}") as socket:
        await socket.init()
        op = await socket.subscribe("subscription { breakerState { state } }")
        await socket.next(op)
        await ceremonies.logout(principal)
        assert await socket.closed(timeout=15) == (FORBIDDEN_CODE, SIGNED_OUT)


async def test_a_websocket_is_closed_when_its_token_is_revoked(
    graphql_api: GraphQLApi, cli_pool: asyncpg.Pool
) -> None:
    name = f"gql-revoked-{uuid.uuid4().hex[:8]}"
    _, token = await issue_token(cli_pool, name, "read")
    async with graphql_socket(graphql_api.ws_url) as socket:
        await socket.init({"token": token})
        op = await socket.subscribe("subscription { breakerState { state } }")
        await socket.next(op)
        await revoke_token(cli_pool, name)
        assert await socket.closed(timeout=15) == (FORBIDDEN_CODE, SIGNED_OUT)


async def test_graphql_over_http_shares_the_doors_rate_limit_per_address(graphql_api: GraphQLApi) -> None:
    """submitCommand reaches the same door as POST /v1/commands, so /graphql is rate limited the
    same way: a flood from one address gets 429, another address is still answered."""
    body = {"query": "{ me { name } }"}
    async with client_from(graphql_api.url, "127.0.0.31") as flood:
        limited: httpx.Response | None = None
        for _ in range(20):
            answers = await asyncio.gather(*(flood.post("/graphql", json=body) for _ in range(DEFAULT_BURST)))
            limited = next((r for r in answers if r.status_code == 429), None)
            if limited is not None:
                break
    assert limited is not None, "no 429 after 20 bursts"
    assert limited.json()["error"] == RATE_LIMITED
    assert limited.headers["content-security-policy"] == FRAME_ANCESTORS
    async with client_from(graphql_api.url, "127.0.0.32") as other:
        answer = await other.post("/graphql", json=body)
    assert answer.status_code == 200


async def test_a_query_too_deep_or_with_too_many_aliases_is_refused_before_it_runs(
    graphql_api: GraphQLApi, cli_pool: asyncpg.Pool
) -> None:
    _, token = await issue_token(cli_pool, f"gql-limits-{uuid.uuid4().hex[:8]}", "read")
    nested = "id"
    for _ in range(5):
        nested = f"iceberg {{ slices {{ {nested} }} }}"
    deep = await graphql_api.post(f'{{ order(id: "x") {{ {nested} }} }}', token=token)
    assert "exceeds maximum operation depth" in deep.json()["errors"][0]["message"]
    aliases = " ".join(f"a{i}: orders(first: 200) {{ edges {{ cursor }} }}" for i in range(MAX_ALIASES + 1))
    many = await graphql_api.post(f"{{ {aliases} }}", token=token)
    assert "aliases" in many.json()["errors"][0]["message"]
    assert many.json().get("data") is None
