"""Staged orders in Postgres (migration 0017): written once when staged, claimed once when
executed.

The claim is the guard against executing one staged order twice: :func:`claim` sets the
command id only where none is set yet, in one statement, so of two concurrent Executes exactly
one gets the row. :func:`release` undoes a claim whose command was never published.

A staged order lives ``ttl_s`` seconds from its ``created_at`` (both by the database's clock) and
may be discarded by its session; neither an expired nor a discarded one can be claimed, and
:func:`open_staged` lists only live ones.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.db import Db
from trading.commands import OrderType, Side, TimeInForce
from trading.step_up import OrderTerms


@dataclass(frozen=True)
class StagedOrder:
    staged_id: str
    trader: str
    session_id: str
    terms: OrderTerms
    order_hash: str
    created_at: datetime
    command_id: str | None
    """Set once the order was executed (claimed): the id of the command it became."""
    discarded_at: datetime | None = None
    expired: bool = False
    """Older than the lifetime it was loaded with (by the database's clock)."""


def new_staged_id() -> str:
    return f"stg-{secrets.token_urlsafe(12)}"


async def insert_staged(
    db: Db, trader: str, session_id: str, terms: OrderTerms, order_hash: str
) -> StagedOrder:
    staged_id = new_staged_id()
    row = await db.fetchrow(
        "INSERT INTO staged_orders (id, trader, session_id, account, symbol, side, order_type, quantity,"
        " tif, limit_price, stop_price, stop_loss, order_hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING *",
        staged_id, trader, session_id, terms.account, terms.symbol, terms.side.value,
        terms.order_type.value, terms.quantity, terms.tif.value, terms.limit_price, terms.stop_price,
        terms.stop_loss, order_hash,
    )  # fmt: skip
    return _staged(row)


_LIVE = "command_id IS NULL AND discarded_at IS NULL AND created_at > now() - make_interval(secs => {})"


async def load_staged(db: Db, staged_id: str, ttl_s: int) -> StagedOrder | None:
    row = await db.fetchrow(
        "SELECT *, created_at <= now() - make_interval(secs => $2) AS expired FROM staged_orders"
        " WHERE id = $1",
        staged_id,
        ttl_s,
    )
    return None if row is None else _staged(row)


async def open_staged(db: Db, trader: str, session_id: str, limit: int, ttl_s: int) -> list[StagedOrder]:
    """The session's live staged orders (not executed, discarded or expired), newest first, at
    most ``limit``."""
    rows = await db.fetch(
        "SELECT * FROM staged_orders WHERE trader = $1 AND session_id = $2 AND "
        + _LIVE.format("$4")
        + " ORDER BY created_at DESC, id LIMIT $3",
        trader,
        session_id,
        limit,
        ttl_s,
    )
    return [_staged(r) for r in rows]


async def claim(db: Db, staged_id: str, command_id: str, ttl_s: int) -> bool:
    """Mark the staged order executed as ``command_id``; False when it already was, or was
    discarded or expired meanwhile."""
    claimed = await db.fetchval(
        "UPDATE staged_orders SET command_id = $2, executed_at = now() WHERE id = $1 AND "
        + _LIVE.format("$3")
        + " RETURNING id",
        staged_id,
        command_id,
        ttl_s,
    )
    return claimed is not None


async def discard(db: Db, staged_id: str, trader: str, session_id: str) -> bool:
    """Discard the session's own staged order unless it was executed; True when it is (now or
    already) discarded."""
    # floor_discard_staged (migration 0021): the API's role cannot set discarded_at itself, so it
    # can never un-discard one.
    discarded = await db.fetchval("SELECT floor_discard_staged($1, $2, $3)", staged_id, trader, session_id)
    return bool(discarded)


async def release(db: Db, staged_id: str, command_id: str) -> None:
    """Undo :func:`claim` for a command that was never published."""
    await db.execute(
        "UPDATE staged_orders SET command_id = NULL, executed_at = NULL WHERE id = $1 AND command_id = $2",
        staged_id,
        command_id,
    )


def _staged(row: Any) -> StagedOrder:
    return StagedOrder(
        staged_id=row["id"],
        trader=row["trader"],
        session_id=row["session_id"],
        terms=OrderTerms(
            account=row["account"],
            symbol=row["symbol"],
            side=Side(row["side"]),
            order_type=OrderType(row["order_type"]),
            quantity=row["quantity"],
            tif=TimeInForce(row["tif"]),
            limit_price=row["limit_price"],
            stop_price=row["stop_price"],
            stop_loss=row["stop_loss"],
        ),
        order_hash=row["order_hash"],
        created_at=row["created_at"],
        command_id=row["command_id"],
        discarded_at=row["discarded_at"],
        expired=bool(row.get("expired", False)),
    )
