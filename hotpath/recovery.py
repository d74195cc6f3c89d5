"""Start-up recovery: the floor's order map from the ledger, and orders that were ledgered but
never reached the broker sent now.

An order whose newest state row is ``accepted`` was committed to the ledger and then the process
stopped before (or while) writing it to the broker. ``place`` is idempotent per ``order_ref``
(the command id), so sending it again is safe whether or not the broker got it the first time.
Orders that are working at the broker are only put back in the order map, so their callbacks
are recognised as the floor's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from brokers.base import BrokerOrder
from hotpath.account import AccountBook
from hotpath.floor_orders import FloorOrder
from ledger.db import Db
from ledger.order_events import open_orders, order_history, record_order_event
from trading.commands import Command, CommandInvalid, OrderType, Side
from trading.order_events import EventKind

log = logging.getLogger(__name__)

NOT_LEDGERED = "intake.not_ledgered"
"""An accepted state row with no accepted ledger entry behind it: never sent, now refused."""


@dataclass(frozen=True)
class Restored:
    working: int
    """Orders back in the map that the broker already has."""
    to_send: tuple[BrokerOrder, ...]
    """Accepted but possibly never sent: send each (idempotently) once the broker is up."""
    unsendable: tuple[str, ...]
    """Trailing stops accepted but not sent: their trail state is gone, so they are left for a
    trader to re-issue rather than sent at a stale stop."""
    refused: tuple[str, ...]
    """Accepted state rows without an accepted ledger entry: recorded as rejected now."""


async def restore_orders(db: Db, orders: dict[str, FloorOrder], book: AccountBook) -> Restored:
    working = 0
    to_send: list[BrokerOrder] = []
    unsendable: list[str] = []
    refused: list[str] = []
    for state in await open_orders(db):
        order = FloorOrder(
            command_id=state.command_id,
            agent_id=state.agent_id,
            account=state.account,
            symbol=state.symbol,
            side=Side(state.side),
            quantity=state.quantity,
            limit_price=state.limit_price,
            tif=state.tif,
            parent_id=state.parent_id,
            broker_order_id=state.broker_order_id,
        )
        for event in await order_history(db, state.command_id):
            if event.last_fill is not None:
                order.apply_fill(event.last_fill.exec_id, event.last_fill.qty, event.last_fill.price)
        orders[order.command_id] = order
        book.order_working(order.account, order.command_id)
        if state.kind is not EventKind.ACCEPTED:
            working += 1
            continue
        command = await _ledgered_command(db, state.command_id)
        if command is None:
            # Write-ahead: what the ledger does not hold never goes to the broker.
            order.done = True
            book.order_done(order.account, order.command_id)
            await record_order_event(db, order.event(EventKind.REJECTED, reason=NOT_LEDGERED))
            refused.append(state.command_id)
            continue
        if command.order_type is OrderType.TRAIL:
            log.error("trailing stop %s was accepted but not sent; re-issue it", state.command_id)
            unsendable.append(state.command_id)
            continue
        to_send.append(
            BrokerOrder(
                order_ref=command.command_id,
                account=command.account,
                symbol=order.symbol,
                side=order.side,
                quantity=order.quantity,
                order_type=command.order_type or OrderType.LMT,
                tif=command.tif or BrokerOrder.tif,
                limit_price=command.limit_price,
                stop_price=command.stop_price,
                trailing_amount=command.trail_amount,
                trailing_percent=command.trail_percent,
            )
        )
    return Restored(working, tuple(to_send), tuple(unsendable), tuple(refused))


async def _ledgered_command(db: Db, command_id: str) -> Command | None:
    payload = await db.fetchval(
        "SELECT payload FROM ledger_entries"
        " WHERE command_id = $1 AND authenticated AND decision = 'accepted'",
        command_id,
    )
    if payload is None:
        return None
    try:
        return Command.from_json_dict(json.loads(bytes(payload)))
    except (CommandInvalid, ValueError) as exc:
        log.error("ledger entry of %s does not decode as a command: %s", command_id, exc)
        return None
