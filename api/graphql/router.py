"""``/graphql``: queries and mutations over HTTP (GraphiQL in a browser), subscriptions over a
WebSocket speaking ``graphql-transport-ws`` only.

A WebSocket authenticates in ``connection_init``: the payload's ``token`` (an API token) or,
from the HUD, the session cookie the handshake carried. A missing or bad one closes the
connection with 4403 before any operation runs. Strawberry refuses a handshake from a page on
another origin (the cookie would otherwise let any site subscribe as the trader).
"""

from __future__ import annotations

from typing import Any

from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from api.graphql.context import FloorContext, get_context
from api.graphql.schema import schema
from api.principals import SESSION_COOKIE, authenticate

PATH = "/graphql"


class FloorGraphQLRouter(GraphQLRouter[FloorContext, None]):
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


def graphql_router() -> FloorGraphQLRouter:
    return FloorGraphQLRouter(
        schema,
        path=PATH,
        graphql_ide="graphiql",
        context_getter=get_context,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
    )
