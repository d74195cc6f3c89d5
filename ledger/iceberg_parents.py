"""Iceberg parents as the ledger holds them: the accepted ``iceberg`` entry, the accepted
controls that name it since (amends, a cancel, a stop), and what its slices took.

Read by the hot path when a slice or control names a parent it has not seen since it started,
and when a key is revoked (to find the parents that key signed). Controls are found by the
``parent_id`` intake writes into their entry's detail (covered by the chain like the rest).

Every entry is verified again before it counts (:mod:`trading.ledger_trust`): whoever can append
to the ledger could plant an accepted parent or an amend. A parent that does not verify is no
parent; an amend, pause or resume that does not verify is ignored; a cancel counts whatever its
signature (it can only stop a parent). Each one refused is logged and recorded as a security
event.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any

from ledger.db import Db
from ledger.key_trust import trusted_key
from ledger.order_events import orders_of_parent
from ledger.security_events import record_security_event
from trading.commands import ICEBERG_CONTROLS, Command, CommandKind
from trading.iceberg_parents import STOPPED_BY_REVOCATION, Parent, parent_workflow_id
from trading.ledger_trust import Checked, LedgerRow, check_entry
from trading.security_events import SecurityEvent, Severity

log = logging.getLogger(__name__)

UNVERIFIED_ICEBERG_ENTRY = "iceberg.unverified_entry"
"""Security event: an accepted iceberg or control entry that does not verify was not acted on."""


@dataclass(frozen=True)
class SliceState:
    command_id: str
    quantity: int
    filled_qty: int
    ended: bool

    @property
    def taken(self) -> int:
        """Shares this slice holds against the parent's total: its fills once it ended, its
        whole quantity while it may still fill."""
        return self.filled_qty if self.ended else self.quantity


def _command(payload: bytes) -> Command:
    return Command.from_json_dict(json.loads(payload))


_ENTRY_COLUMNS = "seq, kind, account, agent_id, command_id, payload, signer, signature"


async def load_parent(db: Db, command_id: str) -> Parent | None:
    """The accepted iceberg ``command_id`` with every accepted control since applied, in ledger
    order; None when the ledger holds no accepted iceberg under that id, or none that verifies.
    A parent whose author's key has been revoked since comes back stopped."""
    row = await db.fetchrow(
        f"SELECT {_ENTRY_COLUMNS} FROM ledger_entries WHERE command_id = $1 AND kind = 'iceberg'"
        " AND decision = 'accepted' AND authenticated",
        command_id,
    )
    if row is None:
        return None
    checked, revoked = await _verified(db, row)
    if checked.command is None:
        return None
    parent = Parent.from_command(checked.command, row["signer"])
    if revoked:
        parent = replace(parent, stopped=STOPPED_BY_REVOCATION)
    controls = await db.fetch(
        f"SELECT {_ENTRY_COLUMNS} FROM ledger_entries"
        " WHERE kind = ANY($1::text[]) AND decision = 'accepted' AND authenticated AND account = $2"
        " AND detail IS NOT NULL"
        " AND detail::jsonb ->> 'parent_id' = $3 ORDER BY seq",
        sorted(k.value for k in ICEBERG_CONTROLS),
        parent.account,
        parent.workflow_id,
    )
    for control in controls:
        if control["kind"] == CommandKind.ICEBERG_CANCEL.value:
            parent = replace(parent, stopped=parent.stopped or "cancelled")
            continue
        checked, _ = await _verified(db, control)
        if checked.command is not None and checked.command.parent_id == parent.workflow_id:
            parent = parent.after(checked.command)
    return parent


async def _verified(db: Db, row: Any) -> tuple[Checked, bool]:
    """The entry checked against its signer's registered key (a key revoked since still
    verifies what it signed before), and whether that key is revoked now. A failure is
    reported here."""
    entry = LedgerRow.from_mapping(row)
    key = await trusted_key(db, entry.signer)
    checked = check_entry(entry, key.registered() if key is not None else None, revoked_is_problem=False)
    if checked.problem is not None:
        log.error("iceberg entry seq %d (%s) not acted on: %s", entry.seq, entry.command_id, checked.problem)
        await record_security_event(
            db,
            SecurityEvent(
                reason=UNVERIFIED_ICEBERG_ENTRY,
                severity=Severity.CRITICAL,
                source="hotpath",
                agent_id=entry.agent_id,
                key_id=entry.signer,
                command_id=entry.command_id,
                detail={"seq": entry.seq, "problem": checked.problem},
            ),
        )
    return checked, key is not None and key.revoked


async def slice_states(db: Db, parent_id: str) -> list[SliceState]:
    """Every slice of ``parent_id`` the order-state rows know, with how far it got (its rows
    folded by the order state machine, like every other order's)."""
    states = []
    for view in await orders_of_parent(db, parent_id):
        record = view.state_record()
        filled = max(view.filled_qty, record.filled_qty if record is not None else 0)
        states.append(SliceState(view.command_id, view.quantity, filled, view.terminal))
    return states


async def parents_signed_by(db: Db, key_id: str) -> list[str]:
    """Command ids of the accepted icebergs ``key_id`` signed, oldest first."""
    rows = await db.fetch(
        "SELECT command_id FROM ledger_entries WHERE kind = $1 AND decision = 'accepted'"
        " AND authenticated AND signer = $2 ORDER BY seq",
        CommandKind.ICEBERG.value,
        key_id,
    )
    return [r["command_id"] for r in rows]


def control_detail(parent: Parent, **more: object) -> dict[str, object]:
    """The detail of a control's ledger entry: ``parent_id`` is how :func:`load_parent` finds it."""
    return {"parent_id": parent_workflow_id(parent.command_id), **more}
