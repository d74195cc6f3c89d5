"""Trailing stops' levels, kept where a restarted hot path finds them: written by the hot path's
role only, newest level per order."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from config.settings import FloorSettings
from ledger.stop_levels import StopLevel, stop_levels, write_stop_levels
from trading.commands import Side


@pytest.fixture
async def as_hotpath(postgres_url: str, floor_settings: FloorSettings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(floor_settings.role_url("hotpath"))
    yield conn
    await conn.close()


def level(command_id: str, stop: str, **fields: object) -> StopLevel:
    values: dict[str, object] = {
        "command_id": command_id,
        "account": "DU1234567",
        "symbol": "AAPL",
        "side": Side.SELL,
        "stop": Decimal(stop),
        "best_price": Decimal(stop) + 1,
        "trail_amount": Decimal("1.00"),
        "trail_percent": None,
        "tick": Decimal("0.01"),
        "bound": None,
        "updated_at": datetime.now(UTC),
        **fields,
    }
    return StopLevel(**values)  # type: ignore[arg-type]


async def test_the_hot_path_overwrites_each_orders_level_and_reads_it_back_exactly(
    as_hotpath: asyncpg.Connection,
) -> None:
    a, b = f"trail-{uuid.uuid4().hex}", f"trail-{uuid.uuid4().hex}"
    await write_stop_levels(
        as_hotpath, [level(a, "228.50"), level(b, "101.00", side=Side.BUY, bound=Decimal("99"))]
    )
    await write_stop_levels(as_hotpath, [level(a, "229.137", moves=3)])

    got = await stop_levels(as_hotpath, [a, b, "nothing"])

    assert set(got) == {a, b}
    assert (got[a].stop, got[a].best_price, got[a].moves) == (Decimal("229.137"), Decimal("230.137"), 3)
    assert (got[b].side, got[b].stop, got[b].bound) == (Side.BUY, Decimal("101.00"), Decimal("99"))


@pytest.mark.parametrize("process", ["api", "worker", "cli"])
async def test_no_other_process_moves_a_stop(
    postgres_url: str, floor_settings: FloorSettings, process: str
) -> None:
    conn = await asyncpg.connect(floor_settings.role_url(process))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await write_stop_levels(conn, [level(f"forged-{uuid.uuid4().hex}", "1.00")])
    finally:
        await conn.close()
