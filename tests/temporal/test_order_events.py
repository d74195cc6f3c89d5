"""The ``orders.events`` schema: round trips exactly, refuses malformed records by name."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import order_event
from trading.order_events import EventKind, OrderEvent, OrderEventError, decode, encode
from trading.orders import Fill


def _event(**overrides: object) -> OrderEvent:
    """A record with every field set: the iceberg slice c-1 (300 AAPL), 100 filled."""
    fill = Fill("0001.01", 100, Decimal("187.255"))
    fields: dict[str, object] = dict(
        event_id="e-1", parent_id="iceberg-7", account="DU100", symbol="AAPL", agent_id="sniper",
        quantity=300, ts=datetime(2026, 11, 24, 14, 30, tzinfo=UTC), limit_price=Decimal("187.26"),
        tif="DAY", broker_order_id=42,
    )  # fmt: skip
    fields.update(overrides)
    return order_event("c-1", 1, EventKind.PARTIALLY_FILLED, 100, fill, **fields)


def test_round_trip_keeps_every_field_and_decimal_exactness() -> None:
    event = _event()
    assert decode(encode(event)) == event
    raw = json.loads(encode(event))
    assert raw["avg_fill_price"] == "187.255" and raw["last_fill"]["price"] == "187.255"


@given(
    filled=st.integers(min_value=0, max_value=1000),
    price=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("99999"), places=4),
)
def test_round_trip_property(filled: int, price: Decimal) -> None:
    event = _event(
        quantity=1000,
        filled_qty=filled,
        avg_fill_price=price,
        kind=EventKind.SUBMITTED,
        last_fill=None,
    )
    assert decode(encode(event)) == event


def test_unknown_keys_are_ignored_for_forward_compatibility() -> None:
    raw = json.loads(encode(_event()))
    raw["venue_latency_us"] = 12
    assert decode(json.dumps(raw)) == _event()


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("quantity", 1.5, "quantity"),
        ("quantity", True, "quantity"),
        ("avg_fill_price", 187.25, "avg_fill_price"),
        ("avg_fill_price", "NaN", "avg_fill_price"),
        ("kind", "exploded", "exploded"),
        ("ts", "yesterday", "ts"),
        ("event_id", None, "event_id"),
    ],
)
def test_malformed_field_is_refused_by_name(key: str, value: object, named: str) -> None:
    raw = json.loads(encode(_event()))
    raw[key] = value
    with pytest.raises(OrderEventError, match=named):
        decode(json.dumps(raw))


def test_inconsistent_events_are_refused() -> None:
    with pytest.raises(OrderEventError, match="filled_qty"):
        _event(filled_qty=301)
    with pytest.raises(OrderEventError, match="last_fill"):
        _event(last_fill=None)
    with pytest.raises(OrderEventError, match="filled event"):
        _event(kind=EventKind.FILLED, filled_qty=100)
    with pytest.raises(OrderEventError, match="side"):
        _event(side="buy")
    with pytest.raises(OrderEventError, match="timezone"):
        _event(ts=datetime(2026, 1, 1))
    with pytest.raises(OrderEventError, match="JSON"):
        decode(b"{not json")


def _parent(**overrides: object) -> OrderEvent:
    fields: dict[str, object] = dict(
        parent_id=None,
        kind=EventKind.ACCEPTED,
        filled_qty=0,
        avg_fill_price=None,
        last_fill=None,
        broker_order_id=None,
        iceberg_envelope='{"command":{"kind":"iceberg"},"signer":"k","signature":"00"}',
    )
    fields.update(overrides)
    return _event(**fields)


def test_an_iceberg_parent_record_round_trips_with_its_envelope() -> None:
    parent = _parent()
    assert parent.iceberg_parent
    assert decode(encode(parent)) == parent


def test_a_record_written_before_iceberg_envelope_existed_still_decodes() -> None:
    old = json.loads(encode(_event()))
    del old["iceberg_envelope"]
    event = decode(json.dumps(old))
    assert event.iceberg_envelope is None and not event.iceberg_parent
    assert event == _event()


@pytest.mark.parametrize(
    "overrides",
    [
        {"kind": EventKind.REJECTED, "reason": "risk.max_position"},
        {"parent_id": "iceberg-elsewhere"},
    ],
)
def test_an_iceberg_envelope_only_rides_on_an_accepted_parent_record(overrides: dict[str, object]) -> None:
    with pytest.raises(OrderEventError, match="iceberg_envelope"):
        _parent(**overrides)


def test_a_non_string_iceberg_envelope_is_refused_by_name() -> None:
    raw = json.loads(encode(_parent()))
    raw["iceberg_envelope"] = {"command": {}}
    with pytest.raises(OrderEventError, match="iceberg_envelope"):
        decode(json.dumps(raw))


def _cancelled(**overrides: object) -> OrderEvent:
    fields: dict[str, object] = dict(
        kind=EventKind.CANCELLED, last_fill=None, reason="broker.cancelled", broker_filled_qty=160
    )
    fields.update(overrides)
    return _event(**fields)


def test_a_cancel_that_raced_a_fill_round_trips_with_what_the_broker_said_had_filled() -> None:
    event = _cancelled()
    assert (event.filled_qty, event.broker_filled_qty) == (100, 160)
    assert decode(encode(event)) == event
    old = json.loads(encode(_event()))
    del old["broker_filled_qty"]  # written before the field existed
    assert decode(json.dumps(old)).broker_filled_qty is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"kind": EventKind.SUBMITTED, "reason": None},  # only a terminal record carries it
        {"broker_filled_qty": 301},  # more than the order
        {"broker_filled_qty": -1},
    ],
)
def test_broker_filled_qty_out_of_place_is_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(OrderEventError, match="broker_filled_qty"):
        _cancelled(**overrides)


def test_a_non_integer_broker_filled_qty_is_refused_by_name() -> None:
    raw = json.loads(encode(_cancelled()))
    raw["broker_filled_qty"] = "160"
    with pytest.raises(OrderEventError, match="broker_filled_qty"):
        decode(json.dumps(raw))
