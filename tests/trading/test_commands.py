from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.commands import (
    FLOOR_WIDE,
    Command,
    CommandInvalid,
    CommandKind,
    Edge,
    OrderType,
    Side,
    TimeInForce,
    canonical_bytes,
)

ISSUED = datetime(2026, 11, 24, 4, 48, 34, 123000, tzinfo=UTC)


def enter_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "v": 1,
        "kind": "enter",
        "command_id": "cmd-1",
        "agent_id": "alpha",
        "account": "DU100",
        "nonce": "n-1",
        "issued_at": "2026-11-24T04:48:34.123Z",
        "symbol": "AAPL",
        "side": "BUY",
        "order_type": "LMT",
        "limit_price": "189.50",
        "edge": {"p": "0.55", "b": "1.5", "stop_price": "185"},
        "tif": "DAY",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_enter_round_trips_through_json_with_decimal_strings() -> None:
    data = enter_dict()
    command = Command.from_json_dict(data)
    assert command.limit_price == Decimal("189.50")
    assert command.edge == Edge(Decimal("0.55"), Decimal("1.5"), Decimal("185"))
    assert command.side is Side.BUY and command.order_type is OrderType.LMT
    assert command.issued_at == ISSUED
    assert command.to_json_dict() == data
    assert command.issued_at_ms == 1795495714123


def test_canonical_bytes_are_rfc8785_sorted_and_compact() -> None:
    command = Command.from_json_dict(enter_dict())
    raw = canonical_bytes(command)
    assert raw == rfc8785.dumps(enter_dict())
    assert raw.startswith(b'{"account":"DU100","agent_id":"alpha","command_id":"cmd-1","edge":{"b":"1.5"')
    # Key order of the input does not matter.
    shuffled = dict(reversed(list(enter_dict().items())))
    assert canonical_bytes(Command.from_json_dict(shuffled)) == raw


def test_trailing_zeros_are_kept_so_the_signed_bytes_survive() -> None:
    a = Command.from_json_dict(enter_dict(limit_price="189.5"))
    b = Command.from_json_dict(enter_dict(limit_price="189.50"))
    assert canonical_bytes(a) != canonical_bytes(b)
    assert b.to_json_dict()["limit_price"] == "189.50"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"limit_price": 189.5}, "limit_price"),
        ({"limit_price": "1e2"}, "limit_price"),
        ({"limit_price": "-1"}, "limit_price"),
        ({"limit_price": "0"}, "limit_price"),
        ({"limit_price": "0189.5"}, "limit_price"),
        ({"limit_price": "1.123456789"}, "limit_price"),
        ({"limit_price": None}, "limit_price"),
        ({"stop_price": "180"}, "stop_price"),
        ({"side": "buy"}, "side"),
        ({"tif": "FOK"}, "tif"),
        ({"kind": "shout"}, "kind"),
        ({"v": 2}, "v"),
        ({"v": True}, "v"),
        ({"issued_at": "2026-11-24T04:48:34Z"}, "issued_at"),
        ({"issued_at": "2026-11-24T04:48:34.123+00:00"}, "issued_at"),
        ({"issued_at": "2026-13-24T04:48:34.123Z"}, "issued_at"),
        ({"nonce": ""}, "nonce"),
        ({"account": "DU 100"}, "account"),
        ({"symbol": "aapl"}, "symbol"),
        ({"quantity": True}, "quantity"),
        ({"quantity": 0}, "quantity"),
        ({"edge": {"p": "1", "b": "1.5", "stop_price": "185"}}, "edge.p"),
        ({"edge": {"p": "0.5", "b": "0", "stop_price": "185"}}, "edge.b"),
        ({"edge": {"p": "0.5", "b": "2"}}, "edge.stop_price"),
        ({"edge": {"p": "0.5", "b": "2", "stop_price": "1", "x": "1"}}, "edge.x"),
        ({"edge": None}, "edge"),
        ({"display_size": 10}, "display_size"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_enter_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(CommandInvalid) as err:
        Command.from_json_dict(enter_dict(**overrides))
    assert err.value.field == field


@pytest.mark.parametrize(
    ("order_type", "prices", "field"),
    [
        ("MKT", {"limit_price": "1"}, "limit_price"),
        ("STP", {}, "stop_price"),
        ("STP_LMT", {"stop_price": "1"}, "limit_price"),
        ("TRAIL", {}, "trail_amount"),
        ("TRAIL", {"trail_amount": "1", "trail_percent": "2"}, "trail_amount"),
        ("TRAIL", {"trail_percent": "100"}, "trail_percent"),
    ],
)
def test_order_type_decides_which_prices_are_allowed(
    order_type: str, prices: dict[str, str], field: str
) -> None:
    data = enter_dict(order_type=order_type, limit_price=None) | prices
    with pytest.raises(CommandInvalid) as err:
        Command.from_json_dict(data)
    assert err.value.field == field


def test_each_kind_round_trips() -> None:
    common = {
        "v": 1,
        "command_id": "c",
        "agent_id": "a",
        "account": "DU1",
        "nonce": "n",
        "issued_at": "2026-01-02T03:04:05.006Z",
    }
    samples = [
        common
        | {
            "kind": "exit",
            "symbol": "MSFT",
            "side": "SELL",
            "order_type": "TRAIL",
            "trail_percent": "1.5",
            "stop_price": "99",
            "tif": "GTC",
            "quantity": 10,
        },
        common | {"kind": "cancel", "target_command_id": "cmd-9"},
        common | {"kind": "cancel_all"},
        common | {"kind": "cancel_all", "symbol": "BRK.B"},
        common
        | {
            "kind": "iceberg",
            "symbol": "AAPL",
            "side": "BUY",
            "tif": "DAY",
            "quantity": 5000,
            "display_size": 100,
            "limit_price": "190",
            "edge": {"p": "0.6", "b": "1", "stop_price": "180"},
        },
        common
        | {
            "kind": "enter",
            "symbol": "AAPL",
            "side": "SELL",
            "order_type": "MKT",
            "tif": "IOC",
            "quantity": 100,
            "parent_id": "iceberg-1",
            "edge": {"p": "0.6", "b": "1", "stop_price": "200"},
        },
    ]
    for data in samples:
        command = Command.from_json_dict(data)
        assert command.to_json_dict() == data
        assert Command.from_json_dict(json.loads(canonical_bytes(command))) == command


def test_kind_specific_fields_are_refused_elsewhere() -> None:
    base = {
        "v": 1,
        "command_id": "c",
        "agent_id": "a",
        "account": "DU1",
        "nonce": "n",
        "issued_at": "2026-01-02T03:04:05.006Z",
    }
    with pytest.raises(CommandInvalid) as err:
        Command.from_json_dict(base | {"kind": "cancel"})
    assert err.value.field == "target_command_id"
    with pytest.raises(CommandInvalid) as err:
        Command.from_json_dict(base | {"kind": "cancel_all", "side": "BUY"})
    assert err.value.field == "side"
    with pytest.raises(CommandInvalid) as err:
        Command.from_json_dict(
            base
            | {
                "kind": "iceberg",
                "symbol": "A",
                "side": "BUY",
                "tif": "DAY",
                "quantity": 10,
                "display_size": 11,
                "edge": {"p": "0.6", "b": "1", "stop_price": "1"},
            }
        )
    assert err.value.field == "display_size"


def test_a_breaker_command_acts_on_the_whole_floor_and_carries_nothing_else() -> None:
    base = {
        "v": 1,
        "command_id": "c",
        "agent_id": "ops",
        "nonce": "n",
        "issued_at": "2026-01-02T03:04:05.006Z",
    }
    for kind in ("breaker_trip", "breaker_arm"):
        data = base | {"kind": kind, "account": "*"}
        command = Command.from_json_dict(data)
        assert command.to_json_dict() == data and command.account == FLOOR_WIDE
        with pytest.raises(CommandInvalid) as err:
            Command.from_json_dict(base | {"kind": kind, "account": "DU1"})
        assert err.value.field == "account" and "whole floor" in err.value.reason
        with pytest.raises(CommandInvalid) as err:
            Command.from_json_dict(base | {"kind": kind, "account": "*", "symbol": "AAPL"})
        assert err.value.field == "symbol"
    # Everywhere else "*" is no account.
    with pytest.raises(CommandInvalid) as err:
        Command.from_json_dict(base | {"kind": "cancel_all", "account": "*"})
    assert err.value.field == "account"


def test_constructor_validates_and_coerces_enums() -> None:
    command = Command(
        kind="cancel_all",  # type: ignore[arg-type]
        command_id="c",
        agent_id="a",
        account="DU1",
        nonce="n",
        issued_at=ISSUED,
    )
    assert command.kind is CommandKind.CANCEL_ALL
    with pytest.raises(CommandInvalid) as err:
        Command(
            kind=CommandKind.CANCEL_ALL,
            command_id="c",
            agent_id="a",
            account="DU1",
            nonce="n",
            issued_at=ISSUED.replace(microsecond=123456),
        )
    assert err.value.field == "issued_at"
    with pytest.raises(CommandInvalid) as err:
        Command(
            kind=CommandKind.CANCEL_ALL,
            command_id="c",
            agent_id="a",
            account="DU1",
            nonce="n",
            issued_at=ISSUED.replace(tzinfo=None),
        )
    assert err.value.field == "issued_at"


prices = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("99999999"), places=4)


@settings(deadline=None)
@given(
    limit=prices,
    stop=prices,
    p=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("0.99"), places=2),
    b=st.decimals(min_value=Decimal("0.1"), max_value=Decimal("50"), places=3),
    qty=st.none() | st.integers(1, 10**6),
    side=st.sampled_from(Side),
    tif=st.sampled_from(TimeInForce),
)
def test_any_valid_enter_round_trips_exactly(
    limit: Decimal, stop: Decimal, p: Decimal, b: Decimal, qty: int | None, side: Side, tif: TimeInForce
) -> None:
    command = Command(
        kind=CommandKind.ENTER,
        command_id="c-1",
        agent_id="a",
        account="DU1",
        nonce="n",
        issued_at=ISSUED,
        symbol="AAPL",
        side=side,
        order_type=OrderType.LMT,
        limit_price=limit,
        edge=Edge(p, b, stop),
        tif=tif,
        quantity=qty,
    )
    data = json.loads(canonical_bytes(command))
    again = Command.from_json_dict(data)
    assert again == command
    assert canonical_bytes(again) == canonical_bytes(command)
