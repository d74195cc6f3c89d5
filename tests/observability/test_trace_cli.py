"""``floor trace COMMAND_ID`` as an operator runs it (the floor_cli role): the span tree from the
store, each span under its parent with its duration; a command without spans says what to check."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
from typer.testing import CliRunner

from config.settings import FloorSettings
from floor.cli import app
from ledger.spans import SpanRow, insert_spans

MS = 1_000_000
T0 = time.time_ns() - 60_000 * MS
"""A minute ago: the session's span store is shared, and its prune test cuts at two days."""


def _span(cid: str, trace_id: str, span_id: str, parent: str | None, name: str, service: str,
          start_ms: float, end_ms: float, **attributes: object) -> SpanRow:  # fmt: skip
    command_id = cid if parent is None or name == "hotpath.intake" else None
    return SpanRow(
        trace_id, span_id, parent, name, service, command_id, T0 + int(start_ms * MS), T0 + int(end_ms * MS),
        "ok", {"floor.command_id": cid, **attributes},
    )  # fmt: skip


def test_floor_trace_prints_the_commands_span_tree_with_durations(
    postgres_url: str, floor_settings: FloorSettings
) -> None:
    command_id = f"cmd-cli-{uuid.uuid4().hex[:8]}"
    t = uuid.uuid4().hex
    ids = {name: uuid.uuid4().hex[:16] for name in ("request", "intake", "ledger", "ack")}
    where = {"floor.account": "DU1", "floor.symbol": "AAPL"}
    accepted = {"floor.outcome": "accepted"}
    cid = command_id
    rows = [
        _span(cid, t, ids["request"], None, "POST /v1/commands", "api", 0, 12, **where),
        _span(cid, t, ids["intake"], ids["request"], "hotpath.intake", "hotpath", 10, 14.5, **accepted),
        _span(cid, t, ids["ledger"], ids["intake"], "ledger.append", "hotpath", 11, 14),
        _span(cid, t, ids["ack"], ids["intake"], "broker.ack", "hotpath", 14.5, 17),
    ]  # fmt: skip

    async def seed() -> None:
        conn = await asyncpg.connect(postgres_url)
        try:
            await insert_spans(conn, rows)
        finally:
            await conn.close()

    asyncio.run(seed())
    runner = CliRunner(env={"FLOOR_CLI_DATABASE_URL": floor_settings.role_url("cli"), "COLUMNS": "200"})

    result = runner.invoke(app, ["trace", command_id])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"{command_id} DU1 AAPL" in lines[0] and t in lines[0] and "17.00 ms" in lines[0]
    request = next(i for i, line in enumerate(lines) if "POST /v1/commands api 12.00 ms at +0 µs" in line)
    intake = next(i for i, line in enumerate(lines) if "hotpath.intake hotpath 4.50 ms at +10.00 ms" in line)
    assert "floor.outcome=accepted" in lines[intake]
    ledger = next(i for i, line in enumerate(lines) if "ledger.append hotpath 3.00 ms at +11.00 ms" in line)
    ack = next(i for i, line in enumerate(lines) if "broker.ack hotpath 2.50 ms at +14.50 ms" in line)
    assert request < intake < ledger < ack
    # Each under its parent: one level deeper than it.
    indent = [len(lines[i]) - len(lines[i].lstrip("│ ├└─")) for i in (request, intake, ledger, ack)]
    assert indent[0] < indent[1] < indent[2] == indent[3], indent

    missing = runner.invoke(app, ["trace", "no-such-command"])
    assert missing.exit_code == 1
    assert "no spans for no-such-command" in missing.output and "FLOOR_SPAN_RETENTION_HOURS" in missing.output
