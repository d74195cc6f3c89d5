"""Order state rows: every ``orders.events`` record (broker callbacks) stored append-only.

:func:`record_order_event` is idempotent: the same ``event_id`` (Kafka redelivery) or the same
fill ``exec_id`` (a reconciliation re-reporting an execution) is stored once and the call says
whether this one was new. An order's state is its rows folded in the order they were stored by
:func:`trading.order_state.order_state`, the one rule every reader uses (the database keeps no
copy of it: migration 0015 dropped the ``order_states`` view, whose rule differed).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import Any

from ledger.db import Db
from trading.order_events import EventKind, OrderEvent
from trading.order_state import OrderView
from trading.order_state import order_state as fold
from trading.orders import Fill

_INSERT = """
INSERT INTO order_events (event_id, command_id, parent_id, kind, account, symbol, agent_id, side, quantity,
                          filled_qty, avg_fill_price, exec_id, fill_qty, fill_price, reason, ts, limit_price,
                          tif, broker_order_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
ON CONFLICT DO NOTHING
RETURNING id
"""

COLUMNS = (
    "event_id",
    "command_id",
    "parent_id",
    "kind",
    "account",
    "symbol",
    "agent_id",
    "side",
    "quantity",
    "filled_qty",
    "avg_fill_price",
    "exec_id",
    "fill_qty",
    "fill_price",
    "reason",
    "ts",
    "limit_price",
    "tif",
    "broker_order_id",
)
"""The columns :func:`event_from_row` reads."""
_COLUMNS = ", ".join(COLUMNS)


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


def event_from_row(row: Any) -> OrderEvent:
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
    """The record that stands for the order's state (with any fill counted after it, such as a
    late fill after a cancel, in its figures), or None if no row is stored."""
    view = fold(await order_history(db, command_id))
    return None if view is None else view.state_record()


async def order_history(db: Db, command_id: str) -> list[OrderEvent]:
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM order_events WHERE command_id = $1 ORDER BY id", command_id
    )
    return [event_from_row(r) for r in rows]


_MAYBE_OPEN = f"""
SELECT {_COLUMNS} FROM order_events
WHERE command_id IN (
    SELECT command_id FROM order_events
    WHERE $1::text IS NULL OR account = $1
    GROUP BY command_id
    HAVING bool_and(kind NOT IN ('filled', 'cancelled', 'expired')) AND bool_or(kind <> 'rejected'))
ORDER BY command_id, id
"""
"""The rows of every order that may be open; the fold decides. An order with a filled,
cancelled or expired row is over whatever else it holds (the machine leaves an end state only
for FILLED), and one with only rejected rows never started: neither needs folding."""


async def open_orders(db: Db, account: str | None = None) -> list[OrderEvent]:
    """The state records of the orders whose state is not terminal (optionally of one account),
    oldest state first."""
    states = []
    for view in _folded(await db.fetch(_MAYBE_OPEN, account)):
        record = None if view.terminal else view.state_record()
        if record is not None and (account is None or record.account == account):
            states.append(record)
    return sorted(states, key=lambda e: e.ts)


async def orders_of_parent(db: Db, parent_id: str) -> list[OrderView]:
    """Every child order of ``parent_id`` (an iceberg's slices) the rows know, each folded."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM order_events WHERE parent_id = $1 ORDER BY command_id, id", parent_id
    )
    return _folded(rows)


def _folded(rows: Sequence[Any]) -> list[OrderView]:
    """Rows ordered by command id, then by id: each order's rows folded into its view."""
    groups = groupby(rows, key=lambda r: r["command_id"])
    views = (fold(event_from_row(r) for r in group) for _, group in groups)
    return [view for view in views if view is not None]


async def known_orders(db: Db, command_ids: Sequence[str]) -> set[str]:
    """Which of ``command_ids`` have order-state rows (the floor's orders, ended ones too)."""
    rows = await db.fetch(
        "SELECT DISTINCT command_id FROM order_events WHERE command_id = ANY($1::text[])", list(command_ids)
    )
    return {r["command_id"] for r in rows}
