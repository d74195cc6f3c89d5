"""A flood of forged commands on ``agent.commands`` costs a few rows per window, not one each.

Intake runs in this process over the real ledger (Postgres) with the hot path's flood summary in
front of its security log, as ``python -m hotpath`` wires it. Forgeries that no registered key
signed are security events only (never ledger rows), and those events are summarised per
partition and reason like the API door's per address."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import asyncpg

from bus.topics import SECURITY_EVENTS
from hotpath.ledger_store import LedgerStore
from observability.flood import FULL_EVENTS_PER_WINDOW, REPEATS, FloodSummary
from observability.security import SecurityLog
from tests.factories import Agent, enter_command, new_agent
from tests.hotpath.conftest import VENUE_ACCOUNT
from tests.hotpath.in_process import BankrollOnly, in_process_intake
from trading import sentry

BURST = 60


async def test_a_burst_of_forged_commands_adds_rows_per_window_not_per_record(
    agent: Agent, ledger_pool: asyncpg.Pool, risk_profiles: None
) -> None:
    ledger = LedgerStore(ledger_pool)
    flood = FloodSummary(SecurityLog(ledger, None, SECURITY_EVENTS), timedelta(minutes=5))  # type: ignore[arg-type]
    intake = in_process_intake(ledger, BankrollOnly(), [], security=flood)
    await intake.warm()
    partition = f"agent.commands-{uuid.uuid4().hex[:8]}[0]"  # this test's own source
    entries_before = await ledger_pool.fetchval("SELECT count(*) FROM ledger_entries")
    stranger = new_agent()  # a key nobody registered
    for offset in range(BURST):
        unknown = stranger.sign(enter_command(stranger.agent_id, account=VENUE_ACCOUNT, quantity=1))
        genuine = agent.sign(enter_command(agent.agent_id, account=VENUE_ACCOUNT, quantity=1))
        forged = dataclasses.replace(genuine, signature=bytes(64))  # the agent's key id, a garbage signature
        for envelope in (unknown, forged):
            await intake.handle(envelope.to_wire(), source=f"{partition}@{offset}")

    rows = await _rows(ledger_pool, partition)
    assert sorted(rows) == sorted([sentry.UNKNOWN_KEY, sentry.BAD_SIGNATURE] * FULL_EVENTS_PER_WINDOW)
    # Nobody's signature: nothing for the ledger to keep.
    assert await ledger_pool.fetchval("SELECT count(*) FROM ledger_entries") == entries_before

    await flood.close()  # the window's count, as when the window closes or the process stops
    summaries = await ledger_pool.fetch(
        "SELECT reason, detail->>$2 AS repeats FROM security_events WHERE remote_addr = $1"
        " AND detail ? $2",
        partition,
        REPEATS,
    )
    assert sorted((r["reason"], int(r["repeats"])) for r in summaries) == sorted(
        [
            (sentry.UNKNOWN_KEY, BURST - FULL_EVENTS_PER_WINDOW),
            (sentry.BAD_SIGNATURE, BURST - FULL_EVENTS_PER_WINDOW),
        ]
    )
    assert len(await _rows(ledger_pool, partition)) == 2 * (FULL_EVENTS_PER_WINDOW + 1)


async def _rows(pool: asyncpg.Pool, source_address: str) -> list[str]:
    rows = await pool.fetch("SELECT reason FROM security_events WHERE remote_addr = $1", source_address)
    return [r["reason"] for r in rows]
