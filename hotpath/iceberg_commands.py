"""Iceberg commands through intake, once the sentry let them in.

An ``iceberg`` command is a parent, not an order: breaker → the symbol → the parent's risk
check (:func:`trading.risk.check_parent`, the total against the position limits) → ledger
append → one ``accepted`` record carrying the signed envelope, from which the Temporal bridge
starts the Sniper. No sizing and no broker call: each slice is an ``enter`` command of its own
(:mod:`hotpath.order_commands`).

An iceberg control (``iceberg_amend`` / ``_pause`` / ``_resume`` / ``_cancel``) must come from
the parent's author or an operator: it is ledgered and published as a control record for the
bridge to hand to the Iceberg, which reads it back from the ledger. A revoked key's running
parents are stopped: a cancel signed by the floor's control key is ledgered, their working
slices pulled, the Iceberg told.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid

from brokers.base import UnknownOrderRef
from hotpath.floor_orders import FloorOrder
from hotpath.icebergs import control_record
from hotpath.intake_steps import NO_PRICE, NO_PROFILE, IntakeSteps, UnconfirmedAppend
from hotpath.outcomes import Outcome
from hotpath.ports import RefusedByLedger
from hotpath.refusals import INTERNAL_ERROR, failure_detail
from ledger.iceberg_parents import control_detail
from trading import iceberg_parents as parents
from trading.commands import Command, CommandKind, utc_now_ms
from trading.fill_prices import fill_range
from trading.order_events import EventKind, OrderEvent
from trading.orders import Rejected
from trading.risk import ProposedOrder, Refusal, check_parent
from trading.signing import SignedCommand, sign_command

log = logging.getLogger(__name__)

ICEBERG_PARENT = "iceberg_parent"
"""``role`` in the ledger detail of an accepted iceberg command: a parent, never sent itself."""
FLOOR_CONTROL = "floor-control"
"""The floor's own key for the controls it issues itself (stopping a revoked key's icebergs)."""


class IcebergCommands(IntakeSteps):
    async def _iceberg(self, envelope: SignedCommand) -> Outcome:
        command = envelope.command
        assert command.symbol is not None and command.side is not None and command.quantity is not None
        if self.breaker.halted:
            return await self.refusals.floor(envelope, Refusal.HALTED.value, {})
        if not self.trades(command.symbol):
            return await self._unknown_symbol(envelope)
        profile = await self._profile(command.account)
        if profile is None:
            return await self.refusals.floor(envelope, NO_PROFILE, {"account": command.account})
        fills = self._fills(command, None)
        if fills is None:
            return await self.refusals.floor(envelope, NO_PRICE, {"symbol": command.symbol})
        price = fills.high
        total = command.quantity
        detail: dict[str, object] = {
            "role": ICEBERG_PARENT,
            "quantity": total,
            "display_size": command.display_size,
            "reference_price": str(price),
        }
        decision = check_parent(
            profile,
            ProposedOrder(command.symbol, command.side, total, price),
            self._snapshot(command.account, command.symbol),
        )
        if not decision.approved:
            assert decision.reason is not None
            return await self.refusals.floor(envelope, decision.reason.value, detail)
        unconfirmed = UnconfirmedAppend(envelope, lambda: self._parent_accepted(envelope, total))
        try:
            await self._append_accepted(envelope, total, detail, unconfirmed)
        except RefusedByLedger as exc:
            return await self.refusals.by_ledger(exc, envelope, "")
        return await self._parent_accepted(envelope, total)

    async def _parent_accepted(self, envelope: SignedCommand, total: int) -> Outcome:
        """The ledgered parent announced: its ``accepted`` record carries the signed envelope,
        from which the Temporal bridge starts the Sniper.

        Kafka only, not the order-state rows: the parent never reaches the broker, so a state
        row would read as an order working forever (to recovery and reconciliation alike). The
        ledger entry is the parent's durable record. A parent whose record cannot be handed to
        Kafka is never started: it ends ``rejected: intake.internal_error`` in its state rows,
        and this process takes no slice of it. (Queued for the broker events' publisher, the
        record is retried until Kafka acknowledges it, and this never fails.)"""
        command = envelope.command
        parent = parents.Parent.from_command(command, envelope.signer)
        self.parents.accepted(parent)
        record = dataclasses.replace(
            FloorOrder.from_command(command, total).event(EventKind.ACCEPTED),
            iceberg_envelope=envelope.to_wire().decode(),
        )
        try:
            await self._announce(record)
        except Exception as exc:
            log.exception("iceberg %s ledgered but its record not published", command.command_id)
            self.parents.accepted(dataclasses.replace(parent, stopped=INTERNAL_ERROR))
            failed = FloorOrder.from_command(command, total)
            failed.end(Rejected(INTERNAL_ERROR))
            event = failed.event(EventKind.REJECTED, reason=INTERNAL_ERROR)
            detail = failure_detail(exc)
            await self._resumable(envelope, lambda: self._parent_unstarted(event, detail))
            return Outcome(command.command_id, INTERNAL_ERROR)
        return Outcome(command.command_id, None)

    async def _parent_unstarted(self, event: OrderEvent, detail: dict[str, object]) -> Outcome:
        log.error("iceberg %s not started: %s %s", event.command_id, INTERNAL_ERROR, detail)
        await self._record_durably(event)
        return Outcome(event.command_id, INTERNAL_ERROR)

    async def _control(self, envelope: SignedCommand, signer_agent: str, role: str, source: str) -> Outcome:
        command = envelope.command
        assert command.parent_id is not None
        parent = await self.parents.get(command.parent_id)
        taken = self.parents.taken(parent) if parent is not None else 0
        refusal = parents.control_refusal(command, parent, taken, signer_agent=signer_agent, signer_role=role)
        if refusal is not None:
            return await self._refuse(envelope, refusal, {"parent_id": command.parent_id, "taken": taken})
        assert parent is not None
        raised = command.kind is CommandKind.ICEBERG_AMEND and (command.quantity or 0) > parent.total
        if raised and (refused := await self._raised_total_refused(envelope, parent, taken)) is not None:
            return refused
        try:
            await self.ledger.append_accepted(envelope, 0, control_detail(parent, taken=taken))
        except RefusedByLedger as exc:
            return await self.refusals.by_ledger(exc, envelope, source)
        after = self.parents.apply(parent, command)
        await self._announce(control_record(after, command))
        return Outcome(command.command_id, None)

    async def _raised_total_refused(
        self, envelope: SignedCommand, parent: parents.Parent, taken: int
    ) -> Outcome | None:
        """An amend raising the total is a bigger parent: the position check the parent passed
        at entry (:func:`trading.risk.check_parent`) runs again, over what is not sliced yet
        (what the slices took is in the position and the working orders already)."""
        command = envelope.command
        assert command.quantity is not None
        profile = await self._profile(parent.account)
        if profile is None:
            return await self.refusals.floor(envelope, NO_PROFILE, {"account": parent.account})
        limit = command.limit_price if command.limit_price is not None else parent.limit_price
        fills = fill_range(
            parent.side, None, limit=limit, stop=None, touch=self._touch(parent.symbol, parent.side)
        )
        if fills is None:
            return await self.refusals.floor(envelope, NO_PRICE, {"symbol": parent.symbol})
        unsliced = command.quantity - taken
        decision = check_parent(
            profile,
            ProposedOrder(parent.symbol, parent.side, unsliced, fills.high),
            self._snapshot(parent.account, parent.symbol),
        )
        if decision.approved:
            return None
        assert decision.reason is not None
        detail = {"parent_id": parent.workflow_id, "taken": taken, "quantity": command.quantity}
        return await self.refusals.floor(envelope, decision.reason.value, detail)

    async def stop_icebergs_of(self, key_id: str) -> list[str]:
        """Stop every live iceberg ``key_id`` signed: pull its working slices, ledger an
        ``iceberg_cancel`` signed by the floor's control key, and tell the Iceberg. Returns the
        parents' workflow ids. Idempotent: the stop's command id derives from the parent."""
        stopped: list[str] = []
        for command_id in await self.ledger.icebergs_signed_by(key_id):
            parent = await self.parents.get(parents.parent_workflow_id(command_id))
            if parent is None or parents.done(parent, self.parents.taken(parent)):
                continue
            for order in self.parents.working_slices(parent):
                try:
                    self.broker.cancel(order.command_id)
                except UnknownOrderRef:
                    log.warning("stopping %s: broker does not know %s", parent.workflow_id, order.command_id)
            stopped.append(parent.workflow_id)
            if self.control_key is None:
                log.error(
                    "no %s key: %s's working slices were pulled but its stop is not ledgered and the"
                    " Iceberg not told; provision the key (`floor up` does) and restart the hot path",
                    FLOOR_CONTROL,
                    parent.workflow_id,
                )
                continue
            stop = Command(
                kind=CommandKind.ICEBERG_CANCEL,
                command_id=f"{parent.workflow_id}.stop",
                agent_id=FLOOR_CONTROL,
                account=parent.account,
                nonce=uuid.uuid4().hex,
                issued_at=utc_now_ms(),
                parent_id=parent.workflow_id,
            )
            envelope = sign_command(stop, self.control_key)
            detail = control_detail(parent, reason=parents.STOPPED_BY_REVOCATION, revoked_key=key_id)
            try:
                await self.ledger.append_accepted(envelope, 0, detail)
            except RefusedByLedger as exc:
                log.warning("stop of %s not ledgered again: %s", parent.workflow_id, exc)
                continue
            after = self.parents.apply(parent, stop)
            log.warning("stopped iceberg %s: key %s was revoked", parent.workflow_id, key_id)
            await self._announce(control_record(after, stop))
        return stopped
