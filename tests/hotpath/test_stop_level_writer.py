"""The stop levels' background writer: the newest level per order wins, one statement per batch,
and levels the database does not take are kept and written once it does."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from config.settings import FloorSettings
from hotpath.exit_manager import TrailLevel
from hotpath.stop_level_writer import WRITE_FAILED, WRITE_RESUMED, StopLevelWriter
from ledger.stop_levels import stop_levels
from tests.helpers import eventually
from trading.commands import Side
from trading.trailing import TrailingStop


@pytest.fixture
async def hotpath_pool(postgres_url: str, floor_settings: FloorSettings) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(floor_settings.role_url("hotpath"), min_size=1, max_size=2)
    yield pool
    await pool.close()


def level(command_id: str, stop: str, moves: int) -> TrailLevel:
    rule = TrailingStop(Side.BUY, Decimal("0.01"), Decimal(stop), trail_amount=Decimal("1.00"))
    return TrailLevel(command_id, "AAPL", Side.SELL, rule, Decimal(stop) + 1, moves)


class Switchable:
    """A real database connection pool the test can point elsewhere: first one whose role may not
    write stop levels (the database refuses), then the hot path's."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def execute(self, query: str, *args: Any) -> str:
        return str(await self.pool.execute(query, *args))

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        return list(await self.pool.fetch(query, *args))

    async def fetchrow(self, query: str, *args: Any) -> Any:
        return await self.pool.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any, column: int = 0) -> Any:
        return await self.pool.fetchval(query, *args, column=column)


async def test_a_burst_of_moves_is_written_as_the_newest_level_of_each_order(
    hotpath_pool: asyncpg.Pool,
) -> None:
    a, b = f"trail-{uuid.uuid4().hex}", f"trail-{uuid.uuid4().hex}"
    writer = StopLevelWriter(hotpath_pool, lambda command_id: "DU1234567")
    for moves, stop in enumerate(("99.00", "99.50", "100.25")):
        writer.put(level(a, stop, moves))
    writer.put(level(b, "50.00", 0))
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(writer.drained(), 10.0)
        assert writer.written == 2  # one row each, not one per move
        got = await stop_levels(hotpath_pool, [a, b])
        assert (got[a].stop, got[a].moves, got[a].best_price) == (Decimal("100.25"), 2, Decimal("101.25"))
        assert got[b].stop == Decimal("50.00")
    finally:
        task.cancel()


async def test_levels_the_database_refuses_are_kept_and_written_once_it_takes_them(
    hotpath_pool: asyncpg.Pool, api_pool: asyncpg.Pool
) -> None:
    db = Switchable(api_pool)
    ops: list[tuple[str, str, Mapping[str, Any]]] = []
    writer = StopLevelWriter(db, lambda command_id: "DU1234567", lambda *event: ops.append(event))
    a = f"trail-{uuid.uuid4().hex}"
    writer.put(level(a, "99.00", 0))
    task = asyncio.create_task(writer.run())
    try:
        await eventually(lambda: [e for e in ops if e[0] == WRITE_FAILED], timeout=10.0)
        writer.put(level(a, "99.70", 1))  # a newer level while the old one waits
        db.pool = hotpath_pool
        await asyncio.wait_for(writer.drained(), 10.0)
        got = await stop_levels(hotpath_pool, [a])
        assert (got[a].stop, got[a].moves) == (Decimal("99.70"), 1)
        assert [kind for kind, _, _ in ops] == [WRITE_FAILED, WRITE_RESUMED]
    finally:
        task.cancel()


async def test_a_level_of_an_order_the_floor_does_not_hold_is_not_written(hotpath_pool: asyncpg.Pool) -> None:
    writer = StopLevelWriter(hotpath_pool, lambda command_id: None)
    writer.put(level(f"trail-{uuid.uuid4().hex}", "99.00", 0))
    await asyncio.wait_for(writer.drained(), 1.0)  # nothing pending
