"""A small ``graphql-transport-ws`` client for tests: connect (with an API token in
``connection_init`` or the session cookie on the handshake), subscribe, read each operation's
results in order, and see how the server closed the socket."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

PROTOCOL = "graphql-transport-ws"


class OperationError(AssertionError):
    """The server answered an operation with ``error`` or a ``next`` carrying errors."""

    def __init__(self, op_id: str, errors: list[Any]) -> None:
        super().__init__(f"operation {op_id}: {errors}")
        self.errors = errors

    @property
    def codes(self) -> list[str | None]:
        return [(e.get("extensions") or {}).get("code") for e in self.errors]


class Completed(AssertionError):
    """The server completed the operation (no more results)."""


class GraphQLSocket:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        self.received = 0
        """Frames read so far (every operation's)."""

    async def init(self, payload: Mapping[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:  # noqa: ASYNC109
        await self.ws.send(json.dumps({"type": "connection_init", "payload": dict(payload or {})}))
        message = await self._recv(timeout)
        if message.get("type") != "connection_ack":
            raise AssertionError(f"expected connection_ack, got {message}")
        return message

    async def subscribe(self, query: str, variables: Mapping[str, Any] | None = None) -> str:
        op_id = str(next(self._ids))
        payload: dict[str, Any] = {"query": query}
        if variables:
            payload["variables"] = dict(variables)
        await self.ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
        return op_id

    async def complete(self, op_id: str) -> None:
        await self.ws.send(json.dumps({"id": op_id, "type": "complete"}))
        self._pending.pop(op_id, None)

    async def message(self, op_id: str, timeout: float = 10.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The next raw message (``next``, ``error`` or ``complete``) of ``op_id``."""
        queue = self._pending[op_id]
        async with asyncio.timeout(timeout):
            while not queue:
                message = await self._recv(None)
                if message.get("type") == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                    continue
                if "id" in message:
                    self._pending[message["id"]].append(message)
        return queue.popleft()

    async def next(self, op_id: str, timeout: float = 10.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The data of ``op_id``'s next result; raises :class:`OperationError` or
        :class:`Completed` for what else the server sent."""
        message = await self.message(op_id, timeout)
        if message["type"] == "complete":
            raise Completed(op_id)
        if message["type"] == "error":
            raise OperationError(op_id, message["payload"])
        payload = message["payload"]
        if payload.get("errors"):
            raise OperationError(op_id, payload["errors"])
        data: dict[str, Any] = payload["data"]
        return data

    async def closed(self, timeout: float = 10.0) -> tuple[int | None, str | None]:  # noqa: ASYNC109
        """Read until the server closes; its close code and reason."""
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(timeout):
                while True:
                    await self._recv(None)
        return self.close_code, self.close_reason

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    @property
    def close_reason(self) -> str | None:
        return self.ws.close_reason

    async def _recv(self, timeout: float | None) -> dict[str, Any]:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            raw = await self.ws.recv()
        self.received += 1
        message: dict[str, Any] = json.loads(raw)
        return message


@contextlib.asynccontextmanager
async def graphql_socket(
    ws_url: str,
    *,
    cookie: str | None = None,
    origin: str | None = None,
    receive_buffer: int | None = None,
    max_queue: int | None = 16,
) -> AsyncIterator[GraphQLSocket]:
    """An open WebSocket to ``ws_url`` speaking graphql-transport-ws (``init`` not yet sent).
    ``receive_buffer``: a small kernel receive buffer, for a client meant to fall behind."""
    headers = {"Cookie": cookie} if cookie else None
    sock = None
    if receive_buffer is not None:
        host, _, port = ws_url.split("//", 1)[1].split("/", 1)[0].rpartition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    async with connect(
        ws_url,
        subprotocols=[PROTOCOL],  # type: ignore[list-item]
        additional_headers=headers,
        origin=origin,  # type: ignore[arg-type]
        sock=sock,
        max_queue=max_queue,
        open_timeout=20,
        ping_interval=None,
    ) as ws:
        yield GraphQLSocket(ws)
