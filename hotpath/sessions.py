"""Broker connectivity changes to ``broker.sessions``, for the BrokerSession workflows.

The hot path owns the broker connection but never awaits Temporal: it publishes each change
that starts a new session epoch, one record per account the connection serves, and the bridge
turns each into a signal of that account's BrokerSession workflow. A change that starts an
epoch with a reconciliation (connected, reconnected, failed over) is published once that
reconciliation is done, with its report for the account (``reconcile``), or with
``reconcile_error`` when the epoch ended before it finished. The record format is the one
``temporal.session_records`` decodes (key = account)::

    {"v": 1, "event_id": "...", "account": "DU1234567", "change": "failed_over",
     "gateway": "127.0.0.1:4012", "previous_gateway": "127.0.0.1:4002", "cause": "...",
     "epoch": 3, "ts": "2026-11-24T14:30:00.123000+00:00",
     "reconcile": {"account": "DU1234567", "epoch": 3, "as_of": "...", "missed_fills": [...],
                   "unknown_at_broker": [...], "awaiting_broker": [...], "foreign_orders": [...],
                   "anomalies": [...], "last_exec_time": "..." or null}}

Standby up/down and close are not epochs and are not sent (they are ops events only).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from brokers.base import SessionChange, SessionChanged
from bus.topics import BROKER_SESSIONS
from trading.reconciliation import ReconcileReport

SESSIONS_TOPIC = BROKER_SESSIONS
EPOCH_CHANGES = frozenset(
    {
        SessionChange.CONNECTED,
        SessionChange.DISCONNECTED,
        SessionChange.RECONNECTED,
        SessionChange.FAILED_OVER,
    }
)
RECONCILED_CHANGES = EPOCH_CHANGES - {SessionChange.DISCONNECTED}
"""The changes whose epoch starts with a reconciliation."""


def records(
    event: SessionChanged,
    accounts: Sequence[str],
    reports: Mapping[str, ReconcileReport] | None = None,
    reconcile_error: str | None = None,
) -> list[tuple[bytes, bytes]]:
    """(key, value) per account for a change that starts an epoch; none for the others.

    One event id per change and account, derived from the epoch, so a change published twice
    (a retried send) is deduplicated by the workflow."""
    if event.change not in EPOCH_CHANGES:
        return []
    out = []
    for account in accounts:
        event_id = str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"{account}/{event.epoch}/{event.change.value}/{event.time}")
        )
        value: dict[str, Any] = {
            "v": 1,
            "event_id": event_id,
            "account": account,
            "change": event.change.value,
            "gateway": event.gateway,
            "previous_gateway": event.previous_gateway,
            "cause": event.cause,
            "epoch": event.epoch,
            "ts": event.time.astimezone(UTC).isoformat(),
        }
        report = (reports or {}).get(account)
        if report is not None:
            value["reconcile"] = report.to_json()
        if reconcile_error is not None:
            value["reconcile_error"] = reconcile_error
        out.append((account.encode(), json.dumps(value, separators=(",", ":"), sort_keys=True).encode()))
    return out
