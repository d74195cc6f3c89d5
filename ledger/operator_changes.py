"""An operator's signed change, applied by the database function that ledgers it (migration
0008: ``floor_key_change``, ``floor_risk_profile_set``)."""

from __future__ import annotations

from typing import Literal

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.append import LedgerRecord
from ledger.db import Db
from trading.signing import key_id, sign_bytes

NOT_OPERATOR_SQLSTATE = "FLK02"
"""What the functions raise when the signer is not an active operator key of the named operator."""


class OperatorNotAuthorised(PermissionError):
    """The signing key is not an active operator key of the named operator."""


async def apply_operator_change(
    db: Db,
    function: Literal["floor_key_change", "floor_risk_profile_set"],
    payload: bytes,
    operator_id: str,
    operator_key: Ed25519PrivateKey,
) -> LedgerRecord:
    """Sign ``payload`` with ``operator_key`` and hand it to ``function``: it checks the operator,
    appends the change to the ledger and applies it, in one transaction."""
    signer = key_id(operator_key)
    try:
        row = await db.fetchrow(
            f"SELECT seq, entry_hash, recorded_at FROM {function}($1, $2, $3, now())",
            payload,
            signer,
            sign_bytes(operator_key, payload),
        )
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == NOT_OPERATOR_SQLSTATE:
            raise OperatorNotAuthorised(
                f"key {signer} is not an operator key of {operator_id}, or was revoked: sign with an"
                " active operator key (`floor keys new NAME --role operator`)"
            ) from None
        raise
    return LedgerRecord(row["seq"], bytes(row["entry_hash"]), row["recorded_at"])
