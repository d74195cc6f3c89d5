"""The floor's security and ops events as OpenTelemetry log records: one schema for both.

A **security event** is refused or suspicious input at a door (:class:`~trading.security_events.
SecurityEvent`, table ``security_events``); an **ops event** is something about the floor's own
running that ops should know (a restart, a broker disconnect, an order the venue ended, a command
the outbox re-sent; table ``ops_events``). Each stored row is also emitted once as a log record,
after the row is written (a write that is retried emits once, when it succeeds), through the
process's logger provider (:mod:`observability.logs`). The supervisor's events, whose table may
be down, are emitted when they happen.

The record (field by field, with the severity levels, in ``docs/events.md``; a test holds the two
to each other):

- ``event_name``: the event's dotted name (a security event's ``reason``, an ops event's ``kind``),
  also the attribute ``floor.event.name``;
- ``timestamp``: when it happened; ``severity_number`` / ``severity_text``: :data:`SEVERITY_NUMBER`
  and the floor's own level (``info``, ``warning``, ``error``, ``critical``);
- ``body``: one line for a person;
- the trace and span that were current when it was emitted (a refusal at the door belongs to the
  request's trace);
- attributes: :data:`COMMON_ATTRIBUTES` on every record, :data:`SECURITY_ATTRIBUTES` on security
  events when known, ``floor.detail.<key>`` for each entry of the event's detail (strings,
  numbers and booleans as they are; lists of one such type as lists; other lists and maps as
  JSON; anything else, a Decimal say, as its text; empty values left out).
  An ops event whose detail names a ``command_id`` also carries it as ``floor.command_id``, the
  attribute spans carry, so a command's events and its trace are found by one id.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from opentelemetry._logs import SeverityNumber
from opentelemetry.util.types import AttributeValue

from observability.logs import events_logger
from trading.security_events import SecurityEvent, Severity

log = logging.getLogger(__name__)

SECURITY = "security"
OPS = "ops"

SEVERITY_NUMBER: Mapping[Severity, SeverityNumber] = {
    Severity.INFO: SeverityNumber.INFO,
    Severity.WARNING: SeverityNumber.WARN,
    Severity.ERROR: SeverityNumber.ERROR,
    Severity.CRITICAL: SeverityNumber.FATAL,
}
"""The floor's levels on OpenTelemetry's scale (INFO 9, WARN 13, ERROR 17, FATAL 21)."""

NAME = "floor.event.name"
DOMAIN = "floor.event.domain"
SEVERITY = "floor.event.severity"
SOURCE = "floor.event.source"
ROW_ID = "floor.event.row_id"
EVENT_ID = "floor.event.id"
COMMAND_ID = "floor.command_id"
TITLE = "floor.security.title"
AGENT_ID = "floor.security.agent_id"
KEY_ID = "floor.security.key_id"
SIGNATURE_HASH = "floor.security.signature_hash"
SOURCE_ADDRESS = "floor.security.source_address"
DETAIL_PREFIX = "floor.detail."

COMMON_ATTRIBUTES = (NAME, DOMAIN, SEVERITY, SOURCE, ROW_ID, EVENT_ID, COMMAND_ID)
"""On every record (``floor.event.row_id``, ``floor.event.id`` and ``floor.command_id`` when known)."""
SECURITY_ATTRIBUTES = (TITLE, AGENT_ID, KEY_ID, SIGNATURE_HASH, SOURCE_ADDRESS)
"""On security events, when known."""
DETAIL_ENTRIES_LIMIT = 32
"""Detail entries kept as attributes; the floor writes fewer than ten. More are counted in
``floor.detail.dropped``."""


def emit_security_event(event: SecurityEvent, *, row_id: int | None = None) -> None:
    """Emit a security event (as stored: call it with the row's id once the row is written)."""
    attributes: dict[str, AttributeValue] = {}
    for name, value in (
        (TITLE, event.title),
        (AGENT_ID, event.agent_id),
        (KEY_ID, event.key_id),
        (SIGNATURE_HASH, event.signature_hash),
        (SOURCE_ADDRESS, event.source_address),
    ):
        if value is not None:
            attributes[name] = value
    who = event.agent_id or event.key_id or "unknown signer"
    where = event.source_address or "unknown address"
    body = f"{event.title or 'Security event'}: {event.reason} from {where} via {event.source} ({who})"
    _emit(
        domain=SECURITY,
        name=event.reason,
        severity=event.severity,
        source=event.source,
        at=event.ts,
        body=body,
        event_id=event.event_id,
        row_id=row_id,
        command_id=event.command_id,
        detail=event.detail,
        extra=attributes,
    )


def emit_ops_event(
    source: str,
    kind: str,
    severity: str,
    detail: Mapping[str, Any],
    *,
    row_id: int | None = None,
    at: datetime | float | None = None,
) -> None:
    """Emit an ops event (``severity`` is one of the table's levels; ``at`` defaults to now)."""
    command_id = detail.get("command_id")
    _emit(
        domain=OPS,
        name=kind,
        severity=severity,
        source=source,
        at=at,
        body=f"{kind} ({severity}) from {source}",
        event_id=None,
        row_id=row_id,
        command_id=command_id if isinstance(command_id, str) else None,
        detail=detail,
        extra={},
    )


def _emit(
    *,
    domain: str,
    name: str,
    severity: str,
    source: str,
    at: datetime | float | None,
    body: str,
    event_id: str | None,
    row_id: int | None,
    command_id: str | None,
    detail: Mapping[str, Any],
    extra: Mapping[str, AttributeValue],
) -> None:
    try:
        level = Severity(severity)
        attributes: dict[str, AttributeValue] = {
            NAME: name,
            DOMAIN: domain,
            SEVERITY: level.value,
            SOURCE: source,
        }
        if row_id is not None:
            attributes[ROW_ID] = row_id
        if event_id is not None:
            attributes[EVENT_ID] = event_id
        if command_id is not None:
            attributes[COMMAND_ID] = command_id
        attributes.update(extra)
        attributes.update(detail_attributes(detail))
        events_logger().emit(
            timestamp=_ns(at),
            severity_number=SEVERITY_NUMBER[level],
            severity_text=level.value,
            body=body,
            attributes=attributes,
            event_name=name,
        )
    except Exception:  # noqa: BLE001 - the event is stored and in the process log; never fail its caller
        log.exception("%s event %s from %s not emitted as an OpenTelemetry log record", domain, name, source)


def detail_attributes(detail: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """``floor.detail.<key>`` for each entry (at most :data:`DETAIL_ENTRIES_LIMIT`)."""
    out: dict[str, AttributeValue] = {}
    items = list(detail.items())
    for key, value in items[:DETAIL_ENTRIES_LIMIT]:
        if value is None:
            continue
        out[DETAIL_PREFIX + str(key)] = _attribute_value(value)
    if len(items) > DETAIL_ENTRIES_LIMIT:
        out[DETAIL_PREFIX + "dropped"] = len(items) - DETAIL_ENTRIES_LIMIT
    return out


def _attribute_value(value: Any) -> AttributeValue:
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        kinds = {type(v) for v in value}
        if len(kinds) == 1 and kinds <= {str, bool, int, float}:
            return list(value)
        return json.dumps(value, default=str, sort_keys=True)
    if isinstance(value, Mapping):
        return json.dumps(value, default=str, sort_keys=True)
    # A Decimal, a datetime, an enum: as the text it reads as ("189.50", not a float).
    return str(value)


def _ns(at: datetime | float | None) -> int:
    if at is None:
        return time.time_ns()
    if isinstance(at, datetime):
        return int(at.timestamp() * 1_000_000) * 1_000
    return int(at * 1_000_000_000)
