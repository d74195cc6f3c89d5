"""The demo brain through the real floor: its agents' signed commands pass the sentry, sizer,
risk gate and ledger, reach the paper venue, and the positions they open are closed again."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import asyncpg

from brain.agents import BrainAgent
from brain.runner import DemoBrain, RoundTrip
from tests.brain.conftest import BRAIN_SYMBOLS
from tests.fixtures.hotpath import fresh_agent
from tests.hotpath.conftest import VENUE_ACCOUNT, HotPathProcess
from tests.hotpath.live_floor import kinds_of
from trading.demo_rules import MOMENTUM

ROUND_TRIPS = 2


async def test_the_brains_trades_reach_the_venue_and_are_closed(
    brain_hotpath: HotPathProcess, ledger_pool: asyncpg.Pool
) -> None:
    agent = await fresh_agent(ledger_pool, "demo-momentum-test")
    trips: list[RoundTrip] = []
    stop = asyncio.Event()

    def closed(trip: RoundTrip) -> None:
        trips.append(trip)
        if len(trips) >= ROUND_TRIPS:
            stop.set()

    brain = DemoBrain(
        brain_hotpath.settings,
        [BrainAgent(agent.agent_id, MOMENTUM, agent.private_key)],
        seed=7,
        caps_binding_share=Decimal("0.5"),
        on_round_trip=closed,
        account=VENUE_ACCOUNT,
        symbols=BRAIN_SYMBOLS[:1],
        db=ledger_pool,
        window=3,
        threshold=Decimal("0.0001"),
        max_hold_s=1.0,
        entry_timeout_s=3.0,
        exit_timeout_s=6.0,
    )
    try:
        await asyncio.wait_for(brain.run(stop), timeout=90.0)
    except TimeoutError:
        raise AssertionError(
            f"{len(trips)} round trips in 90 s; entries {brain.entries}, "
            f"outcomes {dict(brain.outcomes)}, positions {brain.state()}"
        ) from None

    for trip in trips:
        for command_id in (trip.entry_id, trip.exit_id):
            entry = await ledger_pool.fetchrow(
                "SELECT decision, agent_id FROM ledger_entries WHERE command_id = $1 ORDER BY seq LIMIT 1",
                command_id,
            )
            assert entry is not None, f"{command_id} was never ledgered"
            assert (entry["decision"], entry["agent_id"]) == ("accepted", agent.agent_id)
        # Both orders executed at the venue: the entry at least in part, the exit wholly.
        entry_kinds = await kinds_of(ledger_pool, trip.entry_id)
        assert {"filled", "partially_filled"} & set(entry_kinds), (trip, entry_kinds)
        assert "filled" in await kinds_of(ledger_pool, trip.exit_id), trip
    assert brain.outcomes["brain.record_refused"] == 0
