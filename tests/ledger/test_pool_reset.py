"""The hot path's pool gives connections back without asyncpg's reset query (a round trip
after every pooled query) and still rolls back a transaction left open (ledger.db.keep_session)."""

from __future__ import annotations

import asyncpg

from ledger.db import keep_session


async def test_a_released_connection_runs_no_reset_query_yet_an_open_transaction_is_rolled_back(
    postgres_url: str,
) -> None:
    pool = await asyncpg.create_pool(postgres_url, min_size=1, max_size=1, reset=keep_session)
    try:
        seen: list[str] = []
        conn = await pool.acquire()
        conn.add_query_logger(lambda record: seen.append(record.query))
        await conn.fetchval("SELECT 1")
        await pool.release(conn)
        assert seen == ["SELECT 1"], "no reset query after the release"

        conn = await pool.acquire()
        await conn.execute("CREATE TEMP TABLE IF NOT EXISTS held (n int)")
        tx = conn.transaction()
        await tx.start()
        await conn.execute("INSERT INTO held VALUES (1)")
        await pool.release(conn)  # the transaction left open: asyncpg rolls it back
        conn = await pool.acquire()
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT count(*) FROM held") == 0
        await pool.release(conn)
    finally:
        await pool.close()

    default = await asyncpg.create_pool(postgres_url, min_size=1, max_size=1)
    try:
        seen = []
        conn = await default.acquire()
        conn.add_query_logger(lambda record: seen.append(record.query))
        await conn.fetchval("SELECT 1")
        await default.release(conn)
        assert len(seen) == 2 and "RESET ALL" in seen[1], seen  # what keep_session saves
    finally:
        await default.close()
