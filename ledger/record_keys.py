"""The key registry as record verifiers see it (:class:`trading.record_signing.WriterKey`)."""

from __future__ import annotations

from ledger.db import Db
from ledger.key_trust import trusted_keys
from trading.record_signing import WriterKey


async def writer_keys(db: Db) -> dict[str, WriterKey]:
    """Every trusted key by key id (:mod:`ledger.key_trust`), revoked ones included (and flagged)."""
    return {
        k: WriterKey(k, rec.agent_id, rec.public_key, rec.role, rec.revoked)
        for k, rec in (await trusted_keys(db)).items()
    }
