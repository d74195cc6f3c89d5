"""``/graphql``: queries and mutations over HTTP (GraphiQL in a browser), subscriptions over a
WebSocket speaking ``graphql-transport-ws`` only.

A WebSocket authenticates in ``connection_init``: the payload's ``token`` (an API token) or,
from the HUD, the session cookie the handshake carried. A missing or bad one closes the
connection with 4403 before any operation runs. Strawberry refuses a handshake from a page on
another origin (the cookie would otherwise let any site subscribe as the trader).

A client that stops reading is found two ways. Every ``ping_interval_s`` the server sends a
protocol ``ping``, which a client answers with ``pong`` as soon as it reads it; and a frame may
wait at most ``read_timeout_s`` for room in the socket's buffers. A client that has not
answered within ``read_timeout_s`` of the ping (it is that far behind, or gone), or that leaves
a frame waiting that long, has its operations ended and is closed with
:data:`SLOW_CONSUMER_CODE` and the reason :data:`SLOW_CONSUMER` (which it reads after what was
already buffered for it, if it ever reads again). The hub never waits for it either way (its
mailbox conflates or overflows on its own), so a stuck client holds nothing of the hub's and no
task of the API's past that bound.

A connection may send as many messages at once as the command door's burst and as many a second
as its rate (:class:`~api.door_guard.DoorLimits`, here per connection: each ``subscribe`` may
carry a mutation); one more closes it with :data:`TOO_MANY_MESSAGES_CODE` and the reason
:data:`~api.door_guard.RATE_LIMITED`. Strawberry already bounds the operations open at once on
one connection (100).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.http.async_base_view import AsyncBaseHTTPView
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message, PongMessage
from strawberry.types.unset import UNSET, UnsetType

from api.door_guard import DEFAULT_LIMITS, RATE_LIMITED, DoorLimits
from api.graphql.context import FloorContext, get_context
from api.graphql.schema import schema
from api.principals import SESSION_COOKIE, authenticate
from api.rate_limit import TokenBuckets

log = logging.getLogger(__name__)

PATH = "/graphql"
SLOW_CONSUMER = "resync.slow_consumer"
SLOW_CONSUMER_CODE = 4410
"""Private-use close code (4000-4999; graphql-transport-ws takes 44xx codes it does not use
for this): the stream is gone, reconnect and resubscribe."""
FORBIDDEN_CODE = 4403
TOO_MANY_MESSAGES_CODE = 4429
SIGNED_OUT = "auth.signed_out"
DEFAULT_READ_TIMEOUT_S = 5.0
DEFAULT_PING_INTERVAL_S = 10.0


class BoundedSendWebSocket(ASGIWebSocketAdapter):
    """Strawberry's WebSocket, with a bound on how long one frame may wait for the client."""

    def __init__(self, view: AsyncBaseHTTPView, request: WebSocket, response: WebSocket) -> None:
        super().__init__(view, request, response)
        self.read_timeout_s: float = getattr(view, "read_timeout_s", DEFAULT_READ_TIMEOUT_S)
        self.stuck = False
        self._closing: asyncio.Task[None] | None = None

    async def send_json(self, message: Mapping[str, object]) -> None:
        if self.stuck:
            raise WebSocketDisconnected()
        try:
            async with asyncio.timeout(self.read_timeout_s):
                await super().send_json(message)
        except TimeoutError:
            self.give_up(f"a frame waited {self.read_timeout_s:.1f} s for room")
            raise WebSocketDisconnected() from None

    def give_up(self, why: str) -> None:
        """Close the connection as a slow consumer."""
        self.end(SLOW_CONSUMER_CODE, SLOW_CONSUMER, f"it is not reading ({why})")

    def end(self, code: int, reason: str, why: str) -> None:
        """Close the connection (once); sending anything more fails at once."""
        if self.stuck:
            return
        self.stuck = True
        client = self.ws.client.host if self.ws.client else None
        log.warning("closing the WebSocket of %s with %s: %s", client, reason, why)
        # Not awaited: the close frame waits for room like any frame.
        self._closing = asyncio.create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, reason=reason)


class WatchedTransportWSHandler(BaseGraphQLTransportWSHandler[FloorContext, None]):
    """graphql-transport-ws with a watch on the connection, every ``ping_interval_s``: its
    credentials are checked again (signed out, expired or revoked: closed with 4403
    :data:`SIGNED_OUT`), and a ``ping`` whose ``pong`` does not come within ``read_timeout_s``
    closes it as slow."""

    _watch: asyncio.Task[None] | None = None
    _ponged: asyncio.Event | None = None
    _messages: TokenBuckets | None = None

    def on_request_accepted(self) -> None:
        super().on_request_accepted()
        self._ponged = asyncio.Event()
        self._watch = asyncio.create_task(self._watch_reading())
        limits: DoorLimits = getattr(self.view, "limits", DEFAULT_LIMITS)
        self._messages = TokenBuckets(limits.rate_per_s, limits.burst, max_sources=1)

    async def handle_message(self, message: Message) -> None:
        adapter = self.websocket
        assert isinstance(adapter, BoundedSendWebSocket) and self._messages is not None
        if adapter.stuck:
            return  # closing: whatever else it sent goes unread
        if self._messages.take("connection", time.monotonic()):
            burst, rate = self._messages.burst, self._messages.rate_per_s
            detail = f"more than {burst} messages at once or {rate:g} a second on one WebSocket"
            adapter.end(TOO_MANY_MESSAGES_CODE, RATE_LIMITED, f"{detail}: connect again and send slower")
            for operation_id in list(self.operations):
                await self.cleanup_operation(operation_id)
            try:
                # Through the door's flood summary, as an HTTP request over the rate is.
                await self.context.services.door.refused_at_guard(
                    RATE_LIMITED, self.context.client_address, detail
                )
            except Exception:
                log.exception(
                    "%s of a WebSocket from %s not recorded", RATE_LIMITED, self.context.client_address
                )
            return
        await super().handle_message(message)

    async def handle_pong(self, message: PongMessage) -> None:
        if self._ponged is not None:
            self._ponged.set()

    async def shutdown(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await super().shutdown()

    async def _watch_reading(self) -> None:
        adapter = self.websocket
        assert isinstance(adapter, BoundedSendWebSocket) and self._ponged is not None
        interval = getattr(self.view, "ping_interval_s", DEFAULT_PING_INTERVAL_S)
        while not adapter.stuck:
            await asyncio.sleep(interval)
            if not self.connection_acknowledged:
                continue
            try:
                signed_in = await self.context.still_signed_in()
            except Exception:
                # The database is out of reach: the answer is unknown, so the connection stays.
                log.exception("checking a WebSocket's session again failed")
                signed_in = True
            if not signed_in:
                adapter.end(FORBIDDEN_CODE, SIGNED_OUT, "its session or token no longer opens anything")
                break
            self._ponged.clear()
            try:
                async with asyncio.timeout(adapter.read_timeout_s):
                    await self.send_message({"type": "ping"})
                    await self._ponged.wait()
            except (TimeoutError, WebSocketDisconnected):
                adapter.give_up(f"no pong within {adapter.read_timeout_s:.1f} s of a ping")
        # Its operations end now: their mailboxes close and the hub forgets them.
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)


class FloorGraphQLRouter(GraphQLRouter[FloorContext, None]):
    websocket_adapter_class = BoundedSendWebSocket
    graphql_transport_ws_handler_class = WatchedTransportWSHandler

    def __init__(
        self,
        *args: Any,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        ping_interval_s: float = DEFAULT_PING_INTERVAL_S,
        limits: DoorLimits = DEFAULT_LIMITS,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout_s = read_timeout_s
        self.ping_interval_s = ping_interval_s
        self.limits = limits

    async def on_ws_connect(self, context: FloorContext) -> UnsetType | None | dict[str, Any]:
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        token = params.get("token")
        websocket = context.request
        cookie = websocket.cookies.get(SESSION_COOKIE) if websocket is not None else None
        bearer = token if isinstance(token, str) and token else None
        principal = await authenticate(context.services.db, cookie=cookie, bearer=bearer)
        if principal is None:
            raise ConnectionRejectionError()
        context.principal = principal
        context.credentials = (cookie, bearer)
        return UNSET


def graphql_router(
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
    ping_interval_s: float = DEFAULT_PING_INTERVAL_S,
    limits: DoorLimits = DEFAULT_LIMITS,
) -> FloorGraphQLRouter:
    return FloorGraphQLRouter(
        schema,
        path=PATH,
        graphql_ide="graphiql",
        context_getter=get_context,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        read_timeout_s=read_timeout_s,
        ping_interval_s=ping_interval_s,
        limits=limits,
    )
