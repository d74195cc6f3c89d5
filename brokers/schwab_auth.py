"""Schwab's OAuth for the adapter: the schwab-py async client built from a token file, never a
browser, and the one error that needs a person.

schwab-py's ``client_from_token_file`` builds an authlib ``AsyncOAuth2Client`` that refreshes
the 30-minute access token before any request that needs it and hands the new token to a write
function. The refresh token itself lasts about seven days from the person's login and the
refresh grant does not extend it: after that Schwab refuses the refresh (authlib raises
``OAuthError``) and only a new login helps. :class:`LoginRequired` says so and how.

The client is built here the way ``client_from_access_functions`` builds it, with two
differences that keep schwab-py itself unchanged: the token file is rewritten atomically (a
crash mid-write must not lose the only copy), and with a base URL set (the paper emulator) an
httpx transport sends every request schwab-py addresses to ``https://api.schwabapi.com`` there
instead (REST and the token endpoint alike; schwab-py hard-codes that host).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from schwab.auth import TOKEN_ENDPOINT, TokenMetadata
from schwab.client import AsyncClient

from brokers.base import BrokerError

LOGIN_REQUIRED = "schwab.login_required"
"""Ops event kind: Schwab refused the refresh token; a person must log in again."""
TOKEN_AGING = "schwab.token_aging"
"""Ops event kind: the refresh token is near its seven days; log in again before it lapses."""
TOKEN_LEEWAY_S = 300
"""authlib refreshes the access token this long before it expires (schwab-py's value)."""


class LoginRequired(BrokerError, ConnectionError):
    """Schwab refused the token file's refresh token (expired after about seven days, or
    revoked), or there is no usable token file: nothing the floor retries can fix it."""

    def __init__(self, token_path: Path, detail: str, api_key: str = "<app key>") -> None:
        self.token_path = token_path
        self.detail = detail
        super().__init__(
            f"Schwab login required ({detail}): log in again with `schwab-generate-token.py "
            f"--token_file {token_path} --api_key {api_key} --app_secret <app secret> "
            f"--callback_url <the app's callback URL>` (schwab-py), then restart the hot path"
        )


def is_login_error(exc: BaseException) -> bool:
    """The refresh was refused: authlib's OAuthError (Schwab answers 400/401 with an OAuth
    ``error`` body; the text varies, so the type decides)."""
    return isinstance(exc, OAuthError)


class Unauthorized(ConnectionError):
    """Schwab answered 401: the access token is no longer good (refresh it, then retry)."""


async def refresh_now(client: AsyncClient) -> None:
    """Refresh the access token now (Schwab refused the current one before its time); raises
    authlib's OAuthError when the refresh token is refused too."""
    session = client.session
    await session.refresh_token(TOKEN_ENDPOINT, refresh_token=session.token.get("refresh_token"))


class RewriteTransport(httpx.AsyncBaseTransport):
    """Sends every request to ``base_url``'s scheme, host and port, path unchanged."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if not parts.scheme or not parts.hostname:
            raise ValueError(f"FLOOR_SCHWAB_BASE_URL={base_url!r} is no URL (http://host:port)")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme=self._scheme, host=self._host, port=self._port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def write_token_atomically(path: Path, wrapped: dict[str, Any]) -> None:
    """Write the token file through a temporary file and a rename: a crash leaves the old file
    or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(wrapped, out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_token_file(path: Path, api_key: str) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise LoginRequired(path, f"no token file at {path}", api_key) from None
    except (OSError, ValueError) as exc:
        raise LoginRequired(path, f"token file {path} unreadable: {exc}", api_key) from exc
    if "creation_timestamp" not in loaded or "token" not in loaded:
        raise LoginRequired(path, f"token file {path} is not a schwab-py token file", api_key)
    return loaded


def build_client(
    token_path: Path,
    api_key: str,
    app_secret: str,
    base_url: str | None = None,
    timeout_s: float = 10.0,
) -> AsyncClient:
    """schwab-py's async client on the token file (see the module docstring)."""
    loaded = read_token_file(token_path, api_key)

    def write(wrapped: dict[str, Any], *_: Any, **__: Any) -> None:
        write_token_atomically(token_path, wrapped)

    metadata = TokenMetadata.from_loaded_token(loaded, write)
    wrapped_write = metadata.wrapped_token_write_func()

    async def update_token(token: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        wrapped_write(token, *args, **kwargs)

    extra: dict[str, Any] = {"timeout": timeout_s}
    if base_url:
        extra["transport"] = RewriteTransport(base_url)
    session = AsyncOAuth2Client(
        api_key,
        client_secret=app_secret,
        token=metadata.token,
        token_endpoint=TOKEN_ENDPOINT,
        update_token=update_token,
        leeway=TOKEN_LEEWAY_S,
        **extra,
    )
    return AsyncClient(api_key, session, token_metadata=metadata, enforce_enums=True)
