"""Each account's net liquidation value as the hot path last had it from the broker (migration
0021): the bankroll the Kelly sizer sizes with. The hot path writes it every second while its
broker session is up, changed or not; the API reads it for the sizing suggestion a trader sees
before staging and refuses it once ``reported_at`` is too old."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ledger.db import Db


@dataclass(frozen=True)
class NetLiquidation:
    account: str
    value: Decimal
    reported_at: datetime
    """When the hot path last confirmed this value with a connected broker session (bumped
    every interval even when unchanged, so its age is the value's age)."""


async def record_net_liquidation(db: Db, account: str, value: Decimal, now: datetime) -> None:
    await db.execute(
        "INSERT INTO account_values (account, net_liquidation, reported_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (account) DO UPDATE SET net_liquidation = EXCLUDED.net_liquidation,"
        " reported_at = EXCLUDED.reported_at",
        account,
        value,
        now,
    )


async def net_liquidation(db: Db, account: str) -> NetLiquidation | None:
    """None until the hot path has had the account's value from the broker."""
    row = await db.fetchrow(
        "SELECT account, net_liquidation, reported_at FROM account_values WHERE account = $1", account
    )
    if row is None:
        return None
    return NetLiquidation(row["account"], row["net_liquidation"], row["reported_at"])
