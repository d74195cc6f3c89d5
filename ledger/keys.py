"""The key registry: Ed25519 public keys, the agent each belongs to, its role and the accounts
it may trade. Keys are never deleted or edited; revoking is the only change, and a revoked key
still verifies the ledger entries it signed before it was revoked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ledger.db import Db
from trading.sentry import ANY_ACCOUNT, RegisteredKey
from trading.sentry import ROLE_AGENT as ROLE_AGENT
from trading.sentry import ROLE_OPERATOR as ROLE_OPERATOR
from trading.sentry import ROLE_TRADER as ROLE_TRADER
from trading.signing import PUBLIC_KEY_BYTES, key_id

# The roles the sentry tells apart are defined with it (trading.sentry): ROLE_AGENT, trading
# agents (the Sniper too) signing enter / exit / cancel / iceberg commands; ROLE_OPERATOR, people
# and tools changing risk profiles; ROLE_TRADER, a human trader's key (agent ``trader.<name>``)
# the API signs with only after the trader's WebAuthn arming or step-up ceremony passed
# (cancels and the breaker's trip: after the passkey sign-in that opened the session).
ROLE_SERVICE = "service"
"""Floor services that sign on their own behalf."""
ROLES = frozenset({ROLE_AGENT, ROLE_OPERATOR, ROLE_SERVICE, ROLE_TRADER})


class KeyRegistryError(Exception):
    """Base of the registry's named errors."""


class KeyConflict(KeyRegistryError):
    """The agent already has an active key, or this public key is already registered."""


class UnknownAgent(KeyRegistryError):
    """No active key for this agent."""


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    agent_id: str
    public_key: bytes
    role: str
    accounts: frozenset[str]
    """Accounts the key may trade; ``*`` means all."""
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows(self, account: str) -> bool:
        return ANY_ACCOUNT in self.accounts or account in self.accounts

    def registered(self) -> RegisteredKey:
        """The sentry's view of this key."""
        return RegisteredKey(
            self.key_id, self.agent_id, self.public_key, self.accounts, self.revoked, self.role
        )


_COLUMNS = "key_id, agent_id, public_key, role, accounts, created_at, revoked_at"


def _record(row: asyncpg.Record) -> KeyRecord:
    return KeyRecord(
        key_id=row["key_id"],
        agent_id=row["agent_id"],
        public_key=bytes(row["public_key"]),
        role=row["role"],
        accounts=frozenset(row["accounts"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


def check_registration(public_key: bytes, role: str, accounts: list[str]) -> None:
    """What the registry refuses before asking the database, with a message saying why."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise KeyRegistryError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes, got {len(public_key)}")
    if role not in ROLES:
        raise KeyRegistryError(f"role must be one of {sorted(ROLES)}, got {role!r}")
    if not accounts or any(not a for a in accounts):
        raise KeyRegistryError("at least one account (or '*') is required")


async def register_key(db: Db, agent_id: str, public_key: bytes, role: str, accounts: list[str]) -> KeyRecord:
    """Register ``public_key`` (raw 32 bytes) as ``agent_id``'s active key, directly: only the
    schema owner or a superuser may (set-up and tests). The floor registers keys through
    :func:`ledger.key_changes.register_key_signed`, which ledgers the change."""
    check_registration(public_key, role, accounts)
    try:
        row = await db.fetchrow(
            f"INSERT INTO agent_keys (key_id, agent_id, public_key, role, accounts)"
            f" VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
            key_id(public_key),
            agent_id,
            public_key,
            role,
            sorted(set(accounts)),
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "agent_keys_one_active":
            raise KeyConflict(f"{agent_id} already has an active key; revoke it first") from None
        raise KeyConflict("this public key is already registered") from None
    except asyncpg.CheckViolationError as exc:
        raise KeyRegistryError(f"refused by the registry: {exc}") from None
    return _record(row)


_REVOKE = (
    # Under the ledger's head lock and stamped after taking it: an append either sees the
    # revocation (and is refused) or committed before it, so no accepted entry is ever recorded
    # after its key's revocation (what `floor ledger verify` checks).
    "WITH head AS (SELECT 1 FROM ledger_head WHERE id FOR UPDATE)"
    " UPDATE agent_keys SET revoked_at = clock_timestamp()"
    " WHERE {column} = $1 AND revoked_at IS NULL AND EXISTS (SELECT 1 FROM head)"
    f" RETURNING {_COLUMNS}"
)


async def revoke_agent(db: Db, agent_id: str) -> KeyRecord:
    """Revoke the agent's active key directly (owner or superuser only; the floor revokes
    through :func:`ledger.key_changes.revoke_key_signed`); raises :class:`UnknownAgent` if it
    has none."""
    row = await db.fetchrow(_REVOKE.format(column="agent_id"), agent_id)
    if row is None:
        raise UnknownAgent(f"no active key for {agent_id}")
    return _record(row)


async def revoke_key(db: Db, key: str) -> KeyRecord:
    row = await db.fetchrow(_REVOKE.format(column="key_id"), key)
    if row is None:
        raise UnknownAgent(f"no active key {key}")
    return _record(row)


async def get_key(db: Db, key: str) -> KeyRecord | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM agent_keys WHERE key_id = $1", key)
    return None if row is None else _record(row)


async def active_key_for(db: Db, agent_id: str) -> KeyRecord | None:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM agent_keys WHERE agent_id = $1 AND revoked_at IS NULL", agent_id
    )
    return None if row is None else _record(row)


async def load_keys(db: Db) -> dict[str, KeyRecord]:
    """Every key ever registered, by key id (revoked ones included, flagged)."""
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM agent_keys ORDER BY created_at")
    return {r["key_id"]: _record(r) for r in rows}


async def load_registered(db: Db) -> dict[str, RegisteredKey]:
    """The sentry's key map: key id -> :class:`trading.sentry.RegisteredKey`."""
    return {k: rec.registered() for k, rec in (await load_keys(db)).items()}
