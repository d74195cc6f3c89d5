"""Scenario 8: the Kafka broker restarted mid-stream.

500 signed commands stream at a steady rate through the API's door (``POST /v1/commands``) to a
hot path trading the paper venue, over an embedded broker (Tansu, memory storage) of the test's
own. Mid-stream the hot path is held (SIGSTOP) for a moment so commands pile up unread in the
broker, the broker is killed (SIGKILL: its log, topics and consumer groups are gone) and
started again empty, and the hot path resumes. The door's clients do what its 503 says (send
the same signed command again) and nothing else.

Then: every command has exactly one ledger entry (decided once, none lost), the commands the
broker lost were published again from the door's outbox, the venue's own record holds every
accepted order exactly once and no refused one, every execution it reports is recorded once,
and ``floor ledger verify`` passes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from api.outbox import REPUBLISHED
from bus.kafka import start_producer
from config.settings import FloorSettings
from floor.supervisor import Supervisor
from ledger.risk_profiles import set_profile
from ledger.verify import verify_ledger
from tests.api.http import api_process
from tests.factories import Agent, enter_command
from tests.fixtures.hotpath import fresh_agent
from tests.fixtures.kafka import PrivateKafka, private_kafka
from tests.fixtures.paper import PaperStack
from tests.helpers import eventually
from tests.hotpath.conftest import MAIN_PROFILE, VENUE_ACCOUNT, HotPathProcess, risk_profiles, running_hotpath
from trading.commands import Side
from trading.signing import SignedCommand

pytestmark = [pytest.mark.chaos, pytest.mark.long]

__all__ = ["risk_profiles"]  # the hot path suites' profiles, set for this module too

COMMANDS = 500
RATE_PER_S = 50.0
HOLD_AFTER = 150
"""The hot path is held once this many commands were published..."""
LOST_AT_LEAST = 40
"""...and the broker killed once this many more were published while it was held."""
CENT = Decimal("0.01")


@pytest.fixture
async def kafka(supervisor: Supervisor, floor_settings: FloorSettings) -> AsyncIterator[PrivateKafka]:
    async with private_kafka(supervisor, floor_settings) as broker:
        # A client id of its own at the shared venue's gateways: other hot paths may be up.
        broker.settings = broker.settings.model_copy(update={"ib_client_id": 300 + uuid.uuid4().int % 200})
        yield broker


@pytest.fixture
async def producer(kafka: PrivateKafka) -> AsyncIterator[AIOKafkaProducer]:
    p = await start_producer(kafka.bootstrap, "chaos-kafka-restart")
    yield p
    await p.stop()


@pytest.fixture
async def roomy_profile(risk_profiles: None, ledger_pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Room for the backlog the outage leaves: once the hot path reads again, commands come
    faster than the venue fills them, and the usual 50 open orders would refuse some. The
    usual profile is back afterwards."""
    operator = await fresh_agent(ledger_pool, f"ops-{uuid.uuid4().hex[:8]}", "operator")
    roomy = dataclasses.replace(MAIN_PROFILE, max_open_orders=COMMANDS)
    await set_profile(
        ledger_pool, VENUE_ACCOUNT, roomy, operator_id=operator.agent_id, operator_key=operator.private_key
    )
    try:
        yield
    finally:
        await set_profile(
            ledger_pool,
            VENUE_ACCOUNT,
            MAIN_PROFILE,
            operator_id=operator.agent_id,
            operator_key=operator.private_key,
        )


@pytest.fixture
async def hotpath(
    kafka: PrivateKafka,
    supervisor: Supervisor,
    paper: PaperStack,
    roomy_profile: None,
    ledger_pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
) -> AsyncIterator[HotPathProcess]:
    async with running_hotpath(kafka.settings, supervisor, paper, ledger_pool, producer) as process:
        yield process


@pytest.fixture
def door(kafka: PrivateKafka, supervisor: Supervisor) -> Iterator[str]:
    env = {"FLOOR_API_RATE_PER_S": "5000", "FLOOR_API_RATE_BURST": "5000"}
    with api_process(kafka.settings, supervisor, "api-chaos-kafka", env) as (url, _):
        yield url


class Stream:
    """Posts signed commands at a steady rate, each sent again on 503 or a dropped connection
    (what the door tells a client to do) until the door takes it."""

    def __init__(self, url: str, envelopes: list[SignedCommand]) -> None:
        self._url = url
        self._envelopes = envelopes
        self.published = 0
        self.resent = 0
        self.refused: list[tuple[str, int, str]] = []

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self._url, timeout=60.0) as client:
            start = time.monotonic()
            tasks = []
            for i, env in enumerate(self._envelopes):
                await asyncio.sleep(max(0.0, start + i / RATE_PER_S - time.monotonic()))
                tasks.append(asyncio.create_task(self._post(client, env)))
            await asyncio.gather(*tasks)

    async def _post(self, client: httpx.AsyncClient, env: SignedCommand) -> None:
        body = env.to_wire()
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline:
            try:
                response = await client.post("/v1/commands", content=body)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 202:
                self.published += 1
                return
            if response is not None and response.status_code != 503:
                self.refused.append((env.command.command_id, response.status_code, response.text))
                return
            self.resent += 1
            await asyncio.sleep(0.2)
        self.refused.append((env.command.command_id, 0, "never taken within 120 s"))


async def _not(check: Callable[[], Awaitable[str]]) -> str | bool:
    """True once ``check`` says nothing; else what it says (for the timeout's message)."""
    said = await check()
    return True if not said else said


def _commands(agent: Agent, bid: Decimal, ask: Decimal) -> list[SignedCommand]:
    """Marketable orders of one share, buys and sells in turn: each fills at once, so the
    account's position and open orders stay within its limits however many are sent."""
    above = (ask * Decimal("1.03")).quantize(CENT, ROUND_DOWN)
    below = (bid * Decimal("0.97")).quantize(CENT, ROUND_DOWN)
    envelopes = []
    for i in range(COMMANDS):
        # Stops beyond the market on the losing side, whatever it does meanwhile.
        side, limit, stop = (Side.BUY, above, below) if i % 2 == 0 else (Side.SELL, below, above)
        command = enter_command(
            agent.agent_id,
            account=VENUE_ACCOUNT,
            side=side,
            limit=limit,
            stop=stop,
            quantity=1,
            command_id=f"chaos-kafka-{uuid.uuid4().hex[:12]}-{i:03d}",
        )
        envelopes.append(agent.sign(command))
    return envelopes


async def test_a_broker_restart_mid_stream_loses_no_command_and_doubles_no_order(
    kafka: PrivateKafka,
    hotpath: HotPathProcess,
    door: str,
    paper: PaperStack,
    ledger_pool: asyncpg.Pool,
    postgres_url: str,
) -> None:
    agent = await fresh_agent(ledger_pool)
    bid, ask = await paper.quote("AAPL")
    envelopes = _commands(agent, bid, ask)
    ids = [env.command.command_id for env in envelopes]
    started = datetime.now(UTC)
    stream = Stream(door, envelopes)
    streaming = asyncio.create_task(stream.run())

    await eventually(lambda: stream.published >= HOLD_AFTER, timeout=60.0)
    assert hotpath.service is not None
    pid = hotpath.service.pid
    os.killpg(pid, signal.SIGSTOP)
    try:
        held_at = stream.published
        await eventually(lambda: stream.published >= held_at + LOST_AT_LEAST, timeout=30.0)
        await kafka.restart()
    finally:
        os.killpg(pid, signal.SIGCONT)
    await asyncio.wait_for(streaming, 180.0)
    assert stream.refused == []
    assert stream.published == COMMANDS

    async def undecided() -> str:
        """Empty once every command is decided; else how many are not and what the outbox holds."""
        decided = await ledger_pool.fetchval(
            "SELECT count(DISTINCT command_id) FROM ledger_entries"
            " WHERE authenticated AND command_id = ANY($1)",
            ids,
        )
        if decided == COMMANDS:
            return ""
        kept = await ledger_pool.fetchval(
            "SELECT count(*) FROM command_outbox WHERE command_id = ANY($1)", ids
        )
        return f"{COMMANDS - decided} undecided, {kept} in the outbox"

    await eventually(lambda: _not(undecided), timeout=120.0, interval=0.5)
    hashes = [env.signature_hash for env in envelopes]
    entries = await ledger_pool.fetch(
        "SELECT command_id, decision, reason, authenticated FROM ledger_entries"
        " WHERE signature_hash = ANY($1)",
        hashes,
    )
    per_command = Counter(r["command_id"] for r in entries)
    assert {cid: n for cid, n in per_command.items() if n != 1} == {}  # decided once, each
    assert all(r["authenticated"] for r in entries)
    accepted = {r["command_id"] for r in entries if r["decision"] == "accepted"}
    refused = {r["command_id"]: r["reason"] for r in entries if r["decision"] != "accepted"}
    assert refused == {}, f"{len(refused)} refused: {sorted(set(refused.values()))}"

    # The broker did lose commands, and the door's outbox published them again.
    republished = await ledger_pool.fetchval(
        "SELECT coalesce(sum((detail->>'published')::int), 0) FROM ops_events"
        " WHERE source = 'api' AND kind = $1 AND ts >= $2",
        REPUBLISHED,
        started,
    )
    assert republished >= 1

    async def at_venue() -> Counter[str]:
        orders = (await paper.acontrol("GET", "/orders"))["orders"]
        return Counter(o["order_ref"] for o in orders if o["order_ref"] in accepted)

    async def all_there() -> bool:
        return len(await at_venue()) == len(accepted)

    await eventually(all_there, timeout=60.0, interval=0.5)
    counts = await at_venue()
    assert {ref: n for ref, n in counts.items() if n != 1} == {}  # every order once at the venue
    assert set(counts) == accepted
    everything = (await paper.acontrol("GET", "/orders"))["orders"]
    assert not {o["order_ref"] for o in everything} & set(refused)  # a refused order never reached it

    # Every execution the venue reports is in the database once, under its order.
    executions = (await paper.acontrol("GET", "/executions"))["executions"]
    at_venue_fills = {(e["order_ref"], e["exec_id"]) for e in executions if e["order_ref"] in accepted}
    assert len(at_venue_fills) >= len(accepted) // 2  # marketable: most fill at once

    async def fills_recorded() -> bool:
        rows = await ledger_pool.fetch(
            "SELECT command_id, exec_id FROM order_events WHERE command_id = ANY($1) AND exec_id IS NOT NULL",
            list(accepted),
        )
        return {(r["command_id"], r["exec_id"]) for r in rows} >= at_venue_fills

    await eventually(fills_recorded, timeout=60.0, interval=0.5)
    doubled = await ledger_pool.fetch(
        "SELECT command_id, exec_id FROM order_events WHERE command_id = ANY($1) AND exec_id IS NOT NULL"
        " GROUP BY command_id, exec_id HAVING count(*) > 1",
        list(accepted),
    )
    assert doubled == []
    report = await verify_ledger(postgres_url)
    assert report.ok, report
