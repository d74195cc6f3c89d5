"""Which keys write ``orders.events``, for workflows that verify records themselves.

A workflow cannot read the key registry (no I/O), so it asks once, at its start, through this
activity, and verifies every record it is sent with the answer (pure Ed25519,
:mod:`trading.record_signing`), which replays identically from its history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import activity

from ledger.db import Db
from ledger.record_keys import writer_keys
from trading.record_signing import RECORD_WRITERS, ROLE_SERVICE

ORDERS_EVENTS = "orders.events"


@dataclass(frozen=True)
class RecordWriter:
    """A key whose signature on an ``orders.events`` record a workflow accepts."""

    key_id: str
    agent_id: str
    public_key: str
    """Raw Ed25519 public key, hex."""


@dataclass(frozen=True)
class WritersRequest:
    """Empty today; a place for options without changing the activity's signature."""


@dataclass(frozen=True)
class Writers:
    writers: list[RecordWriter] = field(default_factory=list)


async def current_writers(db: Db) -> list[RecordWriter]:
    """The unrevoked service keys of ``orders.events``' writers."""
    return [
        RecordWriter(k.key_id, k.agent_id, k.public_key.hex())
        for k in (await writer_keys(db)).values()
        if k.agent_id in RECORD_WRITERS[ORDERS_EVENTS] and k.role == ROLE_SERVICE and not k.revoked
    ]


class RecordWriterActivities:
    def __init__(self, db: Db) -> None:
        self._db = db

    @activity.defn(name="record_writers")
    async def record_writers(self, _: WritersRequest) -> Writers:
        return Writers(await current_writers(self._db))
