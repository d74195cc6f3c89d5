"""A flood on loopback: one source floods the door with large bodies (declared and chunked) and
unsigned junk while a well-behaved agent sends signed commands from another address.

Its own API process, with the default rate limit and a one-second flood window so windows close
within the test. Bounded in time: the flood lasts :data:`FLOOD_S` seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx

from api.door_guard import BODY_LIMIT, BODY_TOO_LARGE, RATE_LIMITED
from config.settings import FloorSettings
from floor.supervisor import Supervisor
from observability.flood import FULL_EVENTS_PER_WINDOW, REPEATS
from tests.api.http import JSON, api_process, client_from
from tests.factories import Agent, enter_command
from tests.helpers import eventually
from trading import sentry

FLOOD_S = 3.0
WINDOW_S = 1.0
FLOODERS = 12
"""Concurrent connections of the flooding source."""
AGENT_EVERY_S = 0.1
RATE_PER_S = 20
"""The door's per-source rate for this test: low enough that a flood on a loaded 2-core machine
still outruns it (at the default 50/s, burst 100, a slow flood never met the limit), and still
twice the well-behaved agent's 10 commands a second."""
FLOOD_ADDRESS, AGENT_ADDRESS = "127.0.0.41", "127.0.0.42"


def _large() -> bytes:
    return b'{"command": "' + b"x" * (2 * BODY_LIMIT) + b'"}'


async def _chunked() -> AsyncIterator[bytes]:
    for _ in range(2 * BODY_LIMIT // 8192 + 1):
        yield b" " * 8192


def _junk(agent: Agent) -> bytes:
    """Unsigned, with claimed ids as long as the body limit allows."""
    wire = agent.sign(enter_command(agent.agent_id)).to_wire_dict()
    del wire["signature"]
    wire["command"]["command_id"] = "junk-" + "j" * 30_000
    wire["command"]["agent_id"] = "a" * 20_000
    return json.dumps(wire).encode()


async def _flood(client: httpx.AsyncClient, agent: Agent, until: float) -> Counter[str]:
    junk = _junk(agent)
    sends: list[Callable[[], object]] = [
        lambda: client.post("/v1/commands", content=_large(), headers=JSON),
        lambda: client.post("/v1/commands", content=_chunked(), headers=JSON),
        lambda: client.post("/v1/commands", content=junk, headers=JSON),
    ]
    answers: Counter[str] = Counter()
    for send in itertools.cycle(sends):
        if time.monotonic() >= until:
            return answers
        try:
            response = await send()  # type: ignore[misc]
        except httpx.TransportError as exc:
            answers[f"transport:{type(exc).__name__}"] += 1
            continue
        answers[f"{response.status_code}:{response.json().get('error')}"] += 1
    return answers


async def _behave(client: httpx.AsyncClient, agent: Agent, until: float) -> list[tuple[int, float]]:
    answers = []
    while time.monotonic() < until:
        started = time.monotonic()
        response = await client.post(
            "/v1/commands", content=agent.sign(enter_command(agent.agent_id)).to_wire(), headers=JSON
        )
        answers.append((response.status_code, time.monotonic() - started))
        await asyncio.sleep(max(0.0, AGENT_EVERY_S - (time.monotonic() - started)))
    return answers


async def test_a_flood_from_one_source_leaves_a_well_behaved_agent_answered_and_the_table_small(
    floor_settings: FloorSettings,
    supervisor: Supervisor,
    kafka_bootstrap: str,
    ledger_pool: asyncpg.Pool,
    agent: Agent,
) -> None:
    env = {
        "FLOOR_API_FLOOD_WINDOW_S": str(WINDOW_S),
        "FLOOR_API_RATE_PER_S": str(RATE_PER_S),
        "FLOOR_API_RATE_BURST": str(RATE_PER_S),
    }
    with api_process(floor_settings, supervisor, "api-flood", env) as (api_url, _):
        started = time.monotonic()
        until = started + FLOOD_S
        async with (
            client_from(api_url, FLOOD_ADDRESS, timeout=30.0) as flooder,
            client_from(api_url, AGENT_ADDRESS, timeout=30.0) as well_behaved,
        ):
            floods = [asyncio.create_task(_flood(flooder, agent, until)) for _ in range(FLOODERS)]
            behaved = await _behave(well_behaved, agent, until)
            flood = sum((await asyncio.gather(*floods)), Counter[str]())
        elapsed = time.monotonic() - started

        # Every signed command of the well-behaved agent got its normal answer.
        assert behaved and {status for status, _ in behaved} == {202}, behaved
        # The flood got only refusals, each one of the door's.
        assert set(flood) <= {f"413:{BODY_TOO_LARGE}", f"429:{RATE_LIMITED}", f"403:{sentry.NO_SIGNATURE}"}, (
            flood
        )
        assert flood[f"429:{RATE_LIMITED}"] > 0, flood

        # Every refusal is in the table, in full or counted in a window's summary: per reason,
        # the rows plus the summaries' repeats are the flood's answers.
        expected = {key.split(":", 1)[1]: count for key, count in flood.items()}

        async def accounted() -> dict[str, int] | None:
            rows = await ledger_pool.fetch(
                "SELECT reason, detail FROM security_events WHERE remote_addr = $1", FLOOD_ADDRESS
            )
            seen: Counter[str] = Counter()
            for row in rows:
                seen[row["reason"]] += int(json.loads(row["detail"]).get(REPEATS, "0")) or 1
            return dict(seen) if dict(seen) == expected else None

        await eventually(accounted, timeout=10.0)  # type: ignore[arg-type]

    rows = await ledger_pool.fetchval(
        "SELECT count(*) FROM security_events WHERE remote_addr = $1", FLOOD_ADDRESS
    )
    # O(windows), not O(requests): per reason and window, the first few in full and one summary.
    windows = math.ceil(elapsed / WINDOW_S) + 1
    assert rows <= len(expected) * windows * (FULL_EVENTS_PER_WINDOW + 1), (rows, flood)
    assert rows < sum(flood.values()), (rows, flood)
