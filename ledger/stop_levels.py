"""Each trailing stop's newest level (migration 0022): written by the hot path as its Exit Manager
moves a stop (coalesced, in the background), read at start-up to trail on from where the stop
stood rather than from where it was first sent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ledger.db import Db
from trading.commands import Side


@dataclass(frozen=True)
class StopLevel:
    command_id: str
    account: str
    symbol: str
    side: Side
    """The stop order's side: SELL protects a long."""
    stop: Decimal
    best_price: Decimal | None
    """The best price the Exit Manager had seen for it (highest for a SELL stop)."""
    trail_amount: Decimal | None
    trail_percent: Decimal | None
    tick: Decimal
    bound: Decimal | None
    updated_at: datetime
    moves: int = 0


async def write_stop_levels(db: Db, levels: Sequence[StopLevel]) -> None:
    """Upsert ``levels`` (one per command id) in one statement; a row's identity and trailing
    rule are written once, its level overwritten."""
    if not levels:
        return
    await db.execute(
        "INSERT INTO stop_levels (command_id, account, symbol, side, stop, best_price, trail_amount,"
        " trail_percent, tick, bound, moves, updated_at)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[],"
        " $6::numeric[], $7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[], $11::int[],"
        " $12::timestamptz[])"
        " ON CONFLICT (command_id) DO UPDATE SET stop = EXCLUDED.stop, best_price = EXCLUDED.best_price,"
        " bound = EXCLUDED.bound, moves = EXCLUDED.moves, updated_at = EXCLUDED.updated_at",
        [lv.command_id for lv in levels],
        [lv.account for lv in levels],
        [lv.symbol for lv in levels],
        [lv.side.value for lv in levels],
        [lv.stop for lv in levels],
        [lv.best_price for lv in levels],
        [lv.trail_amount for lv in levels],
        [lv.trail_percent for lv in levels],
        [lv.tick for lv in levels],
        [lv.bound for lv in levels],
        [lv.moves for lv in levels],
        [lv.updated_at for lv in levels],
    )


async def stop_levels(db: Db, command_ids: Sequence[str]) -> dict[str, StopLevel]:
    """The persisted level of each of ``command_ids`` that has one."""
    rows = await db.fetch(
        "SELECT command_id, account, symbol, side, stop, best_price, trail_amount, trail_percent, tick,"
        " bound, moves, updated_at FROM stop_levels WHERE command_id = ANY($1::text[])",
        list(command_ids),
    )
    return {
        r["command_id"]: StopLevel(
            command_id=r["command_id"],
            account=r["account"],
            symbol=r["symbol"],
            side=Side(r["side"]),
            stop=r["stop"],
            best_price=r["best_price"],
            trail_amount=r["trail_amount"],
            trail_percent=r["trail_percent"],
            tick=r["tick"],
            bound=r["bound"],
            updated_at=r["updated_at"],
            moves=r["moves"],
        )
        for r in rows
    }
