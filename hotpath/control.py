"""The hot path's health and control port: a few plain-HTTP routes on 127.0.0.1.

Kept off the order path's event-loop budget by being trivial: no framework, one short JSON
answer per connection.

* ``GET /health``        200 when intake is consuming; the trading state and broker link
* ``GET /stats``         latency stamps of recent orders (for ``bench/hotpath.py``)
* ``GET /metrics``       the process's metrics in Prometheus text (OpenMetrics, with exemplars,
  when the scraper's ``Accept`` asks for it)
* ``GET /metrics.json``  the same metrics as JSON values

Read-only: the port takes no credentials (any local process, or a web page through the
browser, can reach 127.0.0.1), so it changes no state. Every other method is refused with 405;
the breaker is tripped and re-armed by an operator's signed command through intake.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Route = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]
TextRoute = Callable[[str | None], tuple[bytes, str]]
"""Given the request's ``Accept`` header: the body and its content type. Synchronous and short
(a Prometheus scrape renders in well under a millisecond): it runs on the event loop."""

JSON = "application/json"
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}
READ_ONLY = (
    "the control port is read-only; trip or re-arm the breaker with an operator's signed command "
    "(`floor breaker trip` / `floor breaker arm`)"
)


class ControlServer:
    def __init__(
        self,
        routes: dict[tuple[str, str], Route],
        text_routes: dict[tuple[str, str], TextRoute] | None = None,
    ) -> None:
        text_routes = text_routes or {}
        if any(method != "GET" for method, _ in (*routes, *text_routes)):
            raise ValueError("the control port is read-only: GET routes only")
        self._routes = routes
        self._text_routes = text_routes
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await reader.readline()
            accept: str | None = None
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "accept":
                    accept = value.strip()
            parts = request_line.decode("latin-1").split()
            if len(parts) < 2:
                return
            method, path = parts[0], parts[1].split("?", 1)[0]
            text_route = self._text_routes.get((method, path))
            if text_route is not None:
                try:
                    status, (payload, content_type) = 200, text_route(accept)
                except Exception as exc:
                    log.exception("control route %s %s failed", method, path)
                    status, payload, content_type = 500, json.dumps({"error": str(exc)}).encode(), JSON
                self._answer(writer, status, payload, content_type)
                await writer.drain()
                return
            route = self._routes.get((method, path))
            if method != "GET":
                status, body = 405, {"error": READ_ONLY}
            elif route is None:
                known = any(p == path for _, p in (*self._routes, *self._text_routes))
                status, body = (
                    (405, {"error": "method not allowed"}) if known else (404, {"error": "not found"})
                )
            else:
                try:
                    status, body = await route()
                except Exception as exc:
                    log.exception("control route %s %s failed", method, path)
                    status, body = 500, {"error": str(exc)}
            self._answer(writer, status, json.dumps(body).encode(), JSON)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @staticmethod
    def _answer(writer: asyncio.StreamWriter, status: int, payload: bytes, content_type: str) -> None:
        writer.write(
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
