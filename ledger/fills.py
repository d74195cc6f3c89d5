"""Every execution the order-state rows hold, oldest first, as positions need them."""

from __future__ import annotations

from collections.abc import Iterable

from ledger.db import Db
from trading.commands import Side
from trading.positions import PositionFill


async def fills_of(db: Db, accounts: Iterable[str] | None = None) -> list[tuple[str, PositionFill]]:
    """``(exec_id, fill)`` of ``accounts`` (None: every account) in the order they were stored.
    Each execution is stored once (``exec_id`` is unique), so none counts twice."""
    rows = await db.fetch(
        "SELECT exec_id, account, symbol, side, fill_qty, fill_price FROM order_events"
        " WHERE exec_id IS NOT NULL AND ($1::text[] IS NULL OR account = ANY($1::text[])) ORDER BY id",
        None if accounts is None else sorted(accounts),
    )
    return [
        (
            r["exec_id"],
            PositionFill(r["account"], r["symbol"], Side(r["side"]), r["fill_qty"], r["fill_price"]),
        )
        for r in rows
    ]
