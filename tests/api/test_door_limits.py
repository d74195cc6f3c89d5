"""The door's limits over real HTTP against the API process: body size, rate per source, the
client address itself, and what a refusal may store.

Each test speaks from its own loopback address, so it has its own rate bucket and its own
security events to look up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import httpx

from api.door_guard import BODY_LIMIT, BODY_TOO_LARGE, DEFAULT_BURST, RATE_LIMITED
from observability.security import FIELD_LIMIT, TRUNCATED
from tests.api.http import JSON, chunk, client_from, raw_post
from tests.factories import Agent, enter_command
from tests.helpers import eventually
from trading import sentry


async def _events(pool: asyncpg.Pool, address: str, reason: str) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT * FROM security_events WHERE remote_addr = $1 AND reason = $2 ORDER BY id",
            address,
            reason,
        )
    )


async def _recorded(pool: asyncpg.Pool, address: str, reason: str) -> list[asyncpg.Record]:
    """The events once there are any (the guard records after it has answered)."""

    async def events() -> list[asyncpg.Record]:
        return await _events(pool, address, reason)

    found: list[asyncpg.Record] = await eventually(events)
    return found


async def test_a_declared_body_over_64_kib_is_refused_with_413_before_it_is_read(
    api_url: str, ledger_pool: asyncpg.Pool
) -> None:
    address = "127.0.0.21"
    # Ten megabytes announced, one byte sent: the answer comes without waiting for the rest.
    response = await raw_post(api_url, address, {**JSON, "Content-Length": str(10 * 1024 * 1024)}, [b"{"])
    assert response.status == 413
    assert json.loads(response.body)["error"] == BODY_TOO_LARGE
    assert "send one command per request" in json.loads(response.body)["detail"]
    [event] = await _recorded(ledger_pool, address, BODY_TOO_LARGE)
    assert event["severity"] == "warning" and event["source"] == "api"


async def test_a_chunked_body_is_cut_off_with_413_as_it_passes_64_kib(
    api_url: str, ledger_pool: asyncpg.Pool
) -> None:
    address = "127.0.0.22"
    # Five 16 KiB chunks (80 KiB) and never the last chunk: the door answers once it has read
    # past the limit, without waiting for an end that does not come.
    head = {**JSON, "Transfer-Encoding": "chunked"}
    response = await raw_post(api_url, address, head, [chunk(b" " * 16 * 1024)] * 5)
    assert response.status == 413
    assert json.loads(response.body)["error"] == BODY_TOO_LARGE
    [event] = await _recorded(ledger_pool, address, BODY_TOO_LARGE)
    assert "cut off at" in json.loads(event["detail"])["detail"]


def _padded_to_the_limit(agent: Agent) -> bytes:
    wire = agent.sign(enter_command(agent.agent_id)).to_wire()
    return wire + b" " * (BODY_LIMIT - len(wire))


async def _in_chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 4096):
        yield body[start : start + 4096]


async def test_a_command_padded_to_exactly_64_kib_is_taken_declared_or_chunked(
    api_url: str, agent: Agent
) -> None:
    async with client_from(api_url, "127.0.0.23") as client:
        declared = await client.post("/v1/commands", content=_padded_to_the_limit(agent), headers=JSON)
        assert declared.status_code == 202, declared.text
        chunks = _in_chunks(_padded_to_the_limit(agent))
        chunked = await client.post("/v1/commands", content=chunks, headers=JSON)
        assert chunked.status_code == 202, chunked.text


async def test_a_source_over_its_rate_gets_429_with_retry_after_and_other_sources_do_not(
    api_url: str, ledger_pool: asyncpg.Pool, agent: Agent
) -> None:
    address = "127.0.0.24"
    async with client_from(api_url, address) as client:

        async def probe() -> httpx.Response:
            return await client.get("/v1/commands")  # 405, but it passes the rate limit first

        limited: httpx.Response | None = None
        for _ in range(20):
            answers = await asyncio.gather(*(probe() for _ in range(DEFAULT_BURST)))
            limited = next((r for r in answers if r.status_code == 429), None)
            if limited is not None:
                break
        assert limited is not None, "no 429 after 20 bursts"
    assert limited.json()["error"] == RATE_LIMITED
    assert int(limited.headers["Retry-After"]) >= 1
    assert "send again" in limited.json()["detail"]

    async with client_from(api_url, "127.0.0.25") as other:
        wire = agent.sign(enter_command(agent.agent_id)).to_wire()
        command = await other.post("/v1/commands", content=wire, headers=JSON)
    assert command.status_code == 202, command.text
    events = await _recorded(ledger_pool, address, RATE_LIMITED)
    assert events[0]["severity"] == "warning"


async def test_x_forwarded_for_does_not_choose_the_client_address(
    api_url: str, ledger_pool: asyncpg.Pool, agent: Agent
) -> None:
    wire = agent.sign(enter_command(agent.agent_id)).to_wire_dict()
    del wire["signature"]
    # From 127.0.0.1, the one address uvicorn trusts as a proxy by default.
    async with client_from(api_url, "127.0.0.1") as client:
        response = await client.post(
            "/v1/commands", content=json.dumps(wire).encode(), headers={**JSON, "X-Forwarded-For": "10.9.8.7"}
        )
    assert response.status_code == 403
    remote = await ledger_pool.fetchval(
        "SELECT remote_addr FROM security_events WHERE command_id = $1", wire["command"]["command_id"]
    )
    assert remote == "127.0.0.1"


async def test_claimed_ids_are_truncated_to_their_limit_before_they_are_stored(
    api_url: str, ledger_pool: asyncpg.Pool, agent: Agent
) -> None:
    address = "127.0.0.27"
    wire = agent.sign(enter_command(agent.agent_id)).to_wire_dict()
    del wire["signature"]
    marker = f"pad-{address}-"
    wire["command"]["command_id"] = marker + "c" * 40_000
    wire["command"]["agent_id"] = "a" * 10_000
    wire["signer"] = "s\u0000" * 1_000  # NUL cannot be stored in Postgres text as it is
    body = json.dumps(wire).encode()
    assert len(body) < BODY_LIMIT
    async with client_from(api_url, address) as client:
        response = await client.post("/v1/commands", content=body, headers=JSON)
    assert response.status_code == 403 and response.json()["error"] == sentry.NO_SIGNATURE
    [event] = await _events(ledger_pool, address, sentry.NO_SIGNATURE)
    assert event["command_id"].startswith(marker) and len(event["command_id"]) == FIELD_LIMIT
    assert len(event["key_id"]) == FIELD_LIMIT and "\\x00" in event["key_id"]
    assert len(event["agent_id"]) == FIELD_LIMIT
    cut = json.loads(event["detail"])[TRUNCATED]
    assert f"command_id={len(wire['command']['command_id'])}" in cut
    assert "agent_id=10000" in cut
    assert sum(len(str(value)) for value in event.values()) < 4096
