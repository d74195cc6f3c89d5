"""The hot path's net-liquidation reporter against the paper venue through a real gateway: it
confirms the value every interval even when unchanged, and stops confirming once the broker
session is gone, so the row ages and the API refuses it."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from brokers.ibkr import IbkrBroker, IbkrConfig
from config.settings import FloorSettings
from hotpath.net_liquidation import NetLiquidationReporter
from ledger.account_values import net_liquidation
from tests.brokers.conftest import HOST, PaperStack

ACCOUNT = "DU1234567"
_client_ids = itertools.count(1950)  # apart from every other suite's ids


@pytest.fixture
async def as_hotpath(floor_settings: FloorSettings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(floor_settings.role_url("hotpath"))
    yield conn
    await conn.close()


async def test_the_value_is_confirmed_while_connected_and_left_to_age_once_disconnected(
    paper: PaperStack, as_hotpath: asyncpg.Connection, api_pool: asyncpg.Pool
) -> None:
    broker = IbkrBroker(IbkrConfig(HOST, paper.gateway_port, paper.standby_port, client_id=next(_client_ids)))
    await broker.connect()
    start = datetime.now(UTC)
    times = iter(start + timedelta(seconds=s) for s in itertools.count())
    reporter = NetLiquidationReporter(broker, as_hotpath, [ACCOUNT], clock=lambda: next(times))
    try:
        assert await reporter.report_once() == 1
        first = await net_liquidation(api_pool, ACCOUNT)
        assert first is not None and first.value == await broker.net_liquidation(ACCOUNT)
        # The same value again is still written: reported_at says when it was last confirmed.
        assert await reporter.report_once() == 1
        second = await net_liquidation(api_pool, ACCOUNT)
        assert second is not None and second.value == first.value
        assert second.reported_at == first.reported_at + timedelta(seconds=1)
    finally:
        await broker.close()
    # The cached value survives the session, but nobody vouches for it any more.
    assert not broker.connected
    assert await reporter.report_once() == 0
    assert await net_liquidation(api_pool, ACCOUNT) == second
