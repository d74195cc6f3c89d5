"""The GraphQL context: who is calling (:class:`~api.principals.Principal`), the process's
:class:`~api.services.Services` and the client's address.

Over HTTP the caller is read from the session cookie or ``Authorization: Bearer`` on every
request. Over a WebSocket, Strawberry builds the context once per connection, and the caller
authenticates in ``connection_init`` (:meth:`api.graphql.router.FloorGraphQLRouter.on_ws_connect`).
Nothing whose answer may change while a connection lives (the arming grant) is kept here:
resolvers ask the ceremonies each time.
"""

from __future__ import annotations

from typing import TypeAlias

from fastapi import HTTPException
from fastapi.requests import HTTPConnection
from strawberry.fastapi import BaseContext
from strawberry.types import Info as StrawberryInfo

from api.graphql.errors import ops_only, unauthenticated
from api.graphql.loaders import Loaders
from api.principals import SESSION_COOKIE, Principal, authenticate
from api.same_origin import CROSS_SITE, cross_site
from api.services import Services


class FloorContext(BaseContext):
    def __init__(self, services: Services, principal: Principal | None, client_address: str | None) -> None:
        super().__init__()
        self.services = services
        self.principal = principal
        self.client_address = client_address
        self.credentials: tuple[str | None, str | None] = (None, None)
        """(cookie, bearer token) a WebSocket authenticated with, to check again while it lives."""
        self.loaders = Loaders(services.db)

    async def still_signed_in(self) -> bool:
        """Whether the WebSocket's credentials still open a session or a token (a trader may have
        signed out, a session expired, a token been revoked since the connection began)."""
        cookie, bearer = self.credentials
        return await authenticate(self.services.db, cookie=cookie, bearer=bearer) is not None

    def session_cookie(self) -> str | None:
        """The session cookie the caller presented: with the request over HTTP, in the
        WebSocket's handshake otherwise."""
        cookie, _ = self.credentials
        if cookie is None and self.request is not None:
            cookie = self.request.cookies.get(SESSION_COOKIE)
        return cookie

    def caller(self) -> Principal:
        """The authenticated caller; unauthenticated callers get the named error."""
        if self.principal is None:
            raise unauthenticated()
        return self.principal

    def ops(self, what: str) -> Principal:
        principal = self.caller()
        if not principal.is_ops:
            raise ops_only(what)
        return principal


Info: TypeAlias = StrawberryInfo[FloorContext, None]


def bearer_token(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def get_context(connection: HTTPConnection) -> FloorContext:
    services: Services = connection.app.state.services
    client = connection.client.host if connection.client else None
    if connection.scope["type"] == "websocket":
        # Authenticated in connection_init, once its payload is in.
        return FloorContext(services, None, client)
    cookie = connection.cookies.get(SESSION_COOKIE)
    if cookie is not None and connection.scope.get("method") == "POST":
        # Defence in depth beside the application/json gate: a page on another local port is
        # the same site, so the browser sends it the SameSite=Strict cookie.
        refused = cross_site(connection.headers, services.settings.webauthn_origin, "call the floor's API")
        if refused is not None:
            raise HTTPException(status_code=403, detail={"error": CROSS_SITE, "detail": refused})
    principal = await authenticate(
        services.db,
        cookie=cookie,
        bearer=bearer_token(connection.headers.get("authorization")),
    )
    return FloorContext(services, principal, client)
