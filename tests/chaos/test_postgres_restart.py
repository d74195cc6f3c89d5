"""Chaos scenario 9: Postgres restarted mid-stream. Intake pauses (no order reaches the broker
without its ledger entry) and resumes once the ledger answers, nothing lost, nothing doubled."""

from __future__ import annotations

import pytest

from tests.chaos.floor import ChaosFloor
from tests.chaos.load import streaming
from tests.chaos.verdict import assert_nothing_lost

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_full]


@pytest.mark.timeout(180)
async def test_9_postgres_restarted_mid_stream_pauses_intake_then_resumes_it(chaos: ChaosFloor) -> None:
    async with streaming(chaos) as load:
        await load.reached(100)
        chaos.kill_postgres()  # every connection dies mid-whatever, as in a crash
        await load.reached(200)
        await chaos.start_postgres()
    await assert_nothing_lost(chaos, load.sent)
