"""Ops events: what ops should know about the floor's own running (a restart, a broker
disconnect, an order the venue ended, a command re-sent), append-only in ``ops_events``.

Every process writes them through :func:`record_ops_event`, which also emits the stored row as
an OpenTelemetry log record (:mod:`observability.events`; the schema is ``docs/events.md``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ledger.db import Db
from observability.events import emit_ops_event


async def record_ops_event(db: Db, source: str, kind: str, severity: str, detail: Mapping[str, Any]) -> int:
    """Insert the event and return its id; emitted as a log record once the row is written."""
    row_id = int(
        await db.fetchval(
            "INSERT INTO ops_events (source, kind, severity, detail)"
            " VALUES ($1, $2, $3, $4::jsonb) RETURNING id",
            source,
            kind,
            severity,
            json.dumps(dict(detail), default=str),
        )
    )
    emit_ops_event(source, kind, severity, detail, row_id=row_id)
    return row_id
