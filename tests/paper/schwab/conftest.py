"""The unchanged schwab-py async client, pointed at the emulator.

schwab-py writes ``https://api.schwabapi.com`` into every request and its token endpoint; an
httpx transport on its OAuth session sends them to the emulator instead (REST and token
refreshes both go through that session). The session is built as schwab-py's own
``client_from_access_functions`` builds it, plus the transport; nothing in schwab-py is patched.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from schwab.auth import TOKEN_ENDPOINT, TokenMetadata
from schwab.client import AsyncClient

from tests.fixtures.schwab import SchwabApi


class ToEmulator(httpx.AsyncBaseTransport):
    """Sends every request to the emulator's host and port, path and query unchanged."""

    def __init__(self, host: str, port: int) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._host = host
        self._port = port

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host=self._host, port=self._port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def schwab_client(api: SchwabApi, token_path: Path) -> AsyncClient:
    """schwab-py's async client on ``token_path``, talking to ``api``."""

    def write(token: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        token_path.write_text(json.dumps(token))

    metadata = TokenMetadata.from_loaded_token(json.loads(token_path.read_text()), write)
    wrapped = metadata.wrapped_token_write_func()

    async def update_token(token: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        wrapped(token, *args, **kwargs)

    session = AsyncOAuth2Client(
        api.app_key,
        client_secret=api.app_secret,
        token=metadata.token,
        token_endpoint=TOKEN_ENDPOINT,
        update_token=update_token,
        leeway=300,
        transport=ToEmulator(api.settings.host, api.port),
    )
    return AsyncClient(api.app_key, session, token_metadata=metadata, enforce_enums=True)


@pytest.fixture
async def client(schwab_api: SchwabApi, tmp_path: Path) -> AsyncIterator[AsyncClient]:
    """A client with a token file of its own (a fresh login)."""
    c = schwab_client(schwab_api, schwab_api.new_token_file(tmp_path))
    try:
        yield c
    finally:
        await c.close_async_session()
