"""The venue's control API: small JSON-over-HTTP on 127.0.0.1 for scripted scenarios.

==========================================  ==================================================
``GET  /status``                            seed, order-flow model, clock, symbols
                                            (bid/ask/mid/last), open orders, steps of scripted
                                            moves still to run, connected gateways
``GET  /symbols/{SYM}/tape``                the symbol's newest prints (trades), oldest first:
                                            seq, price, size, time_ns, session volume, vwap
``GET  /symbols/{SYM}/depth``               the symbol's whole book now: seq, time_ns, every
                                            level a side (price, size), best first
``GET  /orders``                            every order of ours the venue accepted, open or
                                            done, by permId: orderRef, status, fills, prices,
                                            and ``ended_ns``, the market time the venue
                                            cancelled or expired it
``GET  /executions``                        every execution, oldest first: execId, permId,
                                            orderRef, shares, price
``POST /orders/cancel``                     ``{"order_ref": "c1"}``: cancel our open orders
                                            with that orderRef, as an operator at the broker
                                            would (the client is told by order status only)
``POST /symbols/{SYM}/move``                ``{"pct": -10, "ms": 200}``: move the price
``POST /symbols/{SYM}/flash-crash``         ``{"pct": 10, "ms": 200}``: drop it by ``pct``
``POST /symbols/{SYM}/rate``                ``{"rate": 5000}``: model events per second
``POST /rate``                              ``{"rate": 5000}``: the same for every symbol
``POST /gateways/{NAME}/drop``              close that gateway's API client connections
``POST /gateways/{NAME}/freeze``            ``{"seconds": 5}``: gateway goes silent
``POST /gateways/{NAME}/kill``              gateway process exits
``POST /gateways/{NAME}/upstream-loss``     ``{"seconds": 1, "data_lost": true}``: 1100, then
                                            1101 (market data dropped) or 1102 (kept)
``POST /reset``                             ``{"seed": 7, "paused": false, "time_ns": null}``
``POST /clock``                             ``{"paused": true, "advance_ms": 0, "time_scale": 1}``
``POST /session/close``                     expire DAY orders (end of the trading day)
==========================================  ==================================================

Every request, ``GET /status`` included, carries the venue's control token as
``Authorization: Bearer <token>`` (:mod:`paper.venue.control_token`; the status names the
account's orders and the seed that makes the order flow predictable). A request that carries an
``Origin`` header (a web page's) is refused with 403, one without the right token with 401, and
one whose body is not declared ``application/json`` (any ``POST`` must declare it) with 415;
none of them changes anything.

Replies are JSON; errors are ``{"error": "..."}`` with 400 (bad body), 401, 403, 404 (unknown
symbol or gateway), 405 or 415. The server is deliberately tiny (stdlib asyncio, HTTP/1.1, one
request per connection) so the venue process has nothing else to start.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from paper.venue import control_token
from paper.venue.events import DropClients, FreezeGateway, KillGateway, LoseUpstream
from paper.venue.messages import ExecutionReport, Level, OrderUpdate
from paper.venue.server import UnknownGateway, VenueServer

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
MAX_HEADERS = 64
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    415: "Unsupported Media Type",
    500: "Error",
}


def _levels(levels: Iterable[Level]) -> list[dict[str, Any]]:
    return [{"price": str(level.price), "size": level.size} for level in levels]


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _order_row(u: OrderUpdate, ended_ns: int | None) -> dict[str, Any]:
    o = u.order
    return {
        "perm_id": u.perm_id, "client_id": u.client_id, "order_id": u.order_id, "order_ref": o.order_ref,
        "symbol": u.symbol, "action": o.action, "order_type": o.order_type, "total_qty": o.total_qty,
        "lmt_price": _text(o.lmt_price), "aux_price": _text(o.aux_price),
        "trail_stop_price": _text(o.trail_stop_price), "tif": o.tif, "status": u.status,
        "filled": u.filled, "remaining": u.remaining, "avg_fill_price": _text(u.avg_fill_price),
        "ended_ns": ended_ns,
    }  # fmt: skip


def _execution_row(r: ExecutionReport) -> dict[str, Any]:
    e = r.execution
    return {
        "exec_id": e.exec_id, "perm_id": e.perm_id, "order_ref": e.order_ref, "symbol": e.symbol,
        "side": e.side, "shares": e.shares, "price": str(e.price), "cum_qty": e.cum_qty, "time_ns": e.time_ns,
    }  # fmt: skip


def _one(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


class BadRequest(ValueError):
    pass


class NotFound(LookupError):
    pass


def _number(body: dict[str, Any], key: str, default: float | None = None) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{key!r} must be a number")
    return float(value)


def _decimal(body: dict[str, Any], key: str) -> Decimal:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequest(f"{key!r} must be a number")
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise BadRequest(f"{key!r} must be a number") from exc
    if not result.is_finite():
        raise BadRequest(f"{key!r} must be finite")
    return result


class ControlApi:
    """The control API; every request must carry ``token`` (see :mod:`paper.venue.control_token`)."""

    def __init__(self, venue: VenueServer, token: str) -> None:
        if not token:
            raise ValueError("the control API needs a token")
        self.venue = venue
        self._token = token
        self.refused: dict[str, int] = {}
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, payload = await self._read_and_route(reader)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            writer.close()
            return
        body = json.dumps(payload).encode()
        challenge = f"WWW-Authenticate: {control_token.SCHEME}\r\n" if status == 401 else ""
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{challenge}"
            "Connection: close\r\n\r\n"
        ).encode()
        try:
            writer.write(head + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _read_and_route(self, reader: asyncio.StreamReader) -> tuple[int, Any]:
        request_line = (await reader.readline()).decode("latin-1").strip()
        parts = request_line.split()
        if len(parts) != 3:
            return 400, {"error": "malformed request line"}
        method, path = parts[0].upper(), parts[1].split("?", 1)[0]
        headers: dict[str, list[str]] = {}
        for _ in range(MAX_HEADERS + 1):
            line = (await reader.readline()).decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        else:
            return 400, {"error": "too many headers"}
        try:
            length = int(_one(headers, "content-length") or 0)
        except ValueError:
            return 400, {"error": "bad Content-Length"}
        if length > MAX_BODY or length < 0:
            return 400, {"error": "body too large"}
        # Read before any refusal too: closing on unread bytes resets the connection, and the
        # caller would see that instead of the answer.
        raw = await reader.readexactly(length) if length else b""
        refusal = self._refusal(method, headers)
        if refusal is not None:
            return refusal
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return 400, {"error": "body is not JSON"}
        if not isinstance(body, dict):
            return 400, {"error": "body must be a JSON object"}
        try:
            return 200, self.route(method, path, body)
        except BadRequest as exc:
            return 400, {"error": str(exc)}
        except (NotFound, UnknownGateway) as exc:
            return 404, {"error": f"not found: {exc}"}
        except Exception as exc:
            log.exception("control request %s %s failed", method, path)
            return 500, {"error": str(exc)}

    def _refusal(self, method: str, headers: dict[str, list[str]]) -> tuple[int, Any] | None:
        """Why a request may not be served, before it touches the venue; None if it may.

        A browser adds ``Origin`` to every cross-site POST, and a page may POST only
        ``text/plain``, form or multipart bodies without asking first (no-cors): refusing both
        keeps web pages out even before the token is checked.
        """
        if "origin" in headers:
            return self._refused(403, "origin", "requests from web pages are refused")
        if len(headers.get("authorization", [])) != 1 or not control_token.matches(
            _one(headers, "authorization"), self._token
        ):
            return self._refused(401, "token", "a valid control token is required (Authorization: Bearer)")
        types = headers.get("content-type", [])
        if (types or method != "GET") and not (len(types) == 1 and _is_json(types[0])):
            return self._refused(415, "content_type", "the body must be sent as application/json")
        return None

    def _refused(self, status: int, reason: str, message: str) -> tuple[int, Any]:
        # Counted, and logged only now and then: a flood of refusals must not fill the log's disk.
        count = self.refused[reason] = self.refused.get(reason, 0) + 1
        if count == 1 or count % 1000 == 0:
            log.warning("control request refused (%s), %d so far: %s", reason, count, message)
        return status, {"error": message}

    def route(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """Apply one control request; returns the JSON reply."""
        v = self.venue
        parts = [p for p in path.split("/") if p]
        if parts == ["status"]:
            if method != "GET":
                raise BadRequest("use GET")
            return v.status()
        if len(parts) == 3 and parts[0] == "symbols" and parts[2] == "tape":
            if method != "GET":
                raise BadRequest("use GET")
            if v.venue.contract(parts[1]) is None:
                raise NotFound(parts[1])
            return v.tape(parts[1].upper())
        if len(parts) == 3 and parts[0] == "symbols" and parts[2] == "depth":
            if method != "GET":
                raise BadRequest("use GET")
            if v.venue.contract(parts[1]) is None:
                raise NotFound(parts[1])
            return self._depth(parts[1].upper())
        if parts in (["orders"], ["executions"]):
            if method != "GET":
                raise BadRequest("use GET")
            return self._orders() if parts == ["orders"] else self._executions()
        if method != "POST":
            raise BadRequest("use POST")
        match parts:
            case ["symbols", symbol, action]:
                if v.venue.contract(symbol) is None:
                    raise NotFound(symbol)
                symbol = symbol.upper()
                if action == "move":
                    pct = _decimal(body, "pct")
                    if not -100 < pct <= 1000:
                        raise BadRequest("'pct' must be in (-100, 1000]")
                    v.move_price(symbol, pct, self._duration(body))
                elif action == "flash-crash":
                    pct = _decimal(body, "pct")
                    if not 0 < pct < 100:
                        raise BadRequest("'pct' must be between 0 and 100")
                    v.move_price(symbol, -pct, self._duration(body))
                elif action == "rate":
                    v.set_rate(symbol, self._rate(body))
                else:
                    raise NotFound(path)
                return {"ok": True, "status": v.status()}
            case ["rate"]:
                v.set_rate(None, self._rate(body))
                return {"ok": True}
            case ["gateways", name, action]:
                if action == "drop":
                    v.send_control(DropClients(name))
                elif action == "freeze":
                    seconds = _number(body, "seconds")
                    if not 0 < seconds <= 3600:
                        raise BadRequest("'seconds' must be in (0, 3600]")
                    v.send_control(FreezeGateway(name, seconds))
                elif action == "kill":
                    v.send_control(KillGateway(name))
                elif action == "upstream-loss":
                    seconds = _number(body, "seconds")
                    if not 0 < seconds <= 3600:
                        raise BadRequest("'seconds' must be in (0, 3600]")
                    data_lost = body.get("data_lost", True)
                    if not isinstance(data_lost, bool):
                        raise BadRequest("'data_lost' must be true or false")
                    v.send_control(LoseUpstream(name, seconds, data_lost))
                else:
                    raise NotFound(path)
                return {"ok": True}
            case ["reset"]:
                seed = body.get("seed", v.venue.seed)
                if isinstance(seed, bool) or not isinstance(seed, int):
                    raise BadRequest("'seed' must be an integer")
                paused = body.get("paused")
                if paused is not None and not isinstance(paused, bool):
                    raise BadRequest("'paused' must be a boolean")
                time_ns = body.get("time_ns")
                if time_ns is not None and (isinstance(time_ns, bool) or not isinstance(time_ns, int)):
                    raise BadRequest("'time_ns' must be an integer")
                v.reset(seed, paused=paused, time_ns=time_ns)
                return {"ok": True, "status": v.status()}
            case ["clock"]:
                paused = body.get("paused")
                if paused is not None and not isinstance(paused, bool):
                    raise BadRequest("'paused' must be a boolean")
                advance = _number(body, "advance_ms", 0.0)
                if advance < 0:
                    raise BadRequest("the market clock does not go backwards")
                scale = body.get("time_scale")
                if scale is not None:
                    scale = _number(body, "time_scale")
                    if scale <= 0:
                        raise BadRequest("'time_scale' must be positive")
                v.set_clock(paused=paused, advance_ms=advance, time_scale=scale)
                return {"ok": True, "status": v.status()}
            case ["orders", "cancel"]:
                ref = body.get("order_ref")
                if not isinstance(ref, str) or not ref:
                    raise BadRequest("'order_ref' must be a non-empty string")
                return {"ok": True, "cancelled": v.cancel_by_ref(ref)}
            case ["session", "close"]:
                return {"ok": True, "expired": v.session_close()}
        raise NotFound(path)

    def _depth(self, symbol: str) -> dict[str, Any]:
        """Every level of the book, not the rows a gateway subscribed to: what a test compares
        a downstream copy of the book with (read-only; with the clock paused it holds still)."""
        book = self.venue.venue.depth_snapshot(symbol)
        return {"symbol": symbol, "seq": book.seq, "time_ns": book.time_ns,
                "bids": _levels(book.bids), "asks": _levels(book.asks)}  # fmt: skip

    def _orders(self) -> dict[str, Any]:
        """The venue's own record of what it was sent: what a test holds a client's view against
        (each order once, whatever the client believes it sent)."""
        venue = self.venue.venue
        updates = sorted((*venue.open_orders(), *venue.completed_orders()), key=lambda u: u.perm_id)
        ended = {(wo.client_id, wo.order_id): wo.ended_ns for wo in venue.orders.values()}
        rows = [_order_row(u, ended.get((u.client_id, u.order_id))) for u in updates]
        return {"epoch": self.venue.epoch, "orders": rows}

    def _executions(self) -> dict[str, Any]:
        rows = [_execution_row(r) for r in self.venue.venue.executions]
        return {"epoch": self.venue.epoch, "executions": rows}

    @staticmethod
    def _duration(body: dict[str, Any]) -> float:
        ms = _number(body, "ms", 0.0)
        if not 0 <= ms <= 3_600_000:
            raise BadRequest("'ms' must be in [0, 3600000]")
        return ms

    @staticmethod
    def _rate(body: dict[str, Any]) -> float:
        rate = _number(body, "rate")
        if not 0 <= rate <= 1_000_000:
            raise BadRequest("'rate' must be in [0, 1000000]")
        return rate
