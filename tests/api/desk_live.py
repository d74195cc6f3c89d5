"""The hot path for the desk's end-to-end modules. A module that imports ``module_hotpath`` (or
makes its own with :func:`hotpath_fixture`) and ``active_floor`` (the fixtures ``hotpath`` and
``floor_up``) gets a hot path of its own, trading the paper venue's account, and ``floor_up``
leaves it ACTIVE before and after each test (a test that trips the breaker cannot halt the next
one)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import ROUND_DOWN, Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from config.settings import FloorSettings
from floor.supervisor import Supervisor
from tests.factories import Agent
from tests.fixtures.paper import PaperStack
from tests.hotpath.conftest import (  # noqa: F401 - fixtures used by name
    HotPathProcess,
    command_producer,
    risk_profiles,
    running_hotpath,
)
from tests.hotpath.test_circuit_breaker_flow import rearm

CENT = Decimal("0.01")


def hotpath_fixture(breaker_agent: str | None = None) -> Any:
    """A ``hotpath`` fixture: the importing module's own hot path, stopped when the module ends;
    its breaker signs as ``breaker_agent`` (None: with a key of its own)."""

    @pytest.fixture(scope="module", name="hotpath")
    async def module_hotpath(
        floor_settings: FloorSettings,
        supervisor: Supervisor,
        paper: PaperStack,
        risk_profiles: None,  # noqa: F811
        ledger_pool: asyncpg.Pool,
        command_producer: AIOKafkaProducer,  # noqa: F811
    ) -> AsyncIterator[HotPathProcess]:
        async with running_hotpath(
            floor_settings, supervisor, paper, ledger_pool, command_producer, breaker_agent=breaker_agent
        ) as process:
            yield process

    return module_hotpath


module_hotpath = hotpath_fixture()


@pytest.fixture(name="floor_up")
async def active_floor(
    hotpath: HotPathProcess,
    command_producer: AIOKafkaProducer,  # noqa: F811
    operator: Agent,
) -> AsyncIterator[HotPathProcess]:
    await rearm(hotpath, command_producer, operator)
    yield hotpath
    await rearm(hotpath, command_producer, operator)


async def resting_limit(paper: PaperStack) -> Decimal:
    """A BUY limit at 80 % of AAPL's bid: it rests at the venue."""
    bid, _ = await paper.quote("AAPL")
    return (bid * Decimal("0.8")).quantize(CENT, ROUND_DOWN)


async def trading_state(hotpath: HotPathProcess, state: str) -> bool:
    """The hot path's breaker shows ``state`` (``ACTIVE`` or ``HALTED``)."""
    return (await hotpath.health())["trading_state"] == state
