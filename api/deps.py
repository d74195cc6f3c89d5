"""FastAPI dependencies as ``Annotated`` aliases, reusable by a GraphQL ``context_getter``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.door import Door


def get_door(request: Request) -> Door:
    door: Door = request.app.state.door
    return door


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


DoorDep = Annotated[Door, Depends(get_door)]
ClientAddress = Annotated[str | None, Depends(client_address)]
