"""``/graphql``: queries and mutations over HTTP (GraphiQL in a browser), subscriptions over a
WebSocket speaking ``graphql-transport-ws`` only.

A WebSocket authenticates in ``connection_init``: the payload's ``token`` (an API token) or,
from the HUD, the session cookie the handshake carried. A missing or bad one closes the
connection with 4403 before any operation runs. Strawberry refuses a handshake from a page on
another origin (the cookie would otherwise let any site subscribe as the trader).

A client that stops reading: once the socket's buffers are full, a frame for it waits for
room. The hub never waits for it (its mailbox conflates or overflows on its own), and this
connection waits at most ``send_timeout_s`` per frame: then its operations end and it is
closed with :data:`SLOW_CONSUMER_CODE` and the reason :data:`SLOW_CONSUMER` (which it reads
after whatever was already buffered for it, if it ever reads again), so a stuck client holds
nothing of the hub's and no task of the API's past that bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.http.async_base_view import AsyncBaseHTTPView
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from api.graphql.context import FloorContext, get_context
from api.graphql.schema import schema
from api.principals import SESSION_COOKIE, authenticate

log = logging.getLogger(__name__)

PATH = "/graphql"
SLOW_CONSUMER = "resync.slow_consumer"
SLOW_CONSUMER_CODE = 4410
"""Private-use close code (4000-4999; graphql-transport-ws takes 44xx codes it does not use
for this): the stream is gone, reconnect and resubscribe."""
DEFAULT_SEND_TIMEOUT_S = 5.0


class BoundedSendWebSocket(ASGIWebSocketAdapter):
    """Strawberry's WebSocket, with a bound on how long one frame may wait for the client."""

    def __init__(self, view: AsyncBaseHTTPView, request: WebSocket, response: WebSocket) -> None:
        super().__init__(view, request, response)
        self._timeout = getattr(view, "send_timeout_s", DEFAULT_SEND_TIMEOUT_S)
        self._stuck = False
        self._closing: asyncio.Task[None] | None = None

    async def send_json(self, message: Mapping[str, object]) -> None:
        if self._stuck:
            raise WebSocketDisconnected()
        try:
            async with asyncio.timeout(self._timeout):
                await super().send_json(message)
        except TimeoutError:
            self._stuck = True
            client = self.ws.client.host if self.ws.client else None
            log.warning("WebSocket client %s read nothing for %.1f s: closing it (%s)", client, self._timeout,
                        SLOW_CONSUMER)  # fmt: skip
            # Not awaited: the close frame waits for room like any frame.
            self._closing = asyncio.create_task(self._close_stuck())
            raise WebSocketDisconnected() from None

    async def _close_stuck(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code=SLOW_CONSUMER_CODE, reason=SLOW_CONSUMER)


class FloorGraphQLRouter(GraphQLRouter[FloorContext, None]):
    websocket_adapter_class = BoundedSendWebSocket

    def __init__(self, *args: Any, send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.send_timeout_s = send_timeout_s

    async def on_ws_connect(self, context: FloorContext) -> UnsetType | None | dict[str, Any]:
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        token = params.get("token")
        websocket = context.request
        cookie = websocket.cookies.get(SESSION_COOKIE) if websocket is not None else None
        principal = await authenticate(
            context.services.db, cookie=cookie, bearer=token if isinstance(token, str) and token else None
        )
        if principal is None:
            raise ConnectionRejectionError()
        context.principal = principal
        return UNSET


def graphql_router(send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S) -> FloorGraphQLRouter:
    return FloorGraphQLRouter(
        schema,
        path=PATH,
        graphql_ide="graphiql",
        context_getter=get_context,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        send_timeout_s=send_timeout_s,
    )
