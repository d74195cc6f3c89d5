"""The emulator's HTTP routes: Schwab's paths, bodies, status codes and headers.

Every route schwab-py's async client calls for the floor: the OAuth token endpoint,
``/trader/v1`` accounts, orders and user preference, and ``/marketdata/v1`` quotes. Orders
answer as Schwab does: 201 with an empty body and a ``Location`` whose host is literally
``https://api.schwabapi.com`` (schwab-py's ``Utils.extract_order_id`` matches that text), 200
empty for a cancel. Every response carries ``Schwab-Client-CorrelId``.

``/emulator/v1/...`` is the emulator's own control surface for tests (token lifetimes and
revocation, the order limit, streamer faults), guarded by the app's key and secret.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
import uuid
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paper.schwab_api.errors import (
    CORREL_HEADER,
    NOT_AUTHORIZED,
    MarketDataError,
    ServiceError,
    bad_request,
    correl_id,
    market_data_error_response,
    oauth_error_response,
    service_error_response,
)
from paper.schwab_api.orders import parse_schwab_time
from paper.schwab_api.service import Emulator
from paper.schwab_api.stream import StreamHub

log = logging.getLogger("paper.schwab_api.app")

LOCATION_BASE = "https://api.schwabapi.com/trader/v1/accounts"
MAX_RESULTS = 3000
ORDER_STATUSES = frozenset(
    {
        "AWAITING_PARENT_ORDER", "AWAITING_CONDITION", "AWAITING_STOP_CONDITION", "AWAITING_MANUAL_REVIEW",
        "ACCEPTED", "AWAITING_UR_OUT", "PENDING_ACTIVATION", "QUEUED", "WORKING", "REJECTED",
        "PENDING_CANCEL", "CANCELED", "PENDING_REPLACE", "REPLACED", "FILLED", "EXPIRED", "NEW",
        "AWAITING_RELEASE_TIME", "PENDING_ACKNOWLEDGEMENT", "PENDING_RECALL", "UNKNOWN",
    }
)  # fmt: skip
"""Schwab's order statuses (``status`` of an order query takes one)."""


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        key, sep, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (key, secret) if sep else None


def _emulator(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


def _bearer_valid(request: Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and _emulator(request).tokens.access_valid(token.strip(), time.time())


def trader_token(request: Request) -> None:
    if not _bearer_valid(request):
        raise ServiceError(401, NOT_AUTHORIZED)


def market_token(request: Request) -> None:
    if not _bearer_valid(request):
        raise MarketDataError(401, "Unauthorized", NOT_AUTHORIZED)


def app_credentials(request: Request) -> None:
    credentials = _basic_credentials(request)
    if credentials is None or not _emulator(request).tokens.client_matches(*credentials):
        raise ServiceError(401, NOT_AUTHORIZED, ["give the app key and secret as HTTP Basic credentials"])


# Route parameters that only check the caller (their value is None).
Trader = Annotated[None, Depends(trader_token)]
Market = Annotated[None, Depends(market_token)]
Control = Annotated[None, Depends(app_credentials)]


class CorrelIdMiddleware:
    """Adds ``Schwab-Client-CorrelId`` to every HTTP response that has none (plain ASGI: the
    request path pays no extra task, unlike a ``BaseHTTPMiddleware``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_correl(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if CORREL_HEADER not in headers:
                    headers.append(CORREL_HEADER, correl_id())
            await send(message)

        await self.app(scope, receive, with_correl)


def create_app(emulator: Emulator, hub: StreamHub) -> FastAPI:
    app = FastAPI(title="paper Schwab Trader API", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.emulator = emulator

    @app.exception_handler(ServiceError)
    async def on_service_error(request: Request, exc: ServiceError) -> JSONResponse:
        # Every refusal is in the emulator's log, with what the client was told.
        log.info("%s %s refused: %s", request.method, request.url.path, exc)
        return service_error_response(exc)

    @app.exception_handler(MarketDataError)
    async def on_market_data_error(request: Request, exc: MarketDataError) -> JSONResponse:
        log.info("%s %s refused: %s", request.method, request.url.path, exc)
        return market_data_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()]
        return await on_service_error(request, ServiceError(400, "Invalid request", problems))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unknown paths and methods answer in Schwab's shape too.
        return await on_service_error(request, ServiceError(exc.status_code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        error = ServiceError(
            500, "Unexpected server error", [f"{type(exc).__name__}: {exc}; see the emulator's log"]
        )
        return service_error_response(error)

    app.add_middleware(CorrelIdMiddleware)

    # ------------------------------------------------------------------ OAuth

    @app.post("/v1/oauth/token")
    async def token(request: Request) -> JSONResponse:
        credentials = _basic_credentials(request)
        if credentials is None or not emulator.tokens.client_matches(*credentials):
            return oauth_error_response(
                401, "invalid_client", "client authentication failed: wrong app key or secret"
            )
        # A form body (application/x-www-form-urlencoded), as OAuth clients send it.
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
        grant = form.get("grant_type")
        if grant != "refresh_token":
            return oauth_error_response(
                400, "unsupported_grant_type",
                f"grant_type {grant!r}: the paper emulator issues tokens by refresh only; write a token "
                "file with paper.schwab_api.tokens.write_token_file",
            )  # fmt: skip
        refresh = str(form.get("refresh_token", ""))
        now = time.time()
        if not emulator.tokens.refresh_valid(refresh, now):
            return oauth_error_response(400, "invalid_client", "refresh token invalid")
        return JSONResponse(emulator.tokens.token_body(now, refresh), headers={"Cache-Control": "no-store"})

    # ------------------------------------------------------------------ accounts

    @app.get("/trader/v1/accounts/accountNumbers")
    async def account_numbers(_: Trader) -> list[dict[str, str]]:
        return emulator.account_numbers()

    @app.get("/trader/v1/accounts")
    async def accounts(_: Trader, fields: str | None = None) -> list[dict[str, Any]]:
        positions = _positions_field(fields)
        return [await emulator.account_json(a, positions) for a in emulator.config.accounts]

    @app.get("/trader/v1/accounts/{hash_value}")
    async def account(hash_value: str, _: Trader, fields: str | None = None) -> dict[str, Any]:
        number = emulator.account_number(hash_value)
        return await emulator.account_json(number, _positions_field(fields))

    @app.get("/trader/v1/userPreference")
    async def user_preference(_: Trader) -> dict[str, Any]:
        return {
            "accounts": [
                {
                    "accountNumber": a,
                    "primaryAccount": i == 0,
                    "type": "BROKERAGE",
                    "nickName": "Paper",
                    "displayAcctId": f"...{a[-3:]}",
                    "autoPositionEffect": False,
                    "accountColor": "Green",
                }  # fmt: skip
                for i, a in enumerate(emulator.config.accounts)
            ],
            "streamerInfo": [
                {
                    "streamerSocketUrl": emulator.config.stream_url,
                    "schwabClientCustomerId": emulator.customer_id,
                    "schwabClientCorrelId": str(uuid.uuid4()),
                    "schwabClientChannel": "N9",
                    "schwabClientFunctionId": "APIAPP",
                }
            ],
            "offers": [{"level2Permissions": True, "mktDataPermission": "NP"}],
        }

    # ------------------------------------------------------------------ orders

    @app.post("/trader/v1/accounts/{hash_value}/orders", status_code=201)
    async def place_order(hash_value: str, request: Request, _: Trader) -> Response:
        number = emulator.account_number(hash_value)
        emulator.charge(hash_value)
        order = await emulator.place(number, await request.body())
        return _created(hash_value, order.order_id)

    @app.put("/trader/v1/accounts/{hash_value}/orders/{order_id}", status_code=201)
    async def replace_order(hash_value: str, order_id: int, request: Request, _: Trader) -> Response:
        number = emulator.account_number(hash_value)
        emulator.charge(hash_value)
        old = emulator.order(number, order_id)
        new = await emulator.replace(number, old, await request.body())
        return _created(hash_value, new.order_id)

    @app.delete("/trader/v1/accounts/{hash_value}/orders/{order_id}")
    async def cancel_order(hash_value: str, order_id: int, _: Trader) -> Response:
        number = emulator.account_number(hash_value)
        emulator.charge(hash_value)
        await emulator.cancel(emulator.order(number, order_id))
        return Response(status_code=200)

    @app.get("/trader/v1/accounts/{hash_value}/orders/{order_id}")
    async def get_order(hash_value: str, order_id: int, _: Trader) -> dict[str, Any]:
        order = emulator.order(emulator.account_number(hash_value), order_id)
        return order.to_json(emulator.book.successor(order))

    @app.get("/trader/v1/accounts/{hash_value}/orders")
    async def account_orders(hash_value: str, request: Request, _: Trader) -> list[dict[str, Any]]:
        number = emulator.account_number(hash_value)
        return emulator.orders_between(number, *_order_query(request))

    @app.get("/trader/v1/orders")
    async def all_orders(request: Request, _: Trader) -> list[dict[str, Any]]:
        return emulator.orders_between(None, *_order_query(request))

    # ------------------------------------------------------------------ market data

    @app.get("/marketdata/v1/quotes")
    async def quotes(_: Market, symbols: str = "") -> dict[str, Any]:
        wanted = [s.strip().upper() for s in symbols.split(",") if s.strip()]
        if not wanted:
            raise MarketDataError(
                400, "Bad Request", "symbols is required, e.g. symbols=AAPL,MSFT", "symbols"
            )
        return {s: _quote(s) for s in wanted if s in emulator.quotes}

    @app.get("/marketdata/v1/{symbol}/quotes")
    async def quote(symbol: str, _: Market) -> dict[str, Any]:
        symbol = symbol.upper()
        if symbol not in emulator.quotes:
            raise MarketDataError(404, "Not Found", f"no quote for {symbol!r}", "symbol")
        return {symbol: _quote(symbol)}

    def _quote(symbol: str) -> dict[str, Any]:
        emulator.venue()  # 503 while the venue is away: the quote would be stale
        tick = emulator.quotes[symbol]
        mark = tick.last or tick.bid or tick.ask or tick.close
        if tick.bid is not None and tick.ask is not None:
            mark = (tick.bid + tick.ask) / 2
        millis = tick.time_ns // 1_000_000
        return {
            "assetMainType": "EQUITY", "assetSubType": "COE", "quoteType": "NBBO", "realtime": True,
            "ssid": emulator.contracts[symbol].con_id, "symbol": symbol,
            "quote": {
                "bidPrice": _num(tick.bid), "bidSize": tick.bid_size, "askPrice": _num(tick.ask),
                "askSize": tick.ask_size, "lastPrice": _num(tick.last), "lastSize": tick.last_size,
                "mark": float(mark), "closePrice": float(tick.close), "totalVolume": tick.volume,
                "quoteTime": millis, "tradeTime": millis,
            },
        }  # fmt: skip

    # ------------------------------------------------------------------ control (tests)

    @app.post("/emulator/v1/tokens")
    async def control_tokens(request: Request, _: Control) -> dict[str, Any]:
        """``{"access_ttl_s", "refresh_ttl_s", "revoke_refresh": true, "expire_access": true}``."""
        body = await _json(request)
        policy = emulator.tokens.policy
        now = time.time()
        if "access_ttl_s" in body:
            policy.access_ttl_s = float(body["access_ttl_s"])
        if "refresh_ttl_s" in body:
            policy.refresh_ttl_s = float(body["refresh_ttl_s"])
        if body.get("revoke_refresh"):
            policy.refresh_not_before = now + 1e-6
        if body.get("expire_access"):
            policy.access_not_before = now + 1e-6
        return {"access_ttl_s": policy.access_ttl_s, "refresh_ttl_s": policy.refresh_ttl_s}

    @app.post("/emulator/v1/order-limit")
    async def control_limit(request: Request, _: Control) -> dict[str, Any]:
        """``{"per_minute": 120}`` (0: off); the window starts empty."""
        body = await _json(request)
        emulator.limiter.set_limit(int(body.get("per_minute", emulator.config.order_rate_per_min)))
        return {"per_minute": emulator.limiter.per_minute}

    @app.get("/emulator/v1/status")
    async def control_status(_: Control) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "order_limit_per_minute": emulator.limiter.per_minute,
            "order_requests_refused": emulator.limiter.refused,
            "order_requests_in_window": {
                a: emulator.limiter.in_window(h, now) for h, a in emulator.by_hash.items()
            },
            "open_orders": sum(1 for o in emulator.book.orders.values() if o.is_open),
            "stream_connections": hub.connection_count(),
        }

    @app.post("/emulator/v1/stream")
    async def control_stream(request: Request, _: Control) -> dict[str, Any]:
        """``{"drop": true}`` closes every streamer socket; ``{"refuse_logins_s": N}`` closes
        logins for N s; ``{"freeze_s": N}`` sends nothing for N s; ``{"heartbeat_s": N}``."""
        body = await _json(request)
        return await hub.control(body)

    hub.mount(app)
    return app


def _created(hash_value: str, order_id: int) -> Response:
    return Response(status_code=201, headers={"Location": f"{LOCATION_BASE}/{hash_value}/orders/{order_id}"})


def _positions_field(fields: str | None) -> bool:
    if fields is None or fields == "":
        return False
    if fields != "positions":
        raise bad_request("Invalid request", f"fields {fields!r}: the only value is positions")
    return True


def _order_query(request: Request) -> tuple[float, float, str | None, int]:
    params = request.query_params
    since_text, until_text = params.get("fromEnteredTime"), params.get("toEnteredTime")
    if not since_text or not until_text:
        raise bad_request("Invalid request", "fromEnteredTime and toEnteredTime are both required")
    since = parse_schwab_time(since_text, "fromEnteredTime")
    until = parse_schwab_time(until_text, "toEnteredTime")
    if until < since:
        raise bad_request("Invalid request", "toEnteredTime is before fromEnteredTime")
    if until - since > 366 * 86400:
        raise bad_request("Invalid request", "the range may span a year at most")
    status = params.get("status")
    if status is not None and status not in ORDER_STATUSES:
        raise bad_request(
            "Invalid request", f"status {status!r} is not one of {', '.join(sorted(ORDER_STATUSES))}"
        )
    try:
        max_results = int(params.get("maxResults", MAX_RESULTS))
    except ValueError:
        max_results = 0
    if max_results < 1:
        raise bad_request("Invalid request", "maxResults must be a whole number above zero")
    return since, until, status, max_results


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("Invalid JSON in the request body") from None
    if not isinstance(body, dict):
        raise bad_request("Invalid request", "the body must be a JSON object")
    return body


def _num(value: Any) -> float | None:
    return None if value is None else float(value)
