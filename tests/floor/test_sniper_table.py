"""``floor sniper report``'s table says how each iceberg ended, and why one ended short."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from floor.sniper_cmd import FinishedIceberg, table
from trading.commands import Side
from workflows.iceberg import IcebergResult, IcebergStatus

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
SHORT = "session closed with 300 of 500 filled"


def _result(status: IcebergStatus, filled: int, reason: str | None) -> IcebergResult:
    return IcebergResult(
        status=status, account="DU1", symbol="AAPL", side=Side.BUY, total_qty=500, filled_qty=filled,
        started_at=T0, finished_at=T0, slices=[], quality=None, reason=reason,
    )  # fmt: skip


def test_the_table_names_each_ending_and_the_reason_of_a_parent_that_ended_short() -> None:
    finished = [
        FinishedIceberg("ice-done", _result(IcebergStatus.COMPLETED, 500, None)),
        FinishedIceberg(
            "ice-close", _result(IcebergStatus.EXPIRED, 300, "session closed with 300 of 500 filled")
        ),
    ]
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(table(finished))
    lines = console.export_text().splitlines()
    assert any("ice-done" in line and "Completed" in line and "500/500" in line for line in lines)
    assert any("ice-close" in line and "Expired" in line and "300/500" in line for line in lines)
    # The reason is given for the parent that ended short, and for it only.
    assert any(line.strip() == f"ice-close: {SHORT}" for line in lines)
    assert not any("ice-done:" in line for line in lines)
