"""The OrderLifecycle's view of its order, read from the ledger: what the floor accepted.

Anyone who can reach Temporal can start an ``OrderLifecycle`` with any input, so the one thing
the lifecycle does on its own, cancelling a DAY order at its session's close, takes nothing
from the input: the order's time in force, account, symbol and side come from its authenticated
ledger entry, its session from when that entry was recorded (by ``ledger_append``, not the
sender), and the agent whose key signs the cancel from the worker's configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from temporalio import activity

from ledger.command_entries import command_entry
from ledger.db import Db
from trading.commands import Command, CommandInvalid, CommandKind, TimeInForce
from trading.session_calendar import SessionCalendar

ORDER_KINDS = frozenset({CommandKind.ENTER.value, CommandKind.EXIT.value})


@dataclass(frozen=True)
class LifecycleOrderRequest:
    command_id: str


@dataclass(frozen=True)
class LedgeredOrder:
    command_id: str
    problem: str | None
    """None: the ledger holds this order as accepted; otherwise why the lifecycle acts on nothing."""
    account: str = ""
    symbol: str = ""
    side: str = ""
    tif: str = ""
    expires_at: datetime | None = None
    """A DAY order's session close (the first at or after its ledger entry); None otherwise."""
    canceller_agent_id: str = ""
    """Whose key signs an expiry cancel: the worker's configuration, never the input."""

    @property
    def ok(self) -> bool:
        return self.problem is None


class LifecycleOrderActivities:
    def __init__(
        self, db: Db, canceller_agent: str = "floor-lifecycle", calendar: SessionCalendar | None = None
    ) -> None:
        self._db = db
        self._canceller = canceller_agent
        self._calendar = calendar or SessionCalendar()

    @activity.defn(name="lifecycle_order")
    async def lifecycle_order(self, req: LifecycleOrderRequest) -> LedgeredOrder:
        cid = req.command_id
        entry = await command_entry(self._db, cid)
        if entry is None:
            return LedgeredOrder(cid, f"the ledger holds no command {cid}")
        if entry.decision != "accepted":
            return LedgeredOrder(cid, f"the ledger holds {cid} as {entry.decision}")
        if entry.kind not in ORDER_KINDS:
            return LedgeredOrder(cid, f"{cid} is a {entry.kind} command, not an order")
        try:
            command = Command.from_json_dict(json.loads(entry.payload))
        except (CommandInvalid, ValueError) as exc:
            return LedgeredOrder(cid, f"the entry's payload is not a command ({exc})")
        if command.command_id != cid or command.symbol is None or command.side is None:
            return LedgeredOrder(cid, f"the entry of {cid} names no order")
        recorded_at: datetime = await self._db.fetchval(
            "SELECT recorded_at FROM ledger_entries WHERE seq = $1", entry.seq
        )
        tif = command.tif or TimeInForce.DAY
        return LedgeredOrder(
            command_id=cid,
            problem=None,
            account=command.account,
            symbol=command.symbol,
            side=command.side.value,
            tif=tif.value,
            expires_at=self._calendar.close_after(recorded_at) if tif is TimeInForce.DAY else None,
            canceller_agent_id=self._canceller,
        )
