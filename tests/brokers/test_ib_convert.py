"""Order translation to ib_async and inbound value conversion."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers import ib_convert as cv
from brokers.base import BrokerOrder, BrokerOrderStatus, OrderInvalid, OrderType, Side, TimeInForce


def order(**kw: object) -> BrokerOrder:
    base: dict[str, object] = dict(
        order_ref="cmd-1",
        account="DU100",
        symbol="AAPL",
        side=Side.BUY,
        quantity=100,
        order_type=OrderType.LMT,
        limit_price=Decimal("189.50"),
    )
    base.update(kw)
    return BrokerOrder(**base)  # type: ignore[arg-type]


def test_limit_order_carries_exact_decimal_price_and_order_ref() -> None:
    o = cv.ib_order(order(), 17)
    assert (o.orderId, o.action, o.orderType, o.orderRef, o.account) == (17, "BUY", "LMT", "cmd-1", "DU100")
    assert o.lmtPrice == Decimal("189.50") and str(o.lmtPrice) == "189.50"
    assert o.totalQuantity == 100 and str(o.totalQuantity) == "100"


def test_stop_limit_maps_stop_to_aux_price() -> None:
    o = cv.ib_order(order(order_type=OrderType.STP_LMT, stop_price=Decimal("188"), tif=TimeInForce.GTC), 1)
    assert (o.orderType, o.lmtPrice, o.auxPrice, o.tif) == (
        "STP LMT",
        Decimal("189.50"),
        Decimal("188"),
        "GTC",
    )


def test_trailing_percent_uses_trailing_percent_and_initial_stop() -> None:
    o = cv.ib_order(
        order(
            order_type=OrderType.TRAIL,
            limit_price=None,
            trailing_percent=Decimal("1.5"),
            stop_price=Decimal("180"),
        ),
        1,
    )
    assert (o.orderType, o.trailingPercent, o.trailStopPrice) == ("TRAIL", Decimal("1.5"), Decimal("180"))
    assert o.auxPrice != Decimal("1.5")


def test_plain_notation_never_prints_an_exponent() -> None:
    assert str(cv.plain(Decimal("1E+2"))) == "100"
    assert str(cv.plain(Decimal("187.25"))) == "187.25"
    assert cv.plain(Decimal("1.2E+3")) == Decimal("1200")


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"limit_price": None}, "limit_price"),
        ({"order_type": OrderType.MKT}, "limit_price"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": 1.5}, "quantity"),
        ({"order_type": OrderType.STP, "limit_price": None}, "stop_price"),
        ({"order_type": OrderType.TRAIL, "limit_price": None}, "trailing_amount"),
        ({"limit_price": Decimal("-1")}, "limit_price"),
        ({"limit_price": Decimal("NaN")}, "limit_price"),
        ({"order_ref": ""}, "order_ref"),
    ],
)
def test_unsendable_orders_are_refused_naming_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(OrderInvalid) as info:
        cv.validate(order(**kw))
    assert info.value.field == field


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2))
def test_inbound_float_price_converts_back_to_the_gateway_text(price: Decimal) -> None:
    assert cv.price(float(str(price))) == price


def test_unset_prices_and_sizes_are_none_or_zero() -> None:
    assert cv.price(float("nan")) is None
    assert cv.price(1.7976931348623157e308) is None
    assert cv.price(-1.0) is None
    assert cv.shares(99.99999999) == 100


def test_status_strings_map_to_broker_statuses() -> None:
    assert cv.status("Submitted") is BrokerOrderStatus.SUBMITTED
    assert cv.status("ApiCancelled") is BrokerOrderStatus.CANCELLED
    assert cv.status("Inactive").is_done
