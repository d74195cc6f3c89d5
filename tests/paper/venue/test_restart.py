"""What must survive a venue restart: permIds and order-id high-water marks (never reused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.ports import free_port
from config.settings import FloorSettings
from floor.paper_cmd import venue_spec
from floor.supervisor import Supervisor
from paper.venue import counters
from paper.venue.client import VenueClient
from paper.venue.counters import EXEC_SEQ_GAP, ORDER_ID_GAP, PERM_ID_GAP, Counters
from paper.venue.messages import ExecutionFilter, OrderAck, OrderSpec, PlaceOrder


def test_counters_round_trip_and_skip_ahead_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    assert counters.load(path) == Counters()
    counters.save(path, Counters(1_000_050, {3: 77, 0: 5}, 12))
    assert counters.load(path) == Counters(1_000_050, {3: 77, 0: 5}, 12)
    assert counters.load(path).after_restart() == Counters(
        1_000_050 + PERM_ID_GAP, {3: 77 + ORDER_ID_GAP, 0: 5 + ORDER_ID_GAP}, 12 + EXEC_SEQ_GAP
    )
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        counters.load(path)
    path.write_text('{"next_perm_id": "x"}')
    with pytest.raises(ValueError, match="malformed"):
        counters.load(path)


async def test_a_restarted_venue_never_reuses_perm_ids_exec_ids_or_order_ids(
    floor_settings: FloorSettings, tmp_path: Path
) -> None:
    supervisor = Supervisor(tmp_path / "log")
    file = tmp_path / "venue-counters.json"

    async def session(order_id: int) -> tuple[int, int, set[str]]:
        settings = floor_settings.model_copy(
            update={"venue_port": free_port(), "venue_control_port": free_port()}
        )
        supervisor.start(venue_spec(settings, seed=5, name="venue-restart", counters_file=file))
        client = await VenueClient.connect(settings.host, settings.venue_port, "gw")
        try:
            next_id = await client.next_valid_id(4)
            buy = OrderSpec("BUY", 5, "MKT")
            ack = await client.place_order(PlaceOrder(4, max(order_id, next_id), buy, symbol="AAPL"))
            assert isinstance(ack, OrderAck)
            fills = {r.execution.exec_id for r in await client.executions(ExecutionFilter())}
            return next_id, ack.perm_id, fills
        finally:
            await client.close()
            supervisor.stop_all()

    first_next, first_perm, first_fills = await session(77)
    second_next, second_perm, second_fills = await session(0)
    assert first_next == 1
    assert second_next > 77
    assert second_perm > first_perm
    assert first_fills and second_fills and not first_fills & second_fills
    assert counters.load(file).next_perm_id > second_perm
