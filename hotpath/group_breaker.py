"""The trading state across the hot paths of a group (group mode): every member follows the
ledger's newest breaker entry.

A breaker command acts on the whole floor (account ``*``), so it is keyed ``*`` and lands on
one partition: one member decides it, halts or re-arms, and ledgers it. The others learn it
from the ledger, where the trading state already lives (a restarted hot path reads it there
too): :class:`BreakerFollower` polls the newest breaker entry's seq every
:data:`FOLLOW_S` and applies what a newer entry says. An entry that does not verify counts as
a trip, as at start-up. A member's own automatic trip (every member watches every symbol's
prices, so a crash trips each of them on its own) is an entry like any other: already halted,
it changes nothing here.

Each state taken from another member's entry is an ops event: ``breaker.followed``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from hotpath.circuit_breaker import BreakerChange, CircuitBreaker
from ledger.circuit_breaker import newest_breaker_entry, newest_breaker_seq
from ledger.db import Db
from trading.risk import TradingState

log = logging.getLogger(__name__)

FOLLOW_S = 0.1
"""How often a member asks the ledger for a newer breaker entry: the longest another member's
halt takes to stop this member's intake (its broker's global cancel reached every order at
once)."""
BREAKER_FOLLOWED = "breaker.followed"
"""Ops event (critical for a halt, info for a re-arm): this member took the trading state of a
breaker entry another member ledgered."""


class BreakerFollower:
    def __init__(
        self,
        db: Db,
        breaker: CircuitBreaker,
        breaker_agent: str,
        record_ops: Callable[[str, str, Mapping[str, Any]], None],
    ) -> None:
        self._db = db
        self._breaker = breaker
        self._breaker_agent = breaker_agent
        self._record_ops = record_ops
        self.seen: int | None = None
        """The newest entry's seq this member has applied (None: the first poll reads it, and
        changes nothing when start-up already took its state)."""

    async def run(self) -> None:
        """Follow the ledger until cancelled; a failed read is retried at the next poll."""
        while True:
            await asyncio.sleep(FOLLOW_S)
            try:
                await self.follow()
            except Exception as exc:
                log.warning("could not read the newest breaker entry (%s); asking again", exc)

    async def follow(self) -> TradingState | None:
        """Apply the newest breaker entry if it is newer than the last one seen; returns the
        state taken from it, or None when nothing changed here."""
        seq = await newest_breaker_seq(self._db)
        if seq is None or seq == self.seen:
            return None
        entry = await newest_breaker_entry(self._db, self._breaker_agent)
        if entry is None:
            return None
        self.seen = entry.seq
        breaker = self._breaker
        if entry.state is breaker.state:
            return None
        if entry.state is TradingState.HALTED:
            breaker.halt()
        else:
            breaker.arm()
        breaker.last_change = BreakerChange(entry.kind, entry.agent_id, entry.command_id, entry.recorded_at)
        halted = entry.state is TradingState.HALTED
        self._record_ops(
            BREAKER_FOLLOWED,
            "critical" if halted else "info",
            {
                "state": entry.state.value,
                "seq": entry.seq,
                "kind": entry.kind,
                "by": entry.agent_id,
                "command_id": entry.command_id,
                "problem": entry.problem,
            },
        )
        return entry.state
