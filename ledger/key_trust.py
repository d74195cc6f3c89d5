"""The key registry as the floor trusts it: rows whose registration entry verifies back to the
first operator key (:mod:`trading.key_chain`). A row that does not is left out, as if it were
not registered, and logged."""

from __future__ import annotations

import logging

from ledger.db import Db
from ledger.keys import KeyRecord, get_key, load_keys
from trading.key_chain import ChainKey, Registration, untrusted_keys

log = logging.getLogger(__name__)

_REGISTRATIONS = (
    "SELECT seq, signer, payload, signature, recorded_at FROM ledger_entries"
    " WHERE kind = 'key_register' AND authenticated AND decision = 'applied' ORDER BY seq"
)


async def _untrusted(db: Db, keys: dict[str, KeyRecord]) -> dict[str, str]:
    rows = await db.fetch(_REGISTRATIONS)
    registrations = [
        Registration(r["seq"], r["signer"], bytes(r["payload"]), bytes(r["signature"]), r["recorded_at"])
        for r in rows
    ]
    chain = {
        k: ChainKey(k, r.agent_id, r.public_key, r.role, r.accounts, r.created_at, r.revoked_at)
        for k, r in keys.items()
    }
    problems = untrusted_keys(chain, registrations)
    for key, problem in problems.items():
        log.error("key %s (%s) is not trusted: %s", key, keys[key].agent_id, problem)
    return problems


async def trusted_keys(db: Db) -> dict[str, KeyRecord]:
    """Every trusted key by key id (revoked ones included, flagged)."""
    keys = await load_keys(db)
    problems = await _untrusted(db, keys)
    return {k: rec for k, rec in keys.items() if k not in problems}


async def trusted_key(db: Db, key_id: str) -> KeyRecord | None:
    """``key_id``'s row if it is trusted, else None."""
    record = await get_key(db, key_id)
    if record is None:
        return None
    return (await trusted_keys(db)).get(key_id)
