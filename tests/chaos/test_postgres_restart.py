"""Chaos scenario 9: Postgres restarted mid-stream. Intake pauses (no order reaches the broker
without its ledger entry) and resumes once the ledger answers, nothing lost, nothing doubled."""

from __future__ import annotations

import pytest

from tests.chaos.floor import ChaosFloor
from tests.chaos.load import streaming
from tests.chaos.verdict import assert_nothing_lost
from tests.helpers import eventually

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_full]


@pytest.mark.timeout(180)
async def test_9_postgres_restarted_mid_stream_pauses_intake_then_resumes_it(chaos: ChaosFloor) -> None:
    async with streaming(chaos) as load:
        await load.reached(100)
        chaos.kill_postgres()  # every connection dies mid-whatever, as in a crash
        held = await eventually(lambda: _intake_held(chaos), timeout=10)  # intake pauses on a record
        await load.reached(200)
        await chaos.start_postgres()
        await eventually(lambda: _intake_running(chaos), timeout=30)  # and resumes
    assert "agent.commands" in str(held.get("source")), held
    await assert_nothing_lost(chaos, load.sent)


async def _intake_held(chaos: ChaosFloor) -> dict[str, object] | None:
    """What the hot path says it holds for the ledger (``/health``), None while it runs."""
    held: dict[str, object] | None = (await chaos.health()).get("intake_held")
    return held


async def _intake_running(chaos: ChaosFloor) -> bool:
    return await _intake_held(chaos) is None
