"""GraphQL over HTTP with the session cookie answers only the floor's own page: a page on another
origin (every localhost port is the same site, so the browser sends it the SameSite=Strict
cookie) is refused before anything runs; a program with a bearer token and no Origin is not."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from api.same_origin import CROSS_SITE
from ledger.api_tokens import issue_token
from tests.api.conftest import GraphQLApi
from tests.fixtures.desk import DeskTrader

ME = "{ me { name } }"
TRIP = "mutation { tripBreaker { __typename } }"


async def post(api: GraphQLApi, query: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=20.0) as client:
        return await client.post(
            api.graphql_url, json={"query": query}, headers={"Content-Type": "application/json", **headers}
        )


async def test_a_cookie_request_from_another_origin_is_refused_and_the_floors_own_page_is_served(
    graphql_api: GraphQLApi, alice: DeskTrader, cli_pool: asyncpg.Pool
) -> None:
    cookie = {"Cookie": f"floor_session={alice.cookie}"}
    for foreign in (
        {"Origin": "http://localhost:1"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        refused = await post(graphql_api, TRIP, {**cookie, **foreign})
        assert refused.status_code == 403, (foreign, refused.text)
        assert refused.json()["detail"]["error"] == CROSS_SITE

    own = await post(
        graphql_api, ME, {**cookie, "Origin": graphql_api.origin, "Sec-Fetch-Site": "same-origin"}
    )
    assert own.status_code == 200 and own.json()["data"]["me"]["name"] == alice.name, own.text

    _, token = await issue_token(cli_pool, f"prog-{uuid.uuid4().hex[:8]}", "read")
    program = await post(graphql_api, ME, {"Authorization": f"Bearer {token}"})
    assert program.status_code == 200 and program.json()["data"]["me"] is not None, program.text
