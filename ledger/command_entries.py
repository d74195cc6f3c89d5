"""Reading one command's authenticated ledger entry back: what the floor decided, and the
signed bytes it decided on (to start work from the ledger, never from a copy on Kafka)."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.db import Db


@dataclass(frozen=True)
class CommandEntry:
    seq: int
    kind: str
    account: str | None
    agent_id: str
    command_id: str
    payload: bytes
    """The canonical command bytes the signature covers."""
    signer: str
    scheme: str
    signature: bytes
    decision: str
    """``accepted`` or ``rejected``."""


async def command_entry(db: Db, command_id: str) -> CommandEntry | None:
    """The authenticated entry of ``command_id`` (the ledger holds at most one), or None."""
    row = await db.fetchrow(
        "SELECT seq, kind, account, agent_id, command_id, payload, signer, scheme, signature, decision"
        " FROM ledger_entries WHERE command_id = $1 AND authenticated",
        command_id,
    )
    if row is None:
        return None
    return CommandEntry(
        seq=row["seq"],
        kind=row["kind"],
        account=row["account"],
        agent_id=row["agent_id"],
        command_id=row["command_id"],
        payload=bytes(row["payload"]),
        signer=row["signer"],
        scheme=row["scheme"],
        signature=bytes(row["signature"]),
        decision=row["decision"],
    )
