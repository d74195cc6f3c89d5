"""Who may call /graphql, over HTTP and WebSocket, against a real API process."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from api.graphql.errors import UNAUTHENTICATED
from tests.api.conftest import GraphQLApi
from tests.api.gql_ws import graphql_socket

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
