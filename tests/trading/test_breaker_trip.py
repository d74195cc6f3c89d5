from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from trading.breaker_trip import REASON_FLASH_CRASH, REASON_MANUAL, TripSummary, trip_summary
from trading.circuit_breaker_state import KIND_TRIPPED, TripRecord
from trading.commands import CommandKind

RECORD = TripRecord(
    command_id="trip-1",
    agent_id="floor-breaker",
    nonce="n",
    issued_at=datetime(2026, 12, 5, 9, 0, tzinfo=UTC),
    symbol="AAPL",
    reference_high=Decimal("200.00"),
    price=Decimal("189.60"),
    drop_pct=Decimal("5.2"),
    threshold_pct=Decimal("5"),
    window_ms=60_000,
)


def test_a_flash_crash_trip_reads_the_move_from_the_signed_record_and_the_cancel_from_the_detail() -> None:
    detail = json.dumps(
        {"symbol": "AAPL", "drop_pct": "5.2", "tick_to_cancel_us": "1234.5", "cancelled_orders": 3}
    )
    summary = trip_summary(KIND_TRIPPED, RECORD.canonical(), detail)
    assert summary == TripSummary(
        reason=REASON_FLASH_CRASH,
        symbol="AAPL",
        drop=Decimal("0.052"),  # a fraction, exactly: 5.2 %
        reference_price=Decimal("200.00"),
        price=Decimal("189.60"),
        cancelled_orders=3,
        cancel_millis=2,  # 1.2345 ms, rounded up: never reads faster than it was
    )


def test_a_sub_millisecond_cancel_reads_as_one_ms_and_a_detail_without_figures_leaves_them_null() -> None:
    fast = trip_summary(KIND_TRIPPED, RECORD.canonical(), json.dumps({"tick_to_cancel_us": "310.0"}))
    assert fast is not None and (fast.cancel_millis, fast.cancelled_orders) == (1, None)
    bare = trip_summary(KIND_TRIPPED, RECORD.canonical(), None)
    assert bare is not None and (bare.symbol, bare.cancel_millis, bare.cancelled_orders) == (
        "AAPL",
        None,
        None,
    )
    odd = trip_summary(
        KIND_TRIPPED, RECORD.canonical(), json.dumps({"cancelled_orders": "3", "tick_to_cancel_us": 5})
    )
    assert odd is not None and (odd.cancelled_orders, odd.cancel_millis) == (None, None)


def test_a_manual_trip_has_no_move_and_an_arm_is_no_trip() -> None:
    assert trip_summary(CommandKind.BREAKER_TRIP.value, b"{}", None) == TripSummary(REASON_MANUAL)
    assert trip_summary(CommandKind.BREAKER_ARM.value, b"{}", None) is None
