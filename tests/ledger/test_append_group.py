"""Several entries committed in one transaction (the hot path's group commit): in order,
chained as single appends are, all or none, and committed when the call returns."""

from __future__ import annotations

import asyncpg
import pytest

from ledger.append import (
    Decision,
    EntryInvalid,
    GroupRefused,
    ReplayRefused,
    append_entries,
    command_entry,
    refusal_entry,
)
from ledger.db import DedicatedConnection
from ledger.verify import verify_ledger
from tests.ledger.helpers import registered_agent, signed_enter, stored_rows


async def test_a_group_is_appended_in_order_in_one_commit_and_the_chain_verifies(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    agent = await registered_agent(db)
    envelopes = [signed_enter(agent) for _ in range(5)]
    entries = [
        command_entry(envelopes[0], decision=Decision.ACCEPTED, detail={"quantity": 1}),
        command_entry(envelopes[1], decision=Decision.REJECTED, reason="risk.max_open_orders"),
        refusal_entry(payload=b"{}", signer="nobody", signature=b"\x01" * 64, reason="sentry.unknown_key"),
        command_entry(envelopes[3], decision=Decision.ACCEPTED, detail={"quantity": 3}),
        command_entry(envelopes[4], decision=Decision.ACCEPTED, detail={"quantity": 4}),
    ]
    writer = DedicatedConnection(ledger_dsn)
    reader = await asyncpg.connect(ledger_dsn)
    try:
        records = await append_entries(writer, entries)
        # Committed on return: another session sees every entry of the group.
        seen = await reader.fetchval("SELECT count(*) FROM ledger_entries")
    finally:
        await writer.close()
        await reader.close()

    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert seen == 5
    rows = await stored_rows(db)
    assert [r.command_id for r in rows] == [
        envelopes[0].command.command_id, envelopes[1].command.command_id, None,
        envelopes[3].command.command_id, envelopes[4].command.command_id,
    ]  # fmt: skip
    assert [r.entry_hash for r in rows] == [r.entry_hash for r in records]
    report = await verify_ledger(ledger_dsn)
    assert report.ok, report


async def test_a_group_with_a_replayed_entry_writes_none_of_it(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    """One refused entry (here a command id already in the ledger) aborts the whole group:
    the caller then appends each alone to give each its own answer."""
    agent = await registered_agent(db)
    first, second = signed_enter(agent), signed_enter(agent)
    writer = DedicatedConnection(ledger_dsn)
    try:
        await append_entries(writer, [command_entry(first, decision=Decision.ACCEPTED)])
        with pytest.raises(GroupRefused) as refused:
            await append_entries(
                writer,
                [
                    command_entry(second, decision=Decision.ACCEPTED),
                    command_entry(first, decision=Decision.ACCEPTED),
                ],
            )
        assert isinstance(refused.value.cause, ReplayRefused)
        # The writer's session is healthy afterwards, and nothing of the group was written.
        assert await writer.fetchval("SELECT count(*) FROM ledger_entries") == 1
    finally:
        await writer.close()
    report = await verify_ledger(ledger_dsn)
    assert report.ok, report


async def test_a_group_is_refused_inside_a_callers_transaction(db: asyncpg.Connection) -> None:
    """Inside a transaction the entries would not be committed on return, and a broker call
    made next would break the write-ahead rule."""
    agent = await registered_agent(db)
    async with db.transaction():
        with pytest.raises(EntryInvalid):
            await append_entries(db, [command_entry(signed_enter(agent), decision=Decision.ACCEPTED)])
