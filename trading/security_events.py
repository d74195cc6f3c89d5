"""A security event: refused or suspicious input at one of the floor's doors (the API door, the
hot path's intake, the Temporal bridge), and how severe it is.

One record for every place that handles one: the sentry names each refusal's
:class:`Severity` (:mod:`trading.sentry`), the security-event log writes the event to the table,
the ``security.events`` topic and the process log (:mod:`observability.security`), and the table
is :mod:`ledger.security_events`. Pure: the event's wire format is here, its I/O is not.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class Severity(enum.StrEnum):
    """Least severe first (:data:`RANK`); the sentry's refusals are WARNING and above."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


RANK: Mapping[Severity, int] = {severity: rank for rank, severity in enumerate(Severity)}
"""How severe, as a number to compare: INFO 0 up to CRITICAL 3."""


@dataclass(frozen=True)
class SecurityEvent:
    reason: str
    """The refusal's dotted name, e.g. ``sentry.bad_signature``."""
    severity: Severity
    source: str
    """Which door refused: ``api``, ``hotpath`` or ``temporal-bridge``."""
    agent_id: str | None = None
    key_id: str | None = None
    command_id: str | None = None
    signature_hash: str | None = None
    source_address: str | None = None
    """The client's address (API) or the Kafka partition (hot path, bridge); the table's
    ``remote_addr``."""
    detail: Mapping[str, Any] = field(default_factory=dict)
    title: str | None = None
    """``Critical Security Breach`` or ``Security Refusal`` for an event the security-event log
    records (:mod:`observability.security`); None for a row the ledger writes itself."""
    event_id: str | None = None
    """Set for an event the security-event log records: it ties the row, the topic's record and
    the log line together."""
    ts: datetime | None = None
    """When it happened (the table's own time, on a row read back)."""
    id: int | None = None
    """The table's id, on a row read back."""

    def stored_detail(self) -> dict[str, Any]:
        """What the table's ``detail`` column keeps beyond its own columns."""
        named = {"title": self.title, "event_id": self.event_id}
        return {**{k: v for k, v in named.items() if v is not None}, **self.detail}

    def to_dict(self) -> dict[str, Any]:
        """The ``security.events`` record."""
        return {
            "event_id": self.event_id,
            "ts": None if self.ts is None else self.ts.astimezone(UTC).isoformat(),
            "title": self.title,
            "reason": self.reason,
            "severity": self.severity.value,
            "source": self.source,
            "source_address": self.source_address,
            "agent_id": self.agent_id,
            "key_id": self.key_id,
            "command_id": self.command_id,
            "signature_hash": self.signature_hash,
            "detail": dict(self.detail),
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> SecurityEvent:
        data = json.loads(raw)
        return cls(
            event_id=data["event_id"],
            ts=datetime.fromisoformat(data["ts"]),
            title=data["title"],
            reason=data["reason"],
            severity=Severity(data["severity"]),
            source=data["source"],
            source_address=data.get("source_address"),
            agent_id=data.get("agent_id"),
            key_id=data.get("key_id"),
            command_id=data.get("command_id"),
            signature_hash=data.get("signature_hash"),
            detail=data.get("detail") or {},
        )
