"""The door's access to the ledger: the key registry, the replay indexes, security events."""

from __future__ import annotations

from ledger import security_events
from ledger.db import Db
from ledger.keys import get_key
from trading import sentry
from trading.security_events import SecurityEvent
from trading.sentry import RegisteredKey


class LedgerAccess:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def registered_key(self, key_id: str) -> RegisteredKey | None:
        record = await get_key(self._db, key_id)
        return None if record is None else record.registered()

    async def already_ledgered(self, agent_id: str, nonce: str, signature_hash: str) -> str | None:
        row = await self._db.fetchrow(
            "SELECT signature_hash = $1 AS same_signature FROM ledger_entries"
            " WHERE authenticated AND (signature_hash = $1 OR (agent_id = $2 AND nonce = $3)) LIMIT 1",
            signature_hash,
            agent_id,
            nonce,
        )
        if row is None:
            return None
        return sentry.REPLAYED_SIGNATURE if row["same_signature"] else sentry.REPLAYED_NONCE

    async def record_security_event(self, event: SecurityEvent) -> None:
        await security_events.record_security_event(self._db, event)
