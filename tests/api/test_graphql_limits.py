"""What one GraphQL document may ask for, how many messages a WebSocket may send, and what a
client sees of a fault: against a real API process, and (the masking) a schema built with the
API's extensions."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest
import strawberry
from graphql import get_introspection_query

from api.door_guard import DEFAULT_BURST, RATE_LIMITED
from api.graphql.errors import BAD_ARGUMENT, Refused
from api.graphql.limits import EXTENSIONS, MAX_ALIASES, MAX_TOKENS, UNEXPECTED
from api.graphql.router import TOO_MANY_MESSAGES_CODE
from api.graphql.scalars import SCALARS
from ledger.webauthn_store import PURPOSE_LOGIN
from tests.api.conftest import GraphQLApi
from tests.api.gql_ws import graphql_socket
from tests.helpers import eventually


async def errors_of(api: GraphQLApi, query: str) -> list[str]:
    response = await api.post(query)
    body = response.json()
    assert body.get("data") is None, body
    return [error["message"] for error in body["errors"]]


async def logins(pool: asyncpg.Pool) -> int:
    sql = "SELECT count(*) FROM webauthn_challenges WHERE purpose = $1"
    count: int = await pool.fetchval(sql, PURPOSE_LOGIN)
    return count


async def test_aliases_cannot_repeat_a_mutation_past_the_limit_and_nothing_runs(
    graphql_api: GraphQLApi, api_pool: asyncpg.Pool
) -> None:
    before = await logins(api_pool)
    login = "beginLogin { ... on CeremonyChallenge { challengeId } }"
    many = " ".join(f"l{i}: {login}" for i in range(MAX_ALIASES + 1))
    assert await errors_of(graphql_api, f"mutation {{ {many} }}") == [
        f"{MAX_ALIASES + 1} aliases found. Allowed: {MAX_ALIASES}"
    ]
    assert await logins(api_pool) == before, "no beginLogin ran"
    # Up to the limit is answered.
    two = f"mutation {{ a: {login} b: {login} }}"
    response = await graphql_api.post(two)
    assert set(response.json()["data"]) == {"a", "b"}


async def test_a_document_too_long_is_refused_before_it_is_parsed_whole(graphql_api: GraphQLApi) -> None:
    too_long = "{ " + " ".join(["__typename"] * (MAX_TOKENS + 1)) + " }"
    (message,) = await errors_of(graphql_api, too_long)
    assert f"more than {MAX_TOKENS} tokens" in message


async def test_graphiql_can_still_introspect_the_schema(graphql_api: GraphQLApi) -> None:
    response = await graphql_api.post(get_introspection_query(descriptions=True))
    body = response.json()
    assert not body.get("errors"), body.get("errors")
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_a_websocket_that_floods_messages_is_closed_with_the_rate_limit_reason(
    graphql_api: GraphQLApi, api_pool: asyncpg.Pool
) -> None:
    started = datetime.now(UTC)
    async with graphql_socket(graphql_api.ws_url) as socket:
        ping = json.dumps({"type": "ping"})
        await asyncio.gather(*(socket.ws.send(ping) for _ in range(DEFAULT_BURST * 3)))
        assert await socket.closed(timeout=15) == (TOO_MANY_MESSAGES_CODE, RATE_LIMITED)

    async def recorded() -> bool:
        found: bool = await api_pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM security_events WHERE reason = $1 AND ts >= $2"
            " AND detail::text LIKE '%messages at once%')",
            RATE_LIMITED,
            started,
        )
        return found

    await eventually(recorded, timeout=15)


async def test_a_websocket_within_the_rate_is_answered(graphql_api: GraphQLApi) -> None:
    async with graphql_socket(graphql_api.ws_url) as socket:
        for _ in range(DEFAULT_BURST // 2):
            await socket.ws.send(json.dumps({"type": "ping"}))
        for _ in range(DEFAULT_BURST // 2):
            assert json.loads(await asyncio.wait_for(socket.ws.recv(), 10)) == {"type": "pong"}


# --- masking: a schema with the API's extensions ---------------------------------------------


@strawberry.type
class Query:
    @strawberry.field
    def broken(self) -> int:
        raise RuntimeError('relation "secret_table" does not exist')

    @strawberry.field
    def refused(self) -> int:
        raise Refused(BAD_ARGUMENT, "depth must be between 1 and 50")

    @strawberry.field
    def exact(self, amount: Decimal) -> Decimal:
        return amount


masked = strawberry.Schema(
    query=Query,
    config=strawberry.schema.config.StrawberryConfig(scalar_map=SCALARS),
    extensions=EXTENSIONS,
)


async def test_an_unexpected_error_reaches_the_client_masked_and_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        result = await masked.execute("{ broken }")
    assert 'relation "secret_table" does not exist' in caplog.text, "the log keeps the original"
    assert result.errors is not None
    (error,) = [e.formatted for e in result.errors]
    assert "secret_table" not in json.dumps(error)
    assert error["extensions"] == {"code": UNEXPECTED}
    assert error["path"] == ["broken"]


async def test_named_refusals_and_input_errors_are_shown_as_they_are() -> None:
    result = await masked.execute("{ refused }")
    assert result.errors is not None
    assert [e.formatted["extensions"] for e in result.errors] == [{"code": BAD_ARGUMENT}]
    assert result.errors[0].message == "depth must be between 1 and 50"
    result = await masked.execute("query($a: Decimal!) { exact(amount: $a) }", variable_values={"a": 1.5})
    assert result.errors is not None
    assert 'Decimal must be a string such as "187.25"' in result.errors[0].message
