"""``GET /health``: answers once the door's dependencies are open."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import DoorDep

router = APIRouter()


@router.get("/health")
async def health(door: DoorDep) -> dict[str, str]:
    return {"status": "ok"}
