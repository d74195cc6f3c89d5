"""The traders' tables under the runtime roles: the API runs the ceremonies but cannot read the
hashes of sessions and tokens it was not handed, rewrite a passkey, widen a trader, or touch the
ledger; the hot path and the worker cannot touch any of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from config.settings import FloorSettings


@pytest.fixture
async def as_api(postgres_url: str, floor_settings: FloorSettings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(floor_settings.role_url("api"))
    yield conn
    await conn.close()


API_REFUSED = [
    "SELECT token_hash FROM api_tokens",
    "SELECT name FROM api_tokens",
    "SELECT token_hash FROM web_sessions",
    "SELECT * FROM web_sessions",
    "SELECT token_hash FROM trader_enrolments",
    "INSERT INTO api_tokens (name, token_hash, role) VALUES ('mallory', sha256('x'::bytea), 'ops')",
    "UPDATE api_tokens SET revoked_at = NULL",
    "INSERT INTO traders (name, user_handle, role, accounts)"
    " VALUES ('mallory', sha256('x'::bytea), 'ops', '{*}')",
    "UPDATE traders SET accounts = '{*}'",
    "UPDATE traders SET role = 'ops'",
    "INSERT INTO trader_enrolments (trader, token_hash, expires_at) SELECT name, sha256('x'::bytea), now()"
    " FROM traders LIMIT 1",
    "UPDATE trader_enrolments SET expires_at = 'infinity'",
    "UPDATE webauthn_credentials SET public_key = 'x'",
    "UPDATE webauthn_credentials SET trader = 'mallory'",
    "DELETE FROM webauthn_credentials",
    "UPDATE web_sessions SET expires_at = 'infinity'",
    "UPDATE web_sessions SET trader = 'mallory'",
    # The sign-in assertion a session's cancels record is written once, when sign-in opens it.
    "UPDATE web_sessions SET sign_count = 0",
    "UPDATE web_sessions SET client_data_sha256 = repeat('0', 64)",
    "UPDATE arming_grants SET expires_at = 'infinity'",
    "UPDATE arming_grants SET max_quantity = NULL",
    "UPDATE webauthn_challenges SET expires_at = 'infinity'",
    "UPDATE webauthn_challenges SET order_hash = NULL",
    "UPDATE ledger_entries SET reason = 'edited'",
    "SELECT ledger_append('enter', 'DU1', 'a', 'c', 'n', now(), '{}'::bytea, 's', 'ed25519', 'x'::bytea,"
    " 'h', true, 'accepted', NULL, now(), NULL)",
]


@pytest.mark.parametrize("statement", API_REFUSED)
async def test_api_role_is_refused(as_api: asyncpg.Connection, statement: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await as_api.execute(statement)


@pytest.mark.parametrize("process", ["hotpath", "worker"])
@pytest.mark.parametrize(
    "table",
    ["traders", "trader_enrolments", "webauthn_credentials", "web_sessions", "webauthn_challenges",
     "arming_grants", "api_tokens"],
)  # fmt: skip
async def test_other_processes_cannot_read_the_traders_tables(
    postgres_url: str, floor_settings: FloorSettings, process: str, table: str
) -> None:
    conn = await asyncpg.connect(floor_settings.role_url(process))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch(f"SELECT 1 FROM {table} LIMIT 1")
    finally:
        await conn.close()


async def test_api_role_looks_tokens_up_only_through_the_function(as_api: asyncpg.Connection) -> None:
    assert await as_api.fetch("SELECT * FROM floor_api_token(sha256('nobody'::bytea))") == []
