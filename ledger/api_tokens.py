"""API tokens: what programs present as ``Authorization: Bearer``. Issued and revoked by the
operator (`floor api-tokens`); the API only looks a presented token up (``floor_api_token``,
migration 0016) and never reads the stored hashes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ledger.db import Db
from ledger.secret_tokens import new_secret, secret_hash

ROLE_READ = "read"
"""Queries and subscriptions."""
ROLE_OPS = "ops"
"""Also the security events."""
TOKEN_ROLES = frozenset({ROLE_READ, ROLE_OPS})


class ApiTokenError(Exception):
    """A refused issue or revocation; the message says what to do."""


@dataclass(frozen=True)
class ApiTokenRecord:
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


async def issue_token(db: Db, name: str, role: str) -> tuple[ApiTokenRecord, str]:
    """A new token for ``name``; the token itself is returned once and never stored."""
    if role not in TOKEN_ROLES:
        raise ApiTokenError(f"role must be one of {sorted(TOKEN_ROLES)}, got {role!r}")
    token = new_secret()
    try:
        row = await db.fetchrow(
            "INSERT INTO api_tokens (name, token_hash, role) VALUES ($1, $2, $3)"
            " RETURNING name, role, created_at, revoked_at",
            name,
            secret_hash(token),
            role,
        )
    except asyncpg.UniqueViolationError:
        raise ApiTokenError(f"{name} already has an active token; revoke it first") from None
    except asyncpg.CheckViolationError:
        raise ApiTokenError(
            f"{name!r} is not a token name: letters, digits, '.', '_' and '-', at most 64"
        ) from None
    return _record(row), token


async def revoke_token(db: Db, name: str) -> ApiTokenRecord:
    row = await db.fetchrow(
        "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL"
        " RETURNING name, role, created_at, revoked_at",
        name,
    )
    if row is None:
        raise ApiTokenError(f"no active token named {name}; `floor api-tokens list` shows them")
    return _record(row)


async def list_tokens(db: Db) -> list[ApiTokenRecord]:
    rows = await db.fetch("SELECT name, role, created_at, revoked_at FROM api_tokens ORDER BY token_id")
    return [_record(r) for r in rows]


async def token_role(db: Db, token: str) -> tuple[str, str] | None:
    """(name, role) of the active token ``token``, or None."""
    row = await db.fetchrow("SELECT name, role FROM floor_api_token($1)", secret_hash(token))
    return None if row is None else (row["name"], row["role"])


def _record(row: asyncpg.Record) -> ApiTokenRecord:
    return ApiTokenRecord(row["name"], row["role"], row["created_at"], row["revoked_at"])
