"""The traders' tables under the runtime roles: the API runs the ceremonies but cannot read the
hashes of sessions and tokens it was not handed, rewrite a passkey, widen a trader, or touch the
ledger; the hot path and the worker cannot touch any of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from config.settings import FloorSettings
from ledger.secret_tokens import secret_hash
from ledger.trader_revocation import disable_trader
from ledger.webauthn_store import (
    SignIn,
    StoredGrant,
    add_grant,
    live_grant,
    open_session,
    session_for_cookie,
)
from tests.fixtures.identity import Trader, new_trader


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
    # A passkey is stored only by using up an enrolment (floor_register_passkey), and its count
    # moves only forward (floor_advance_sign_count).
    "INSERT INTO webauthn_credentials (credential_id, trader, public_key, sign_count, backup_eligible,"
    " backed_up) SELECT 'mallory'::bytea, name, 'k'::bytea, 0, false, false FROM traders LIMIT 1",
    "UPDATE webauthn_credentials SET sign_count = 0",
    "UPDATE webauthn_credentials SET backed_up = true",
    "UPDATE trader_enrolments SET used_at = now()",
    "UPDATE webauthn_credentials SET revoked_at = NULL",
    "UPDATE traders SET disabled_at = NULL",
    "DELETE FROM webauthn_challenges",
    "UPDATE webauthn_credentials SET trader = 'mallory'",
    "DELETE FROM webauthn_credentials",
    "UPDATE web_sessions SET expires_at = 'infinity'",
    "UPDATE web_sessions SET trader = 'mallory'",
    # The sign-in assertion a session's cancels record is written once, when sign-in opens it.
    "UPDATE web_sessions SET sign_count = 0",
    "UPDATE web_sessions SET client_data_sha256 = repeat('0', 64)",
    # Sessions and grants are stored only through floor_open_session and floor_add_grant, which
    # check the passkey named as their evidence.
    "INSERT INTO web_sessions (session_id, token_hash, trader, credential_id, expires_at)"
    " SELECT 'mallory', sha256('x'::bytea), trader, credential_id, 'infinity' FROM webauthn_credentials"
    " LIMIT 1",
    "INSERT INTO arming_grants (grant_id, trader, session_id, credential_id, sign_count,"
    " authenticator_data_sha256, client_data_sha256, synced, expires_at)"
    " SELECT 'mallory', trader, session_id, credential_id, 0, repeat('0', 64), repeat('0', 64), false,"
    " 'infinity' FROM web_sessions LIMIT 1",
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


@pytest.mark.parametrize("process", ["hotpath", "worker", "brain"])
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


async def _register(
    as_api: asyncpg.Connection, enrolment_token: str, credential_id: bytes
) -> list[asyncpg.Record]:
    return await as_api.fetch(
        "SELECT trader, sign_count FROM floor_register_passkey($1, $2, 'key'::bytea, 5, '{internal}', false,"
        " false)",
        secret_hash(enrolment_token),
        credential_id,
    )


async def test_api_registers_a_passkey_only_by_using_up_an_enrolment(
    as_api: asyncpg.Connection, cli_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool)
    first, second = b"first" + trader.name.encode(), b"second" + trader.name.encode()

    assert [tuple(r) for r in await _register(as_api, trader.enrolment_token, first)] == [(trader.name, 5)]
    # The enrolment is used: the same link cannot add a second passkey.
    assert await _register(as_api, trader.enrolment_token, second) == []
    assert (
        await as_api.fetchval("SELECT count(*) FROM webauthn_credentials WHERE trader = $1", trader.name) == 1
    )


async def test_api_cannot_register_a_passkey_for_a_disabled_trader(
    as_api: asyncpg.Connection, cli_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool)
    await disable_trader(cli_pool, trader.name)
    assert await _register(as_api, trader.enrolment_token, b"disabled" + trader.name.encode()) == []


async def test_api_cannot_register_a_passkey_by_an_enrolment_id(
    as_api: asyncpg.Connection, cli_pool: asyncpg.Pool
) -> None:
    # The API's role can read every enrolment's id; only the link's holder has its token.
    trader = await new_trader(cli_pool)
    enrolment_id = await as_api.fetchval(
        "SELECT enrolment_id FROM trader_enrolments WHERE trader = $1", trader.name
    )
    with pytest.raises(asyncpg.UndefinedFunctionError):
        await as_api.fetch(
            "SELECT * FROM floor_register_passkey($1::bigint, 'mallory'::bytea, 'key'::bytea, 0, '{}',"
            " false, false, 'infinity'::timestamptz)",
            enrolment_id,
        )
    assert await _register(as_api, "not-the-token", b"guess" + trader.name.encode()) == []
    assert (
        await as_api.fetchval("SELECT count(*) FROM webauthn_credentials WHERE trader = $1", trader.name) == 0
    )


async def test_api_cannot_register_a_passkey_through_an_expired_enrolment(
    as_api: asyncpg.Connection, cli_pool: asyncpg.Pool
) -> None:
    # Expiry is judged by the database's clock, not one the caller passes in.
    trader = await new_trader(cli_pool, ttl=timedelta(seconds=-1))
    assert await _register(as_api, trader.enrolment_token, b"late" + trader.name.encode()) == []
    assert (
        await as_api.fetchval("SELECT used_at FROM trader_enrolments WHERE trader = $1", trader.name) is None
    )


async def test_api_moves_a_sign_count_only_forward(
    as_api: asyncpg.Connection, cli_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool)
    credential = b"count" + trader.name.encode()
    await _register(as_api, trader.enrolment_token, credential)

    async def advance(old: int, new: int) -> bool:
        return bool(
            await as_api.fetchval(
                "SELECT floor_advance_sign_count($1, $2, $3, false, now())", credential, old, new
            )
        )

    assert not await advance(5, 5)  # not increasing
    assert not await advance(5, 4)  # backwards
    assert not await advance(4, 9)  # compare-and-swap: the stored count is 5, not 4
    assert await advance(5, 6)
    assert (
        await as_api.fetchval(
            "SELECT sign_count FROM webauthn_credentials WHERE credential_id = $1", credential
        )
        == 6
    )
    await cli_pool.execute(
        "UPDATE webauthn_credentials SET revoked_at = now() WHERE credential_id = $1", credential
    )
    assert not await advance(6, 7)  # a revoked passkey's count stays where it was


async def test_a_synced_passkey_keeps_its_count_at_zero(
    as_api: asyncpg.Connection, cli_pool: asyncpg.Pool
) -> None:
    trader = await new_trader(cli_pool)
    credential = b"synced" + trader.name.encode()
    await as_api.fetch(
        "SELECT * FROM floor_register_passkey($1, $2, 'key'::bytea, 0, '{}', true, true)",
        secret_hash(trader.enrolment_token),
        credential,
    )
    assert await as_api.fetchval("SELECT floor_advance_sign_count($1, 0, 0, true, now())", credential)


async def test_api_prunes_only_expired_challenges_and_a_bounded_number_at_a_time(
    as_api: asyncpg.Connection,
) -> None:
    now = datetime.now(UTC)
    ids = [f"prune-{now.timestamp()}-{i}" for i in range(5)]
    for i, challenge_id in enumerate(ids):
        await as_api.execute(
            "INSERT INTO webauthn_challenges (challenge_id, purpose, challenge, created_at, expires_at)"
            " VALUES ($1, 'login', $2, $3, $4)",
            challenge_id,
            bytes(32),
            now - timedelta(minutes=10),
            now + (timedelta(minutes=-1) if i < 3 else timedelta(minutes=10)),
        )

    assert await as_api.fetchval("SELECT floor_prune_challenges(2)") == 2
    while await as_api.fetchval("SELECT floor_prune_challenges(100)"):
        pass
    left = await as_api.fetch(
        "SELECT challenge_id FROM webauthn_challenges WHERE challenge_id = ANY($1)", ids
    )
    assert sorted(r["challenge_id"] for r in left) == ids[3:]


async def test_api_cannot_prune_live_challenges_with_a_clock_of_its_own(as_api: asyncpg.Connection) -> None:
    challenge_id = f"live-{datetime.now(UTC).timestamp()}"
    await as_api.execute(
        "INSERT INTO webauthn_challenges (challenge_id, purpose, challenge, expires_at)"
        " VALUES ($1, 'login', $2, now() + interval '10 minutes')",
        challenge_id,
        bytes(32),
    )
    with pytest.raises(asyncpg.UndefinedFunctionError):
        await as_api.fetchval("SELECT floor_prune_challenges('infinity'::timestamptz, 10000)")
    while await as_api.fetchval("SELECT floor_prune_challenges(10000)"):
        pass
    assert await as_api.fetchval("SELECT true FROM webauthn_challenges WHERE challenge_id = $1", challenge_id)


def _grant(trader: str, session_id: str, credential: bytes) -> StoredGrant:
    return StoredGrant(
        grant_id=f"{session_id}-grant", trader=trader, session_id=session_id, symbols=None,
        max_quantity=None, max_notional=None, credential_id=credential, sign_count=6,
        authenticator_data_sha256="a" * 64, client_data_sha256="c" * 64, synced=False,
        expires_at=datetime.now(UTC) + timedelta(minutes=10),
    )  # fmt: skip


async def _open(as_api: asyncpg.Connection, trader: str, session_id: str, credential: bytes) -> bool:
    now = datetime.now(UTC)
    sign_in = SignIn(trader, credential, 5, "a" * 64, "c" * 64, False)
    return await open_session(
        as_api, session_id=session_id, cookie=f"cookie-{session_id}", sign_in=sign_in, now=now,
        expires_at=now + timedelta(hours=1),
    )  # fmt: skip


async def test_api_opens_a_session_or_stores_a_grant_only_with_the_traders_live_passkey(
    as_api: asyncpg.Connection, cli_pool: asyncpg.Pool
) -> None:
    alice, bob = await new_trader(cli_pool), await new_trader(cli_pool)
    alices, bobs = b"alice" + alice.name.encode(), b"bob" + bob.name.encode()
    await _register(as_api, alice.enrolment_token, alices)
    await _register(as_api, bob.enrolment_token, bobs)

    # Another trader's passkey, or one that does not exist, opens nothing.
    assert not await _open(as_api, alice.name, f"{alice.name}-bobs", bobs)
    assert not await _open(as_api, alice.name, f"{alice.name}-none", b"none" + alice.name.encode())
    assert await _open(as_api, alice.name, alice.name, alices)
    assert await _open(as_api, bob.name, bob.name, bobs)
    # A grant needs the trader's own passkey and own session.
    assert not await add_grant(as_api, _grant(alice.name, alice.name, bobs), datetime.now(UTC))
    assert not await add_grant(as_api, _grant(alice.name, bob.name, alices), datetime.now(UTC))
    assert await add_grant(as_api, _grant(alice.name, alice.name, alices), datetime.now(UTC))

    await cli_pool.execute(
        "UPDATE webauthn_credentials SET revoked_at = now() WHERE credential_id = $1", alices
    )
    # A ceremony that outlived the revocation stores neither.
    assert not await _open(as_api, alice.name, f"{alice.name}-late", alices)
    assert not await add_grant(as_api, _grant(alice.name, alice.name, alices), datetime.now(UTC))
    await cli_pool.execute("UPDATE traders SET disabled_at = now() WHERE name = $1", bob.name)
    assert not await _open(as_api, bob.name, f"{bob.name}-late", bobs)
    assert not await add_grant(as_api, _grant(bob.name, bob.name, bobs), datetime.now(UTC))
    assert (
        await as_api.fetchval(
            "SELECT count(*) FROM web_sessions WHERE trader = ANY($1)", [alice.name, bob.name]
        )
        == 2
    )
    assert (
        await as_api.fetchval(
            "SELECT count(*) FROM arming_grants WHERE trader = ANY($1)", [alice.name, bob.name]
        )
        == 1
    )


async def _session_and_grant(as_api: asyncpg.Connection, trader: Trader, credential: bytes) -> str:
    """A session and an arming grant made with ``credential``, as sign-in and arming store them;
    the session's cookie."""
    now = datetime.now(UTC)
    cookie = f"cookie-{trader.name}"
    sign_in = SignIn(trader.name, credential, 5, "a" * 64, "c" * 64, False)
    assert await open_session(
        as_api, session_id=trader.name, cookie=cookie, sign_in=sign_in, now=now,
        expires_at=now + timedelta(hours=1),
    )  # fmt: skip
    assert await add_grant(
        as_api,
        StoredGrant(
            grant_id=trader.name, trader=trader.name, session_id=trader.name, symbols=None,
            max_quantity=None, max_notional=None, credential_id=credential, sign_count=6,
            authenticator_data_sha256="a" * 64, client_data_sha256="c" * 64, synced=False,
            expires_at=now + timedelta(minutes=10),
        ),
        now,
    )  # fmt: skip
    return cookie


@pytest.mark.parametrize("how", ["passkey", "trader"])
async def test_a_session_and_grant_end_with_their_passkey_even_when_made_after_its_revocation(
    as_api: asyncpg.Connection, cli_pool: asyncpg.Pool, how: str
) -> None:
    # Revoking by the CLI ends the sessions and grants it sees; these are ended by the revocation
    # alone (as one stored by a ceremony that raced it would be).
    trader = await new_trader(cli_pool)
    credential = b"revoked" + trader.name.encode()
    await _register(as_api, trader.enrolment_token, credential)
    cookie = await _session_and_grant(as_api, trader, credential)
    now = datetime.now(UTC)
    assert await session_for_cookie(as_api, cookie, now) == (trader.name, trader.name)
    assert (await live_grant(as_api, trader.name, now)) is not None

    if how == "passkey":
        await cli_pool.execute(
            "UPDATE webauthn_credentials SET revoked_at = now() WHERE credential_id = $1", credential
        )
    else:
        await cli_pool.execute("UPDATE traders SET disabled_at = now() WHERE name = $1", trader.name)

    assert await session_for_cookie(as_api, cookie, now) is None
    assert await live_grant(as_api, trader.name, now) is None
