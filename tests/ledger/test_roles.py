"""Each runtime process's database role, connected as that role against a database built the way
`floor up` builds it (the owner applies the migrations), tries what an intruder holding that
process's credentials would: every attempt to rewrite history or write keys and risk profiles
directly is refused by the database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from config.settings import FloorSettings
from floor.database import prepare_database
from ledger import roles
from ledger.append import Decision, append_command, append_refusal, append_signed
from ledger.key_changes import register_key_signed
from ledger.risk_profiles import set_profile
from tests.factories import new_agent, risk_profile
from tests.ledger.conftest import make_owned_database, with_database
from tests.ledger.helpers import signed_enter
from trading.commands import Command, CommandKind, OrderType, Side, TimeInForce, canonical_bytes, utc_now_ms
from trading.signing import generate_private_key, public_key_bytes

PROFILE = risk_profile()

RUNTIME = [role.process for role in roles.RUNTIME_ROLES]


@pytest.fixture(scope="module")
def owned_database(postgres_url: str, floor_settings: FloorSettings) -> str:
    """A database whose schema the owner made, as `floor up` does: its name."""
    return make_owned_database(postgres_url, floor_settings.owner_url, "roles")


@pytest.fixture(scope="module")
def seeded(owned_database: str, floor_settings: FloorSettings) -> str:
    """One of everything, each written the only way the floor may: a key and a risk profile
    through the ledgering functions (as the CLI), an accepted order, an order event and a
    security event (as the hot path)."""

    async def seed() -> None:
        cli = await asyncpg.connect(with_database(floor_settings.role_url("cli"), owned_database))
        hot = await asyncpg.connect(with_database(floor_settings.role_url("hotpath"), owned_database))
        try:
            operator = generate_private_key()
            await register_key_signed(
                cli, "operator", public_key_bytes(operator), "operator", ["*"],
                operator_id="operator", operator_key=operator,
            )  # fmt: skip
            agent = new_agent("alpha")
            await register_key_signed(
                cli, "alpha", public_key_bytes(agent.private_key), "agent", ["DU1"],
                operator_id="operator", operator_key=operator,
            )  # fmt: skip
            await set_profile(cli, "DU1", PROFILE, operator_id="operator", operator_key=operator)
            await append_command(hot, signed_enter(agent, account="DU1"), decision=Decision.ACCEPTED)
            await hot.execute(
                "INSERT INTO order_events (event_id, command_id, kind, account, symbol, agent_id, side,"
                " quantity, filled_qty, ts) VALUES ('e1', 'c1', 'accepted', 'DU1', 'AAPL', 'alpha',"
                " 'BUY', 1, 0, now())"
            )
            await hot.execute(
                "INSERT INTO security_events (severity, reason, source) VALUES ('warning', 'test', 'test')"
            )
        finally:
            await cli.close()
            await hot.close()

    asyncio.run(seed())
    return owned_database


@pytest.fixture(params=RUNTIME)
async def as_runtime(
    request: pytest.FixtureRequest, seeded: str, floor_settings: FloorSettings
) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(with_database(floor_settings.role_url(request.param), seeded))
    assert await conn.fetchval("SELECT current_user") == f"floor_{request.param}"
    yield conn
    await conn.close()


REFUSED = [
    "ALTER TABLE ledger_entries DISABLE TRIGGER ALL",
    "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_no_update_delete",
    "ALTER TABLE order_events DISABLE TRIGGER order_events_no_update_delete",
    "ALTER TABLE security_events DISABLE TRIGGER USER",
    "SET session_replication_role = replica",
    "UPDATE ledger_entries SET reason = 'edited'",
    "DELETE FROM ledger_entries",
    "TRUNCATE ledger_entries",
    "UPDATE ledger_head SET seq = seq + 1",
    "UPDATE order_events SET filled_qty = 1",
    "DELETE FROM order_events",
    "TRUNCATE order_events",
    "UPDATE security_events SET reason = 'nothing happened'",
    "DELETE FROM security_events",
    "TRUNCATE security_events",
    "INSERT INTO ledger_entries SELECT seq + 100, prev_hash, sha256(entry_hash), kind, account, agent_id,"
    " command_id || 'x', nonce || 'x', issued_at, payload, signer, scheme, signature, signature_hash,"
    " false, 'rejected', 'forged', received_at, recorded_at, detail FROM ledger_entries LIMIT 1",
    # A back-dated key for every account, and a looser profile, written past the functions.
    "INSERT INTO agent_keys (key_id, agent_id, public_key, role, accounts, created_at)"
    " SELECT left(encode(sha256(b), 'hex'), 32), 'mallory', b, 'agent', '{*}', '2000-01-01'"
    " FROM (SELECT sha256('mallory'::bytea) AS b) k",
    "UPDATE agent_keys SET accounts = '{*}'",
    "UPDATE agent_keys SET revoked_at = now()",
    "DELETE FROM agent_keys",
    "INSERT INTO risk_profiles (account, profile, ledger_seq, updated_at)"
    " SELECT 'DU2', profile, ledger_seq, now() FROM risk_profiles LIMIT 1",
    "UPDATE risk_profiles SET profile = jsonb_set(profile, '{max_trade_size}', '\"99999999\"')",
    "DELETE FROM risk_profiles",
    "ALTER ROLE CURRENT_USER SUPERUSER",
    "CREATE TABLE public.shadow (x int)",
    # A temporary table of the ledger's head's name would shadow it for this session.
    "CREATE TEMP TABLE ledger_head (id boolean, seq bigint, entry_hash bytea)",
]


@pytest.mark.parametrize("statement", REFUSED)
async def test_runtime_role_is_refused(as_runtime: asyncpg.Connection, statement: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await as_runtime.execute(statement)


async def test_only_the_cli_role_may_change_keys_and_profiles(
    seeded: str, floor_settings: FloorSettings
) -> None:
    operator = generate_private_key()
    for process in ("hotpath", "api", "worker", "brain"):
        conn = await asyncpg.connect(with_database(floor_settings.role_url(process), seeded))
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await register_key_signed(
                    conn, f"m-{process}", public_key_bytes(generate_private_key()), "agent", ["*"],
                    operator_id="operator", operator_key=operator,
                )  # fmt: skip
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await set_profile(conn, "DU1", PROFILE, operator_id="operator", operator_key=operator)
        finally:
            await conn.close()


async def test_runtime_roles_are_least_privileged_and_own_nothing(
    seeded: str, floor_settings: FloorSettings
) -> None:
    conn = await asyncpg.connect(with_database(floor_settings.db_url, seeded))
    try:
        for role in roles.RUNTIME_ROLES:
            row = await conn.fetchrow(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication, rolcanlogin"
                " FROM pg_roles WHERE rolname = $1",
                role.name,
            )
            assert tuple(row) == (False, False, False, False, False, True), role.name
            owned = await conn.fetchval(
                "SELECT count(*) FROM pg_class WHERE relowner = $1::regrole", role.name
            ) + await conn.fetchval("SELECT count(*) FROM pg_proc WHERE proowner = $1::regrole", role.name)
            assert owned == 0, role.name
            assert await conn.fetchval(
                "SELECT pg_has_role($1, 'floor_writer', 'USAGE')"
                " AND pg_has_role($1, 'floor_reader', 'USAGE')",
                role.name,
            )
        # The schema, the ledgering functions included, belongs to the owner.
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relowner <> $1::regrole",
                roles.OWNER,
            )
            == 0
        )
        definer = await conn.fetch(
            "SELECT proname, pg_get_userbyid(proowner) AS owner, proconfig FROM pg_proc"
            " WHERE prosecdef AND pronamespace = 'public'::regnamespace"
        )
        assert {r["proname"] for r in definer} >= {
            "ledger_append",
            "floor_key_change",
            "floor_risk_profile_set",
        }
        for r in definer:
            # pg_temp last: otherwise a caller's temporary table is searched first.
            assert r["owner"] == roles.OWNER and "search_path=pg_catalog, public, pg_temp" in r["proconfig"]
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("table", "key"), [("ledger_entries", "seq"), ("order_events", "id"), ("security_events", "id")]
)
async def test_even_the_owner_cannot_update_or_delete_history(
    seeded: str, floor_settings: FloorSettings, table: str, key: str
) -> None:
    """The owner holds every privilege on its tables; the triggers still refuse."""
    conn = await asyncpg.connect(with_database(floor_settings.owner_url, seeded))
    try:
        for statement in (
            f"UPDATE {table} SET {key} = {key}",
            f"DELETE FROM {table}",
            f"TRUNCATE {table} CASCADE",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_what_each_runtime_role_needs_it_can_do(as_runtime: asyncpg.Connection) -> None:
    agent_row = await as_runtime.fetchrow("SELECT key_id FROM agent_keys WHERE agent_id = 'alpha'")
    assert agent_row is not None
    await as_runtime.execute(
        "INSERT INTO ops_events (source, kind, severity) VALUES ('test', 'probe', 'info')"
    )
    await as_runtime.execute(
        "INSERT INTO security_events (severity, reason, source) VALUES ('info', 'probe', 'test')"
    )
    assert await as_runtime.fetchval("SELECT count(*) FROM ledger_entries") >= 4


ORDER_ROW_WRITERS = ("hotpath",)
"""The hot path: it is the one reconciler too (the worker reconciled, and wrote them, before)."""


@pytest.mark.parametrize("process", RUNTIME)
async def test_only_the_hotpath_may_write_order_state_rows(
    process: str, seeded: str, floor_settings: FloorSettings
) -> None:
    """Unsigned rows that recovery, slice accounting and reconciliation read."""
    conn = await asyncpg.connect(with_database(floor_settings.role_url(process), seeded))
    try:
        insert = conn.execute(
            "INSERT INTO order_events (event_id, command_id, kind, account, symbol, agent_id, side, quantity,"
            " filled_qty, ts) VALUES ($1, $2, 'accepted', 'DU1', 'AAPL', 'alpha', 'BUY', 1, 0, $3)",
            uuid.uuid4().hex,
            f"c-{process}",
            datetime.now(UTC),
        )
        if process in ORDER_ROW_WRITERS:
            await insert
        else:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await insert
    finally:
        await conn.close()


async def test_set_up_takes_order_rows_from_a_worker_role_an_older_floor_let_write_them(
    postgres_url: str, seeded: str, floor_settings: FloorSettings
) -> None:
    """The worker wrote order-state rows while it reconciled; on a floor set up before, its role
    still has the group, and ``floor up`` (the embedded roles) takes it away."""
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f"GRANT {roles.ORDER_WRITER_GROUP} TO {roles.WORKER.name}")
    finally:
        await admin.close()
    await prepare_database(floor_settings)
    conn = await asyncpg.connect(with_database(floor_settings.role_url("worker"), seeded))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO order_events (event_id, command_id, kind, account, symbol, agent_id, side,"
                " quantity, filled_qty, ts) VALUES ($1, 'c-old-worker', 'accepted', 'DU1', 'AAPL', 'alpha',"
                " 'BUY', 1, 0, $2)",
                uuid.uuid4().hex,
                datetime.now(UTC),
            )
    finally:
        await conn.close()


@pytest.mark.parametrize("process", RUNTIME)
async def test_only_the_hotpath_role_may_append_to_the_ledger(
    process: str, seeded: str, floor_settings: FloorSettings
) -> None:
    """The planted order a restart would send: an accepted exit with a signature that is none.
    Only the hot path appends (keys and profiles are ledgered by the functions that change them)."""
    conn = await asyncpg.connect(with_database(floor_settings.role_url(process), seeded))
    try:
        evil = Command(
            kind=CommandKind.EXIT, command_id=f"evil-exit-{uuid.uuid4().hex[:8]}", agent_id="nobody",
            account="DU1", nonce=uuid.uuid4().hex, issued_at=utc_now_ms(), symbol="AAPL", side=Side.SELL,
            order_type=OrderType.MKT, tif=TimeInForce.DAY, quantity=100000,
        )  # fmt: skip
        plant = append_signed(
            conn, kind=evil.kind.value, payload=canonical_bytes(evil), signer="0" * 32, scheme="ed25519",
            signature=b"\x00" * 64, account=evil.account, agent_id=evil.agent_id,
            command_id=evil.command_id, nonce=evil.nonce, issued_at=evil.issued_at,
            decision=Decision.ACCEPTED, detail={"quantity": 100000},
        )  # fmt: skip
        if process == "hotpath":
            await plant  # the hot path can; recovery re-verifies what it reads back (test_recovery)
            return
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await plant
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await append_refusal(
                conn, payload=b"{}", signer="0" * 32, signature=b"\x01" * 64, reason="sentry.bad_signature"
            )
    finally:
        await conn.close()


async def test_a_temporary_ledger_head_cannot_hijack_ledger_append(
    seeded: str, floor_settings: FloorSettings
) -> None:
    """As a session that may create temporary tables (here the superuser's, since no runtime
    role may): a temp ledger_head with a forged head does not become the head ledger_append
    reads and advances, so the chain stays whole."""
    conn = await asyncpg.connect(with_database(floor_settings.db_url, seeded))
    try:
        head = await conn.fetchrow("SELECT seq, entry_hash FROM public.ledger_head")
        await conn.execute("CREATE TEMP TABLE ledger_head (id boolean, seq bigint, entry_hash bytea)")
        await conn.execute("INSERT INTO ledger_head VALUES (true, $1, $2)", head["seq"] - 1, b"\xab" * 32)
        record = await append_refusal(
            conn, payload=b"{}", signer="0" * 32, signature=b"\x02" * 64, reason="sentry.bad_signature"
        )
        assert record.seq == head["seq"] + 1
        entry = await conn.fetchrow("SELECT prev_hash FROM ledger_entries WHERE seq = $1", record.seq)
        assert bytes(entry["prev_hash"]) == bytes(head["entry_hash"])
        assert await conn.fetchval("SELECT seq FROM public.ledger_head") == record.seq
    finally:
        await conn.close()


async def test_runtime_roles_end_idle_transactions_and_lock_waits(as_runtime: asyncpg.Connection) -> None:
    """Defaults a session could change for itself: they stop a stuck client from holding the
    ledger's head; a hostile one cannot take that lock at all (only the hot path may append)."""
    for setting, value in roles.SESSION_LIMITS.items():
        assert await as_runtime.fetchval(f"SHOW {setting}") == value
