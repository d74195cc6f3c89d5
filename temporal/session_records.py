"""Broker connectivity changes on Kafka, for the BrokerSession workflows.

The hot path owns the broker connection but never awaits Temporal, so it reports each change
of its session (``brokers.base.SessionChanged``) as a record on :data:`SESSIONS_TOPIC`; the
bridge turns each into the ``session`` signal of the account's BrokerSession workflow
(signal-with-start). Record: UTF-8 JSON object, key = account::

    {"v": 1, "event_id": "...", "account": "DU1234567", "change": "failed_over",
     "gateway": "127.0.0.1:4012", "previous_gateway": "127.0.0.1:4002", "cause": "heartbeat missed",
     "epoch": 3, "ts": "2026-11-24T14:30:00.123000+00:00"}

``change`` is one of connected, disconnected, reconnected, failed_over; other changes of the
broker session (standby up or down, closed) are not epochs and are not sent. A connected,
reconnected or failed_over record also carries the report of the hot path's reconciliation of
that epoch for the account (``reconcile``, see :mod:`hotpath.sessions`), or ``reconcile_error``
saying why there is none.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bus.topics import BROKER_SESSIONS
from trading.reconciliation import ReconcileReport
from workflows.broker_session import Change, SessionChange

SESSIONS_TOPIC = BROKER_SESSIONS


class SessionRecordError(ValueError):
    """A ``broker.sessions`` record that cannot be decoded; the message names the field."""


def encode(account: str, change: SessionChange) -> bytes:
    record: dict[str, Any] = {
        "v": 1,
        "event_id": change.event_id,
        "account": account,
        "change": change.change.value,
        "gateway": change.gateway,
        "previous_gateway": change.previous_gateway,
        "cause": change.cause,
        "epoch": change.epoch,
        "ts": change.ts.astimezone(UTC).isoformat(),
    }
    if change.reconcile is not None:
        record["reconcile"] = change.reconcile.to_json()
    if change.reconcile_error is not None:
        record["reconcile_error"] = change.reconcile_error
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()


def decode(raw: bytes | str) -> tuple[str, SessionChange]:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise SessionRecordError(f"not JSON: {type(exc).__name__}: {exc}") from exc
    if not isinstance(data, dict):
        raise SessionRecordError("a session record is a JSON object")
    try:
        change = Change(_field(data, "change", str))
    except ValueError:
        raise SessionRecordError(f"change: unknown {data.get('change')!r}") from None
    try:
        ts = datetime.fromisoformat(_field(data, "ts", str))
    except ValueError:
        raise SessionRecordError(f"ts: not ISO 8601: {data.get('ts')!r}") from None
    if ts.tzinfo is None:
        raise SessionRecordError("ts: must carry a timezone")
    previous = data.get("previous_gateway")
    if previous is not None and not isinstance(previous, str):
        raise SessionRecordError("previous_gateway: must be a string or null")
    epoch = data.get("epoch")
    if type(epoch) is not int:
        raise SessionRecordError(f"epoch: must be an integer, got {epoch!r}")
    report = None
    if data.get("reconcile") is not None:
        try:
            report = ReconcileReport.from_json(data["reconcile"])
        except ValueError as exc:
            raise SessionRecordError(str(exc)) from None
        if (report.account, report.epoch) != (data.get("account"), epoch):
            raise SessionRecordError("reconcile: reports on another account or epoch than its record")
    error = data.get("reconcile_error")
    if error is not None and not isinstance(error, str):
        raise SessionRecordError("reconcile_error: must be a string or null")
    return _field(data, "account", str), SessionChange(
        event_id=_field(data, "event_id", str),
        change=change,
        gateway=_field(data, "gateway", str),
        cause=_field(data, "cause", str),
        epoch=epoch,
        ts=ts,
        previous_gateway=previous,
        reconcile=report,
        reconcile_error=error,
    )


def _field(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (kind is str and not value and key != "cause"):
        raise SessionRecordError(f"{key}: must be a non-empty {kind.__name__}, got {value!r}")
    return value
