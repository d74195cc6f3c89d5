"""Reading an iceberg control back from the ledger: the only way an Iceberg is steered.

The bridge tells a running Iceberg that a control command was ledgered (the ``control`` signal
names its command id). A signal is no authority: anyone who can reach Temporal can send one.
So the workflow asks this activity for the command, which answers only for an authenticated,
accepted ``iceberg_*`` entry naming that very parent, whose signature still verifies over the
ledgered bytes with the signer's registered key. Anything else is refused, non-retryably, with
the reason named; the workflow notes it and changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ledger.db import Db
from ledger.key_trust import trusted_key
from trading.commands import ICEBERG_CONTROLS, Command, CommandInvalid, CommandKind
from trading.signing import SignatureInvalid, public_key_from_bytes, verify_bytes


@dataclass(frozen=True)
class ControlLookup:
    command_id: str
    parent_id: str
    """The asking Iceberg's workflow id: the control must name it."""


@dataclass(frozen=True)
class LedgeredControl:
    command_id: str
    kind: str
    """``iceberg_amend``, ``iceberg_pause``, ``iceberg_resume`` or ``iceberg_cancel``."""
    agent_id: str
    total_qty: int | None = None
    display_qty: int | None = None
    limit_price: Decimal | None = None
    reason: str = ""
    """Why, for a cancel: who asked, or the revoked key the floor stopped the parent for."""


class ControlRefused(ApplicationError):
    def __init__(self, command_id: str, why: str) -> None:
        super().__init__(f"control {command_id}: {why}", type="ControlRefused", non_retryable=True)


class ControlActivities:
    def __init__(self, db: Db) -> None:
        self._db = db

    @activity.defn(name="read_control")
    async def read_control(self, req: ControlLookup) -> LedgeredControl:
        row = await self._db.fetchrow(
            "SELECT kind, decision, payload, signer, signature, detail FROM ledger_entries"
            " WHERE command_id = $1 AND authenticated",
            req.command_id,
        )
        if row is None:
            raise ControlRefused(req.command_id, "not in the ledger")
        if row["decision"] != "accepted":
            raise ControlRefused(req.command_id, f"the ledger holds it {row['decision']}, not accepted")
        payload = bytes(row["payload"])
        key = await trusted_key(self._db, row["signer"])
        if key is None:
            raise ControlRefused(req.command_id, f"signer {row['signer']} is not a registered key")
        try:
            # A key revoked since still vouches for what it signed before (the ledger took it).
            verify_bytes(public_key_from_bytes(key.public_key), payload, bytes(row["signature"]))
            command = Command.from_json_dict(json.loads(payload))
        except (SignatureInvalid, CommandInvalid, ValueError) as exc:
            raise ControlRefused(req.command_id, f"ledgered entry does not verify: {exc}") from None
        if command.kind not in ICEBERG_CONTROLS or row["kind"] != command.kind.value:
            raise ControlRefused(req.command_id, f"a {command.kind.value} command is no iceberg control")
        if command.command_id != req.command_id or command.agent_id != key.agent_id:
            raise ControlRefused(req.command_id, "entry and signer do not match the command")
        if command.parent_id != req.parent_id:
            raise ControlRefused(req.command_id, f"it controls {command.parent_id}, not {req.parent_id}")
        detail = json.loads(row["detail"]) if row["detail"] else {}
        reason = ""
        if command.kind is CommandKind.ICEBERG_CANCEL:
            revoked = detail.get("revoked_key")
            reason = f"key {revoked} revoked" if revoked else f"by {command.agent_id}"
        return LedgeredControl(
            command_id=command.command_id,
            kind=command.kind.value,
            agent_id=command.agent_id,
            total_qty=command.quantity,
            display_qty=command.display_size,
            limit_price=command.limit_price,
            reason=reason,
        )
