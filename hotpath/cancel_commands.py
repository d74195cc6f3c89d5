"""``cancel`` and ``cancel_all`` commands through intake, once the sentry let them in: ledgered,
then sent to the broker. A floor service key may cancel only what its agent may (a DAY order
whose session closed, for the lifecycle's canceller: :mod:`trading.iceberg_parents`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from brokers.base import UnknownOrderRef
from hotpath.intake_steps import IntakeSteps
from hotpath.outcomes import Outcome
from hotpath.ports import RefusedByLedger
from trading import iceberg_parents as parents
from trading.signing import SignedCommand

log = logging.getLogger(__name__)

UNKNOWN_ORDER = "intake.unknown_order"


class CancelCommands(IntakeSteps):
    async def _cancel(self, envelope: SignedCommand, source: str, role: str) -> Outcome:
        command = envelope.command
        target = command.target_command_id
        assert target is not None
        order = self.orders.get(target)
        if order is None or order.account != command.account:
            return await self.refusals.floor(envelope, UNKNOWN_ORDER, {"target_command_id": target})
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
        try:
            await self.ledger.append_accepted(envelope, 0, {"target_command_id": target})
        except RefusedByLedger as exc:
            return await self.refusals.by_ledger(exc, envelope, source)
        try:
            self.broker.cancel(target)
        except UnknownOrderRef:
            return Outcome(command.command_id, UNKNOWN_ORDER)
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
            try:
                self.broker.cancel(order.command_id)
            except UnknownOrderRef:
                log.warning("cancel_all: broker does not know %s", order.command_id)
        return Outcome(command.command_id, None)
