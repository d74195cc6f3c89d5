"""The door's guard: a rate limit per client address and a body limit, before any route runs.

An ASGI middleware, so a refused request costs no body read, no JSON parse and no database
call. In order:

1. **Rate** (paths under :attr:`DoorLimits.rate_limited_prefixes`, the command doors): each
   client address has a token bucket (:mod:`api.rate_limit`); a request that finds it empty is
   answered 429 with ``Retry-After``. The address is the TCP peer's: the API runs uvicorn with
   proxy headers off, so ``X-Forwarded-For`` cannot pick the bucket.
2. **Body size** (every path): a ``Content-Length`` over :attr:`DoorLimits.body_limit` is
   answered 413 before a byte of the body is read; a body without one (chunked) is counted as
   it is read and cut off with a 413 as soon as it passes the limit, so at most one limit's
   worth (plus the chunk that crossed it) is ever held. What follows is discarded as it
   arrives (:data:`DRAIN_LIMIT`).

Each refusal is a security event (``door.rate_limited``, ``door.body_too_large``) through the
door's flood summary, so a flood costs a few rows per window, not one per request.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.rate_limit import TokenBuckets, retry_after_header

log = logging.getLogger(__name__)

BODY_LIMIT = 64 * 1024
"""Bytes. A signed command is well under 2 KiB; nothing the door takes comes near this."""
DRAIN_LIMIT = 1024 * 1024
"""Bytes. After a refusal the server reads the rest of the body and throws it away (uvicorn does,
holding none of it), so the connection stays usable and the client reads its answer: a socket
closed with unread data is reset, and the client sees the reset instead of the 413. A body
declared larger than this is not worth reading: that 413 closes the connection."""
DEFAULT_RATE_PER_S = 50.0
DEFAULT_BURST = 100

BODY_TOO_LARGE = "door.body_too_large"
RATE_LIMITED = "door.rate_limited"


@dataclass(frozen=True)
class DoorLimits:
    rate_per_s: float = DEFAULT_RATE_PER_S
    """Requests per second a client address may sustain on the rate-limited paths."""
    burst: int = DEFAULT_BURST
    """Requests a client address may send at once after a quiet spell."""
    body_limit: int = BODY_LIMIT
    rate_limited_prefixes: tuple[str, ...] = ("/v1/", "/graphql")
    """The command door and GraphQL over HTTP, whose ``submitCommand`` and ``executeOrder``
    reach the same door (a WebSocket is not an HTTP request: subscriptions are not counted)."""


DEFAULT_LIMITS = DoorLimits()


class _BodyTooLarge(Exception):
    pass


class DoorGuard:
    def __init__(self, app: ASGIApp, limits: DoorLimits = DEFAULT_LIMITS) -> None:
        self._app = app
        self._limits = limits
        self._buckets = TokenBuckets(limits.rate_per_s, limits.burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limits = self._limits
        client = scope.get("client")
        source = client[0] if client else None
        if scope["path"].startswith(limits.rate_limited_prefixes):
            wait = self._buckets.take(source or "unknown", time.monotonic())
            if wait:
                retry_after = retry_after_header(wait)
                detail = (
                    f"more than {limits.burst} requests at once or {limits.rate_per_s:g} a second from "
                    f"{source}: wait {retry_after} s (Retry-After) and send again, slower"
                )
                await _answer(scope, receive, send, 429, RATE_LIMITED, detail, {"Retry-After": retry_after})
                await _record(scope, RATE_LIMITED, source, detail)
                return

        too_large = (
            f"the body is over {limits.body_limit} bytes; a signed command is far smaller: "
            "send one command per request"
        )
        declared = _content_length(scope)
        if declared is not None and declared > limits.body_limit:
            close = {"Connection": "close"} if declared > DRAIN_LIMIT else {}
            await _answer(scope, receive, send, 413, BODY_TOO_LARGE, too_large, close)
            await _record(scope, BODY_TOO_LARGE, source, f"{too_large} (Content-Length {declared})")
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limits.body_limit:
                    raise _BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, limited_receive, watched_send)
        except _BodyTooLarge:
            if started:
                raise
            await _answer(scope, receive, send, 413, BODY_TOO_LARGE, too_large, {})
            await _record(scope, BODY_TOO_LARGE, source, f"{too_large} (cut off at {received} bytes)")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(
    scope: Scope, receive: Receive, send: Send, status: int, error: str, detail: str, headers: dict[str, str]
) -> None:
    response = JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)
    await response(scope, receive, send)


async def _record(scope: Scope, reason: str, source: str | None, detail: str) -> None:
    door = getattr(scope["app"].state, "door", None)
    if door is None:  # not open yet, or closing
        return
    try:
        await door.refused_at_guard(reason, source, detail)
    except Exception:
        # The client has its answer; an unrecorded refusal must not turn into a 500.
        log.exception("%s from %s not recorded", reason, source)
