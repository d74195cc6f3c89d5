"""Storage of the traders' WebAuthn state: passkeys (credentials), single-use challenges, web
sessions with their sign-in assertion, and arming grants (migrations 0016, 0018-0021).

Every check that must hold under concurrency is one statement: a challenge is taken by an
``UPDATE ... WHERE used_at IS NULL AND expires_at > now RETURNING`` (two answers to it cannot
both win), a sign count moves by compare-and-swap (``WHERE sign_count = old``). The API's role
stores a passkey and moves its count only through the SECURITY DEFINER functions of migration
0019 (``floor_register_passkey``, ``floor_advance_sign_count``) and 0021
(``floor_confirm_passkey_addition``, ``floor_add_session_passkey``). Times are passed in by the
caller's clock so a test can move it, except where a caller's clock would let the API's role
widen what it may do: registering a passkey and pruning challenges use the database's clock
(migration 0020).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import asyncpg

from ledger.db import Db
from ledger.secret_tokens import secret_hash

PURPOSE_REGISTRATION = "registration"
PURPOSE_LOGIN = "login"
PURPOSE_ARMING = "arming"
PURPOSE_STEP_UP = "step_up"
PURPOSE_PASSKEY_CONFIRM = "passkey_confirm"
"""An existing passkey's assertion confirming that another is about to be added (migration 0021)."""
PURPOSE_PASSKEY = "passkey"
"""Another passkey's registration, from a signed-in session, once confirmed (migration 0021)."""


@dataclass(frozen=True)
class StoredCredential:
    credential_id: bytes
    trader: str
    public_key: bytes
    sign_count: int
    transports: tuple[str, ...]
    backup_eligible: bool
    backed_up: bool
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class TakenChallenge:
    """A challenge just taken for answering (it can never be taken again)."""

    challenge_id: str
    purpose: str
    challenge: bytes
    enrolment_id: int | None
    session_id: str | None
    order_hash: str | None
    limits: dict[str, Any] | None


@dataclass(frozen=True)
class StoredGrant:
    grant_id: str
    trader: str
    session_id: str
    symbols: tuple[str, ...] | None
    max_quantity: int | None
    max_notional: Decimal | None
    credential_id: bytes
    sign_count: int
    authenticator_data_sha256: str
    client_data_sha256: str
    synced: bool
    expires_at: datetime


_CREDENTIAL_COLUMNS = (
    "credential_id, trader, public_key, sign_count, transports, backup_eligible, backed_up,"
    " created_at, last_used_at, revoked_at"
)


def _credential(row: asyncpg.Record) -> StoredCredential:
    return StoredCredential(
        credential_id=bytes(row["credential_id"]),
        trader=row["trader"],
        public_key=bytes(row["public_key"]),
        sign_count=row["sign_count"],
        transports=tuple(row["transports"]),
        backup_eligible=row["backup_eligible"],
        backed_up=row["backed_up"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


class NewPasskey(Protocol):
    """A passkey whose registration the caller verified (``api.webauthn_checks``)."""

    @property
    def credential_id(self) -> bytes: ...
    @property
    def public_key(self) -> bytes: ...
    @property
    def sign_count(self) -> int: ...
    @property
    def transports(self) -> list[str]: ...
    @property
    def backup_eligible(self) -> bool: ...
    @property
    def backed_up(self) -> bool: ...


async def enrol_credential(db: Db, *, enrolment_token: str, passkey: NewPasskey) -> StoredCredential | None:
    """Use the enrolment this token opens and store the passkey for its trader, in one statement
    (``floor_register_passkey``, by the token's hash and the database's clock): None (and nothing
    stored) when the enrolment was already used, has expired, or its trader is disabled."""
    return await _store_passkey(db, "floor_register_passkey", secret_hash(enrolment_token), passkey)


async def confirm_passkey_addition(
    db: Db, *, cookie: str, challenge_id: str, confirmed_by: bytes, ttl_s: int
) -> bool:
    """Record that the passkey ``confirmed_by`` confirmed the addition whose registration
    challenge is ``challenge_id`` (``floor_confirm_passkey_addition``, by the cookie's hash and
    the database's clock): False, and nothing stored, unless the session is live, the challenge
    is its own and open, and the passkey is its trader's and unrevoked."""
    return bool(
        await db.fetchval(
            "SELECT floor_confirm_passkey_addition($1, $2, $3, $4)",
            secret_hash(cookie),
            challenge_id,
            confirmed_by,
            ttl_s,
        )
    )


async def add_session_passkey(
    db: Db, *, cookie: str, challenge_id: str, passkey: NewPasskey
) -> StoredCredential | None:
    """Store another passkey for the trader whose session this cookie opens, in one statement
    (``floor_add_session_passkey``, by the cookie's hash and the database's clock): None (and
    nothing stored) unless the addition ``challenge_id`` of that session was confirmed, is
    unexpired and unused, its confirming passkey and the session's are unrevoked and its trader
    is enabled. The addition is used up."""
    return await _store_passkey(db, "floor_add_session_passkey", secret_hash(cookie), passkey, challenge_id)


async def passkey_confirmed_by(db: Db, credential_id: bytes) -> bytes | None:
    """The passkey that confirmed adding this one from a session (None: enrolled by a link)."""
    found = await db.fetchval(
        "SELECT confirmed_by FROM passkey_additions WHERE added_credential = $1", credential_id
    )
    return None if found is None else bytes(found)


async def _store_passkey(
    db: Db, function: str, secret: bytes, passkey: NewPasskey, *bound: str
) -> StoredCredential | None:
    arguments = ", ".join(f"${i}" for i in range(1, 8 + len(bound)))
    row = await db.fetchrow(
        f"SELECT {_CREDENTIAL_COLUMNS} FROM {function}({arguments})",
        secret,
        *bound,
        passkey.credential_id,
        passkey.public_key,
        passkey.sign_count,
        passkey.transports,
        passkey.backup_eligible,
        passkey.backed_up,
    )
    return None if row is None else _credential(row)


async def get_credential(db: Db, credential_id: bytes) -> StoredCredential | None:
    row = await db.fetchrow(
        f"SELECT {_CREDENTIAL_COLUMNS} FROM webauthn_credentials WHERE credential_id = $1", credential_id
    )
    return None if row is None else _credential(row)


async def trader_credentials(db: Db, trader: str, *, include_revoked: bool = False) -> list[StoredCredential]:
    """The trader's passkeys, oldest first; revoked ones only when asked."""
    rows = await db.fetch(
        f"SELECT {_CREDENTIAL_COLUMNS} FROM webauthn_credentials WHERE trader = $1"
        " AND ($2 OR revoked_at IS NULL) ORDER BY created_at",
        trader,
        include_revoked,
    )
    return [_credential(r) for r in rows]


async def swap_sign_count(
    db: Db, credential_id: bytes, old: int, new: int, backed_up: bool, now: datetime
) -> bool:
    """Store ``new`` only if the count is still ``old`` (compare-and-swap) and ``new`` moves it
    forward (or keeps it at 0), for a passkey not revoked (``floor_advance_sign_count``): False
    otherwise, e.g. when another assertion moved it first."""
    return bool(
        await db.fetchval(
            "SELECT floor_advance_sign_count($1, $2, $3, $4, $5)", credential_id, old, new, backed_up, now
        )
    )


async def add_challenge(
    db: Db,
    *,
    challenge_id: str,
    purpose: str,
    challenge: bytes,
    expires_at: datetime,
    now: datetime,
    enrolment_id: int | None = None,
    session_id: str | None = None,
    order_hash: str | None = None,
    limits: dict[str, Any] | None = None,
    open_limit: int | None = None,
) -> bool:
    """Store a challenge; with ``open_limit``, only while fewer than that many challenges of this
    purpose are open (unused, unexpired): False, and nothing stored, when that many are. The
    count and the insert are one statement; concurrent calls may overshoot by their number."""
    row = await db.fetchrow(
        "INSERT INTO webauthn_challenges (challenge_id, purpose, challenge, enrolment_id, session_id,"
        " order_hash, limits, created_at, expires_at)"
        " SELECT $1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9"
        " WHERE $10::integer IS NULL OR (SELECT count(*) FROM webauthn_challenges"
        " WHERE purpose = $2 AND used_at IS NULL AND expires_at > $8) < $10::integer"
        " RETURNING challenge_id",
        challenge_id,
        purpose,
        challenge,
        enrolment_id,
        session_id,
        order_hash,
        None if limits is None else json.dumps(limits),
        now,
        expires_at,
        open_limit,
    )
    return row is not None


async def prune_challenges(db: Db, limit: int) -> int:
    """Delete at most ``limit`` challenges expired by the database's clock
    (``floor_prune_challenges``: a caller's clock must not expire live ones); how many went."""
    return int(await db.fetchval("SELECT floor_prune_challenges($1)", limit))


class ChallengeExpired(Exception):
    """The challenge exists, unused, but its time ran out."""


async def take_challenge(
    db: Db, challenge_id: str, purpose: str, now: datetime, *, session_id: str | None = None
) -> TakenChallenge | None:
    """Take the challenge for answering, once: None when there is no such unused challenge for
    this purpose (and session); raises :class:`ChallengeExpired` when it is there but expired."""
    row = await db.fetchrow(
        "UPDATE webauthn_challenges SET used_at = $3 WHERE challenge_id = $1 AND purpose = $2"
        " AND used_at IS NULL AND expires_at > $3 AND session_id IS NOT DISTINCT FROM $4"
        " RETURNING challenge_id, purpose, challenge, enrolment_id, session_id, order_hash, limits",
        challenge_id,
        purpose,
        now,
        session_id,
    )
    if row is None:
        expired = await db.fetchval(
            "SELECT true FROM webauthn_challenges WHERE challenge_id = $1 AND purpose = $2"
            " AND used_at IS NULL AND expires_at <= $3 AND session_id IS NOT DISTINCT FROM $4",
            challenge_id,
            purpose,
            now,
            session_id,
        )
        if expired:
            raise ChallengeExpired(challenge_id)
        return None
    return TakenChallenge(
        challenge_id=row["challenge_id"],
        purpose=row["purpose"],
        challenge=bytes(row["challenge"]),
        enrolment_id=row["enrolment_id"],
        session_id=row["session_id"],
        order_hash=row["order_hash"],
        limits=None if row["limits"] is None else json.loads(row["limits"]),
    )


@dataclass(frozen=True)
class SignIn:
    """The assertion that opened a web session (migration 0018): what a trader's cancels and
    the breaker's trip record as their authorization."""

    trader: str
    credential_id: bytes
    sign_count: int
    authenticator_data_sha256: str
    client_data_sha256: str
    synced: bool


async def open_session(
    db: Db,
    *,
    session_id: str,
    cookie: str,
    sign_in: SignIn,
    now: datetime,
    expires_at: datetime,
) -> bool:
    """Open the session (``floor_open_session``): False, and nothing stored, when the passkey
    is not the trader's, is revoked, or the trader is disabled (a revocation won the race)."""
    return bool(
        await db.fetchval(
            "SELECT floor_open_session($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            session_id,
            secret_hash(cookie),
            sign_in.trader,
            sign_in.credential_id,
            now,
            expires_at,
            sign_in.sign_count,
            sign_in.authenticator_data_sha256,
            sign_in.client_data_sha256,
            sign_in.synced,
        )
    )


async def session_sign_in(db: Db, session_id: str, now: datetime) -> SignIn | None:
    """The sign-in assertion of this session while it lives; None once it is revoked or
    expired, or when it was opened before the floor kept that evidence."""
    row = await db.fetchrow(
        "SELECT trader, credential_id, sign_count, authenticator_data_sha256, client_data_sha256, synced"
        " FROM web_sessions WHERE session_id = $1 AND revoked_at IS NULL AND expires_at > $2"
        " AND sign_count IS NOT NULL",
        session_id,
        now,
    )
    if row is None:
        return None
    return SignIn(
        trader=row["trader"],
        credential_id=bytes(row["credential_id"]),
        sign_count=row["sign_count"],
        authenticator_data_sha256=row["authenticator_data_sha256"],
        client_data_sha256=row["client_data_sha256"],
        synced=row["synced"],
    )


async def session_for_cookie(db: Db, cookie: str, now: datetime) -> tuple[str, str] | None:
    """(session id, trader) of the live session this cookie opens, or None."""
    row = await db.fetchrow(
        "SELECT session_id, trader FROM floor_web_session($1, $2)", secret_hash(cookie), now
    )
    return None if row is None else (row["session_id"], row["trader"])


async def session_alive(db: Db, session_id: str, now: datetime) -> bool:
    return bool(
        await db.fetchval(
            "SELECT true FROM web_sessions WHERE session_id = $1 AND revoked_at IS NULL AND expires_at > $2",
            session_id,
            now,
        )
    )


async def revoke_session(db: Db, session_id: str, now: datetime) -> None:
    """Ends the session and every grant it holds."""
    await db.execute(
        "UPDATE web_sessions SET revoked_at = $2 WHERE session_id = $1 AND revoked_at IS NULL",
        session_id,
        now,
    )
    await revoke_grants(db, session_id, now)


async def add_grant(db: Db, grant: StoredGrant, now: datetime) -> bool:
    """Store the grant (``floor_add_grant``): False, and nothing stored, when its passkey is not
    the trader's, is revoked, the trader is disabled, or the session is not the trader's or is
    revoked (a revocation won the race)."""
    return bool(
        await db.fetchval(
            "SELECT floor_add_grant($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            grant.grant_id,
            grant.trader,
            grant.session_id,
            None if grant.symbols is None else list(grant.symbols),
            grant.max_quantity,
            grant.max_notional,
            grant.credential_id,
            grant.sign_count,
            grant.authenticator_data_sha256,
            grant.client_data_sha256,
            grant.synced,
            now,
            grant.expires_at,
        )
    )


async def revoke_grants(db: Db, session_id: str, now: datetime) -> None:
    await db.execute(
        "UPDATE arming_grants SET revoked_at = $2 WHERE session_id = $1 AND revoked_at IS NULL",
        session_id,
        now,
    )


async def live_grant(db: Db, session_id: str, now: datetime) -> StoredGrant | None:
    """The session's newest grant, if neither it nor the session is revoked or expired, the
    passkey that armed it is not revoked (even after the grant was made) and its trader is not
    disabled."""
    row = await db.fetchrow(
        "SELECT g.* FROM arming_grants g JOIN web_sessions s USING (session_id)"
        " JOIN webauthn_credentials c ON c.credential_id = g.credential_id AND c.trader = g.trader"
        " JOIN traders t ON t.name = g.trader"
        " WHERE g.session_id = $1 AND g.revoked_at IS NULL AND g.expires_at > $2"
        " AND s.revoked_at IS NULL AND s.expires_at > $2 AND c.revoked_at IS NULL"
        " AND t.disabled_at IS NULL ORDER BY g.created_at DESC LIMIT 1",
        session_id,
        now,
    )
    if row is None:
        return None
    return StoredGrant(
        grant_id=row["grant_id"],
        trader=row["trader"],
        session_id=row["session_id"],
        symbols=None if row["symbols"] is None else tuple(row["symbols"]),
        max_quantity=row["max_quantity"],
        max_notional=row["max_notional"],
        credential_id=bytes(row["credential_id"]),
        sign_count=row["sign_count"],
        authenticator_data_sha256=row["authenticator_data_sha256"],
        client_data_sha256=row["client_data_sha256"],
        synced=row["synced"],
        expires_at=row["expires_at"],
    )


async def backup_eligibility(db: Db, credential_ids: Sequence[bytes]) -> dict[bytes, bool]:
    """Each known credential's backup-eligible flag (fixed when it was made: a passkey that may
    be synced to other devices), for showing which orders a synced passkey authorised."""
    rows = await db.fetch(
        "SELECT credential_id, backup_eligible FROM webauthn_credentials"
        " WHERE credential_id = ANY($1::bytea[])",
        list(credential_ids),
    )
    return {bytes(r["credential_id"]): r["backup_eligible"] for r in rows}
