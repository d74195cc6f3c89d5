"""What a trip of the circuit breaker did, as a trader's banner shows it, read from its ledger
entry: the move from the signed trip record (symbol, reference high, price, drop), and what the
cancel did from the entry's detail (how many orders, how fast), which the hot path adds when it
ledgers the trip.

The signed payload is the authority for the move; the detail is covered by the ledger's hash
chain but signed by nobody, so it only ever adds the cancel's figures.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

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


def trip_summary(kind: str, payload: bytes, detail: str | None) -> TripSummary | None:
    """The summary of a breaker entry that halted the floor; None for any other entry."""
    if kind == CommandKind.BREAKER_TRIP.value:
        return TripSummary(REASON_MANUAL)
    if kind != KIND_TRIPPED:
        return None
    try:
        record = TripRecord.from_json_dict(json.loads(payload))
    except (ValueError, RecursionError, TripRecordInvalid):
        return TripSummary(REASON_FLASH_CRASH)
    extra = _detail(detail)
    return TripSummary(
        reason=REASON_FLASH_CRASH,
        symbol=record.symbol,
        drop=record.drop_pct.scaleb(-2),
        reference_price=record.reference_high,
        price=record.price,
        cancelled_orders=_count(extra.get("cancelled_orders")),
        cancel_millis=_millis(extra.get("tick_to_cancel_us")),
    )


def _detail(detail: str | None) -> dict[str, Any]:
    if detail is None:
        return {}
    try:
        data = json.loads(detail)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _count(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _millis(value: Any) -> int | None:
    """Microseconds (a decimal string) as whole milliseconds, rounded up: a cancel written after
    0.3 ms reads "within 1 ms", never "0 ms"."""
    if not isinstance(value, str):
        return None
    try:
        micros = Decimal(value)
    except InvalidOperation:
        return None
    if not micros.is_finite() or micros < 0:
        return None
    return math.ceil(micros / 1000)
