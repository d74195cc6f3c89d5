"""Order events as workflows take them: the ``orders.events`` record exactly as its writer
signed it, verified in the workflow itself (deterministic: pure Ed25519 over canonical JSON,
:mod:`trading.record_signing`) with the writer keys an activity read at the workflow's start.

A signal is an open door (anyone who can reach Temporal can send one), so a workflow that acts
on order events takes them only this way; an unsigned ``OrderEvent`` signal counts only in a
workflow started before records were signed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.record_writers import RecordWriter, Writers, WritersRequest
    from trading.order_events import OrderEvent, OrderEventError, from_dict
    from trading.record_signing import PROOF, ROLE_SERVICE, WriterKey, verify_record

ORDERS_EVENTS = "orders.events"
RECORD_WRITERS_ACTIVITY = "record_writers"
""":meth:`activities.record_writers.RecordWriterActivities.record_writers`."""
WRITERS_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10), maximum_attempts=30
)
"""A read of the key registry, safe to repeat."""


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


WRITERS_MAX_AGE = timedelta(seconds=5)
"""A record is verified with writer keys read at most this long before (workflow time)."""
WRITERS_REREAD_AFTER = timedelta(seconds=10)
"""After a read of the registry that ran out of retries, try again this much later."""


def signer_of(signed: SignedOrderEvent) -> str | None:
    """The key id a record's proof names, if it names one (verification says the rest)."""
    try:
        data: Any = json.loads(signed.record)
    except ValueError:
        return None
    proof = data.get(PROOF) if isinstance(data, dict) else None
    signer = proof.get("signer") if isinstance(proof, dict) else None
    return signer if isinstance(signer, str) else None


class FreshWriters:
    """Writer keys re-read from the registry before they vouch for a record.

    A workflow may run for hours; a writer key revoked meanwhile (stolen, rotated) must stop
    counting. A record is held, in arrival order, when the keys were read more than
    :data:`WRITERS_MAX_AGE` ago or it names a signer they do not know, and :meth:`keep_fresh`
    (a task of the workflow) re-reads them through the ``record_writers`` activity and hands
    the held records back, still in order, to be verified with the new set. Re-reading only
    when records come (not on a standing timer) keeps a quiet workflow's history short; one
    read covers a burst of records (a slice's accepted, submitted, filled). Deterministic: the
    reads are activities, the age is workflow time.
    """

    def __init__(self, keys: dict[str, WriterKey], read_at: datetime) -> None:
        self.keys = keys
        self._read_at = read_at
        self._held: list[SignedOrderEvent] = []

    def hold_if_stale(self, signed: SignedOrderEvent) -> bool:
        """True if ``signed`` must wait for a fresh read (it is then held)."""
        stale = workflow.now() - self._read_at >= WRITERS_MAX_AGE
        if self._held or stale or signer_of(signed) not in self.keys:
            self._held.append(signed)
            return True
        return False

    async def keep_fresh(self, take: Callable[[SignedOrderEvent], None], note: Callable[[str], None]) -> None:
        """Forever: when records are held, re-read the keys, then ``take`` each held record."""
        while True:
            await workflow.wait_condition(lambda: bool(self._held))
            try:
                # By name, with the result type given: the method's own hints do not resolve in
                # a task started outside the workflow's run (pydantic sees ``Writers`` undefined).
                answer = await workflow.execute_activity(
                    RECORD_WRITERS_ACTIVITY,
                    WritersRequest(),
                    start_to_close_timeout=timedelta(seconds=10),
                    retry_policy=WRITERS_RETRY,
                    result_type=Writers,
                    summary=f"re-read the record writers' keys for {len(self._held)} held records",
                )
            except ActivityError as exc:
                # Nothing held is trusted on stale keys, nor dropped (a fill must not be lost):
                # the records wait, in order, for the registry to answer.
                note(f"writer keys not re-read ({exc.cause or exc}): {len(self._held)} records wait")
                await workflow.sleep(WRITERS_REREAD_AFTER, summary="re-read the writer keys again")
                continue
            self.keys = writer_keys(list(answer.writers))
            self._read_at = workflow.now()
            held, self._held = self._held, []
            for signed in held:
                take(signed)
