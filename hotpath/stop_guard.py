"""A stop that ends without the floor asking is reported and placed again.

Trailing exits protect positions: the desk's, and the floor's own (:mod:`hotpath.protective_stops`).
One can end at the broker for reasons the floor did not choose: the broker rejects it, someone
cancels it behind the floor's back (an operator in TWS, another API client, the broker's own
risk desk), or the broker no longer lists it at a reconnect (:mod:`hotpath.reconciler` ends
it). The floor's own cancels (a signed ``cancel`` or ``cancel_all``, a protective stop
withdrawn) stop its trailing first, so what reaches :meth:`StopGuard.on_done` still tracked
ended without the floor asking.

For each such stop with shares left to protect (``quantity - filled``):

* ops event ``exits.stop_lost`` (critical): the order, why it ended, its last level;
* a new trailing ``exit`` at that level with the same rule, signed by the floor's control key
  (``floor-control``, which may sign exactly this: a reduce-only STP or TRAIL exit) and sent on
  ``agent.commands``, so intake decides it like any command (the sentry, the risk gate's
  reduce-only rule, the ledger entry committed before the broker sees it). A desk's stop is
  replaced by ``<its id>.restop<n>`` for the same quantity; one of the floor's own by whatever
  its position needs now (:meth:`~hotpath.protective_stops.ProtectiveStops.lost`);
* ops event ``exits.stop_replaced`` (warning) naming the new command id; ``exits.unprotected``
  (critical, with what to do) if it cannot be sent or is not working a few seconds later, while
  the breaker has the floor halted (its global cancel took the stop), and after
  :data:`MAX_REPLACEMENTS` replacements of one desk stop (a broker that keeps refusing it).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from bus.command_keys import command_key
from bus.topics import AGENT_COMMANDS
from hotpath.exit_manager import ExitManager
from hotpath.floor_orders import FloorOrder
from hotpath.protective_stops import UNPROTECTED, ProtectiveStops, StopRule
from trading.commands import Command, CommandKind, OrderType, TimeInForce, utc_now_ms
from trading.orders import OrderState
from trading.signing import SignedCommand
from trading.trailing import TrailingStop

log = logging.getLogger(__name__)

STOP_LOST = "exits.stop_lost"

MAX_REPLACEMENTS = 3
_GENERATION = re.compile(r"^(?P<root>.+)\.restop(?P<n>[0-9]+)$")

RecordOps = Callable[[str, str, Mapping[str, Any]], None]


def replacement_id(command_id: str) -> tuple[str, int]:
    """The id of the stop that replaces ``command_id``, and which replacement it is (1, 2, ...)."""
    match = _GENERATION.match(command_id)
    root, n = (match["root"], int(match["n"])) if match else (command_id, 0)
    return f"{root}.restop{n + 1}", n + 1


def replacement(order: FloorOrder, trailing: TrailingStop, agent_id: str, command_id: str) -> Command:
    """The exit that carries on protecting what ``order`` protected, from its last level."""
    return Command(
        kind=CommandKind.EXIT,
        command_id=command_id,
        agent_id=agent_id,
        account=order.account,
        nonce=uuid.uuid4().hex,
        issued_at=utc_now_ms(),
        symbol=order.symbol,
        side=order.side,
        order_type=OrderType.TRAIL,
        stop_price=trailing.stop,
        trail_amount=trailing.trail_amount,
        trail_percent=trailing.trail_percent,
        tif=TimeInForce(order.tif) if order.tif else TimeInForce.GTC,
        quantity=order.quantity - order.filled_qty,
    )


async def send_command(producer: Any, envelope: SignedCommand) -> None:
    """Produce ``envelope`` to ``agent.commands`` keyed as every producer keys it (by account: the
    hot path that owns the account, the one that saw the fill, decides it) and wait for the
    broker's acknowledgement."""
    await producer.send_and_wait(AGENT_COMMANDS, envelope.to_wire(), key=command_key(envelope.command))


class StopGuard:
    def __init__(self, exits: ExitManager, protector: ProtectiveStops, record_ops: RecordOps) -> None:
        self._exits = exits
        self._protector = protector
        self._record_ops = record_ops

    def on_done(self, order: FloorOrder) -> None:
        """An order ended (called from the broker's callbacks): stop trailing it and, if it was
        a stop the floor did not end, report it and have it placed again."""
        trailing = self._exits.trailing_of(order.symbol, order.command_id)
        self._exits.forget(order.symbol, order.command_id)
        state = order.machine.state
        if trailing is None or not order.reduce_only or state is OrderState.FILLED:
            return
        remaining = order.quantity - order.filled_qty
        if remaining <= 0:
            return
        detail: dict[str, Any] = {
            "command_id": order.command_id,
            "account": order.account,
            "symbol": order.symbol,
            "side": order.side.value,
            "state": state.value,
            "reason": order.machine.reason,
            "stop": str(trailing.stop),
            "unprotected_qty": remaining,
        }
        self._record_ops(STOP_LOST, "critical", detail)
        rule = StopRule(trailing.stop, trailing.trail_amount, trailing.trail_percent, order.command_id)
        if order.protective:
            # The floor's own: its position is protected again from the lost stop's level.
            self._protector.lost(order, rule)
            return
        new_id, n = replacement_id(order.command_id)
        if n > MAX_REPLACEMENTS:
            why = f"lost after {MAX_REPLACEMENTS} replacements: find why the broker ends it; place it by hand"
            self._record_ops(UNPROTECTED, "critical", {**detail, "advice": why})
            return
        self._protector.replace(replacement(order, trailing, self._protector.agent_id, new_id), detail)
