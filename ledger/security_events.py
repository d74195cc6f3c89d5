"""Security events: refused or suspicious input at the floor's doors, append-only.

The same record goes to the ``security.events`` topic (live alerting) and to this table (the
audit trail); ``reason`` uses the sentry's dotted names (``sentry.bad_signature``, ...).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.db import Db


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2, Severity.CRITICAL: 3}


@dataclass(frozen=True)
class SecurityEvent:
    reason: str
    severity: Severity
    source: str
    """Which door: ``api`` or ``hotpath``."""
    agent_id: str | None = None
    key_id: str | None = None
    command_id: str | None = None
    signature_hash: str | None = None
    remote_addr: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    ts: datetime | None = None
    """Set by the database on insert; filled in on read."""
    id: int | None = None


_COLUMNS = (
    "id, ts, severity, reason, source, agent_id, key_id, command_id, signature_hash, remote_addr, detail"
)


async def record_security_event(db: Db, event: SecurityEvent) -> int:
    """Insert and return the event's id."""
    if not event.reason:
        raise ValueError("a security event needs a reason")
    severity = Severity(event.severity)
    return int(
        await db.fetchval(
            "INSERT INTO security_events"
            " (severity, reason, source, agent_id, key_id, command_id, signature_hash, remote_addr, detail)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            severity.value,
            event.reason,
            event.source,
            event.agent_id,
            event.key_id,
            event.command_id,
            event.signature_hash,
            event.remote_addr,
            json.dumps(dict(event.detail), sort_keys=True, default=str),
        )
    )


async def recent_security_events(
    db: Db, *, limit: int = 100, min_severity: Severity = Severity.INFO
) -> list[SecurityEvent]:
    """Newest first, at or above ``min_severity``."""
    wanted = [s.value for s in Severity if _RANK[s] >= _RANK[Severity(min_severity)]]
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM security_events WHERE severity = ANY($1::text[]) ORDER BY id DESC LIMIT $2",
        wanted,
        limit,
    )
    return [
        SecurityEvent(
            reason=r["reason"],
            severity=Severity(r["severity"]),
            source=r["source"],
            agent_id=r["agent_id"],
            key_id=r["key_id"],
            command_id=r["command_id"],
            signature_hash=r["signature_hash"],
            remote_addr=r["remote_addr"],
            detail=json.loads(r["detail"]),
            ts=r["ts"],
            id=int(r["id"]),
        )
        for r in rows
    ]
