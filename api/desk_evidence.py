"""The WebAuthn evidence a trader's risk-reducing command carries when the session holds no
live arming grant: the newest arming assertion the trader made in this session.

Cancels and the breaker's trip need no arming (taking risk off must never wait for a
fingerprint), but a trader's key signs nothing without an authorization naming an assertion
(:func:`trading.sentry.trader_problem`). The session's last arming assertion, expired or
disarmed, is a real one by this trader in this session: recorded, it says who cancelled; it
authorises no order."""

from __future__ import annotations

from webauthn.helpers import bytes_to_base64url

from api.webauthn_results import AssertionProof
from ledger.db import Db


async def session_assertion(db: Db, session_id: str) -> AssertionProof | None:
    row = await db.fetchrow(
        "SELECT trader, credential_id, sign_count, authenticator_data_sha256, client_data_sha256, synced"
        " FROM arming_grants WHERE session_id = $1 ORDER BY created_at DESC LIMIT 1",
        session_id,
    )
    if row is None:
        return None
    return AssertionProof(
        trader=row["trader"],
        credential_id=bytes_to_base64url(bytes(row["credential_id"])),
        sign_count=row["sign_count"],
        authenticator_data_sha256=row["authenticator_data_sha256"],
        client_data_sha256=row["client_data_sha256"],
        synced=row["synced"],
    )
