from __future__ import annotations

import asyncpg


async def test_migrations_are_applied_and_a_row_round_trips(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        names = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations ORDER BY name")]
        assert "0001_ops_events.sql" in names
        row_id = await conn.fetchval(
            "INSERT INTO ops_events (source, kind, severity, detail) VALUES ($1, $2, $3, $4) RETURNING id",
            "test",
            "round_trip",
            "info",
            '{"n": 42}',
        )
        row = await conn.fetchrow(
            "SELECT source, kind, severity, detail FROM ops_events WHERE id = $1", row_id
        )
        assert row is not None
        assert (row["source"], row["kind"], row["severity"]) == ("test", "round_trip", "info")
        assert row["detail"] == '{"n": 42}'
    finally:
        await conn.close()


async def test_migrations_are_idempotent(postgres_url: str) -> None:
    from ledger.migrate import apply_migrations

    assert await apply_migrations(postgres_url) == []


async def test_bad_severity_is_refused_by_the_schema(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        try:
            await conn.execute(
                "INSERT INTO ops_events (source, kind, severity) VALUES ('t', 'k', 'loud')"
            )
        except asyncpg.CheckViolationError:
            return
        raise AssertionError("a severity outside the allowed set was stored")
    finally:
        await conn.close()
