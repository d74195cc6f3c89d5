"""The circuit breaker's operator commands: a signed ``breaker_trip`` / ``breaker_arm``, once
the sentry let it in, acted on by :mod:`hotpath.circuit_breaker` (whose docstring lists every
module of the breaker).

The sentry has already refused any such command not signed by an operator key
(``sentry.not_operator``), so what is left here is to ledger it and act on it, in that order:
the entry (naming the signer) is committed before the state changes, as an order's is before
the broker sees it, so the ledger's newest breaker entry is always the state a restart comes up
in. A trip halts intake and cancels every open order, exactly as an automatic trip does; an arm
resumes intake, unless an automatic trip landed while the arm was being ledgered: that trip is
the newer word, so the floor stays halted and the trip is ledgered again after the arm (its
first entry may have gone in before the arm's), keeping the ledger's newest entry a halt. Both
are floor-wide (the command's account is ``*``). Repeating one (a trip while halted, an arm
while active) is ledgered too and harmless: a trip cancels again.
"""

from __future__ import annotations

import logging
import time

from hotpath.circuit_breaker import BreakerChange, CircuitBreaker
from hotpath.circuit_breaker_log import BreakerLog
from hotpath.circuit_breaker_sweep import CancelSweep
from hotpath.outcomes import Outcome
from hotpath.ports import HotLedger, RefusedByLedger
from hotpath.refusals import Refusals
from trading.commands import CommandKind
from trading.risk import TradingState
from trading.signing import SignedCommand

log = logging.getLogger(__name__)


class BreakerCommands:
    def __init__(
        self,
        breaker: CircuitBreaker,
        ledger: HotLedger,
        refusals: Refusals,
        breaker_log: BreakerLog | None = None,
    ) -> None:
        self._breaker = breaker
        self._ledger = ledger
        self._refusals = refusals
        self._breaker_log = breaker_log
        self.sweep: CancelSweep | None = None
        """Confirms a trip's cancels and records its ``breaker.tripped`` event when they are in."""

    async def handle(self, envelope: SignedCommand, source: str) -> Outcome:
        command = envelope.command
        arming = command.kind is CommandKind.BREAKER_ARM
        was = self._breaker.state
        if self._breaker_log is not None:
            # An arm's entry must come after the automatic trip it re-arms, or a restart would
            # read that trip as the newest word and come up halted.
            await self._breaker_log.settled()
        state = TradingState.ACTIVE if arming else TradingState.HALTED
        trips = self._breaker.trips
        try:
            entry = await self._ledger.append_accepted(
                envelope, 0, {"trading_state": state.value, "was": was.value}
            )
        except RefusedByLedger as exc:
            return await self._refusals.by_ledger(exc, envelope, source)
        if arming and self._breaker.trips != trips:
            return self._tripped_while_arming(envelope)
        if arming:
            self._breaker.arm()
        else:
            self._breaker.halt()
        by = {"by": command.agent_id, "key_id": envelope.signer, "command_id": command.command_id}
        if not arming and self.sweep is not None:
            self.sweep.begin(time.perf_counter_ns(), by)
        self._breaker.last_change = BreakerChange(
            command.kind.value, command.agent_id, command.command_id, command.issued_at
        )
        log.warning(
            "%s by %s (key %s, ledger seq %d): trading state %s -> %s",
            command.kind.value,
            command.agent_id,
            envelope.signer,
            entry.seq,
            was.value,
            state.value,
        )
        if arming or self.sweep is None:
            await self._ledger.record_ops_event(
                "breaker.armed" if arming else "breaker.tripped", "warning" if arming else "critical", by
            )
        return Outcome(command.command_id, None)

    def _tripped_while_arming(self, envelope: SignedCommand) -> Outcome:
        """The arm is ledgered, but a crash tripped the breaker during its append: the trip
        stands (as if it had come just after the arm), and is ledgered after the arm."""
        command = envelope.command
        trip = self._breaker.last_trip
        log.warning(
            "%s by %s ledgered, but the breaker tripped on %s meanwhile: staying HALTED",
            command.kind.value,
            command.agent_id,
            None if trip is None else trip.symbol,
        )
        if self._breaker_log is not None and trip is not None:
            self._breaker_log.record_trip(trip, self._breaker)
        return Outcome(command.command_id, None)
