"""The security-event log: every refusal by the sentry, written three ways.

A security event is recorded in Postgres (the durable record ops and auditors query), on the
``security.events`` topic (for the HUD and alerting) and as a log line (for whoever tails the
process log). The Postgres write comes first and is awaited: an event that is not in the table
did not happen as far as an audit is concerned. Kafka and the log line follow; a Kafka failure
is logged and does not lose the event, which is already in the table.

Titles: a refusal that means someone holds, forged or replays a signature is a
``Critical Security Breach``; the rest (a stale clock, an account the agent may not trade) are
``Security Refusal``.

The event itself (:class:`~trading.security_events.SecurityEvent`, its :class:`Severity` and
wire format) is :mod:`trading.security_events`, shared with the sentry and the ledger.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from trading.record_signing import RecordRefused, record_claims
from trading.security_events import SecurityEvent, Severity

log = logging.getLogger("floor.security")

CRITICAL_BREACH = "Critical Security Breach"
SECURITY_REFUSAL = "Security Refusal"


_LOG_LEVEL = {
    Severity.INFO: logging.INFO,
    Severity.WARNING: logging.WARNING,
    Severity.ERROR: logging.ERROR,
    Severity.CRITICAL: logging.CRITICAL,
}


def refusal_event(
    *,
    reason: str,
    severity: str,
    source: str,
    source_address: str | None,
    agent_id: str | None = None,
    key_id: str | None = None,
    command_id: str | None = None,
    signature_hash: str | None = None,
    claimed_agent_id: str | None = None,
    detail: str = "",
    now: datetime | None = None,
) -> SecurityEvent:
    """The event for a sentry refusal. ``agent_id`` is the registered key's owner (None when the
    key is unknown); ``claimed_agent_id`` is the agent the command names, kept in the detail
    when it differs, since that is who the sender pretended to be."""
    level = Severity(severity)
    details = {"detail": detail} if detail else {}
    if claimed_agent_id is not None and claimed_agent_id != agent_id:
        details["claimed_agent_id"] = claimed_agent_id
    return SecurityEvent(
        event_id=uuid.uuid4().hex,
        ts=now or datetime.now(UTC),
        title=CRITICAL_BREACH if level is Severity.CRITICAL else SECURITY_REFUSAL,
        reason=reason,
        severity=level,
        source=source,
        source_address=source_address,
        agent_id=agent_id or claimed_agent_id,
        key_id=key_id,
        command_id=command_id,
        signature_hash=signature_hash,
        detail=details,
    )


def unverified_record_event(
    topic: str, where: str, raw: bytes, refused: RecordRefused, *, source: str
) -> SecurityEvent:
    """The event for a Kafka record no writer of its topic signed (:mod:`trading.record_signing`).
    ``where`` is ``topic[partition]@offset``; the source address is the partition, not the
    offset, so a flood from one partition is one source to the flood summary. The detail keeps
    the offset and what the record claims to be about (a few fields, bounded)."""
    partition, _, offset = where.partition("@")
    return SecurityEvent(
        event_id=uuid.uuid4().hex,
        ts=datetime.now(UTC),
        title=CRITICAL_BREACH,
        reason=refused.reason,
        severity=Severity.CRITICAL,
        source=source,
        source_address=partition,
        key_id=refused.signer,
        detail={"topic": topic, "offset": offset, "detail": refused.detail, **record_claims(raw)},
    )


FIELD_LIMIT = 128
"""Characters kept of each id column (agent, key, command, signature hash, address, reason,
source). The floor's own ids are far shorter (a key id is 32 hex digits, a signature hash 64);
anything longer came from the sender and is evidence only by its start and its length."""
DETAIL_VALUE_LIMIT = 256
"""Characters kept of each ``detail`` value (a refusal's explanation may quote the sender's input)."""
DETAIL_KEYS_LIMIT = 16
"""``detail`` entries kept; the floor writes fewer than ten."""
TRUNCATED = "truncated"
"""The ``detail`` entry naming each cut field and its original length, e.g.
``command_id=65536,claimed_agent_id=4000``."""
_ELLIPSIS = "\u2026"


def bounded(event: SecurityEvent) -> SecurityEvent:
    """``event`` with every field short enough to store, and storable at all.

    Rule: a field over its limit keeps its first ``limit - 1`` characters and an ellipsis, and
    ``detail["truncated"]`` names it with its original length (truncated rather than refused:
    the refusal is still worth recording, the sender's padding is not). ``detail`` keeps its
    first :data:`DETAIL_KEYS_LIMIT` entries. Characters Postgres text cannot hold (NUL, lone
    surrogates from a JSON ``\\ud800`` escape) are written as backslash escapes.
    """
    cut: list[str] = []

    def fit(name: str, value: str | None, limit: int) -> str | None:
        if value is None:
            return None
        storable = _storable(value)
        if len(storable) <= limit:
            return storable
        cut.append(f"{name}={len(storable)}")
        return storable[: limit - 1] + _ELLIPSIS

    detail: dict[str, str] = {}
    for key, value in list(event.detail.items())[:DETAIL_KEYS_LIMIT]:
        name = fit("detail key", str(key), FIELD_LIMIT) or ""
        detail[name] = fit(name, str(value), DETAIL_VALUE_LIMIT) or ""
    if len(event.detail) > DETAIL_KEYS_LIMIT:
        cut.append(f"detail={len(event.detail)} entries")
    bounded_event = dataclasses.replace(
        event,
        reason=fit("reason", event.reason, FIELD_LIMIT) or "",
        source=fit("source", event.source, FIELD_LIMIT) or "",
        source_address=fit("source_address", event.source_address, FIELD_LIMIT),
        agent_id=fit("agent_id", event.agent_id, FIELD_LIMIT),
        key_id=fit("key_id", event.key_id, FIELD_LIMIT),
        command_id=fit("command_id", event.command_id, FIELD_LIMIT),
        signature_hash=fit("signature_hash", event.signature_hash, FIELD_LIMIT),
    )
    if cut:
        detail[TRUNCATED] = ",".join(cut)
    return dataclasses.replace(bounded_event, detail=detail)


def _storable(text: str) -> str:
    if text.isascii() and "\x00" not in text:
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


class SecurityRecorder(Protocol):
    """Anything that records security events: :class:`SecurityLog`, or a summariser in front of it."""

    async def record(self, event: SecurityEvent) -> None: ...


class SecurityEventStore(Protocol):
    """Where security events are kept durably (the ledger's Postgres table)."""

    async def record_security_event(self, event: SecurityEvent) -> None: ...


class Producer(Protocol):
    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> Any: ...


class SecurityLog:
    """Records each event in the store, on ``security.events`` and in the log."""

    def __init__(self, store: SecurityEventStore, producer: Producer | None, topic: str) -> None:
        self._store = store
        self._producer = producer
        self._topic = topic

    async def record(self, event: SecurityEvent) -> None:
        """Store, log and publish ``event``, every field bounded first (:func:`bounded`)."""
        event = bounded(event)
        await self._store.record_security_event(event)
        log.log(
            _LOG_LEVEL[event.severity],
            "%s: %s from %s via %s (agent=%s key=%s command=%s) %s",
            event.title,
            event.reason,
            event.source_address,
            event.source,
            event.agent_id,
            event.key_id,
            event.command_id,
            dict(event.detail),
        )
        if self._producer is None:
            return
        try:
            await self._producer.send_and_wait(
                self._topic, event.encode(), key=(event.agent_id or "unknown").encode()
            )
        except Exception:
            log.exception("security event %s is in the table but not on %s", event.event_id, self._topic)
