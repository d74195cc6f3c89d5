"""Iceberg parents the ledger accepted whose Iceberg never started, started at a restart.

A parent reaches the Temporal bridge only through its ``accepted`` record on ``orders.events``
(:mod:`hotpath.iceberg_commands`), published after the ledger commit; a process that stopped in
between left a parent ledgered as accepted that no workflow works. At start-up every such parent
of the last :data:`~hotpath.recovery.RESEND_HORIZON` that shows no sign of having started (no
slice, no control in the ledger) and is not over (cancelled, stopped, its DAY session closed)
has its record published again (``publish``: the broker events' Kafka-only queue, acknowledged
and retried), stamped with its signed issue time so the bridge sets the same expiry it would
have.

Publishing again is idempotent: the bridge starts the workflow under the id the parent's
command id fixes (``iceberg-<command id>``), and Temporal refuses a second start of a running or
completed workflow of that id (``WorkflowAlreadyStartedError``, counted by the bridge as
already started). The bridge reads the parent from the ledger, never from the record.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from hotpath.floor_orders import FloorOrder
from hotpath.recovery import RESEND_HORIZON, session_closed
from ledger.db import Db
from ledger.iceberg_parents import load_parent
from trading.commands import CommandKind
from trading.iceberg_parents import parent_workflow_id
from trading.order_events import EventKind, OrderEvent
from trading.session_calendar import SessionCalendar
from trading.signing import SignedCommand

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParentsRestarted:
    started: tuple[str, ...] = ()
    """Workflow ids whose parent record was published again."""
    expired: tuple[str, ...] = ()
    """Workflow ids of DAY parents whose session closed before they ever started: not started."""


async def start_unstarted_parents(
    db: Db,
    publish: Callable[[OrderEvent], None],
    *,
    now: datetime | None = None,
    calendar: SessionCalendar | None = None,
) -> ParentsRestarted:
    now = now or datetime.now(UTC)
    calendar = calendar or SessionCalendar()
    started: list[str] = []
    expired: list[str] = []
    for row in await db.fetch(
        "SELECT e.command_id, e.payload, e.signer, e.scheme, e.signature FROM ledger_entries e"
        " WHERE e.authenticated AND e.decision = 'accepted' AND e.kind = $1 AND e.issued_at >= $2"
        " AND NOT EXISTS (SELECT 1 FROM order_events o WHERE o.parent_id = 'iceberg-' || e.command_id)"
        " AND NOT EXISTS (SELECT 1 FROM ledger_entries c WHERE c.decision = 'accepted'"
        "                 AND c.detail IS NOT NULL"
        "                 AND c.detail::jsonb ->> 'parent_id' = 'iceberg-' || e.command_id)"
        " ORDER BY e.seq",
        CommandKind.ICEBERG.value,
        now - RESEND_HORIZON,
    ):
        parent = await load_parent(db, row["command_id"])  # verified, controls applied
        if parent is None or parent.stopped:
            continue
        envelope = SignedCommand.from_wire_dict(
            {
                "command": json.loads(bytes(row["payload"])),
                "signer": row["signer"],
                "scheme": row["scheme"],
                "signature": bytes(row["signature"]).hex(),
            }
        )
        command = envelope.command
        assert parent_workflow_id(command.command_id) == parent.workflow_id
        tif = command.tif.value if command.tif is not None else None
        if session_closed(tif, command.issued_at, calendar, now):
            log.warning("iceberg %s never started and its session closed: not started", parent.workflow_id)
            expired.append(parent.workflow_id)
            continue
        assert command.quantity is not None
        record = dataclasses.replace(
            FloorOrder.from_command(command, command.quantity).event(EventKind.ACCEPTED),
            iceberg_envelope=envelope.to_wire().decode(),
            ts=command.issued_at,
        )
        publish(record)
        log.warning("iceberg %s ledgered but never started: its record published again", parent.workflow_id)
        started.append(parent.workflow_id)
    return ParentsRestarted(tuple(started), tuple(expired))
