"""Security events: refused or suspicious input at the floor's doors, append-only.

The same record goes to the ``security.events`` topic (live alerting) and to this table (the
audit trail); ``reason`` uses the sentry's dotted names (``sentry.bad_signature``, ...). The
event is :class:`trading.security_events.SecurityEvent`; its ``source_address`` is the
``remote_addr`` column, and its title and event id (when set) are kept in ``detail``.
"""

from __future__ import annotations

import json
from typing import Any

from ledger.db import Db
from observability.events import emit_security_event
from trading.security_events import RANK, SecurityEvent, Severity

_COLUMNS = (
    "id, ts, severity, reason, source, agent_id, key_id, command_id, signature_hash, remote_addr, detail"
)


async def record_security_event(db: Db, event: SecurityEvent) -> int:
    """Insert and return the event's id; the stored event is also emitted as an OpenTelemetry
    log record (:mod:`observability.events`)."""
    if not event.reason:
        raise ValueError("a security event needs a reason")
    severity = Severity(event.severity)
    row_id = int(
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
            event.source_address,
            json.dumps(event.stored_detail(), sort_keys=True, default=str),
        )
    )
    # Once stored: an insert that is retried emits one record, for the row that exists.
    emit_security_event(event, row_id=row_id)
    return row_id


async def recent_security_events(
    db: Db, *, limit: int = 100, min_severity: Severity = Severity.INFO
) -> list[SecurityEvent]:
    """Newest first, at or above ``min_severity``."""
    wanted = [s.value for s in Severity if RANK[s] >= RANK[Severity(min_severity)]]
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM security_events WHERE severity = ANY($1::text[]) ORDER BY id DESC LIMIT $2",
        wanted,
        limit,
    )
    return [_read(r) for r in rows]


async def security_events_after(db: Db, after_id: int, *, limit: int = 500) -> list[SecurityEvent]:
    """Events with an id above ``after_id``, oldest first, at most ``limit``."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM security_events WHERE id > $1 ORDER BY id LIMIT $2", after_id, limit
    )
    return [_read(r) for r in rows]


async def newest_security_event_id(db: Db) -> int:
    """The highest id in the table (0 when it is empty)."""
    return int(await db.fetchval("SELECT coalesce(max(id), 0) FROM security_events"))


def _read(row: Any) -> SecurityEvent:
    """The event as recorded: its title and event id back out of ``detail``."""
    detail = json.loads(row["detail"])
    title, event_id = detail.pop("title", None), detail.pop("event_id", None)
    return SecurityEvent(
        reason=row["reason"],
        severity=Severity(row["severity"]),
        source=row["source"],
        agent_id=row["agent_id"],
        key_id=row["key_id"],
        command_id=row["command_id"],
        signature_hash=row["signature_hash"],
        source_address=row["remote_addr"],
        detail=detail,
        title=title,
        event_id=event_id,
        ts=row["ts"],
        id=int(row["id"]),
    )


async def security_events_page(
    db: Db, *, first: int, before: int | None = None
) -> tuple[list[SecurityEvent], bool]:
    """Up to ``first`` events with ids below ``before`` (newest first), and whether more follow."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM security_events WHERE $1::bigint IS NULL OR id < $1"
        " ORDER BY id DESC LIMIT $2",
        before,
        first + 1,
    )
    return [_read(r) for r in rows[:first]], len(rows) > first
