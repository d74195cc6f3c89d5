"""Order state rows: every ``orders.events`` record (broker callbacks) stored append-only.

:func:`record_order_event` is idempotent: the same ``event_id`` (Kafka redelivery) or the same
fill ``exec_id`` (a reconciliation re-reporting an execution) is stored once and the call says
whether this one was new. ``order_states`` (a view) gives the most advanced state per order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.db import Db
from trading.order_events import EventKind, Fill, OrderEvent

_INSERT = """
INSERT INTO order_events (event_id, command_id, parent_id, kind, account, symbol, agent_id, side, quantity,
                          filled_qty, avg_fill_price, exec_id, fill_qty, fill_price, reason, ts, limit_price,
                          tif, broker_order_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
ON CONFLICT DO NOTHING
RETURNING id
"""

_COLUMNS = (
    "event_id, command_id, parent_id, kind, account, symbol, agent_id, side, quantity, filled_qty,"
    " avg_fill_price, exec_id, fill_qty, fill_price, reason, ts, limit_price, tif, broker_order_id"
)


async def record_order_event(db: Db, event: OrderEvent) -> bool:
    """Store ``event``; False when it (or its execution) was already stored."""
    fill = event.last_fill
    new_id = await db.fetchval(
        _INSERT,
        event.event_id,
        event.command_id,
        event.parent_id,
        event.kind.value,
        event.account,
        event.symbol,
        event.agent_id,
        event.side,
        event.quantity,
        event.filled_qty,
        event.avg_fill_price,
        None if fill is None else fill.exec_id,
        None if fill is None else fill.qty,
        None if fill is None else fill.price,
        event.reason,
        event.ts,
        event.limit_price,
        event.tif,
        event.broker_order_id,
    )
    return new_id is not None


def _event(row: Any) -> OrderEvent:
    fill = None
    if row["exec_id"] is not None:
        fill = Fill(row["exec_id"], row["fill_qty"], row["fill_price"])
    return OrderEvent(
        event_id=row["event_id"],
        command_id=row["command_id"],
        parent_id=row["parent_id"],
        kind=EventKind(row["kind"]),
        account=row["account"],
        symbol=row["symbol"],
        agent_id=row["agent_id"],
        side=row["side"],
        quantity=row["quantity"],
        filled_qty=row["filled_qty"],
        avg_fill_price=row["avg_fill_price"],
        last_fill=fill,
        reason=row["reason"],
        ts=row["ts"],
        limit_price=row["limit_price"],
        tif=row["tif"],
        broker_order_id=row["broker_order_id"],
    )


async def order_state(db: Db, command_id: str) -> OrderEvent | None:
    """The most advanced stored event of the order, or None if none is stored."""
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM order_states WHERE command_id = $1", command_id)
    return None if row is None else _event(row)


async def order_history(db: Db, command_id: str) -> list[OrderEvent]:
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM order_events WHERE command_id = $1 ORDER BY id", command_id
    )
    return [_event(r) for r in rows]


async def open_orders(db: Db, account: str | None = None) -> list[OrderEvent]:
    """Orders whose most advanced state is not terminal (optionally for one account)."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM order_states"
        " WHERE kind NOT IN ('rejected', 'filled', 'cancelled', 'expired')"
        " AND ($1::text IS NULL OR account = $1) ORDER BY ts",
        account,
    )
    return [_event(r) for r in rows]


async def known_orders(db: Db, command_ids: Sequence[str]) -> set[str]:
    """Which of ``command_ids`` have order-state rows (the floor's orders, ended ones too)."""
    rows = await db.fetch(
        "SELECT DISTINCT command_id FROM order_events WHERE command_id = ANY($1::text[])", list(command_ids)
    )
    return {r["command_id"] for r in rows}
