"""Taking a trader's access away (`floor traders revoke-passkey`, `sign-out`, `disable`).

Each change is one statement, so nothing is half done: revoking a passkey also ends the web
sessions it opened and every arming grant it or those sessions gave; signing a trader out ends
all its sessions and their grants; disabling a trader does all of that for every passkey and
marks the trader disabled, which refuses its enrolment links (``floor_register_passkey``) and
its sessions (:func:`api.principals.trader_principal`). The trader's signing key is revoked by
the caller through the operator-signed revocation (:func:`ledger.key_changes.revoke_key_signed`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import asyncpg

from ledger.db import Db
from ledger.traders import TraderError
from ledger.webauthn_store import StoredCredential, trader_credentials


@dataclass(frozen=True)
class Ended:
    """What a revocation ended (0s: there was nothing left to end)."""

    passkeys: int
    sessions: int
    grants: int


def credential_text(credential_id: bytes) -> str:
    """A credential id as the floor shows it: base64url without padding (as in WebAuthn JSON)."""
    return base64.urlsafe_b64encode(credential_id).rstrip(b"=").decode("ascii")


async def passkeys(db: Db, trader: str) -> list[StoredCredential]:
    """Every passkey the trader registered, revoked ones included, oldest first."""
    return await trader_credentials(db, trader, include_revoked=True)


def match_passkey(credentials: list[StoredCredential], prefix: str) -> StoredCredential:
    """The one live passkey whose shown id starts with ``prefix``."""
    if not prefix:
        raise TraderError("name the passkey by the first characters of its id (`floor traders passkeys`)")
    found = [c for c in credentials if credential_text(c.credential_id).startswith(prefix)]
    live = [c for c in found if c.revoked_at is None]
    if len(live) == 1:
        return live[0]
    if len(live) > 1:
        raise TraderError(f"{len(live)} passkeys start with {prefix!r}: give more of the id")
    if found:
        raise TraderError(f"the passkey {credential_text(found[0].credential_id)} is revoked already")
    raise TraderError(
        f"no passkey of this trader starts with {prefix!r}; `floor traders passkeys` lists them"
    )


def _end_sessions_and_grants(*counted: str) -> str:
    """The statements' shared tail: end the sessions the ``sessions`` CTE picked and every grant
    given by those sessions or by the ``passkeys`` CTE's passkeys; count what ended (and the
    ``counted`` CTEs)."""
    extra = "".join(f"(SELECT count(*) FROM {name}) AS {name}, " for name in counted)
    return (
        ", ended AS (UPDATE web_sessions SET revoked_at = now()"
        " WHERE session_id IN (SELECT session_id FROM sessions) AND revoked_at IS NULL"
        " RETURNING session_id),"
        " grants AS (UPDATE arming_grants SET revoked_at = now() WHERE revoked_at IS NULL"
        " AND (session_id IN (SELECT session_id FROM sessions)"
        " OR credential_id IN (SELECT credential_id FROM passkeys)) RETURNING grant_id)"
        f" SELECT {extra}(SELECT count(*) FROM passkeys) AS passkeys,"
        " (SELECT count(*) FROM ended) AS sessions, (SELECT count(*) FROM grants) AS grants"
    )


def _ended(row: asyncpg.Record) -> Ended:
    return Ended(int(row["passkeys"]), int(row["sessions"]), int(row["grants"]))


async def revoke_passkey(db: Db, trader: str, credential_id: bytes) -> Ended:
    """Revoke one passkey of ``trader``: it can no longer sign in, arm or step up, and the
    sessions it opened and the grants it gave end now."""
    row = await db.fetchrow(
        "WITH passkeys AS (UPDATE webauthn_credentials SET revoked_at = now()"
        " WHERE credential_id = $1 AND trader = $2 AND revoked_at IS NULL RETURNING credential_id),"
        " sessions AS (SELECT session_id FROM web_sessions"
        " WHERE credential_id IN (SELECT credential_id FROM passkeys))" + _end_sessions_and_grants(),
        credential_id,
        trader,
    )
    return _ended(row)


async def sign_out(db: Db, trader: str) -> Ended:
    """End every session of ``trader`` and its grants (its passkeys stay: it may sign in again)."""
    row = await db.fetchrow(
        "WITH passkeys AS (SELECT NULL::bytea AS credential_id WHERE false),"
        " sessions AS (SELECT session_id FROM web_sessions WHERE trader = $1 AND revoked_at IS NULL)"
        + _end_sessions_and_grants(),
        trader,
    )
    return _ended(row)


async def disable_trader(db: Db, trader: str) -> Ended | None:
    """Disable ``trader``: revoke every passkey, end every session and grant, refuse its enrolment
    links from now on. None when there is no such trader. Disabling twice ends what is left."""
    row = await db.fetchrow(
        "WITH disabled AS (UPDATE traders SET disabled_at = coalesce(disabled_at, now())"
        " WHERE name = $1 RETURNING name),"
        " passkeys AS (UPDATE webauthn_credentials SET revoked_at = now()"
        " WHERE trader IN (SELECT name FROM disabled) AND revoked_at IS NULL RETURNING credential_id),"
        " sessions AS (SELECT session_id FROM web_sessions"
        " WHERE trader IN (SELECT name FROM disabled) AND revoked_at IS NULL)"
        + _end_sessions_and_grants("disabled"),
        trader,
    )
    return _ended(row) if row["disabled"] else None
