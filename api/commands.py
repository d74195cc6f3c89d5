"""``POST /v1/commands``: the REST door for signed commands."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import ClientAddress, DoorDep
from api.door import Published

router = APIRouter(prefix="/v1")


@router.post(
    "/commands",
    status_code=202,
    responses={
        202: {"description": "Verified and published to agent.commands"},
        403: {"description": "Refused by the sentry; `error` names the reason"},
        413: {"description": "Body over 64 KiB (`door.body_too_large`); nothing was read past the limit"},
        422: {
            "description": "Malformed JSON, a schema violation, or an order in a symbol the floor "
            "does not trade (`unknown_symbol`); `field` names the culprit"
        },
        429: {"description": "Over this address's rate (`door.rate_limited`); retry after `Retry-After` s"},
        503: {
            "description": "Kafka (`bus_unavailable`) or the ledger's Postgres (`ledger_unavailable`) "
            "is unreachable; nothing was published, retry"
        },
    },
)
async def submit_command(request: Request, door: DoorDep, client: ClientAddress) -> JSONResponse:
    """Body: the signed envelope of ``trading.signing.SignedCommand`` (raw JSON)."""
    outcome = await door.submit(await request.body(), client)
    if isinstance(outcome, Published):
        return JSONResponse(
            {
                "status": "published",
                "command_id": outcome.command_id,
                "partition": outcome.partition,
                "offset": outcome.offset,
            },
            status_code=202,
        )
    body: dict[str, str] = {"error": outcome.error, "detail": outcome.detail}
    if outcome.field is not None:
        body["field"] = outcome.field
    return JSONResponse(body, status_code=outcome.status)
