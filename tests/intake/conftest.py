"""A real hot path process whose way to Postgres runs through a :class:`PgProxy` the test
breaks, against the session's Kafka and paper venue."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from config.settings import FloorSettings
from floor.supervisor import Supervisor
from tests.fixtures.paper import PaperStack
from tests.fixtures.pg_proxy import PgProxy
from tests.hotpath.conftest import (  # noqa: F401 - fixtures used by name
    HotPathProcess,
    command_producer,
    risk_profiles,
    running_hotpath,
)

# ruff: noqa: F811 - the fixtures imported above are requested by name below


@pytest.fixture
def pg_proxy(floor_settings: FloorSettings, postgres_url: str) -> Iterator[PgProxy]:
    proxy = PgProxy(floor_settings.host, floor_settings.pg_port)
    proxy.start()
    yield proxy
    proxy.close()


@pytest.fixture
async def proxied_hotpath(
    floor_settings: FloorSettings,
    supervisor: Supervisor,
    paper: PaperStack,
    risk_profiles: None,
    ledger_pool: asyncpg.Pool,
    command_producer: AIOKafkaProducer,
    pg_proxy: PgProxy,
) -> AsyncIterator[HotPathProcess]:
    """The hot path as ``floor up`` starts it, reaching Postgres only through ``pg_proxy``."""
    settings = floor_settings.model_copy(
        update={"hotpath_database_url": pg_proxy.url(floor_settings.role_url("hotpath"))}
    )
    async with running_hotpath(settings, supervisor, paper, ledger_pool, command_producer) as process:
        yield process
