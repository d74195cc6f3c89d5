"""``POST /v1/orders/{staged_id}/execute``: Execute for a client that does not speak GraphQL.

The same :meth:`api.desk.Desk.execute` as the ``executeOrder`` mutation, for the trader of the
session cookie. Body (optional): ``{"step_up": {"challenge_id": "...", "credential": {...}}}``,
the credential as ``PublicKeyCredential.toJSON()`` gives it.

The request must be ``Content-Type: application/json`` (415 ``desk.json_required``), and
since the session cookie rides along on any request a browser makes, one a browser made from
another page is refused (403 ``desk.cross_site``): its ``Origin`` must be the floor's own
(``FLOOR_WEBAUTHN_ORIGIN``) and, without an ``Origin``, its ``Sec-Fetch-Site`` ``same-origin``.
A request with neither header is no browser's, so no page could have made it.

Answers: 200 ``{"result": "Executed", "command_id", "state", "ceremony"}``; a refusal is
``{"result": <the GraphQL result type>, "error": <dotted reason>, "detail": ...}`` with 403 for
``NotArmed``, ``GrantExceeded`` and ``StepUpRequired`` (which adds ``step_up``: the challenge
id, WebAuthn request options, expiry and order hash), 422 for ``RiskRejected``, 409 for
``BreakerHalted`` and a status by reason for ``Invalid`` (:func:`invalid_status`).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import ClientAddress
from api.desk import Desk
from api.desk_results import (
    ALREADY_EXECUTED,
    NO_SESSION,
    NOT_STAGED,
    BreakerHalted,
    Executed,
    ExecuteResult,
    GrantExceeded,
    Invalid,
    NotArmed,
    RiskRejected,
    StepUpAnswer,
    StepUpRequired,
)
from api.door import BUS_UNAVAILABLE, LEDGER_UNAVAILABLE
from api.principals import SESSION_COOKIE, authenticate
from api.same_origin import CROSS_SITE, cross_site

router = APIRouter(prefix="/v1")

UNAUTHENTICATED = "auth.unauthenticated"
BAD_BODY = "desk.bad_body"
JSON_REQUIRED = "desk.json_required"


@router.post(
    "/orders/{staged_id}/execute",
    responses={
        200: {"description": "Executed: `state` ACCEPTED (ledgered by the hot path) or PENDING"},
        401: {"description": "No trader session (`auth.unauthenticated`, `desk.no_session`)"},
        403: {
            "description": "NotArmed, GrantExceeded, StepUpRequired (with `step_up`); a WebAuthn refusal;"
            " a request from another site's page (`desk.cross_site`)"
        },
        404: {"description": "No such staged order of this trader (`desk.not_staged`)"},
        409: {"description": "Executed already (`desk.already_executed`), or the breaker halted the floor"},
        415: {"description": "The body is not `application/json` (`desk.json_required`)"},
        422: {"description": "Refused by the risk gate (`risk.*`, `sizing.*`) or a malformed body"},
        503: {"description": "Kafka or Postgres unreachable; nothing was published, retry"},
    },
)
async def execute_staged(staged_id: str, request: Request, client: ClientAddress) -> JSONResponse:
    services = request.app.state.services
    principal = await authenticate(services.db, cookie=request.cookies.get(SESSION_COOKIE), bearer=None)
    if principal is None:
        return _refusal("Invalid", UNAUTHENTICATED, "sign in with your passkey first", 401)
    if (refused := _not_from_the_floors_page(request, services.settings.webauthn_origin)) is not None:
        return refused
    step_up = _step_up(await request.body())
    if isinstance(step_up, JSONResponse):
        return step_up
    desk: Desk | None = services.desk
    if desk is None:
        return _refusal("Invalid", "service.unavailable", "this API process serves no trading desk", 503)
    return execute_response(await desk.execute(principal, staged_id, step_up, client_address=client))


def execute_response(result: ExecuteResult) -> JSONResponse:
    if isinstance(result, Executed):
        return JSONResponse(
            {
                "result": "Executed",
                "command_id": result.command_id,
                "state": result.state,
                "ceremony": result.ceremony,
            }
        )
    if isinstance(result, StepUpRequired):
        return _refusal(
            "StepUpRequired",
            result.reason,
            result.detail,
            403,
            step_up={
                "challenge_id": result.challenge_id,
                "options": json.loads(result.options_json),
                "expires_at": result.expires_at.isoformat(),
                "order_hash": result.order_hash,
                "order_hash_prefix": result.order_hash_prefix,
            },
        )
    if isinstance(result, NotArmed | GrantExceeded):
        return _refusal(type(result).__name__, result.reason, result.detail, 403)
    if isinstance(result, RiskRejected):
        return _refusal("RiskRejected", result.reason, result.detail, 422, command_id=result.command_id)
    if isinstance(result, BreakerHalted):
        return _refusal("BreakerHalted", result.reason, result.detail, 409, command_id=result.command_id)
    return _refusal("Invalid", result.reason, result.detail, invalid_status(result), field=result.field)


def invalid_status(result: Invalid) -> int:
    """The HTTP status of an ``Invalid``: who is asking, what they named, or what refused it."""
    reason = result.reason
    if reason == NO_SESSION:
        return 401
    if reason == NOT_STAGED:
        return 404
    if reason == ALREADY_EXECUTED:
        return 409
    if reason.startswith(("webauthn.", "sentry.")):
        return 403
    if reason in (BUS_UNAVAILABLE, LEDGER_UNAVAILABLE):
        return 503
    return 422


def _not_from_the_floors_page(request: Request, origin: str) -> JSONResponse | None:
    """Why a cookie-authenticated request may not execute (None: it may): it must be JSON, which
    no HTML form can send, and made by the floor's own page (the module docstring)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        return _refusal(
            "Invalid", JSON_REQUIRED, "send the body as application/json ({} for no step-up)", 415
        )
    refused = cross_site(request.headers, origin, "execute orders")
    if refused is not None:
        return _refusal("Invalid", CROSS_SITE, refused, 403)
    return None


def _step_up(body: bytes) -> StepUpAnswer | None | JSONResponse:
    if not body.strip():
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return _refusal("Invalid", BAD_BODY, "the body must be JSON (or empty)", 422)
    step_up = data.get("step_up") if isinstance(data, dict) else None
    if step_up is None:
        return None
    challenge_id = step_up.get("challenge_id") if isinstance(step_up, dict) else None
    credential = step_up.get("credential") if isinstance(step_up, dict) else None
    if not isinstance(challenge_id, str) or not isinstance(credential, dict):
        return _refusal(
            "Invalid",
            BAD_BODY,
            'step_up is {"challenge_id": "...", "credential": <PublicKeyCredential.toJSON()>}',
            422,
            field="step_up",
        )
    return StepUpAnswer(challenge_id, json.dumps(credential))


def _refusal(result: str, error: str, detail: str, status: int, **extra: Any) -> JSONResponse:
    body = {"result": result, "error": error, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status)
