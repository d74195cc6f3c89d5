"""``floor sniper report`` over icebergs that really ran on the Temporal dev server."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker
from typer.testing import CliRunner

from floor import sniper_cmd
from floor.sniper_cmd import fetch_finished, plot, summarize
from tests.helpers import eventually
from tests.workflows.sim import SimVenue
from trading.commands import Edge, Side
from workflows.iceberg import Iceberg, IcebergInput


async def test_report_prints_quality_and_writes_a_plot(
    temporal_client: Client, temporal_address: str, tmp_path: Path
) -> None:
    queue = f"report-{uuid.uuid4().hex[:8]}"
    venue = SimVenue(bid=Decimal("50.00"), ask=Decimal("50.10"))  # wide: slices improve the bid by a tick
    tag = uuid.uuid4().hex[:8]
    ids = [f"ice-report-{tag}-{n}" for n in range(2)]
    async with Worker(temporal_client, task_queue=queue, workflows=[Iceberg], activities=venue.activities()):
        await asyncio.gather(
            *(
                temporal_client.execute_workflow(
                    Iceberg.run,
                    IcebergInput(
                        account="DU1",
                        symbol="AAPL",
                        side=Side.BUY,
                        total_qty=total,
                        display_qty=100,
                        edge=Edge(Decimal("0.55"), Decimal("2"), Decimal("45")),
                    ),
                    id=wid,
                    task_queue=queue,
                )
                for wid, total in zip(ids, (200, 100), strict=True)
            )
        )

    async def both() -> list[sniper_cmd.FinishedIceberg]:
        found = [f for wid in ids for f in await fetch_finished(temporal_client, 5, wid)]
        return found if len(found) == 2 else []

    finished: list[sniper_cmd.FinishedIceberg] = await eventually(both, timeout=20)
    summary = summarize(finished)
    # Bought at 50.01 against a mid of 50.05: 4 cents better, -7.99 bps (side-adjusted).
    assert summary.cost_bps == [Decimal("-7.99"), Decimal("-7.99")]
    assert summary.within_goal == 0 and summary.share_within_goal == 0

    png = tmp_path / "fills.png"
    assert plot(finished, png) == 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    result = await asyncio.to_thread(
        CliRunner().invoke,
        sniper_cmd.app,
        ["report", "--id", ids[0], "--temporal", temporal_address, "--plot", str(tmp_path / "one.png")],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert ids[0] in out and "-7.99" in out and "200/200" in out
    assert "within 5 bps: 0/1" in out
    assert (tmp_path / "one.png").exists()
