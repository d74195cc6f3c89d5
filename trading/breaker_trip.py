"""What a trip of the circuit breaker did, as a trader's banner shows it, read from its ledger
entry's signed trip record alone: the move (symbol, reference high, price, drop) and what the
cancel did (how many orders, how fast). The entry's detail repeats them for people reading the
ledger but is signed by nobody, so none of the banner comes from it; a record written before the
cancel's figures were signed shows them null.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal

from trading.circuit_breaker_state import KIND_TRIPPED, TripRecord, TripRecordInvalid
from trading.commands import CommandKind

REASON_FLASH_CRASH = "flash_crash"
"""The floor's own breaker saw a symbol fall by its threshold."""
REASON_MANUAL = "manual"
"""An operator or a signed-in trader tripped it (a signed ``breaker_trip``): no move behind it."""
REASON_UNVERIFIED = "unverified_entry"
"""The newest breaker entry does not verify: the floor halts on it, and believes none of it."""


@dataclass(frozen=True)
class TripSummary:
    reason: str
    symbol: str | None = None
    drop: Decimal | None = None
    """A fraction: ``Decimal("0.052")`` is a 5.2 % fall from the reference high."""
    reference_price: Decimal | None = None
    price: Decimal | None = None
    cancelled_orders: int | None = None
    """The floor's orders working when the global cancel went out."""
    cancel_millis: int | None = None
    """From the crashing tick to the global cancel on the broker's socket, rounded up."""


def trip_summary(kind: str, payload: bytes) -> TripSummary | None:
    """The summary of a breaker entry that halted the floor; None for any other entry."""
    if kind == CommandKind.BREAKER_TRIP.value:
        return TripSummary(REASON_MANUAL)
    if kind != KIND_TRIPPED:
        return None
    try:
        record = TripRecord.from_json_dict(json.loads(payload))
    except (ValueError, RecursionError, TripRecordInvalid):
        return TripSummary(REASON_FLASH_CRASH)
    return TripSummary(
        reason=REASON_FLASH_CRASH,
        symbol=record.symbol,
        drop=record.drop_pct.scaleb(-2),
        reference_price=record.reference_high,
        price=record.price,
        cancelled_orders=record.cancelled_orders,
        cancel_millis=_millis(record.tick_to_cancel_us),
    )


def _millis(micros: Decimal | None) -> int | None:
    """Whole milliseconds, rounded up: a cancel written after 0.3 ms reads "within 1 ms", never
    "0 ms"."""
    return None if micros is None else math.ceil(micros / 1000)
