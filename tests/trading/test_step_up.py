"""The step-up challenge binds one order, one nonce and one session."""

from __future__ import annotations

import dataclasses
import hashlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.commands import OrderType, Side, TimeInForce
from trading.step_up import (
    DOMAIN_LABEL,
    OrderTerms,
    hash_prefix,
    order_bytes,
    order_hash,
    step_up_challenge,
)

TERMS = OrderTerms(
    account="DU1234567",
    symbol="AAPL",
    side=Side.BUY,
    order_type=OrderType.LMT,
    quantity=100,
    tif=TimeInForce.DAY,
    limit_price=Decimal("230.50"),
    stop_loss=Decimal("228"),
)
NONCE = bytes(range(32))


def test_order_bytes_are_canonical_json_of_the_terms_without_absent_prices() -> None:
    assert order_bytes(TERMS) == (
        b'{"account":"DU1234567","limit_price":"230.50","order_type":"LMT","quantity":100,'
        b'"side":"BUY","stop_loss":"228","symbol":"AAPL","tif":"DAY","v":1}'
    )


def test_order_hash_is_hex_sha256_of_the_bytes_and_the_prefix_its_start() -> None:
    digest = order_hash(order_bytes(TERMS))
    assert digest == hashlib.sha256(order_bytes(TERMS)).hexdigest()
    assert hash_prefix(digest) == digest[:8]


def test_challenge_layout_is_label_nonce_length_nonce_order_hash_session() -> None:
    expected = hashlib.sha256(
        DOMAIN_LABEL + (32).to_bytes(2, "big") + NONCE + hashlib.sha256(order_bytes(TERMS)).digest() + b"s-1"
    ).digest()
    assert step_up_challenge(NONCE, order_bytes(TERMS), "s-1") == expected


CHANGES = {
    "account": "DU7654321",
    "symbol": "MSFT",
    "side": Side.SELL,
    "order_type": OrderType.STP_LMT,
    "quantity": 101,
    "tif": TimeInForce.GTC,
    "limit_price": Decimal("230.51"),
    "stop_price": Decimal("229"),
    "stop_loss": Decimal("227"),
}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_any_change_to_the_order_changes_its_challenge(field: str) -> None:
    other = dataclasses.replace(TERMS, **{field: CHANGES[field]})
    assert order_hash(order_bytes(other)) != order_hash(order_bytes(TERMS))
    assert step_up_challenge(NONCE, order_bytes(other), "s") != step_up_challenge(
        NONCE, order_bytes(TERMS), "s"
    )


def test_a_stop_loss_added_is_a_different_order() -> None:
    bare = dataclasses.replace(TERMS, stop_loss=None)
    assert order_bytes(bare) != order_bytes(TERMS)


@given(
    st.binary(min_size=16, max_size=64),
    st.binary(min_size=16, max_size=64),
    st.text(min_size=1),
    st.text(min_size=1),
)
def test_challenges_differ_whenever_nonce_or_session_differ(n1: bytes, n2: bytes, s1: str, s2: str) -> None:
    order = order_bytes(TERMS)
    same = (n1, s1) == (n2, s2)
    assert (step_up_challenge(n1, order, s1) == step_up_challenge(n2, order, s2)) == same


@pytest.mark.parametrize("nonce", [b"", b"x" * 15, b"x" * 65])
def test_a_nonce_too_short_or_too_long_is_refused(nonce: bytes) -> None:
    with pytest.raises(ValueError, match="nonce"):
        step_up_challenge(nonce, order_bytes(TERMS), "s")


def test_a_challenge_without_a_session_is_refused() -> None:
    with pytest.raises(ValueError, match="session"):
        step_up_challenge(NONCE, order_bytes(TERMS), "")
