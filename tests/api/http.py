"""Clients of the API door from chosen loopback addresses (each one a separate source to the
door's rate limit and flood summary), and the door as its own process with its own settings."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from api.service import api_spec
from config.ports import free_port
from config.settings import FloorSettings
from floor.supervisor import RunningService, Supervisor, stop_process_group

JSON = {"Content-Type": "application/json"}


def client_from(api_url: str, address: str, timeout: float = 10.0) -> httpx.AsyncClient:  # noqa: ASYNC109
    """An HTTP client whose sockets bind to ``address`` (any 127.0.0.x is loopback on Linux)."""
    return httpx.AsyncClient(
        base_url=api_url, timeout=timeout, transport=httpx.AsyncHTTPTransport(local_address=address)
    )


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


async def raw_post(api_url: str, address: str, head: Mapping[str, str], parts: list[bytes]) -> RawResponse:
    """``POST /v1/commands`` over a bare socket: the headers, then ``parts`` written one by one,
    then the response read, whether or not the request was complete (a client that never
    finishes its body, as a flood does, gets its answer all the same)."""
    url = urlsplit(api_url)
    assert url.hostname is not None and url.port is not None
    reader, writer = await asyncio.open_connection(url.hostname, url.port, local_addr=(address, 0))
    try:
        lines = ["POST /v1/commands HTTP/1.1", f"Host: {url.netloc}", *(f"{k}: {v}" for k, v in head.items())]
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode()
        # The head and the first part leave in one write: a part arriving after the server has
        # answered and closed would be unread data there, which makes its kernel reset the
        # connection and drop the answer before this client reads it.
        for i, part in enumerate(parts or [b""]):
            writer.write(head_bytes + part if i == 0 else part)
            await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10.0)
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await asyncio.wait_for(reader.readline(), 10.0)) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10.0)
        return RawResponse(status, headers, body)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def chunk(data: bytes) -> bytes:
    """One chunk of a ``Transfer-Encoding: chunked`` body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@contextlib.contextmanager
def api_process(
    floor_settings: FloorSettings, supervisor: Supervisor, name: str, env: Mapping[str, str]
) -> Iterator[tuple[str, RunningService]]:
    """An API process of its own (own port, settings from ``env``), stopped afterwards."""
    settings = floor_settings.model_copy(update={"api_port": free_port()})
    service = supervisor.start(dataclasses.replace(api_spec(settings, env=dict(env)), name=name))
    try:
        yield f"http://{settings.host}:{settings.api_port}", service
    finally:
        if service in supervisor.running:
            supervisor.running.remove(service)
        stop_process_group(service.pid)
