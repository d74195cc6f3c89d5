"""The control run: the load on a healthy floor. If this fails, the harness is wrong, not the floor."""

from __future__ import annotations

import pytest

from tests.chaos.floor import ChaosFloor
from tests.chaos.load import streaming
from tests.chaos.verdict import assert_nothing_lost

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_full, pytest.mark.timeout(120)]


async def test_the_load_on_a_healthy_floor_loses_and_doubles_nothing(chaos: ChaosFloor) -> None:
    async with streaming(chaos) as load:
        pass
    await assert_nothing_lost(chaos, load.sent)
