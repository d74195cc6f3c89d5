"""The Iceberg's first activity: is this workflow working a parent the ledger holds as accepted?

Anyone who can reach Temporal can start an ``Iceberg`` workflow with any input, so the workflow
trusts nothing it was given until this check passes. The parent's command id is the workflow's
own id (``iceberg-<command id>``, read from Temporal, not from the input); the ledger entry under
that id must be an authenticated ``iceberg`` command that was accepted, its signature must verify
with the author's registered key, that key must be unrevoked and allowed on the account, and the
workflow's input must be that command (account, symbol, side, total, display size, limit, time
in force, edge) worked by the floor's own slicer. Any other answer ends the workflow
``Rejected`` before it sends anything.

The answer also carries the keys whose signatures the workflow accepts on slice records
(:mod:`trading.record_signing`): the unrevoked service keys of ``orders.events``' writers, read
from the registry here so the workflow can verify each record deterministically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal

from temporalio import activity

from activities.record_writers import RecordWriter, current_writers
from ledger.command_entries import command_entry
from ledger.db import Db
from ledger.key_trust import trusted_key
from temporal.config import iceberg_workflow_id
from trading.commands import Command, CommandInvalid, CommandKind, Edge, TimeInForce
from trading.signing import KeyInvalid, SignatureInvalid, public_key_from_bytes, verify_bytes

PARENT_UNKNOWN = "iceberg.parent_unknown"
PARENT_NOT_ACCEPTED = "iceberg.parent_not_accepted"
NOT_AN_ICEBERG = "iceberg.not_an_iceberg"
AUTHOR_UNKNOWN = "iceberg.author_unknown"
AUTHOR_REVOKED = "iceberg.author_revoked"
AUTHOR_NOT_ALLOWED = "iceberg.author_not_allowed"
BAD_SIGNATURE = "iceberg.bad_signature"
INPUT_MISMATCH = "iceberg.input_mismatch"
WRONG_SLICER = "iceberg.wrong_slicer"

@dataclass(frozen=True)
class ParentCheckRequest:
    """The workflow's input, as it claims the parent to be."""

    account: str
    symbol: str
    side: str
    total_qty: int
    display_qty: int
    limit_price: Decimal | None
    tif: str
    edge: Edge
    agent_id: str
    """Whose key would sign the slices."""


@dataclass(frozen=True)
class ParentCheck:
    parent_command_id: str
    reason: str | None
    """None: the parent is genuine and accepted; otherwise why the workflow must not run."""
    detail: str = ""
    writers: list[RecordWriter] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reason is None


class IcebergParentActivities:
    def __init__(self, db: Db, slicer_agent: str = "sniper") -> None:
        self._db = db
        self._slicer = slicer_agent

    @activity.defn(name="check_iceberg_parent")
    async def check_iceberg_parent(self, req: ParentCheckRequest) -> ParentCheck:
        workflow_id = activity.info().workflow_id or ""
        prefix = iceberg_workflow_id("")
        command_id = workflow_id[len(prefix) :] if workflow_id.startswith(prefix) else ""
        reason, detail = (
            await self._problem(command_id, req)
            if command_id
            else (
                PARENT_UNKNOWN,
                f"workflow id {workflow_id!r} names no iceberg command (expected {prefix}<command id>)",
            )
        )
        if reason is not None:
            activity.logger.warning("iceberg %s refused: %s (%s)", workflow_id, reason, detail)
            return ParentCheck(command_id, reason, detail)
        return ParentCheck(command_id, None, writers=await current_writers(self._db))

    async def _problem(self, command_id: str, req: ParentCheckRequest) -> tuple[str | None, str]:
        entry = await command_entry(self._db, command_id)
        if entry is None:
            return PARENT_UNKNOWN, f"the ledger holds no command {command_id}"
        if entry.decision != "accepted":
            return PARENT_NOT_ACCEPTED, f"the ledger holds {command_id} as {entry.decision}"
        if entry.kind != CommandKind.ICEBERG.value:
            return NOT_AN_ICEBERG, f"{command_id} is a {entry.kind} command"
        key = await trusted_key(self._db, entry.signer)
        if key is None or key.agent_id != entry.agent_id:
            return AUTHOR_UNKNOWN, f"key {entry.signer} is not {entry.agent_id}'s registered key"
        if key.revoked:
            return AUTHOR_REVOKED, f"{key.agent_id}'s key {key.key_id} is revoked"
        if entry.account is None or not key.allows(entry.account):
            return AUTHOR_NOT_ALLOWED, f"{key.agent_id} may not trade {entry.account}"
        try:
            verify_bytes(public_key_from_bytes(key.public_key), entry.payload, entry.signature)
            command = Command.from_json_dict(json.loads(entry.payload))
        except (SignatureInvalid, KeyInvalid):
            return BAD_SIGNATURE, f"the entry's signature does not verify with {key.key_id}"
        except (CommandInvalid, ValueError) as exc:
            return NOT_AN_ICEBERG, f"the entry's payload is not a command ({exc})"
        mismatch = _mismatch(command, req)
        if mismatch:
            return INPUT_MISMATCH, f"input differs from the ledgered parent in {mismatch}"
        if req.agent_id != self._slicer:
            return WRONG_SLICER, f"slices would be signed by {req.agent_id}, not {self._slicer}"
        return None, ""


def _mismatch(command: Command, req: ParentCheckRequest) -> str:
    expected = {
        "account": command.account,
        "symbol": command.symbol,
        "side": command.side.value if command.side is not None else None,
        "total_qty": command.quantity,
        "display_qty": command.display_size,
        "limit_price": command.limit_price,
        "tif": (command.tif or TimeInForce.DAY).value,
        "edge": command.edge,
    }
    return ", ".join(name for name, value in expected.items() if getattr(req, name) != value)
