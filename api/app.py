"""The API process's FastAPI application: the REST command door, ``/health`` and ``/graphql``.

``open_services`` opens what the process shares (database pool, the door's Kafka producer, the
hub, the ceremonies, the desk) for the app's lifetime; they are ``app.state.services``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from api import commands, health, metrics, orders, web_pages
from api.door_guard import DEFAULT_LIMITS, DoorGuard, DoorLimits
from api.graphql.router import DEFAULT_PING_INTERVAL_S, DEFAULT_READ_TIMEOUT_S, graphql_router
from api.security_headers import FrameAncestorsNone
from api.services import ServicesFactory


def create_app(
    open_services: ServicesFactory,
    routers: Sequence[APIRouter] = (),
    limits: DoorLimits = DEFAULT_LIMITS,
    *,
    ws_read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
    ws_ping_interval_s: float = DEFAULT_PING_INTERVAL_S,
) -> FastAPI:
    """``routers`` are mounted after the REST door and GraphQL. Every request passes the
    :class:`DoorGuard` (rate and body limits) first; every response carries
    ``frame-ancestors 'none'``, refusals from the guard included."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services() as services:
            app.state.services = services
            app.state.door = services.door
            yield

    app = FastAPI(title="Execution Floor", lifespan=lifespan)
    app.add_middleware(DoorGuard, limits=limits)
    app.add_middleware(FrameAncestorsNone)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(commands.router)
    app.include_router(orders.router)
    app.include_router(graphql_router(ws_read_timeout_s, ws_ping_interval_s, limits))
    app.include_router(web_pages.router)
    for router in routers:
        app.include_router(router)
    return app
