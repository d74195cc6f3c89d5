"""The net liquidation the hot path sizes with, kept where the API can read it: written by the
hot path's role only, read by the API's."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from config.settings import FloorSettings
from ledger.account_values import net_liquidation, record_net_liquidation


@pytest.fixture
async def as_hotpath(postgres_url: str, floor_settings: FloorSettings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(floor_settings.role_url("hotpath"))
    yield conn
    await conn.close()


async def test_the_hot_path_records_each_accounts_value_and_the_api_reads_it_exactly(
    as_hotpath: asyncpg.Connection, api_pool: asyncpg.Pool
) -> None:
    account = f"DU{uuid.uuid4().hex[:8]}"
    assert await net_liquidation(api_pool, account) is None
    first = datetime.now(UTC)
    await record_net_liquidation(as_hotpath, account, Decimal("1000000.01"), first)
    await record_net_liquidation(as_hotpath, account, Decimal("999999.990000001"), first)
    seen = await net_liquidation(api_pool, account)
    assert seen is not None and (seen.value, seen.reported_at) == (Decimal("999999.990000001"), first)


@pytest.mark.parametrize("process", ["api", "worker", "cli"])
async def test_no_other_process_writes_a_net_liquidation(
    postgres_url: str, floor_settings: FloorSettings, process: str
) -> None:
    conn = await asyncpg.connect(floor_settings.role_url(process))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await record_net_liquidation(conn, "DU-FORGED", Decimal("1"), datetime.now(UTC))
    finally:
        await conn.close()
