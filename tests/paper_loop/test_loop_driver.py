"""``floor paper-loop``'s loop on a floor of its own: trades counted from the executions the
floor stored, the brain stopped at N, the running floor reused."""

from __future__ import annotations

import asyncio

import asyncpg

from floor.paper_loop_cmd import floor_running
from floor.paper_loop_run import LoopEnd, drive
from tests.chaos.floor import ACCOUNT, ChaosFloor
from tests.paper_loop.scripted_brain import ScriptedBrain


async def test_the_loop_counts_round_trips_from_the_stored_executions(loop_floor: ChaosFloor) -> None:
    brain = ScriptedBrain(loop_floor.settings, loop_floor.agent, ACCOUNT, loop_floor.paper)
    said: list[str] = []
    with floor_running(loop_floor.settings, said.append) as handle:
        assert not handle.started_here, said
        pool = await asyncpg.create_pool(loop_floor.settings.role_url("cli"), min_size=1, max_size=2)
        try:
            seen: list[int] = []
            result = await asyncio.wait_for(drive(pool, brain, 3, progress=seen.append, stall_s=60.0), 120.0)
        finally:
            await pool.close()
    assert result.end is LoopEnd.DONE, result.detail
    assert result.round_trips >= 3
    assert seen[-1] == 3
    # Stopped at N: the brain finished the trade it was in (flat again), and no more.
    assert not result.open_positions
    assert result.round_trips == brain.believed_round_trips
