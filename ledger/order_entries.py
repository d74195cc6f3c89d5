"""Orders' ledger entries, many at once, as the API shows them: where each sits in the chain,
who signed it, what the floor decided, and (for an order a trader authorised with WebAuthn) the
``authorization`` its signed command carries."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.db import Db


@dataclass(frozen=True)
class OrderEntry:
    seq: int
    entry_hash: str
    """Hex SHA-256: the entry's link in the hash chain."""
    kind: str
    command_id: str
    account: str | None
    agent_id: str | None
    signer: str
    decision: str
    reason: str | None
    recorded_at: datetime
    authenticated: bool
    payload: bytes

    @property
    def command(self) -> Mapping[str, Any] | None:
        """The signed command (None if the payload is not a JSON object)."""
        try:
            data = json.loads(self.payload)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    @property
    def authorization(self) -> Mapping[str, Any] | None:
        command = self.command
        found = None if command is None else command.get("authorization")
        return found if isinstance(found, dict) else None


async def entries_of(db: Db, command_ids: Sequence[str]) -> dict[str, OrderEntry]:
    """Each command's entry: the authenticated one (the ledger holds at most one), else the
    first refusal it recorded."""
    rows = await db.fetch(
        "SELECT DISTINCT ON (command_id) seq, entry_hash, kind, command_id, account, agent_id, signer,"
        " decision, reason, recorded_at, authenticated, payload FROM ledger_entries"
        " WHERE command_id = ANY($1::text[]) ORDER BY command_id, authenticated DESC, seq",
        list(command_ids),
    )
    return {
        r["command_id"]: OrderEntry(
            seq=int(r["seq"]),
            entry_hash=bytes(r["entry_hash"]).hex(),
            kind=r["kind"],
            command_id=r["command_id"],
            account=r["account"],
            agent_id=r["agent_id"],
            signer=r["signer"],
            decision=r["decision"],
            reason=r["reason"],
            recorded_at=r["recorded_at"],
            authenticated=r["authenticated"],
            payload=bytes(r["payload"]),
        )
        for r in rows
    }
