"""The emulator's pure parts: order JSON to venue orders, fixed-point numbers, the sliding
order limit and token lifetimes (no processes)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paper.schwab_api.activity import fixed
from paper.schwab_api.errors import ServiceError
from paper.schwab_api.limits import OrderRateLimiter
from paper.schwab_api.orders import parse_order, parse_schwab_time
from paper.schwab_api.tokens import TokenIssuer, token_file_body

TICKS = {"AAPL": Decimal("0.01")}


def order(**fields: Any) -> bytes:
    body = {
        "session": "NORMAL",
        "duration": "DAY",
        "orderType": "LIMIT",
        "orderStrategyType": "SINGLE",
        "price": "190.50",
        "orderLegCollection": [
            {"instruction": "BUY", "instrument": {"assetType": "EQUITY", "symbol": "AAPL"}, "quantity": 10}
        ],
    }
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("fields", "venue"),
    [
        ({"orderType": "MARKET", "price": None}, ("MKT", None, None, None)),
        ({}, ("LMT", Decimal("190.50"), None, None)),
        ({"orderType": "STOP", "price": None, "stopPrice": 185}, ("STP", None, Decimal("185"), None)),
        (
            {"orderType": "STOP_LIMIT", "stopPrice": "185.00", "price": 184.5},
            ("STP LMT", Decimal("184.5"), Decimal("185.00"), None),
        ),
        (
            {
                "orderType": "TRAILING_STOP",
                "price": None,
                "stopPriceLinkType": "VALUE",
                "stopPriceOffset": "1.50",
            },
            ("TRAIL", None, Decimal("1.50"), None),
        ),
        (
            {
                "orderType": "TRAILING_STOP",
                "price": None,
                "stopPriceLinkType": "PERCENT",
                "stopPriceOffset": "2",
            },
            ("TRAIL", None, None, Decimal("2")),
        ),
    ],
    ids=["market", "limit", "stop", "stop-limit", "trail-amount", "trail-percent"],
)
def test_each_schwab_order_type_becomes_the_venue_order_of_the_same_meaning(
    fields: dict[str, Any], venue: tuple[Any, ...]
) -> None:
    parsed = parse_order(order(**fields), TICKS)
    spec = parsed.spec
    assert (spec.order_type, spec.lmt_price, spec.aux_price, spec.trailing_percent) == venue
    assert (spec.action, spec.total_qty, spec.tif, spec.outside_rth) == ("BUY", 10, "DAY", False)


def test_durations_sessions_and_instructions_map_to_the_venue() -> None:
    leg = {
        "instruction": "SELL_SHORT",
        "instrument": {"assetType": "EQUITY", "symbol": "aapl"},
        "quantity": 5.0,
    }
    parsed = parse_order(
        order(duration="GOOD_TILL_CANCEL", session="SEAMLESS", orderLegCollection=[leg]), TICKS
    )
    assert (parsed.symbol, parsed.instruction, parsed.spec.action) == ("AAPL", "SELL_SHORT", "SELL")
    assert (parsed.spec.tif, parsed.spec.outside_rth, parsed.quantity) == ("GTC", True, 5)
    ioc = parse_order(order(duration="IMMEDIATE_OR_CANCEL"), TICKS)
    assert ioc.spec.tif == "IOC"


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        (
            {"orderType": "TRAILING_STOP", "price": None, "stopPriceLinkType": "TICK", "stopPriceOffset": 1},
            "TICK",
        ),
        (
            {
                "orderType": "TRAILING_STOP",
                "price": None,
                "stopPriceLinkBasis": "BID",
                "stopPriceLinkType": "VALUE",
                "stopPriceOffset": 1,
            },
            "stopPriceLinkBasis 'BID'",
        ),
        ({"orderType": "MARKET"}, "takes no price"),
        ({"price": "abc"}, "not a number"),
        ({"price": True}, "must be a number"),
        ({"price": "-1"}, "above zero"),
        ({"orderLegCollection": []}, "exactly one leg"),
        ({"session": "NIGHT"}, "session 'NIGHT'"),
    ],
)
def test_what_the_venue_cannot_do_is_refused_before_it_is_sent(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(ServiceError) as refused:
        parse_order(order(**fields), TICKS)
    assert refused.value.status == 400 and says in refused.value.errors[0]


def test_schwab_times_parse_in_each_form_seen() -> None:
    expected = 1767623400.0  # 2026-01-05T14:30:00Z
    for text in (
        "2026-01-05T14:30:00Z",
        "2026-01-05T14:30:00.000Z",
        "2026-01-05T14:30:00+0000",
        "2026-01-05T14:30:00",
    ):
        assert parse_schwab_time(text, "t") == expected
    with pytest.raises(ServiceError):
        parse_schwab_time("yesterday", "t")


@settings(max_examples=40)
@given(st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=6))
def test_fixed_point_numbers_hold_the_value_times_a_million(value: Decimal) -> None:
    number = fixed(value)
    lo = Decimal(number.get("lo", "0")) / 10**6
    assert (lo if number["signScale"] == 12 else -lo) == value


def test_the_order_limit_counts_over_a_sliding_minute_per_account() -> None:
    limiter = OrderRateLimiter(2)
    assert limiter.try_acquire("a", 0.0) is None
    assert limiter.try_acquire("a", 30.0) is None
    assert limiter.try_acquire("b", 30.0) is None  # another account has its own budget
    assert limiter.try_acquire("a", 59.0) == pytest.approx(1.0)  # the first leaves the window at 60
    assert limiter.try_acquire("a", 60.0) is None
    assert limiter.try_acquire("a", 61.0) == pytest.approx(29.0)
    assert limiter.refused == 2
    assert OrderRateLimiter(0).try_acquire("a", 0.0) is None


def test_tokens_expire_by_their_lifetimes_and_a_refresh_does_not_extend_the_login() -> None:
    issuer = TokenIssuer("key", "secret")
    body = token_file_body(issuer, now=1000.0, login_time=1000.0)
    access, refresh = body["token"]["access_token"], body["token"]["refresh_token"]
    assert body["creation_timestamp"] == 1000 and body["token"]["expires_at"] == 2800
    assert issuer.access_valid(access, 2799.0) and not issuer.access_valid(access, 2800.0)
    assert issuer.refresh_valid(refresh, 1000.0 + 7 * 86400 - 1)
    assert not issuer.refresh_valid(refresh, 1000.0 + 7 * 86400)
    renewed = issuer.token_body(5000.0, refresh)
    assert renewed["refresh_token"] == refresh and issuer.access_valid(renewed["access_token"], 5000.0)
    assert not TokenIssuer("key", "other").access_valid(access, 1001.0)
    assert not issuer.access_valid(refresh, 1001.0) and not issuer.refresh_valid(access, 1001.0)
    assert not issuer.access_valid(access[:-3] + "xx@", 1001.0)
