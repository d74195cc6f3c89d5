"""``cancel`` and ``cancel_all`` commands through intake, once the sentry let them in: ledgered,
then sent to the broker. A floor service key may cancel only what its agent may (a DAY order
whose session closed, for the lifecycle's canceller: :mod:`trading.iceberg_parents`).

A cancel always ends in a named outcome:

* the floor has no order by that id on the account: refused, ``intake.unknown_order`` (a
  ledger entry; the floor's order map holds every order working at the broker, rebuilt at
  start-up from the ledger, the order events and the broker's open orders). When no order of
  the floor ever had that id it is also a warning-level security event, recorded and published
  on ``security.events``: the signer is confused (or worse) about what it trades;
* the order has ended already (filled, cancelled, rejected, expired): refused,
  :data:`ORDER_ENDED`, its state named in the entry's detail (its end is on its own record);
* the floor holds the order as working but the broker has no order under its ``orderRef``
  (the adapter knows every order it placed or found open at the broker): the order is working
  nowhere. It ends ``cancelled`` with reason :data:`UNKNOWN_AT_BROKER`, a state row and an
  ``orders.events`` record, as reconciliation ends an order the broker no longer has; a fill
  that surfaces later still counts (the order machine takes a fill after a cancel).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from brokers.base import UnknownOrderRef
from hotpath.floor_orders import FloorOrder
from hotpath.intake_steps import IntakeSteps
from hotpath.outcomes import Outcome
from hotpath.ports import RefusedByLedger
from hotpath.refusals import envelope_event
from trading import iceberg_parents as parents
from trading.order_events import EventKind
from trading.orders import Cancelled
from trading.signing import SignedCommand

log = logging.getLogger(__name__)

UNKNOWN_ORDER = "intake.unknown_order"
ORDER_ENDED = "cancel.order_ended"
UNKNOWN_AT_BROKER = "cancel.unknown_at_broker"
"""The reason on the ``cancelled`` record of an order a cancel found working on the floor but
unknown to the broker (and the cancel's outcome)."""


class CancelCommands(IntakeSteps):
    async def _cancel(self, envelope: SignedCommand, source: str, role: str) -> Outcome:
        command = envelope.command
        target = command.target_command_id
        assert target is not None
        order = self.orders.get(target)
        if order is None or order.account != command.account:
            return await self._unknown_order(envelope, target)
        if role == parents.ROLE_SERVICE:
            closes = None if order.accepted_at is None else self.calendar.close_after(order.accepted_at)
            refusal = parents.floor_cancel_refusal(
                command.agent_id,
                self.floor_keys,
                target_is_slice=order.parent_id is not None,
                target_tif=order.tif,
                session_closed=closes is not None and datetime.now(UTC) >= closes,
            )
            if refusal is not None:
                detail: dict[str, object] = {
                    "target_command_id": target,
                    "tif": order.tif,
                    "session_close": str(closes),
                }
                return await self._refuse(envelope, refusal, detail)
        if order.done:
            ended: dict[str, object] = {"target_command_id": target, "state": order.machine.state.value}
            return await self.refusals.floor(envelope, ORDER_ENDED, ended)
        try:
            await self.ledger.append_accepted(envelope, 0, {"target_command_id": target})
        except RefusedByLedger as exc:
            return await self.refusals.by_ledger(exc, envelope, source)
        self._stop_trailing(order)
        try:
            self.broker.cancel(target)
        except UnknownOrderRef:
            await self._unknown_at_broker(order, command.command_id)
            return Outcome(command.command_id, UNKNOWN_AT_BROKER)
        return Outcome(command.command_id, None)

    async def _cancel_all(self, envelope: SignedCommand, source: str) -> Outcome:
        """Cancel the account's working orders (of one symbol, if named). Never the broker's
        global cancel: that reaches every account on the connection and belongs to the breaker."""
        command = envelope.command
        try:
            await self.ledger.append_accepted(envelope, 0, {"symbol": command.symbol})
        except RefusedByLedger as exc:
            return await self.refusals.by_ledger(exc, envelope, source)
        for order in list(self.orders.values()):
            if order.done or order.account != command.account:
                continue
            if command.symbol is not None and order.symbol != command.symbol:
                continue
            self._stop_trailing(order)
            try:
                self.broker.cancel(order.command_id)
            except UnknownOrderRef:
                await self._unknown_at_broker(order, command.command_id)
        return Outcome(command.command_id, None)

    def _stop_trailing(self, order: FloorOrder) -> None:
        """The floor cancels this order: it stops trailing it first, so the cancel's
        confirmation is not taken for a protective stop lost behind its back
        (:mod:`hotpath.stop_guard`)."""
        if self.exits is not None:
            self.exits.forget(order.symbol, order.command_id)

    async def _unknown_order(self, envelope: SignedCommand, target: str) -> Outcome:
        """Refuse a cancel of an order the floor does not have; one of an id no order of the
        floor ever had is a security event too (one of the floor's ended orders is not news)."""
        outcome = await self.refusals.floor(envelope, UNKNOWN_ORDER, {"target_command_id": target})
        if outcome.reason == UNKNOWN_ORDER and not await self.ledger.known_orders([target]):
            detail = f"cancel of {target}: no order of the floor has this id"
            await self.security.record(envelope_event(envelope, UNKNOWN_ORDER, "warning", detail))
        return outcome

    async def _unknown_at_broker(self, order: FloorOrder, cancel_id: str) -> None:
        """End ``order``, which the broker has no order for: it is working nowhere, and leaving
        it working in the map would let it count against the risk limits (and show working to
        every reader of the state rows) forever."""
        log.warning("cancel %s: the broker has no order %s; ended", cancel_id, order.command_id)
        if order.done:
            return
        order.end(Cancelled(UNKNOWN_AT_BROKER))
        self.book.order_done(order.account, order.command_id)
        if self.exits is not None:
            self.exits.forget(order.symbol, order.command_id)
        await self._publish(order.event(EventKind.CANCELLED, reason=UNKNOWN_AT_BROKER))
