"""The one security event in the ledger's table: what the security-event log records reads back
as it was recorded, and a row the ledger writes itself keeps exactly the detail it was given."""

from __future__ import annotations

import dataclasses
import json

import asyncpg

from ledger.security_events import recent_security_events, record_security_event
from observability.security import refusal_event
from trading.security_events import SecurityEvent, Severity


async def test_a_logged_event_reads_back_as_it_was_recorded(db: asyncpg.Connection) -> None:
    event = refusal_event(
        reason="sentry.replayed_nonce", severity="critical", source="hotpath",
        source_address="agent.commands[0]", agent_id="alpha", key_id="ab" * 16, command_id="cmd-1",
        signature_hash="cd" * 32, detail="seen before",
    )  # fmt: skip
    event_id = await record_security_event(db, event)
    [back] = await recent_security_events(db, limit=1)
    assert back.id == event_id and back.ts is not None
    assert dataclasses.replace(back, ts=event.ts, id=None) == event
    stored = json.loads(await db.fetchval("SELECT detail FROM security_events WHERE id = $1", event_id))
    assert stored == {"title": event.title, "event_id": event.event_id, "detail": "seen before"}


async def test_a_row_the_ledger_writes_itself_stores_only_its_detail(db: asyncpg.Connection) -> None:
    event = SecurityEvent("iceberg.unverified_entry", Severity.CRITICAL, "hotpath", detail={"seq": 7})
    event_id = await record_security_event(db, event)
    stored = json.loads(await db.fetchval("SELECT detail FROM security_events WHERE id = $1", event_id))
    assert stored == {"seq": 7}
    [back] = await recent_security_events(db, limit=1)
    assert (back.title, back.event_id, back.detail) == (None, None, {"seq": 7})
