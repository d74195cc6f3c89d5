from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from trading.breaker_trip import REASON_FLASH_CRASH, REASON_MANUAL, TripSummary, trip_summary
from trading.circuit_breaker_state import KIND_TRIPPED, TripRecord, TripRecordInvalid
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


def test_a_flash_crash_trip_reads_the_move_and_the_cancel_from_the_signed_record() -> None:
    signed = dataclasses.replace(RECORD, cancelled_orders=3, tick_to_cancel_us=Decimal("1234.5"))
    summary = trip_summary(KIND_TRIPPED, signed.canonical())
    assert summary == TripSummary(
        reason=REASON_FLASH_CRASH,
        symbol="AAPL",
        drop=Decimal("0.052"),  # a fraction, exactly: 5.2 %
        reference_price=Decimal("200.00"),
        price=Decimal("189.60"),
        cancelled_orders=3,
        cancel_millis=2,  # 1.2345 ms, rounded up: never reads faster than it was
    )
    assert TripRecord.from_canonical(signed.canonical()) == signed


def test_a_sub_millisecond_cancel_reads_as_one_ms_and_a_record_without_figures_leaves_them_null() -> None:
    fast = dataclasses.replace(RECORD, tick_to_cancel_us=Decimal("310.0"))
    summary = trip_summary(KIND_TRIPPED, fast.canonical())
    assert summary is not None and (summary.cancel_millis, summary.cancelled_orders) == (1, None)
    # A record signed before the cancel's figures were carried: the same bytes as then, still
    # read, its figures null (an unsigned detail is no source for them).
    assert b"cancel" not in RECORD.canonical()
    bare = trip_summary(KIND_TRIPPED, RECORD.canonical())
    assert bare is not None and (bare.symbol, bare.cancel_millis, bare.cancelled_orders) == (
        "AAPL",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cancelled_orders", "3"),
        ("cancelled_orders", -1),
        ("tick_to_cancel_us", 5),
        ("tick_to_cancel_us", "-1"),
    ],
)
def test_a_record_with_malformed_cancel_figures_is_refused(field: str, value: object) -> None:
    data = {**RECORD.to_json_dict(), field: value}
    with pytest.raises(TripRecordInvalid) as refused:
        TripRecord.from_json_dict(data)
    assert refused.value.field == field


def test_a_manual_trip_has_no_move_and_an_arm_is_no_trip() -> None:
    assert trip_summary(CommandKind.BREAKER_TRIP.value, b"{}") == TripSummary(REASON_MANUAL)
    assert trip_summary(CommandKind.BREAKER_ARM.value, b"{}") is None
