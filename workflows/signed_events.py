"""Order events as workflows take them: the ``orders.events`` record exactly as its writer
signed it, verified in the workflow itself (deterministic: pure Ed25519 over canonical JSON,
:mod:`trading.record_signing`) with the writer keys an activity read at the workflow's start.

A signal is an open door (anyone who can reach Temporal can send one), so a workflow that acts
on order events takes them only this way; an unsigned ``OrderEvent`` signal counts only in a
workflow started before records were signed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.record_writers import RecordWriter
    from trading.order_events import OrderEvent, OrderEventError, from_dict
    from trading.record_signing import ROLE_SERVICE, WriterKey, verify_record

ORDERS_EVENTS = "orders.events"


@dataclass(frozen=True)
class SignedOrderEvent:
    """An ``orders.events`` record, byte for byte as its writer signed it (UTF-8 JSON text)."""

    record: str


def writer_keys(writers: list[RecordWriter]) -> dict[str, WriterKey]:
    return {
        w.key_id: WriterKey(w.key_id, w.agent_id, bytes.fromhex(w.public_key), ROLE_SERVICE) for w in writers
    }


def verified_event(signed: SignedOrderEvent, writers: Mapping[str, WriterKey]) -> OrderEvent:
    """The event if one of ``writers`` signed it for ``orders.events``; else ``ValueError``
    (:class:`~trading.record_signing.RecordRefused` or :class:`OrderEventError`), naming why."""
    return from_dict(verify_record(ORDERS_EVENTS, signed.record, writers))


def unchecked_event(signed: SignedOrderEvent) -> OrderEvent:
    """The event without checking its proof: only for a workflow started before records were
    signed, which took unsigned events on trust all along."""
    data: Any = json.loads(signed.record)
    if not isinstance(data, dict):
        raise OrderEventError("a record is a JSON object")
    return from_dict(data)
