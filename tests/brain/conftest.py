"""A hot path of its own for the demo brain, on a symbol no other suite trades: the brain's
exits are reduce-only against the account's whole position in the symbol, so a position another
suite left there would be counted as the brain's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from config.settings import FloorSettings
from floor.supervisor import Supervisor
from tests.fixtures.paper import PaperStack
from tests.hotpath.conftest import HotPathProcess, command_producer, risk_profiles, running_hotpath

__all__ = ["command_producer", "risk_profiles"]

BRAIN_SYMBOLS = ("NVDA", "AMZN")
"""One per test that runs a brain: each starts with no position in its symbol."""


@pytest.fixture(scope="package")
async def brain_hotpath(
    floor_settings: FloorSettings,
    supervisor: Supervisor,
    paper: PaperStack,
    risk_profiles: None,
    ledger_pool: asyncpg.Pool,
    command_producer: AIOKafkaProducer,
) -> AsyncIterator[HotPathProcess]:
    async with running_hotpath(
        floor_settings, supervisor, paper, ledger_pool, command_producer, symbols=BRAIN_SYMBOLS
    ) as process:
        yield process
