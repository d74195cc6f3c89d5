"""Chaos scenarios 1-4: the broker gateways fail while 500 signed commands stream.

Each ends with the checker (:func:`tests.chaos.verdict.assert_nothing_lost`): every accepted
order reached the venue exactly once, every fill is in ``order_events`` exactly once, no order
is unknown, the ledger verifies.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.chaos.floor import ChaosFloor
from tests.chaos.load import streaming
from tests.chaos.verdict import assert_nothing_lost

pytestmark = [pytest.mark.chaos]


@pytest.mark.chaos_full  # make test keeps 3 (the primary killed) for the gateway's faults
@pytest.mark.timeout(120)
async def test_1_primary_frozen_for_10_s_fails_over_and_loses_nothing(chaos: ChaosFloor) -> None:
    async with streaming(chaos) as load:
        await load.reached(100)
        mark = await chaos.ops_mark()
        await chaos.freeze_gateway("primary", 10)
        await chaos.session_change("failed_over", since=mark, timeout=5)
    # Thawed, the primary comes back as the standby; whatever it passed on late is settled.
    await chaos.session_change("standby_up", since=mark, gateway=chaos.gateway("primary"), timeout=30)
    await assert_nothing_lost(chaos, load.sent)


@pytest.mark.chaos_full
@pytest.mark.timeout(240)
# The load spans the outage: 500 commands at 50/s (10 s), or at 6/s (83 s) for the minute.
@pytest.mark.parametrize(("down_s", "rate"), [(10, 50.0), (60, 6.0)], ids=["10s", "60s"])
async def test_2_primary_connections_dropped_and_the_gateway_back_later_loses_nothing(
    chaos: ChaosFloor, down_s: float, rate: float
) -> None:
    async with streaming(chaos, rate=rate) as load:
        await load.reached(100)
        mark = await chaos.ops_mark()
        await chaos.drop_gateway("primary")
        chaos.kill_gateway("primary")  # and it stays away: reconnecting finds nobody
        await chaos.session_change("failed_over", since=mark, timeout=5)
        await asyncio.sleep(down_s)  # the outage is a length of time, not an event
        await chaos.restart_gateway("primary")
        await chaos.session_change("standby_up", since=mark, gateway=chaos.gateway("primary"), timeout=30)
    await assert_nothing_lost(chaos, load.sent)


@pytest.mark.timeout(120)
async def test_3_primary_killed_the_standby_takes_over_and_nothing_is_lost(chaos: ChaosFloor) -> None:
    async with streaming(chaos) as load:
        await load.reached(100)
        mark = await chaos.ops_mark()
        chaos.kill_gateway("primary")
        change = await chaos.session_change("failed_over", since=mark, timeout=5)
        assert change["gateway"] == chaos.gateway("standby")
    await assert_nothing_lost(chaos, load.sent)


@pytest.mark.chaos_full
@pytest.mark.timeout(180)
async def test_4_both_gateways_down_10_s_then_back_loses_nothing(chaos: ChaosFloor) -> None:
    async with streaming(chaos) as load:
        await load.reached(100)
        mark = await chaos.ops_mark()
        chaos.kill_gateway("primary")
        chaos.kill_gateway("standby")
        await chaos.session_change("disconnected", since=mark, timeout=5)
        await asyncio.sleep(10)  # the outage is a length of time, not an event
        await chaos.restart_gateway("primary")
        await chaos.restart_gateway("standby")
        await chaos.session_change("reconnected", since=mark, timeout=30)
    await assert_nothing_lost(chaos, load.sent)
