"""The breaker's ledger vocabulary: which entries halt and which re-arm, and the automatic
trip's signed record (exact decimals, floor-wide, nothing unsigned riding along)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.ledger.helpers import trip_record
from trading.circuit_breaker_state import KIND_TRIPPED, TripRecord, TripRecordInvalid, state_after
from trading.risk import TradingState


def test_trips_halt_and_only_an_arm_re_arms() -> None:
    assert state_after(KIND_TRIPPED) is TradingState.HALTED
    assert state_after("breaker_trip") is TradingState.HALTED
    assert state_after("breaker_arm") is TradingState.ACTIVE
    with pytest.raises(ValueError, match="not a breaker entry"):
        state_after("enter")


def test_a_trip_record_names_the_move_exactly_and_round_trips_through_its_signed_bytes() -> None:
    record = trip_record("floor-breaker")
    record = TripRecord(**{**record.__dict__, "drop_pct": Decimal(30) / Decimal(7)})
    data = json.loads(record.canonical())
    assert (data["account"], data["kind"], data["symbol"]) == ("*", KIND_TRIPPED, "AAPL")
    assert data["drop_pct"] == "4.285714285714285714285714286"  # as computed, not rounded to show
    assert TripRecord.from_canonical(record.canonical()) == record


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"account": "DU1"}, "account"),
        ({"note": "x"}, "note"),
        ({"price": 170.5}, "price"),
        ({"window_ms": 0}, "window_ms"),
        ({"issued_at": "yesterday"}, "issued_at"),
        ({"kind": "breaker_arm"}, "kind"),
    ],
)
def test_a_trip_record_that_does_not_parse_names_the_field(change: dict[str, object], field: str) -> None:
    data = trip_record("floor-breaker").to_json_dict() | change
    with pytest.raises(TripRecordInvalid) as err:
        TripRecord.from_json_dict(data)
    assert err.value.field == field
