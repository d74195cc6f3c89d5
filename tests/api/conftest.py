"""The API as ``floor up`` runs it, for the GraphQL suites: ``graphql_api`` is a real API process
(the app ``python -m api`` builds, uvicorn on a free port) against the session's Postgres and
Kafka; tests query it over HTTP and subscribe over WebSocket (:mod:`tests.api.gql_ws`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from config.settings import FloorSettings
from floor.supervisor import Supervisor
from tests.api.http import api_process
from tests.fixtures.hotpath import package_api_url
from tests.fixtures.otlp import OtlpCollector
from trading.symbols import parse_symbols

WS_READ_TIMEOUT_S = 2.0
"""How far behind the suite's API lets a WebSocket client fall (see ``api.graphql.router``)."""
WS_PING_INTERVAL_S = 1.0
BOOK_SYMBOLS = tuple(f"T{uuid.uuid4().hex[:7].upper()}" for _ in range(32))
"""Symbols the suite's API trades besides the floor's own, so each book test has one of its own
(``market.depth`` is shared with every other suite and keeps earlier runs' records): the API
keeps books only for the floor's symbols."""
_unused_book_symbols = iter(BOOK_SYMBOLS)


def book_symbol() -> str:
    """A symbol of :data:`BOOK_SYMBOLS` no other test has taken."""
    return next(_unused_book_symbols)


@dataclass(frozen=True)
class GraphQLApi:
    url: str
    """``http://host:port`` of the API process."""

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    @property
    def origin(self) -> str:
        """The WebAuthn origin the API process derived from its port: a passkey ceremony run
        through it answers as a page opened at this address."""
        return f"http://localhost:{urlsplit(self.url).port}"

    @property
    def ws_url(self) -> str:
        return "ws" + self.graphql_url.removeprefix("http")

    async def post(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        token: str | None = None,
        cookie: str | None = None,
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if cookie is not None:
            headers["Cookie"] = cookie
        body: dict[str, Any] = {"query": query}
        if variables:
            body["variables"] = dict(variables)
        async with httpx.AsyncClient(timeout=20.0) as client:
            return await client.post(self.graphql_url, json=body, headers=headers)

    async def query(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        token: str | None = None,
        cookie: str | None = None,
    ) -> dict[str, Any]:
        """The response's ``data``; fails on any error."""
        response = await self.post(query, variables, token=token, cookie=cookie)
        assert response.status_code == 200, response.text
        body = response.json()
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def refusal(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        token: str | None = None,
        cookie: str | None = None,
    ) -> str:
        """The ``extensions.code`` of the response's one error."""
        response = await self.post(query, variables, token=token, cookie=cookie)
        body = response.json()
        assert body.get("errors"), body
        (error,) = body["errors"]
        code: str = error["extensions"]["code"]
        return code


@pytest.fixture(scope="package")
def api_otlp() -> Iterator[OtlpCollector]:
    """Where ``graphql_api`` sends its OpenTelemetry data (``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
    collector = OtlpCollector().start()
    yield collector
    collector.stop()


@pytest.fixture(scope="package")
def graphql_api(
    floor_settings: FloorSettings,
    supervisor: Supervisor,
    postgres_url: str,
    kafka_bootstrap: str,
    api_otlp: OtlpCollector,
) -> Iterator[GraphQLApi]:
    """A real API process of its own, started as ``floor up`` starts it, exporting over OTLP to
    ``api_otlp`` (log records in batches every 100 ms rather than the SDK's second)."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": api_otlp.endpoint,
        "OTEL_BLRP_SCHEDULE_DELAY": "100",
        "FLOOR_API_WS_READ_TIMEOUT_S": str(WS_READ_TIMEOUT_S),
        "FLOOR_API_WS_PING_INTERVAL_S": str(WS_PING_INTERVAL_S),
        "FLOOR_API_STATE_POLL_MS": "50",
        "FLOOR_HOTPATH_SYMBOLS": ",".join((*parse_symbols(floor_settings.hotpath_symbols), *BOOK_SYMBOLS)),
    }
    with api_process(floor_settings, supervisor, "api-graphql", env) as (url, _):
        yield GraphQLApi(url)


api_url = pytest.fixture(scope="package", name="api_url")(package_api_url)
"""The floor's API process for this package's tests (:func:`tests.fixtures.hotpath.package_api_url`)."""
