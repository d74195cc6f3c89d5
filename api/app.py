"""The API process's FastAPI application.

Routers are plain ``APIRouter``s included here, so the GraphQL endpoint (a Strawberry
``GraphQLRouter`` whose ``context_getter`` reuses :mod:`api.deps`) is one more
``app.include_router(graphql, prefix="/graphql")`` in :func:`create_app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, FastAPI

from api import commands, health
from api.door import Door
from api.door_guard import DEFAULT_LIMITS, DoorGuard, DoorLimits

DoorFactory = Callable[[], AbstractAsyncContextManager[Door]]


def create_app(
    open_door: DoorFactory, routers: Sequence[APIRouter] = (), limits: DoorLimits = DEFAULT_LIMITS
) -> FastAPI:
    """``open_door`` opens the door's resources (database pool, Kafka producer) for the app's
    lifetime and closes them at shutdown. ``routers`` are mounted after the REST door (the
    GraphQL router carries its own prefix). Every request passes the :class:`DoorGuard`
    (rate and body limits) first."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_door() as door:
            app.state.door = door
            yield

    app = FastAPI(title="Execution Floor", lifespan=lifespan)
    app.add_middleware(DoorGuard, limits=limits)
    app.include_router(health.router)
    app.include_router(commands.router)
    for router in routers:
        app.include_router(router)
    return app
