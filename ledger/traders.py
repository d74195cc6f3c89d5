"""Traders (the humans at the HUD) and their one-time enrolment links.

A trader has a name, the accounts it may trade (``*``: all), a role (``trader``, the role of
its key too, or ``ops``, an API token's role, which also sees the security events) and whether
every order needs its own WebAuthn ceremony.
Its signing key is an ordinary registered key of agent ``trader.<name>``
(:data:`ledger.keys.ROLE_TRADER`). An enrolment is a random token (stored as its hash) that
lets whoever holds the link register a passkey for the trader, once, before it expires.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

# A trader's role: its key's role, or ops (which sees what an ops token sees).
from ledger.api_tokens import ROLE_OPS as ROLE_OPS
from ledger.db import Db
from ledger.keys import ROLE_TRADER as ROLE_TRADER
from ledger.secret_tokens import new_secret, secret_hash
from trading.authorization import trader_agent_id


class TraderError(Exception):
    """A refused change; the message says what to do."""


@dataclass(frozen=True)
class TraderRecord:
    name: str
    role: str
    accounts: frozenset[str]
    step_up_every_order: bool
    user_handle: bytes
    created_at: datetime
    disabled_at: datetime | None = None
    """Set by ``floor traders disable``: it may no longer enrol, sign in or trade."""

    @property
    def agent_id(self) -> str:
        return trader_agent_id(self.name)


@dataclass(frozen=True)
class Enrolment:
    enrolment_id: int
    trader: str
    expires_at: datetime
    used_at: datetime | None


_COLUMNS = "name, role, accounts, step_up_every_order, user_handle, created_at, disabled_at"


def _record(row: asyncpg.Record) -> TraderRecord:
    return TraderRecord(
        name=row["name"],
        role=row["role"],
        accounts=frozenset(row["accounts"]),
        step_up_every_order=row["step_up_every_order"],
        user_handle=bytes(row["user_handle"]),
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
    )


TRADER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
"""What migration 0016 accepts as a trader's name."""


def check_trader(name: str, accounts: list[str]) -> None:
    """What the database would refuse, refused before anything is made (a key, say)."""
    if not TRADER_NAME.fullmatch(name):
        raise TraderError(
            f"{name!r} is not a trader name: lower-case letters, digits, '_' and '-', at most 64"
        )
    if not accounts or any(not a for a in accounts):
        raise TraderError("at least one account (or '*') is required")


async def add_trader(
    db: Db, name: str, accounts: list[str], *, ops: bool = False, step_up_every_order: bool = False
) -> TraderRecord:
    check_trader(name, accounts)
    try:
        row = await db.fetchrow(
            f"INSERT INTO traders (name, user_handle, role, accounts, step_up_every_order)"
            f" VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
            name,
            secrets.token_bytes(32),
            ROLE_OPS if ops else ROLE_TRADER,
            sorted(set(accounts)),
            step_up_every_order,
        )
    except asyncpg.UniqueViolationError:
        raise TraderError(
            f"trader {name} exists; `floor traders enrol {name}` makes a new enrolment link"
        ) from None
    return _record(row)


async def get_trader(db: Db, name: str) -> TraderRecord | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM traders WHERE name = $1", name)
    return None if row is None else _record(row)


async def list_traders(db: Db) -> list[tuple[TraderRecord, int]]:
    """Every trader with how many passkeys it has registered (and not had revoked)."""
    rows = await db.fetch(
        f"SELECT {', '.join('t.' + c.strip() for c in _COLUMNS.split(','))},"
        " (SELECT count(*) FROM webauthn_credentials c WHERE c.trader = t.name"
        " AND c.revoked_at IS NULL) AS passkeys"
        " FROM traders t ORDER BY t.name"
    )
    return [(_record(r), int(r["passkeys"])) for r in rows]


async def new_enrolment(db: Db, trader: str, ttl: timedelta) -> tuple[str, datetime]:
    """A one-time enrolment token for ``trader`` (returned once, stored as its hash) and when it
    expires."""
    token = new_secret()
    expires_at = await db.fetchval(
        "INSERT INTO trader_enrolments (trader, token_hash, expires_at)"
        " VALUES ($1, $2, now() + $3::interval) RETURNING expires_at",
        trader,
        secret_hash(token),
        ttl,
    )
    return token, expires_at


async def find_enrolment(db: Db, token: str) -> Enrolment | None:
    """The enrolment ``token`` opens, used or expired included (the caller says which)."""
    row = await db.fetchrow(
        "SELECT enrolment_id, trader, expires_at, used_at FROM floor_enrolment($1)", secret_hash(token)
    )
    if row is None:
        return None
    return Enrolment(row["enrolment_id"], row["trader"], row["expires_at"], row["used_at"])
