"""The append path as the hot path drives it: a dedicated writer connection beside pooled
writers, concurrent, with readers watching; and the append function of migration 0005 still
producing the chain ``ledger.chain`` specifies, for every shape of entry."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from ledger.append import Decision, append_command, append_refusal, ledger_head
from ledger.chain import GENESIS_HASH, compute_entry_hash
from ledger.db import DedicatedConnection
from ledger.verify import verify_ledger
from tests.helpers import eventually
from tests.ledger.helpers import registered_agent, signed_enter, stored_rows

LOST_CONNECTION = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    ConnectionError,
)


async def test_concurrent_writers_leave_a_gapless_chain_no_reader_sees_filled_in_later(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    alpha = await registered_agent(db, "alpha")
    beta = await registered_agent(db, "beta")
    writers = [DedicatedConnection(ledger_dsn), DedicatedConnection(ledger_dsn)]
    pool = await asyncpg.create_pool(ledger_dsn, min_size=4, max_size=4)
    reader = await asyncpg.connect(ledger_dsn)
    done = asyncio.Event()
    snapshots: list[tuple[int, int, int]] = []

    async def watch() -> None:
        # Each snapshot must hold exactly seq 1..max: a later commit never fills a hole.
        while not done.is_set():
            row = await reader.fetchrow(
                "SELECT count(*) AS n, coalesce(max(seq), 0) AS top, (SELECT seq FROM ledger_head) AS head"
                " FROM ledger_entries"
            )
            snapshots.append((row["n"], row["top"], row["head"]))

    async def write(db: DedicatedConnection | asyncpg.Pool, agent_name: str, count: int) -> list[int]:
        agent = alpha if agent_name == "alpha" else beta
        seqs = []
        for i in range(count):
            decision = Decision.ACCEPTED if i % 3 else Decision.REJECTED
            reason = None if decision is Decision.ACCEPTED else "risk.max_trade_size"
            record = await append_command(
                db, signed_enter(agent), decision=decision, reason=reason, detail={"quantity": i}
            )
            seqs.append(record.seq)
        return seqs

    watcher = asyncio.create_task(watch())
    try:
        results = await asyncio.gather(
            write(writers[0], "alpha", 60),
            write(writers[1], "beta", 60),
            *(write(pool, "alpha" if k % 2 else "beta", 30) for k in range(4)),
        )
    finally:
        done.set()
        await watcher
        for w in writers:
            await w.close()
        await pool.close()
        await reader.close()

    total = 60 + 60 + 4 * 30
    for seqs in results:
        assert seqs == sorted(seqs)  # one writer's appends are ordered as it made them
    assert sorted(s for seqs in results for s in seqs) == list(range(1, total + 1))
    assert len(snapshots) > 1
    assert all(n == top == head for n, top, head in snapshots), [s for s in snapshots if len(set(s)) > 1]

    stored = await stored_rows(db)
    prev = GENESIS_HASH
    for row in stored:
        assert row.prev_hash == prev
        assert compute_entry_hash(prev, row) == row.entry_hash
        prev = row.entry_hash
    assert [r.recorded_at for r in stored] == sorted(r.recorded_at for r in stored)
    assert await ledger_head(db) == (total, prev)
    report = await verify_ledger(ledger_dsn)
    assert report.ok and report.entries == total


async def test_every_entry_shape_chains_as_specified(db: asyncpg.Connection, ledger_dsn: str) -> None:
    """NULL columns, non-ASCII text, bytes that are not UTF-8, with and without detail, refusals."""
    alpha = await registered_agent(db, "alpha")
    writer = DedicatedConnection(ledger_dsn)
    try:
        await append_command(writer, signed_enter(alpha), decision=Decision.ACCEPTED)
        await append_command(
            writer,
            signed_enter(alpha, account="DU-7"),
            decision=Decision.REJECTED,
            reason="risk.max_dollar_risk — ünïcödé",
            detail={"quantity": 0, "note": "größer als erlaubt"},
        )
        await append_refusal(
            writer, payload=b"\x00garbage\xff", signer="ab" * 16, signature=b"", reason="bad"
        )
        await append_command(writer, signed_enter(alpha), decision=Decision.ACCEPTED, detail={})
    finally:
        await writer.close()
    stored = await stored_rows(db)
    assert [r.authenticated for r in stored] == [True, True, False, True]
    assert stored[2].account is None and stored[2].issued_at is None and stored[0].detail is None
    prev = GENESIS_HASH
    for row in stored:
        assert compute_entry_hash(prev, row) == row.entry_hash
        prev = row.entry_hash
    assert (await verify_ledger(ledger_dsn)).ok


async def test_dedicated_writer_reconnects_after_losing_its_session_between_calls(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    alpha = await registered_agent(db)
    writer = DedicatedConnection(ledger_dsn)
    try:
        await writer.connect()
        await append_command(writer, signed_enter(alpha), decision=Decision.ACCEPTED)
        pid = await writer.fetchval("SELECT pg_backend_pid()")
        # With a timeout this returns once the session is gone.
        assert await db.fetchval("SELECT pg_terminate_backend($1, 10000)", pid)
        await eventually(lambda: writer_closed(writer))
        second = await append_command(writer, signed_enter(alpha), decision=Decision.ACCEPTED)
        assert await writer.fetchval("SELECT pg_backend_pid()") != pid
    finally:
        await writer.close()
    assert second.seq == 2
    assert (await verify_ledger(ledger_dsn)).entries == 2


def writer_closed(writer: DedicatedConnection) -> bool:
    conn = writer._conn  # the session the writer holds, if any
    return conn is None or conn.is_closed()


async def test_dedicated_writer_does_not_retry_a_call_lost_in_flight(
    db: asyncpg.Connection, ledger_dsn: str
) -> None:
    alpha = await registered_agent(db)
    writer = DedicatedConnection(ledger_dsn)
    blocker = await asyncpg.connect(ledger_dsn)
    try:
        first = await append_command(writer, signed_enter(alpha), decision=Decision.ACCEPTED)
        pid = await writer.fetchval("SELECT pg_backend_pid()")
        # Hold the head row so the next append is in flight, waiting for it, when its session ends.
        hold = blocker.transaction()
        await hold.start()
        await blocker.execute("SELECT seq FROM ledger_head WHERE id FOR UPDATE")
        lost = signed_enter(alpha)
        in_flight = asyncio.create_task(append_command(writer, lost, decision=Decision.ACCEPTED))

        async def waiting_for_the_head() -> bool:
            return bool(
                await db.fetchval("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid)
            )

        await eventually(waiting_for_the_head)  # type: ignore[arg-type]  # helper types T | Awaitable[T]
        assert await db.fetchval("SELECT pg_terminate_backend($1, 10000)", pid)
        with pytest.raises(LOST_CONNECTION):
            await in_flight
        await hold.rollback()
        second = await append_command(writer, signed_enter(alpha), decision=Decision.ACCEPTED)
    finally:
        await blocker.close()
        await writer.close()
    assert (first.seq, second.seq) == (1, 2)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE command_id = $1", lost.command.command_id
        )
        == 0
    )
    assert (await verify_ledger(ledger_dsn)).entries == 2


async def test_append_function_is_the_0005_one_and_its_hash_inlines(db: asyncpg.Connection) -> None:
    """The speed-up depends on the planner inlining the hash: a nested SQL function call per
    field (what 0002/0004 did) would show up in pg_stat_user_functions."""
    alpha = await registered_agent(db)
    await db.execute("SET track_functions = 'all'")
    await append_command(db, signed_enter(alpha), decision=Decision.ACCEPTED, detail={"quantity": 1})
    await append_command(db, signed_enter(alpha), decision=Decision.ACCEPTED, detail={"quantity": 2})
    called = {
        r["funcname"]
        for r in await db.fetch("SELECT funcname FROM pg_stat_xact_user_functions WHERE calls > 0")
    }
    assert "ledger_append" in called
    assert not called & {"ledger_entry_hash", "ledger_hash_text", "ledger_hash_field", "ledger_epoch_ms"}
