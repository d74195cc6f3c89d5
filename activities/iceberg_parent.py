"""The Iceberg's first activity: is this workflow working a parent the ledger holds as accepted?

Anyone who can reach Temporal can start an ``Iceberg`` workflow with any input, so the workflow
trusts nothing it was given until this check passes. The parent's command id is the workflow's
own id (``iceberg-<command id>``, read from Temporal, not from the input); the ledger entry under
that id must be an authenticated ``iceberg`` command that was accepted, its signature must verify
with the author's registered key, that key must be unrevoked and allowed on the account, and the
workflow's input must be that command (account, symbol, side, total, display size, limit, time
in force, edge) worked by the floor's own slicer, paced within the worker's limits (interval
scale, jitter, cancel confirmation timeout: :class:`IcebergLimits`), and never worked before
(its first slice is not in the ledger). Any other answer fails the workflow before it sends
anything, so a run started by someone else leaves the id free for the genuine start.

The parent's expiry is not taken from the input either: a DAY parent stops at the first session
close at or after its ledger entry was recorded, which this check computes and returns.

The answer also carries the keys whose signatures the workflow accepts on slice records
(:mod:`trading.record_signing`): the unrevoked service keys of ``orders.events``' writers, read
from the registry here so the workflow can verify each record deterministically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from temporalio import activity

from activities.record_writers import RecordWriter, current_writers
from config.workflow_ids import iceberg_workflow_id
from ledger.command_entries import command_entry
from ledger.db import Db
from ledger.key_trust import trusted_key
from trading.commands import Command, CommandInvalid, CommandKind, Edge, TimeInForce
from trading.session_calendar import SessionCalendar
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
PACING_NOT_ALLOWED = "iceberg.pacing_not_allowed"
ALREADY_WORKED = "iceberg.already_worked"


@dataclass(frozen=True)
class IcebergLimits:
    """How the worker lets an Iceberg be paced: the input may not go past these."""

    min_interval_scale: Decimal = Decimal(1)
    """The 3-7 s interval may be scaled down to this and no further (1: real time; a test or
    benchmark venue whose clock runs N times faster runs a worker allowing 1/N)."""
    max_jitter: Decimal = Decimal("0.05")
    """A slice may differ from the display size by at most this fraction."""
    cancel_confirm_timeout_s: tuple[float, float] = (5.0, 300.0)
    """The shortest and longest wait for a slice cancel's confirmation before re-sending it."""


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
    interval_scale: Decimal = Decimal(1)
    jitter: Decimal = Decimal(0)
    cancel_confirm_timeout_s: float = 30.0


@dataclass(frozen=True)
class ParentCheck:
    parent_command_id: str
    reason: str | None
    """None: the parent is genuine and accepted; otherwise why the workflow must not run."""
    detail: str = ""
    writers: list[RecordWriter] = field(default_factory=list)
    expires_at: datetime | None = None
    """When a DAY parent stops sending slices: the session close after its ledger entry."""

    @property
    def ok(self) -> bool:
        return self.reason is None


class IcebergParentActivities:
    def __init__(
        self,
        db: Db,
        slicer_agent: str = "sniper",
        limits: IcebergLimits | None = None,
        calendar: SessionCalendar | None = None,
    ) -> None:
        self._db = db
        self._slicer = slicer_agent
        self._limits = limits or IcebergLimits()
        self._calendar = calendar or SessionCalendar()

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
        return ParentCheck(
            command_id,
            None,
            writers=await current_writers(self._db),
            expires_at=await self._expiry(command_id, req.tif),
        )

    async def _expiry(self, command_id: str, tif: str) -> datetime | None:
        if tif != TimeInForce.DAY.value:
            return None
        recorded_at: datetime = await self._db.fetchval(
            "SELECT recorded_at FROM ledger_entries WHERE command_id = $1 AND authenticated", command_id
        )
        return self._calendar.close_after(recorded_at)

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
        pacing = self._pacing_problem(req)
        if pacing:
            return PACING_NOT_ALLOWED, pacing
        # A run that sent slices and then ended (terminated, say) may not be followed by a
        # second that sends them again. Slice ids are workflows.slicing.slice_command_id's.
        first_slice = f"{iceberg_workflow_id(command_id)}.s0001"
        if await command_entry(self._db, first_slice) is not None:
            return ALREADY_WORKED, f"the ledger holds its slice {first_slice}: it was worked before"
        return None, ""

    def _pacing_problem(self, req: ParentCheckRequest) -> str:
        limits = self._limits
        low, high = limits.cancel_confirm_timeout_s
        problems = []
        if req.interval_scale < limits.min_interval_scale:
            problems.append(f"interval scale {req.interval_scale} below {limits.min_interval_scale}")
        if not Decimal(0) <= req.jitter <= limits.max_jitter:
            problems.append(f"jitter {req.jitter} outside 0..{limits.max_jitter}")
        if not low <= req.cancel_confirm_timeout_s <= high:
            problems.append(
                f"cancel confirmation timeout {req.cancel_confirm_timeout_s} s outside {low}..{high} s"
            )
        return ", ".join(problems)


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
