"""Iceberg parents as the ledger holds them: the accepted ``iceberg`` entry, the accepted
controls that name it since (amends, a cancel, a stop), and what its slices took.

Read by the hot path when a slice or control names a parent it has not seen since it started,
and when a key is revoked (to find the parents that key signed). Controls are found by the
``parent_id`` intake writes into their entry's detail (covered by the chain like the rest).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ledger.db import Db
from trading.commands import ICEBERG_CONTROLS, Command, CommandKind
from trading.iceberg_parents import Parent, parent_workflow_id

_ENDED = ("rejected", "filled", "cancelled", "expired")


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


async def load_parent(db: Db, command_id: str) -> Parent | None:
    """The accepted iceberg ``command_id`` with every accepted control since applied, in ledger
    order; None when the ledger holds no accepted iceberg under that id."""
    row = await db.fetchrow(
        "SELECT payload, signer FROM ledger_entries WHERE command_id = $1 AND kind = 'iceberg'"
        " AND decision = 'accepted' AND authenticated",
        command_id,
    )
    if row is None:
        return None
    parent = Parent.from_command(_command(bytes(row["payload"])), row["signer"])
    controls = await db.fetch(
        "SELECT payload FROM ledger_entries WHERE kind = ANY($1::text[]) AND decision = 'accepted'"
        " AND authenticated AND account = $2 AND detail IS NOT NULL"
        " AND detail::jsonb ->> 'parent_id' = $3 ORDER BY seq",
        sorted(k.value for k in ICEBERG_CONTROLS),
        parent.account,
        parent.workflow_id,
    )
    for control in controls:
        parent = parent.after(_command(bytes(control["payload"])))
    return parent


async def slice_states(db: Db, parent_id: str) -> list[SliceState]:
    """Every slice of ``parent_id`` the order-state rows know, with how far it got."""
    rows = await db.fetch(
        "SELECT command_id, max(quantity) AS quantity, max(filled_qty) AS filled,"
        " bool_or(kind = ANY($2::text[])) AS ended"
        " FROM order_events WHERE parent_id = $1 GROUP BY command_id",
        parent_id,
        list(_ENDED),
    )
    return [SliceState(r["command_id"], int(r["quantity"]), int(r["filled"]), bool(r["ended"])) for r in rows]


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
