"""The database roles the floor runs as.

- ``floor_owner`` owns the schema and runs the migrations; no process runs as it.
- One login role per runtime process kind (:data:`RUNTIME_ROLES`, the demo brain's included):
  NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS NOREPLICATION, owning nothing, a member of the group roles
  ``floor_writer`` and ``floor_reader`` (migrations grant to the groups). Only ``floor_cli``,
  through ``floor_registrar``, may call the functions that change keys and risk profiles; only
  ``floor_hotpath``, through ``floor_appender``, may append to the ledger, and only it, through
  ``floor_order_writer``, may write order-state rows (the worker did too while it reconciled
  broker sessions; :func:`ensure_roles` takes a group from a role that no longer has it). Only
  ``floor_api``, through ``floor_web``, may run the traders' ceremonies and sessions.
- The superuser only creates these roles (:func:`ensure_roles`) and hands the schema to the
  owner (:func:`hand_over_schema`); it is never used at run time.

Passwords are sent to the server as SCRAM-SHA-256 verifiers (:func:`scram_verifier`), so the
cleartext never reaches its logs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import asyncpg

OWNER = "floor_owner"
WRITER_GROUP = "floor_writer"
READER_GROUP = "floor_reader"
REGISTRAR_GROUP = "floor_registrar"
"""May call ``floor_key_change`` and ``floor_risk_profile_set`` (migration 0008)."""
APPENDER_GROUP = "floor_appender"
"""May call ``ledger_append`` (migration 0014): the hot path only."""
ORDER_WRITER_GROUP = "floor_order_writer"
"""May insert order-state rows (``order_events``, migration 0014): the hot path only."""
WEB_GROUP = "floor_web"
"""May run the traders' WebAuthn ceremonies, sessions and arming grants (migration 0016): the
API only. It never reads a session's or an API token's hash; it looks one up by the hash of
what the caller presented, through a function."""
SPAN_READER_GROUP = "floor_span_reader"
"""May read the span store and prune it by age (migration 0024): the API (the HUD's order
timeline, pruning) and the CLI (``floor trace``). Every runtime role may insert spans, as a
writer."""
GROUPS = (
    WRITER_GROUP,
    READER_GROUP,
    REGISTRAR_GROUP,
    APPENDER_GROUP,
    ORDER_WRITER_GROUP,
    WEB_GROUP,
    SPAN_READER_GROUP,
)


@dataclass(frozen=True)
class RuntimeRole:
    process: str
    """``hotpath``, ``api``, ``worker``, ``cli``: names the setting FLOOR_<PROCESS>_DATABASE_URL."""
    groups: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"floor_{self.process}"

    @property
    def url_variable(self) -> str:
        return f"FLOOR_{self.process.upper()}_DATABASE_URL"


HOTPATH = RuntimeRole("hotpath", (WRITER_GROUP, READER_GROUP, APPENDER_GROUP, ORDER_WRITER_GROUP))
API = RuntimeRole("api", (WRITER_GROUP, READER_GROUP, WEB_GROUP, SPAN_READER_GROUP))
WORKER = RuntimeRole("worker", (WRITER_GROUP, READER_GROUP))
"""The Temporal worker and the bridge."""
CLI = RuntimeRole("cli", (WRITER_GROUP, READER_GROUP, REGISTRAR_GROUP, SPAN_READER_GROUP))
"""The ``floor`` commands an operator runs (keys, risk, ledger, provisioning at ``floor up``)."""
BRAIN = RuntimeRole("brain", (WRITER_GROUP, READER_GROUP))
"""The demo brain (``floor brain``): it reads the key registry, to verify the records it acts on,
and records security events; it is an upstream agent, so it may not append, write order rows,
change keys or run the traders' ceremonies."""
RUNTIME_ROLES: tuple[RuntimeRole, ...] = (HOTPATH, API, WORKER, CLI, BRAIN)

_ATTRS = "NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS NOREPLICATION INHERIT"
"""INHERIT: a runtime role has what its groups are granted, no more."""
SESSION_LIMITS = {"idle_in_transaction_session_timeout": "10s", "lock_timeout": "10s"}
"""Set on every runtime role: a session that opens a transaction and idles (holding the ledger's
head lock after an append, say) is ended, and no statement waits on a lock for longer. The hot
path's appends hold the head lock for about a millisecond. A session may change these for
itself; they guard against a stuck client, while a hostile one cannot take the head lock at all
(only ``floor_hotpath`` may append, and no runtime role may update the head)."""
_SCRAM_ITERATIONS = 4096


def new_password() -> str:
    return secrets.token_urlsafe(32)


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = _SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier Postgres stores for ``password`` (RFC 5802 / 7677)."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    salt64, stored64, server64 = (base64.b64encode(b).decode() for b in (salt, stored_key, server_key))
    return f"SCRAM-SHA-256${iterations}:{salt64}${stored64}:{server64}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def ensure_roles(superuser_dsn: str, passwords: dict[str, str]) -> list[str]:
    """Create (or correct) the owner, the groups and the runtime roles; set each login role's
    password from ``passwords`` (role name -> password). Return one line per role created."""
    done: list[str] = []
    conn = await asyncpg.connect(superuser_dsn)
    try:
        existing = {r["rolname"] for r in await conn.fetch("SELECT rolname FROM pg_roles")}
        for group in GROUPS:
            if group not in existing:
                await conn.execute(f"CREATE ROLE {group} NOLOGIN")
        for name in (OWNER, *(r.name for r in RUNTIME_ROLES)):
            verb = "ALTER" if name in existing else "CREATE"
            if verb == "CREATE":
                done.append(f"created database role {name}")
            await conn.execute(
                f"{verb} ROLE {name} LOGIN {_ATTRS} PASSWORD {_literal(scram_verifier(passwords[name]))}"
            )
        for role in RUNTIME_ROLES:
            for group in role.groups:
                await conn.execute(f"GRANT {group} TO {role.name}")
            for group in set(GROUPS) - set(role.groups):
                # A membership an older floor granted and this one does not (a no-op otherwise).
                await conn.execute(f"REVOKE {group} FROM {role.name}")
            for setting, value in SESSION_LIMITS.items():
                await conn.execute(f"ALTER ROLE {role.name} SET {setting} = {_literal(value)}")
    finally:
        await conn.close()
    return done


async def hand_over_schema(superuser_dsn: str) -> None:
    """Let the owner create objects in this database's ``public`` schema and give it every
    object the superuser made there (a database migrated before the floor had an owner).

    Nobody but the superuser may create temporary tables in it: a temporary table shadows a
    table of the same name for whoever made it (migration 0014 pins ``pg_temp`` last in the
    ledger functions' search path too)."""
    conn = await asyncpg.connect(superuser_dsn)
    try:
        await conn.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {OWNER}")
        await conn.execute(_HAND_OVER)
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute(f"REVOKE TEMPORARY ON DATABASE {_identifier(database)} FROM PUBLIC")
    finally:
        await conn.close()


# Tables (with their sequences and triggers), views and functions in public not yet owned by
# the owner; sequences owned by a table follow it.
_HAND_OVER = f"""
DO $$
DECLARE r record;
BEGIN
    FOR r IN
        SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p')
          AND pg_get_userbyid(c.relowner) <> '{OWNER}'
    LOOP
        EXECUTE format('ALTER %s public.%I OWNER TO {OWNER}',
                       CASE WHEN r.relkind = 'v' THEN 'VIEW'
                            WHEN r.relkind = 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
                       r.relname);
    END LOOP;
    FOR r IN
        SELECT p.oid::regprocedure AS proc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> '{OWNER}'
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO {OWNER}', r.proc);
    END LOOP;
END
$$;
"""
