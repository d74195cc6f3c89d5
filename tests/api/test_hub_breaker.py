"""The hub's breaker feed, against a ledger of its own (a trip here must not halt the session's
shared floor)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from api.hub import Hub
from bus.topics import SECURITY_EVENTS
from config.settings import FloorSettings
from floor.breaker_cmd import breaker_command
from ledger.access import LedgerAccess
from ledger.append import Decision, append_command
from ledger.migrate import apply_migrations
from observability.security import SecurityLog
from tests.fixtures.hotpath import fresh_agent
from tests.ledger.conftest import with_database
from trading.breaker_trip import REASON_MANUAL, TripSummary
from trading.commands import CommandKind
from trading.risk import TradingState


@pytest.fixture
async def pool(postgres_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A database of this test's own, every migration applied."""
    name = f"hub_breaker_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = with_database(postgres_url, name)
    await apply_migrations(dsn)
    p = await asyncpg.create_pool(dsn, min_size=1, max_size=3)
    yield p
    await p.close()
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_breaker_subscribers_get_the_state_now_then_each_trip_and_arm(
    floor_settings: FloorSettings, kafka_bootstrap: str, pool: asyncpg.Pool
) -> None:
    settings = floor_settings.model_copy(update={"api_state_poll_ms": 50})
    hub = Hub(pool, SecurityLog(LedgerAccess(pool), None, SECURITY_EVENTS), settings)
    await hub.start()
    try:
        sub = hub.subscribe_breaker()
        first = await asyncio.wait_for(anext(sub), 5)
        assert (first.state, first.seq) == (TradingState.ACTIVE, None)  # a floor that never tripped

        ops = await fresh_agent(pool, "ops", "operator")
        trip = ops.sign(breaker_command(CommandKind.BREAKER_TRIP, "ops"))
        await append_command(pool, trip, decision=Decision.ACCEPTED)
        halted = await asyncio.wait_for(anext(sub), 5)
        assert (halted.state, halted.kind, halted.command_id) == (
            TradingState.HALTED,
            "breaker_trip",
            trip.command.command_id,
        )
        assert halted.problem is None
        assert halted.trip == TripSummary(REASON_MANUAL)  # a trip with no move behind it

        arm = ops.sign(breaker_command(CommandKind.BREAKER_ARM, "ops"))
        await append_command(pool, arm, decision=Decision.ACCEPTED)
        armed = await asyncio.wait_for(anext(sub), 5)
        assert (armed.state, armed.command_id, armed.agent_id) == (
            TradingState.ACTIVE,
            arm.command.command_id,
            "ops",
        )
        assert armed.trip is None
        breaker = hub.breaker()
        assert breaker is not None and breaker.seq == armed.seq

        late = hub.subscribe_breaker()  # a new subscriber starts from the state now
        assert (await asyncio.wait_for(anext(late), 5)) == armed
    finally:
        await hub.stop()
