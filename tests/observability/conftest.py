"""A hot path process of this package's own (as ``floor up`` starts it), for the tests that follow
a command through the real processes: the API the session runs, Kafka, the hot path, the paper
venue and the span store."""

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


@pytest.fixture(scope="package")
async def hotpath(
    floor_settings: FloorSettings,
    supervisor: Supervisor,
    paper: PaperStack,
    risk_profiles: None,
    ledger_pool: asyncpg.Pool,
    command_producer: AIOKafkaProducer,
) -> AsyncIterator[HotPathProcess]:
    async with running_hotpath(floor_settings, supervisor, paper, ledger_pool, command_producer) as process:
        yield process
